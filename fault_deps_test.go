package main

// Dependency faults (issue item 4): Kafka unreachable, PostgreSQL down and
// Redis restarted while a whole Aisle runs in-process. Each dependency is
// taken away without touching the shared servers other tests use: Kafka and
// PostgreSQL through a faulttest.Proxy that can cut every connection, Redis
// by a redis-server of the test's own.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/internal/faulttest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming"
)

const (
	reportPickMutation = `mutation($s: ID!, $p: ID!, $o: ID!, $t: Time) {
  reportPick(input: {storeId: $s, productId: $p, orderId: $o, outcome: FOUND, shopperId: "sh-1", time: $t}) { eventId }
}`
	labelOrderMutation = `mutation($o: ID!) { labelOrder(orderId: $o, fraud: true) { eventId } }`
)

// faultTimeout bounds every wait for a fault to show or to heal.
const faultTimeout = 30 * time.Second

// serverOperationTimeout is httpapi's operationTimeout, after which the
// server cuts a query or mutation over HTTP.
const serverOperationTimeout = 15 * time.Second

// waitUntil polls cond (with eventually) until it holds, for at most
// faultTimeout, and returns how long that took.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, faultTimeout, func() string {
		if ok, why := cond(); !ok {
			return what + ": " + why
		}
		return ""
	})
	return time.Since(start)
}

// startFaultServer is startServer whose logs are printed when the test
// fails: what the server said about the outage is the first thing to read.
func startFaultServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	ts := startServer(t, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", ts.logs.String())
		}
	})
	return ts
}

// wantUnavailable checks that resp failed with UNAVAILABLE and a message
// that tells the caller to retry without naming the internals.
func wantUnavailable(t *testing.T, what string, resp gqlResponse) {
	t.Helper()
	if len(resp.Errors) == 0 {
		t.Errorf("%s: succeeded (%s), want UNAVAILABLE", what, resp.Data)
		return
	}
	e := resp.Errors[0]
	if code, _ := e.Extensions["code"].(string); code != aisle.EUNAVAILABLE {
		t.Errorf("%s: code %q (%q), want UNAVAILABLE", what, code, e.Message)
	}
	lower := strings.ToLower(e.Message)
	for _, leak := range []string{"dial", "tcp", "eof", "reset", "sql", "redis", "pgx", "kafka", "127.0.0.1"} {
		if strings.Contains(lower, leak) {
			t.Errorf("%s: message %q leaks %q", what, e.Message, leak)
		}
	}
}

// activateFraudModel stores and activates a one-feature fraud model
// directly in the database at dbURL, so assessOrder works without the
// history `aisle train fraud` needs; the server picks it up on its next
// model poll (start it with a short --fraud-model-poll).
func activateFraudModel(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	model := models.FraudModel{
		Features: models.FraudFeatureNames()[:1],
		Logistic: models.LogisticModel{Means: []float64{0}, Stds: []float64{1}, Weights: []float64{0.1}, Bias: -3},
	}
	now := time.Now()
	version, err := db.SaveFraudModel(ctx, postgres.FraudModelVersion{WindowStart: now.Add(-time.Hour), WindowEnd: now, Model: model, Metrics: map[string]float64{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ActivateFraudModel(ctx, version); err != nil {
		t.Fatal(err)
	}
}

// startProxiedBroker runs a Kafka-protocol broker behind a proxy and
// returns the proxy, whose address is the broker's as clients see it. The
// broker stops after the test's server, whose cleanup is registered later.
func startProxiedBroker(t *testing.T) *faulttest.Proxy {
	t.Helper()
	ln, proxy := faulttest.NewProxiedListener(t)
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(2),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return ln, nil }),
	)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(cluster.Close)
	return proxy
}

