package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/internal/promtest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// The observability tests are not parallel: the metrics are process-wide,
// so they compare scrapes before and after, which other tests would disturb.

// scrape reads the server's /metrics.
func (ts *testServer) scrape() promtest.Metrics {
	ts.t.Helper()
	res, err := http.Get(ts.url + "/metrics")
	if err != nil {
		ts.t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		ts.t.Fatalf("GET /metrics: HTTP %d", res.StatusCode)
	}
	return promtest.Parse(ts.t, res.Body)
}

// waitReady polls /readyz until it answers 200.
func (ts *testServer) waitReady() {
	ts.t.Helper()
	eventually(ts.t, 15*time.Second, func() string {
		if status, body := getStatus(ts.t, ts.url+"/readyz", nil); status != http.StatusOK {
			return fmt.Sprintf("/readyz still %d: %s", status, body)
		}
		return ""
	})
}

// getStatus GETs url with headers and returns the status and body.
func getStatus(t testing.TB, url string, header http.Header) (int, string) {
	t.Helper()
	status, body, _ := getResponse(t, url, header)
	return status, body
}

func getResponse(t testing.TB, url string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, string(body), res.Header
}

// GraphQL latency and errors are labelled by operation, with the labels a
// client can choose bounded, and the pool collectors report.
func TestGraphQLMetricsByOperation(t *testing.T) {
	ts := startServer(t)
	ts.waitReady()
	before := ts.scrape()
	const stores = `stores(first: 1) { edges { node { id } } }`
	longName := "Q" + strings.Repeat("x", 80)
	ts.mustData("", "query ObsStores { "+stores+" }", nil, &json.RawMessage{})
	ts.mustData("", "query ObsStores { "+stores+" }", nil, &json.RawMessage{})
	ts.mustData("", "{ "+stores+" }", nil, &json.RawMessage{})
	ts.mustData("", "query "+longName+" { "+stores+" }", nil, &json.RawMessage{})
	if resp := ts.query("", "query ObsBad { nope }", nil); len(resp.Errors) != 1 {
		t.Fatalf("want a validation error, got %+v", resp)
	}
	if resp := ts.query("", "query ObsBroken {", nil); len(resp.Errors) != 1 {
		t.Fatalf("want a parse error, got %+v", resp)
	}
	if resp := ts.query("", "query ObsDenied { orderRisk(orderId: \"o-1\") { score } }", nil); len(resp.Errors) != 1 {
		t.Fatalf("want an access error, got %+v", resp)
	}
	after := ts.scrape()

	for _, want := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"aisle_graphql_request_duration_seconds", map[string]string{"operation": "ObsStores", "type": "query"}, 2},
		{"aisle_graphql_request_duration_seconds", map[string]string{"operation": "anonymous:stores", "type": "query"}, 1},
		{"aisle_graphql_request_duration_seconds", map[string]string{"operation": "other", "type": "query"}, 1},
		{"aisle_graphql_request_duration_seconds", map[string]string{"operation": "ObsDenied", "type": "query"}, 1},
		{"aisle_graphql_errors_total", map[string]string{"operation": "ObsDenied", "code": "UNAUTHENTICATED"}, 1},
		// A document that does not validate or parse never names an
		// operation we could trust.
		{"aisle_graphql_errors_total", map[string]string{"operation": "invalid", "code": "GRAPHQL_VALIDATION_FAILED"}, 1},
		{"aisle_graphql_errors_total", map[string]string{"operation": "invalid", "code": "GRAPHQL_PARSE_FAILED"}, 1},
	} {
		b, _ := before.Value(want.name, want.labels)
		if got := after.MustValue(t, want.name, want.labels) - b; got != want.delta {
			t.Errorf("%s%v rose by %v, want %v", want.name, want.labels, got, want.delta)
		}
	}
	if _, ok := after.Value("aisle_graphql_request_duration_seconds", map[string]string{"operation": longName}); ok {
		t.Errorf("an 81-character operation name became a label")
	}
	for _, name := range []string{"aisle_postgres_pool_max_connections", "aisle_postgres_pool_acquires_total", "aisle_redis_pool_open_connections", "aisle_redis_pool_hits_total"} {
		if v := after.MustValue(t, name, nil); v <= 0 {
			t.Errorf("%s = %v, want > 0 on a server that has answered queries", name, v)
		}
	}
}