// TestDepKafkaUnreachable cuts the server off its broker: every mutation
// that publishes fails with UNAVAILABLE within PublishTimeout and a margin,
// well before the operation timeout; assessOrder leaves no assessment for
// an order whose event was not published; once the broker is reachable
// again the same mutations succeed without a restart, the retried
// assessment is alerted, and no failed attempt reached the log behind the
// caller's back (each event is there once).
func TestDepKafkaUnreachable(t *testing.T) {
	proxy := startProxiedBroker(t)
	ts := startFaultServer(t, "--kafka-brokers", proxy.Addr(), "--fraud-model-poll", "100ms")
	activateFraudModel(t, ts.main.Config.DatabaseURL)
	store, products := ts.store(1)
	service := ts.createKey(aisle.RoleService, "", "")
	ops := ts.createKey(aisle.RoleOps, "", "")

	// Each mutation's event names an id, prefix + "before" or "cut", so
	// that its records can be counted.
	mutations := []struct {
		name   string
		topic  string // where its event goes
		prefix string // of the id its event names
		query  string
		vars   func(id string) map[string]any
	}{
		{"reportPick", aisle.TopicPicking, "o-pick-", reportPickMutation, func(id string) map[string]any {
			return map[string]any{"s": store.ID, "p": products[0], "o": id}
		}},
		{"recordSessionEvent", aisle.TopicSessions, "ss-", recordSessionEvent, func(id string) map[string]any {
			return map[string]any{"session": id, "store": store.ID, "type": "VIEW", "product": products[0], "user": "u-1"}
		}},
		{"assessOrder", aisle.TopicOrders, "o-", assessOrderMutation, func(id string) map[string]any {
			return map[string]any{"in": orderInput(id, "u-1", store.ID, products[0], "card-1", "dev-1", 1200)}
		}},
		{"labelOrder", aisle.TopicLabels, "o-", labelOrderMutation, func(id string) map[string]any {
			return map[string]any{"o": id}
		}},
	}
	waitUntil(t, "the fraud model is served", func() (bool, string) {
		resp := ts.query(service, assessOrderMutation, map[string]any{"in": orderInput("o-warm", "u-1", store.ID, products[0], "card-1", "dev-1", 1200)})
		return len(resp.Errors) == 0, fmt.Sprint(resp.Errors)
	})
	for _, m := range mutations {
		if resp := ts.query(service, m.query, m.vars(m.prefix+"before")); len(resp.Errors) > 0 {
			t.Fatalf("%s before the cut: %+v", m.name, resp.Errors)
		}
	}

	alerts, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + service})
	if err != nil {
		t.Fatal(err)
	}
	alerts.subscribe("alerts", `subscription { riskAlerts(minScore: 0) { orderId } }`, nil)

	proxy.Cut()
	cutAt := time.Now()
	for _, m := range mutations {
		start := time.Now()
		resp := ts.query(service, m.query, m.vars(m.prefix+"cut"))
		took := time.Since(start)
		wantUnavailable(t, m.name+" while Kafka is unreachable", resp)
		// The publish itself gave up: the answer came before the server's
		// operation timeout would have cut the request, so UNAVAILABLE is
		// the producer's verdict, not a request that merely timed out. How
		// long it took is logged, not asserted: speed is the benchmarks'.
		if took >= serverOperationTimeout {
			t.Errorf("%s failed only after %s, not before the server's operation timeout %s: the publish did not give up by itself", m.name, took, serverOperationTimeout)
		}
		t.Logf("%s answered after %s: %+v", m.name, took.Round(time.Millisecond), resp.Errors)
	}
	// The order whose order.placed was not published has no assessment.
	var risk struct {
		OrderRisk *fraudAssessment `json:"orderRisk"`
	}
	ts.mustData(ops, orderRiskQuery, map[string]any{"o": "o-cut"}, &risk)
	if risk.OrderRisk != nil {
		t.Errorf("orderRisk(o-cut) = %+v after its publish failed, want null (no partial state)", *risk.OrderRisk)
	}

	proxy.Resume()
	t.Logf("Kafka unreachable for %s", time.Since(cutAt).Round(time.Millisecond))
	probes := 0
	recovered := waitUntil(t, "reportPick succeeds after the broker is back", func() (bool, string) {
		probes++
		resp := ts.query(service, reportPickMutation, mutations[0].vars("o-pick-probe"))
		return len(resp.Errors) == 0, fmt.Sprint(resp.Errors)
	})
	t.Logf("publishing recovered %s after the broker came back (attempt %d)", recovered.Round(time.Millisecond), probes)
	for _, m := range mutations {
		if resp := ts.query(service, m.query, m.vars(m.prefix+"cut")); len(resp.Errors) > 0 {
			t.Errorf("%s retried after recovery: %+v", m.name, resp.Errors)
		}
	}
	ts.mustData(ops, orderRiskQuery, map[string]any{"o": "o-cut"}, &risk)
	if risk.OrderRisk == nil || risk.OrderRisk.OrderID != "o-cut" {
		t.Errorf("orderRisk(o-cut) after a successful retry = %+v, want its assessment", risk.OrderRisk)
	}
	// The retried assessment is new, so it is alerted.
	for {
		msg, err := alerts.next(10 * time.Second)
		if err != nil {
			t.Fatalf("no riskAlerts alert for o-cut after its retry: %v", err)
		}
		if strings.Contains(string(msg.Payload), `"o-cut"`) {
			break
		}
	}
	// What failed did not reach the log behind the caller's back: each
	// mutation's event is there once, from the retry.
	for _, m := range mutations {
		needle := strconv.Quote(m.prefix + "cut")
		if n := countRecords(t, ts.main.KafkaBrokers, m.topic, needle); n != 1 {
			t.Errorf("%s: %d records of the cut attempt and its retry in %s, want 1", m.name, n, m.topic)
		}
	}
}

// countRecords counts the records of topic whose value contains substr.
func countRecords(t *testing.T, brokers []string, topic, substr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	err := streaming.ReadTopics(ctx, brokers, []string{topic}, slog.New(slog.DiscardHandler), func(_ string, _ int32, _ int64, value []byte, _ time.Time) error {
		if strings.Contains(string(value), substr) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return n
}

// wantNoDeadLetters checks that no event was dead-lettered: an outage is
// not a bad event.
func wantNoDeadLetters(t *testing.T, brokers []string) {
	t.Helper()
	if n := countRecords(t, brokers, aisle.TopicDLQ, ""); n != 0 {
		t.Errorf("%d events dead-lettered, want none: an outage is not a bad event", n)
	}
}

// TestDepRedisRestart kills the server's Redis (SIGKILL) while picks keep
// being reported, then starts it again on the same data: while it is down,
// /readyz says not ready and Redis-backed answers (availability, once the
// near cache notices; recommendations; recordSessionEvent; assessOrder,
// which leaves no assessment) say UNAVAILABLE; the
// stream workers pause on the failing writes and resume once it is back,
// so every pick is counted exactly once and none is dead-lettered; and the
// API recovers without a restart. Redis keeps its data through the restart
// (AOF, as in production); a Redis that comes back empty is rebuilt by
// `aisle replay` instead, which replay_test.go covers.
func TestDepRedisRestart(t *testing.T) {
	redis := faulttest.StartRedis(t)
	ts := startFaultServer(t, "--redis-url", redis.URL(), "--fraud-model-poll", "100ms")
	activateFraudModel(t, ts.main.Config.DatabaseURL)
	store, products := ts.store(1)
	sp := aisle.StoreProduct{StoreID: store.ID, ProductID: products[0]}
	shopper := ts.createKey(aisle.RoleShopper, "", "sh-1")
	customer := ts.createKey(aisle.RoleCustomer, "", "u-1")
	service := ts.createKey(aisle.RoleService, "", "")
	assess := func(orderID string) gqlResponse {
		return ts.query(service, assessOrderMutation, map[string]any{"in": orderInput(orderID, "u-1", store.ID, products[0], "card-1", "dev-1", 1500)})
	}
	orderRisk := func(orderID string) *fraudAssessment {
		var risk struct {
			OrderRisk *fraudAssessment `json:"orderRisk"`
		}
		ts.mustData(service, orderRiskQuery, map[string]any{"o": orderID}, &risk)
		return risk.OrderRisk
	}
	recommendationsVars := map[string]any{"session": "ss-1", "store": sp.StoreID, "first": 5}
	fs := ts.serverFeatures()
	// Every pick has the same event time, so the decayed found count of the
	// store-product is exactly the number of picks applied.
	pickTime := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	picks := 0
	reportPicks := func(n int) {
		t.Helper()
		for range n {
			picks++
			vars := map[string]any{"s": sp.StoreID, "p": sp.ProductID, "o": fmt.Sprintf("o-%d", picks), "t": pickTime}
			if resp := ts.query(shopper, reportPickMutation, vars); len(resp.Errors) > 0 {
				t.Fatalf("reportPick %d: %+v", picks, resp.Errors)
			}
		}
	}
	foundCount := func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ev, err := fs.Availability(ctx, []aisle.StoreProduct{sp})
		if err != nil {
			return false, err.Error()
		}
		return ev[0].Found == float64(picks), fmt.Sprintf("found %v, want %d", ev[0].Found, picks)
	}
	availabilityVars := map[string]any{"s": sp.StoreID, "p": []string{sp.ProductID}}

	reportPicks(5)
	waitUntil(t, "the picks before the restart are applied", foundCount)
	waitUntil(t, "the fraud model is served", func() (bool, string) {
		resp := assess("o-before")
		return len(resp.Errors) == 0, fmt.Sprint(resp.Errors)
	})
	var before struct{ Availability []itemAvailability }
	ts.mustData("", availabilityQuery, availabilityVars, &before)

	// A live subscriber must learn of the picks applied after the outage,
	// whenever its server's change subscription comes back.
	ws, err := ts.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.subscribe("live", `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { productId probability } }`,
		map[string]any{"s": sp.StoreID, "p": []string{sp.ProductID}})

	redis.Kill()
	downAt := time.Now()
	waitUntil(t, "/readyz says not ready while Redis is down", func() (bool, string) {
		code, _ := getStatus(t, ts.url+"/readyz", nil)
		return code == http.StatusServiceUnavailable, fmt.Sprintf("/readyz answered %d", code)
	})
	// The near cache may answer until the change subscription notices the
	// outage; after that, availability reads Redis and says it cannot.
	stale := waitUntil(t, "availability says UNAVAILABLE", func() (bool, string) {
		resp := ts.query("", availabilityQuery, availabilityVars)
		return len(resp.Errors) > 0, fmt.Sprintf("answered %s", resp.Data)
	})
	t.Logf("availability was answered for %s after Redis died", stale.Round(time.Millisecond))
	wantUnavailable(t, "availability while Redis is down", ts.query("", availabilityQuery, availabilityVars))
	// A session event needs the session's owner, kept in Redis.
	wantUnavailable(t, "recordSessionEvent while Redis is down", ts.query(customer, recordSessionEvent,
		map[string]any{"session": "ss-1", "store": sp.StoreID, "type": "VIEW", "product": sp.ProductID}))
	wantUnavailable(t, "recommendations while Redis is down", ts.query(customer, recommendationsQuery, recommendationsVars))
	// Scoring an order needs its velocity features.
	wantUnavailable(t, "assessOrder while Redis is down", assess("o-redis"))
	// Picks only need Kafka: they are accepted, and wait in the stream.
	reportPicks(5)
	waitUntil(t, "the stream workers retry the failing Redis writes", func() (bool, string) {
		return strings.Contains(ts.logs.String(), `"step":"availability"`), "no failed availability step logged"
	})

	redis.Start()
	t.Logf("Redis was down for %s", time.Since(downAt).Round(time.Millisecond))
	ready := waitUntil(t, "/readyz says ready once Redis is back", func() (bool, string) {
		code, _ := getStatus(t, ts.url+"/readyz", nil)
		return code == http.StatusOK, fmt.Sprintf("/readyz answered %d", code)
	})
	applied := waitUntil(t, "the picks made during the outage are applied, each once", foundCount)
	served := waitUntil(t, "availability answers again", func() (bool, string) {
		resp := ts.query("", availabilityQuery, availabilityVars)
		return len(resp.Errors) == 0, fmt.Sprint(resp.Errors)
	})
	t.Logf("after Redis came back: ready in %s, stream caught up %s later, availability served %s later",
		ready.Round(time.Millisecond), applied.Round(time.Millisecond), served.Round(time.Millisecond))
	if ok, why := foundCount(); !ok {
		t.Errorf("after recovery: %s", why)
	}
	// Nothing changed between the subscription and the outage, so any
	// update is the news of the picks applied after it.
	if msg, err := ws.next(10 * time.Second); err != nil || msg.Type != "next" || !strings.Contains(string(msg.Payload), sp.ProductID) {
		t.Errorf("availabilityChanged after recovery: got %s %s (%v), want the new state of %s", msg.Type, msg.Payload, err, sp.ProductID)
	}
	var after struct{ Availability []itemAvailability }
	ts.mustData("", availabilityQuery, availabilityVars, &after)
	if after.Availability[0].UpdatedAt == nil || before.Availability[0].UpdatedAt == nil || *after.Availability[0].UpdatedAt != *before.Availability[0].UpdatedAt {
		t.Errorf("updatedAt %v after the outage, want the picks' time %v", after.Availability[0].UpdatedAt, before.Availability[0].UpdatedAt)
	}
	wantNoDeadLetters(t, ts.main.KafkaBrokers)
	if resp := ts.query(customer, recordSessionEvent, map[string]any{"session": "ss-1", "store": sp.StoreID, "type": "VIEW", "product": sp.ProductID}); len(resp.Errors) > 0 {
		t.Errorf("recordSessionEvent after recovery: %+v", resp.Errors)
	}
	if resp := ts.query(customer, recommendationsQuery, recommendationsVars); len(resp.Errors) > 0 {
		t.Errorf("recommendations after recovery: %+v", resp.Errors)
	}
	if risk := orderRisk("o-redis"); risk != nil {
		t.Errorf("orderRisk(o-redis) = %+v after its assessment failed, want null", *risk)
	}
	if resp := assess("o-redis"); len(resp.Errors) > 0 {
		t.Errorf("assessOrder after recovery: %+v", resp.Errors)
	}
}

// TestDepPostgresDown cuts the server off PostgreSQL, first refusing its
// connections, then as a network partition that never answers: the catalog
// it has served is served again from memory, keys it has seen keep working, while
// what needs the database fails with UNAVAILABLE (a key never seen, an
// assessment's audit insert) and /readyz says not ready; the stream
// workers that write PostgreSQL (order history, assessment labels) pause
// and apply everything once it is back, each order once, none
// dead-lettered.
func TestDepPostgresDown(t *testing.T) {
	realURL := postgrestest.NewDatabaseURL(t)
	proxy, proxiedURL := faulttest.NewURLProxy(t, realURL)
	ts := startFaultServer(t, "--database-url", proxiedURL, "--fraud-model-poll", "100ms")
	activateFraudModel(t, realURL)
	direct, err := postgres.Open(context.Background(), realURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	baskets := func() int {
		t.Helper()
		b, err := direct.Baskets(context.Background(), time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatalf("read baskets: %v", err)
		}
		return len(b)
	}

	service := ts.createKey(aisle.RoleService, "", "")
	ops := ts.createKey(aisle.RoleOps, "", "")
	unseen := ts.createKey(aisle.RoleService, "", "")
	stores := ts.stores(3, 5)
	store, products := stores[0], stores[0].Products
	const storeQuery = `query($id: ID!) { store(id: $id) { id name retailer { id name } products(first: 5) { edges { node { id name category } } } } }`
	storeBefore := ts.query("", storeQuery, map[string]any{"id": store.ID})
	availabilityVars := map[string]any{"s": store.ID, "p": products}
	assess := func(orderID string) gqlResponse {
		return ts.query(service, assessOrderMutation, map[string]any{"in": orderInput(orderID, "u-1", store.ID, products[0], "card-1", "dev-1", 1500)})
	}
	waitUntil(t, "the fraud model is served and o-before assessed", func() (bool, string) {
		resp := assess("o-before")
		return len(resp.Errors) == 0, fmt.Sprint(resp.Errors)
	})
	ts.mustData(ops, orderRiskQuery, map[string]any{"o": "o-before"}, &struct{}{}) // ops is seen
	ts.mustData(service, availabilityQuery, availabilityVars, &struct{}{})         // and these ids
	waitUntil(t, "o-before is in the order history", func() (bool, string) {
		return baskets() == 1, fmt.Sprintf("%d baskets", baskets())
	})

	proxy.Cut()
	downAt := time.Now()
	waitUntil(t, "/readyz says not ready while PostgreSQL is down", func() (bool, string) {
		code, _ := getStatus(t, ts.url+"/readyz", nil)
		return code == http.StatusServiceUnavailable, fmt.Sprintf("/readyz answered %d", code)
	})
	// The catalog already served is served from memory, the same.
	if got := ts.stores(3, 5); fmt.Sprint(got) != fmt.Sprint(stores) {
		t.Errorf("stores while PostgreSQL is down = %v, want %v", got, stores)
	}
	if got := ts.query("", storeQuery, map[string]any{"id": store.ID}); string(got.Data) != string(storeBefore.Data) || len(got.Errors) > 0 {
		t.Errorf("store while PostgreSQL is down = %s %+v, want %s", got.Data, got.Errors, storeBefore.Data)
	}
	// Availability needs the catalog's ids (cached) and Redis; the service
	// key was seen, so it is trusted from the key cache.
	if resp := ts.query(service, availabilityQuery, availabilityVars); len(resp.Errors) > 0 {
		t.Errorf("availability with a seen key while PostgreSQL is down: %+v", resp.Errors)
	}
	// A key never seen cannot be checked.
	status, resp := ts.post(unseen, availabilityQuery, availabilityVars)
	wantUnavailable(t, "an unseen key while PostgreSQL is down", resp)
	if status != http.StatusServiceUnavailable {
		t.Errorf("an unseen key while PostgreSQL is down: HTTP %d, want 503", status)
	}
	// Writes that need PostgreSQL fail clearly, in bounded time.
	start := time.Now()
	wantUnavailable(t, "assessOrder while PostgreSQL is down", assess("o-down"))
	t.Logf("assessOrder failed after %s", time.Since(start).Round(time.Millisecond))
	wantUnavailable(t, "orderRisk while PostgreSQL is down", ts.query(ops, orderRiskQuery, map[string]any{"o": "o-before"}))
	// Events whose appliers write PostgreSQL are accepted (Kafka is up) and
	// wait in the stream: a label of o-before, and an order of the stream's.
	if resp := ts.query(ops, labelOrderMutation, map[string]any{"o": "o-before"}); len(resp.Errors) > 0 {
		t.Fatalf("labelOrder while PostgreSQL is down: %+v", resp.Errors)
	}
	amount := int64(900)
	order, err := json.Marshal(aisle.OrderPlaced{OrderID: "o-stream", UserID: "u-2", StoreID: store.ID, AmountCents: &amount,
		CardFingerprint: "card-2", DeviceID: "dev-2", IP: "192.0.2.8", AddressHash: "addr-u-2",
		Items: []aisle.OrderItem{{ProductID: products[1], Quantity: 1}}}) // ids seen: the catalog step passes
	if err != nil {
		t.Fatal(err)
	}
	ts.publish(aisle.Event{ID: "ev-o-stream", Type: aisle.TypeOrderPlaced, Time: time.Now(), Source: "test", Data: order})
	waitUntil(t, "the stream workers retry their PostgreSQL writes", func() (bool, string) {
		logs := ts.logs.String()
		return strings.Contains(logs, `"step":"order_history"`) && strings.Contains(logs, `"step":"assessment_labels"`),
			"no failed order_history and assessment_labels steps logged"
	})

	// Hold the outage past the catalog's retry window: what is served from
	// memory keeps working once a read has tried PostgreSQL again, and
	// failed again (each failed try is logged).
	const failedTry = "catalog: PostgreSQL unreachable"
	tries := strings.Count(ts.logs.String(), failedTry)
	waitUntil(t, "a catalog read tries PostgreSQL again and is served from memory", func() (bool, string) {
		if got := ts.stores(3, 5); fmt.Sprint(got) != fmt.Sprint(stores) {
			t.Fatalf("stores %s into the outage = %v, want %v", time.Since(downAt), got, stores)
		}
		n := strings.Count(ts.logs.String(), failedTry)
		return n > tries, fmt.Sprintf("%d failed tries logged since the first reads, want more", n-tries)
	})

	// A network partition: connections are never answered. The catalog is
	// still served, once a connection attempt times out; writes still fail
	// clearly, before the operation timeout.
	proxy.Blackhole()
	start = time.Now()
	if got := ts.stores(3, 5); fmt.Sprint(got) != fmt.Sprint(stores) {
		t.Errorf("stores behind a partition = %v, want %v", got, stores)
	}
	t.Logf("stores answered after %s behind a partition", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	wantUnavailable(t, "assessOrder behind a partition", assess("o-down"))
	t.Logf("assessOrder failed after %s behind a partition", time.Since(start).Round(time.Millisecond))

	proxy.Resume()
	t.Logf("PostgreSQL was down for %s", time.Since(downAt).Round(time.Millisecond))
	ready := waitUntil(t, "/readyz says ready once PostgreSQL is back", func() (bool, string) {
		code, _ := getStatus(t, ts.url+"/readyz", nil)
		return code == http.StatusOK, fmt.Sprintf("/readyz answered %d", code)
	})
	var risk struct {
		OrderRisk *fraudAssessment `json:"orderRisk"`
	}
	labeled := waitUntil(t, "the label made during the outage reaches the audit", func() (bool, string) {
		ts.mustData(ops, orderRiskQuery, map[string]any{"o": "o-before"}, &risk)
		return risk.OrderRisk != nil && risk.OrderRisk.Fraud != nil && *risk.OrderRisk.Fraud, fmt.Sprintf("orderRisk %+v", risk.OrderRisk)
	})
	waitUntil(t, "the order of the outage is in the order history", func() (bool, string) {
		return baskets() == 2, fmt.Sprintf("%d baskets, want 2", baskets())
	})
	t.Logf("after PostgreSQL came back: ready in %s, label applied %s later", ready.Round(time.Millisecond), labeled.Round(time.Millisecond))
	if resp := assess("o-down"); len(resp.Errors) > 0 {
		t.Errorf("assessOrder after recovery: %+v", resp.Errors)
	}
	if resp := ts.query(unseen, availabilityQuery, availabilityVars); len(resp.Errors) > 0 {
		t.Errorf("the unseen key after recovery: %+v", resp.Errors)
	}
	waitUntil(t, "o-down is in the order history", func() (bool, string) {
		return baskets() == 3, fmt.Sprintf("%d baskets, want 3", baskets())
	})
	wantNoDeadLetters(t, ts.main.KafkaBrokers)
}