// The active subscriptions gauge comes back down however a subscription
// ends: completed by the client, its connection closed or dropped, or the
// server draining.
func TestActiveSubscriptionsGauge(t *testing.T) {
	ts := startServer(t)
	store, products := ts.store(1)
	field := map[string]string{"field": "availabilityChanged"}
	base, _ := ts.scrape().Value("aisle_graphql_active_subscriptions", field)
	waitActive := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := ts.scrape().Value("aisle_graphql_active_subscriptions", field)
			if got == base+want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("active availabilityChanged subscriptions = %v, want %v", got-base, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const sub = `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { probability } }`
	vars := map[string]any{"s": store.ID, "p": products[:1]}

	c, err := ts.dialWS(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe("1", sub, vars)
	c.subscribe("2", sub, vars)
	waitActive(2)
	if err := wsjson.Write(c.ctx, c.conn, map[string]any{"id": "1", "type": "complete"}); err != nil {
		t.Fatal(err)
	}
	waitActive(1)
	c.conn.Close(websocket.StatusNormalClosure, "bye")
	waitActive(0)

	c, err = ts.dialWS(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe("1", sub, vars)
	waitActive(1)
	c.conn.CloseNow() // no close handshake: a peer that vanished
	waitActive(0)

	// The server ending subscriptions as it drains; the server is gone
	// after, so read the in-process registry.
	c, err = ts.dialWS(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe("1", sub, vars)
	waitActive(1)
	if err := ts.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got, _ := promtest.Gather(t).Value("aisle_graphql_active_subscriptions", field); got != base {
		t.Errorf("after the drain %v subscriptions are still counted as active", got-base)
	}
}

// A well-formed X-Request-Id comes back as sent, anything else is replaced
// with a fresh id, and log lines written while serving the request carry it.
func TestRequestIDs(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		sent string
		kept bool
	}{
		{"req-123.abc:7_X", true},
		{"", false},
		{"has space", false},
		{`quote"`, false},
		{strings.Repeat("a", 65), false},
	} {
		h := http.Header{}
		if tc.sent != "" {
			h.Set(httpapi.RequestIDHeader, tc.sent)
		}
		_, _, got := getResponse(t, ts.url+"/healthz", h)
		id := got.Get(httpapi.RequestIDHeader)
		switch {
		case tc.kept && id != tc.sent:
			t.Errorf("sent %q, got back %q, want it kept", tc.sent, id)
		case !tc.kept && (id == tc.sent || len(id) < 16 || len(id) > 64):
			t.Errorf("sent %q, got back %q, want a new id", tc.sent, id)
		}
	}
	_, _, h1 := getResponse(t, ts.url+"/healthz", nil)
	_, _, h2 := getResponse(t, ts.url+"/healthz", nil)
	if h1.Get(httpapi.RequestIDHeader) == h2.Get(httpapi.RequestIDHeader) {
		t.Error("two requests got the same generated id")
	}

	// A websocket connection gets its id from the upgrade request.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, strings.Replace(ts.url, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPHeader:   http.Header{httpapi.RequestIDHeader: {"ws-conn-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseNow()
	if got := res.Header.Get(httpapi.RequestIDHeader); got != "ws-conn-1" {
		t.Errorf("websocket upgrade answered request id %q, want ws-conn-1", got)
	}

	// Make API key lookups fail, so that the request logs an error.
	pg, err := pgx.Connect(ctx, ts.main.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	if _, err := pg.Exec(ctx, "ALTER TABLE api_keys RENAME TO api_keys_gone"); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"query": "query ObsLogged { stores(first: 1) { edges { cursor } } }"})
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer aisle_"+strings.Repeat("a", 52)) // well formed, so it is looked up
	req.Header.Set(httpapi.RequestIDHeader, "obs-log-1")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	found := false
	for line := range strings.Lines(ts.logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == "API key lookup failed" {
			found = true
			if rec["request_id"] != "obs-log-1" {
				t.Errorf("log line %s: request_id %v, want obs-log-1", line, rec["request_id"])
			}
		}
	}
	if !found {
		t.Fatalf("no log line of the failed key lookup:\n%s", ts.logs.String())
	}
}

// /readyz answers 200 only when every dependency answers and, for roles
// that consume, the consumer has joined its group; /healthz answers
// regardless, so a dependency outage does not get the process restarted.
func TestReadiness(t *testing.T) {
	ts := startServer(t, "--role", "stream")
	if status, body := getStatus(t, ts.url+"/healthz", nil); status != http.StatusOK {
		t.Fatalf("/healthz of a stream worker: %d %s", status, body)
	}
	ts.waitReady()
	if status, _ := getStatus(t, ts.url+"/graphql", nil); status != http.StatusNotFound {
		t.Errorf("a stream worker serves /graphql (HTTP %d)", status)
	}

	ctx := context.Background()
	db := postgrestest.MustOpenDB(t)
	broker := streamingtest.MustStartBroker(t, 1)
	producer, err := streaming.NewProducer(broker.Addrs(), ts.main.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	fs, err := features.Open(ctx, ts.main.Config.RedisURL, ts.main.Config.RedisPrefix, models.DefaultAvailabilityModel(), features.WithCluster(ts.main.Config.RedisCluster))
	if err != nil {
		t.Fatal(err)
	}
	ready := readiness(db, fs, producer, nil)
	if err := ready(ctx); err != nil {
		t.Fatalf("readiness with every dependency up: %v", err)
	}
	consumer, err := streaming.NewConsumer(streaming.ConsumerConfig{
		Brokers: broker.Addrs(), Catalog: db, DLQ: producer,
		Appliers: map[string][]streaming.Applier{"aisle.inventory": {{Name: "availability", Apply: fs.ApplyAvailability}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := readiness(db, fs, producer, consumer)(ctx); err == nil || !strings.Contains(err.Error(), "stream: stream consumer is not running") {
		t.Errorf("readiness with a consumer that is not running = %v", err)
	}

	// Dependencies gone: the Redis client and the broker closed.
	fs.Close()
	broker.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "redis:") || !strings.Contains(err.Error(), "kafka:") || strings.Contains(err.Error(), "postgres:") {
		t.Errorf("readiness with Redis and Kafka gone = %v, want both named, and only them", err)
	}
}
