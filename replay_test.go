package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// TestReplayRebuildsFeatures is docs/design.md's "Kafka is the ground truth":
// after the stream workers have applied a varied history, wiping the
// prefix and replaying gives the same Redis keys and values and the same API
// answers; replaying again changes nothing; a stream worker that then reads
// the whole history again (a new consumer group) applies none of it; and
// replay racing a worker over an emptied store still applies every event
// exactly once.
func TestReplayRebuildsFeatures(t *testing.T) {
	t.Parallel()
	// In memory: the broker is never restarted, only the servers.
	brokers := streamingtest.MustStartBroker(t, 2).Addrs()
	admin := streamingtest.MustAdmin(t, brokers)
	ts := startServer(t, "--kafka-brokers", strings.Join(brokers, ","))
	stores := ts.stores(2, 3)
	s0, s1 := stores[0], stores[1]
	key := ts.createKey(aisle.RoleService, "", "")
	prefix := ts.main.Config.RedisPrefix

	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(minute int) time.Time { return base.Add(time.Duration(minute) * time.Minute) }
	events := replayHistory(t, s0, s1, at)
	// A duplicate (same id, later offset) and the records the workers
	// dead-letter: not JSON, the wrong topic, an unknown store.
	wrongTopic, _ := json.Marshal(events[0])
	records := append(eventRecords(t, events...),
		eventRecords(t, events[0])[0],
		&kgo.Record{Topic: aisle.TopicPicking, Value: []byte(`{"id": "e-broken", "type": "pick.found"`)},
		&kgo.Record{Topic: aisle.TopicSessions, Value: wrongTopic},
		eventRecords(t, mustEvent(t, "e-unknown-store", aisle.TypeInventoryLevel, at(1),
			aisle.InventoryLevel{StoreID: "no-such-store", ProductID: s0.Products[0], Quantity: ptr(int64(3))}))[0],
	)
	streamingtest.Produce(t, brokers, records...)
	const (
		rejected = 3
		// Events that change nothing when applied: sess-b's event of
		// another user, o-1's second label.
		noops = 2
	)
	waitCaughtUp(t, admin, streaming.DefaultGroup, 60*time.Second)

	want := replayFeatures(t, prefix)
	for _, k := range []string{features.KeyName("avail", s0.ID+":"+s0.Products[0]), features.KeyName("sess", "sess-a"), features.KeyName("fo", "o-1"), features.KeyName("fl", "o-3")} {
		if _, ok := want[k]; !ok {
			t.Fatalf("the workers wrote no %s; keys: %v", k, slices.Sorted(maps.Keys(want)))
		}
	}
	if zero := want[features.KeyName("avail", s1.ID+":"+s1.Products[2])]; zero["feed_qty"] != "0" || zero["feed_snap"] != "zero:snap-r" {
		t.Fatalf("the workers gave %s, which snapshot snap-r left out, %v; want its zero", s1.Products[2], zero)
	}
	answers := replayAnswers(ts, key, s0, s1)

	replay := func(args ...string) (string, error) {
		args = append([]string{"replay",
			"--database-url", ts.main.Config.DatabaseURL,
			"--redis-url", ts.main.Config.RedisURL,
			"--redis-prefix", prefix,
			"--kafka-brokers", strings.Join(brokers, ",")}, args...)
		var out bytes.Buffer
		err := run(context.Background(), args, &out, io.Discard)
		return out.String(), err
	}
	total := func(out string) (applied, skipped, rejected int) {
		t.Helper()
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "total" {
				applied, _ = strconv.Atoi(f[2])
				skipped, _ = strconv.Atoi(f[3])
				rejected, _ = strconv.Atoi(f[4])
				return
			}
		}
		t.Fatalf("no total line in the replay summary:\n%s", out)
		return
	}

	// Beside running workers: --wipe is refused, a plain replay finds
	// nothing new.
	if out, err := replay("--wipe"); err == nil || !strings.Contains(err.Error(), "stream workers") {
		t.Fatalf("replay --wipe beside running workers: err %v, output:\n%s", err, out)
	}
	if got := replayFeatures(t, prefix); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused wipe changed the features:\n%s", featurestest.Diff(got, want))
	}
	out, err := replay()
	if err != nil {
		t.Fatalf("replay beside running workers: %v\n%s", err, out)
	}
	if a, s, r := total(out); a != 0 || s != len(events)+1 || r != rejected {
		t.Fatalf("replay of applied history: applied %d, skipped %d, rejected %d; want 0, %d, %d:\n%s", a, s, r, len(events)+1, rejected, out)
	}

	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	out, err = replay("--wipe")
	if err != nil {
		t.Fatalf("replay --wipe: %v\n%s", err, out)
	}
	t.Logf("replay --wipe:\n%s", out)
	if a, s, r := total(out); a != len(events)-noops || s != noops+1 || r != rejected {
		t.Fatalf("replay --wipe: applied %d, skipped %d, rejected %d; want %d, %d (with the duplicate), %d:\n%s", a, s, r, len(events)-noops, noops+1, rejected, out)
	}
	if got := replayFeatures(t, prefix); !reflect.DeepEqual(got, want) {
		t.Fatalf("features after wipe and replay differ from the workers':\n%s", featurestest.Diff(got, want))
	}

	out, err = replay()
	if err != nil {
		t.Fatalf("second replay: %v\n%s", err, out)
	}
	if a, _, _ := total(out); a != 0 {
		t.Fatalf("a second replay applied %d events:\n%s", a, out)
	}
	if got := replayFeatures(t, prefix); !reflect.DeepEqual(got, want) {
		t.Fatalf("a second replay changed the features:\n%s", featurestest.Diff(got, want))
	}

	// A worker of a new group reads the whole history again after replay.
	ts2 := startServer(t, "--kafka-brokers", strings.Join(brokers, ","),
		"--database-url", ts.main.Config.DatabaseURL, "--redis-prefix", prefix, "--group", "after-replay")
	waitCaughtUp(t, admin, "after-replay", 60*time.Second)
	if got := replayFeatures(t, prefix); !reflect.DeepEqual(got, want) {
		t.Fatalf("a worker re-reading the history after replay changed the features:\n%s", featurestest.Diff(got, want))
	}
	compareAnswers(t, answers, replayAnswers(ts2, key, s0, s1))
	if err := ts2.stop(); err != nil {
		t.Fatal(err)
	}

	// Replay racing a worker over an emptied store: each record is applied
	// by whichever gets there first, once.
	if err := ts.serverFeatures().DeleteAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One record per round trip keeps replay busy while the worker starts.
	racing := make(chan error, 1)
	go func() {
		out, err := replay("--batch", "1")
		t.Logf("replay racing a worker (the worker applied what replay skipped):\n%s", out)
		racing <- err
	}()
	startServer(t, "--kafka-brokers", strings.Join(brokers, ","),
		"--database-url", ts.main.Config.DatabaseURL, "--redis-prefix", prefix, "--group", "racing-replay")
	if err := <-racing; err != nil {
		t.Fatalf("replay racing a worker: %v", err)
	}
	waitCaughtUp(t, admin, "racing-replay", 60*time.Second)
	if got := replayFeatures(t, prefix); !reflect.DeepEqual(got, want) {
		t.Fatalf("replay racing a worker built other features:\n%s", featurestest.Diff(got, want))
	}
}

// replayHistory is a small history touching every applier and its corner
// cases: feed levels and picks (all outcomes, one out of time order),
// sessions of two users, orders, a declined payment, and labels, one of
// them before its order.
func replayHistory(t *testing.T, s0, s1 testStore, at func(minute int) time.Time) []aisle.Event {
	p := s0.Products
	stores := func(i int) testStore { return []testStore{s0, s1}[i%2] }
	n := 0
	ev := func(eventType string, minute int, data any) aisle.Event {
		n++
		return mustEvent(t, fmt.Sprintf("e-replay-%d", n), eventType, at(minute), data)
	}
	pick := func(store testStore, product, replacement string) aisle.Pick {
		return aisle.Pick{StoreID: store.ID, ProductID: product, ShopperID: "sh-1", OrderID: "o-pick", ReplacementProductID: replacement}
	}
	session := func(id, user, product, query, order string) aisle.SessionEvent {
		return aisle.SessionEvent{SessionID: id, UserID: user, StoreID: s0.ID, ProductID: product, Query: query, OrderID: order}
	}
	order := func(id, user string, cents int64, products ...string) aisle.OrderPlaced {
		o := aisle.OrderPlaced{OrderID: id, UserID: user, StoreID: s0.ID, AmountCents: &cents,
			CardFingerprint: "card-" + user, DeviceID: "dev-" + user, IP: "192.0.2.9", AddressHash: "addr-" + user}
		for _, pr := range products {
			o.Items = append(o.Items, aisle.OrderItem{ProductID: pr, Quantity: 2})
		}
		return o
	}
	history := []aisle.Event{
		ev(aisle.TypeInventoryLevel, 0, aisle.InventoryLevel{StoreID: s0.ID, ProductID: p[0], Quantity: ptr(int64(7))}),
		ev(aisle.TypeInventoryLevel, 5, aisle.InventoryLevel{StoreID: s0.ID, ProductID: p[0], Quantity: ptr(int64(0))}),
		ev(aisle.TypeInventoryLevel, 2, aisle.InventoryLevel{StoreID: s1.ID, ProductID: s1.Products[0], Quantity: ptr(int64(40))}),
		// A complete snapshot of s1 that counts one product: every other
		// product s1 carries gets a zero, s1.Products[0]'s older level too.
		ev(aisle.TypeInventoryLevel, 3, aisle.InventoryLevel{StoreID: s1.ID, ProductID: s1.Products[1], Quantity: ptr(int64(6)), Feed: aisle.FeedSnapshot, SnapshotID: "snap-r"}),
		ev(aisle.TypeInventorySnapshotCompleted, 3, aisle.SnapshotCompleted{StoreID: s1.ID, SnapshotID: "snap-r", Levels: ptr(int64(1))}),
		ev(aisle.TypePickFound, 3, pick(s0, p[0], "")),
		ev(aisle.TypePickNotFound, 6, pick(s0, p[0], "")),
		ev(aisle.TypePickFound, 4, pick(s0, p[0], "")), // older than the one before
		ev(aisle.TypePickReplaced, 7, pick(s0, p[1], p[2])),
		ev(aisle.TypePickFound, 8, pick(s1, s1.Products[1], "")),
		ev(aisle.TypeSessionView, 10, session("sess-a", "u-1", p[0], "", "")),
		ev(aisle.TypeSessionAddToCart, 11, session("sess-a", "u-1", p[1], "", "")),
		ev(aisle.TypeSessionSearch, 12, session("sess-a", "u-1", "", "milk", "")),
		ev(aisle.TypeSessionRemoveFromCart, 13, session("sess-a", "u-1", p[1], "", "")),
		ev(aisle.TypeSessionAddToCart, 14, session("sess-a", "u-1", p[2], "", "")),
		ev(aisle.TypeSessionView, 12, session("sess-b", "u-2", p[0], "", "")),
		ev(aisle.TypeSessionAddToCart, 13, session("sess-b", "u-2", p[1], "", "")),
		ev(aisle.TypeSessionView, 15, session("sess-b", "u-3", p[2], "", "")), // another user's: not applied
		ev(aisle.TypeSessionView, 15, session("sess-c", "u-4", p[0], "", "")),
		ev(aisle.TypeSessionCheckout, 16, session("sess-a", "u-1", "", "", "o-1")),
		ev(aisle.TypeOrderPlaced, 16, order("o-1", "u-1", 4200, p[0], p[2])),
		ev(aisle.TypePaymentFailed, 17, aisle.PaymentFailed{OrderID: "o-2", UserID: "u-2", CardFingerprint: "card-u-2", DeviceID: "dev-u-2", IP: "192.0.2.9"}),
		ev(aisle.TypeOrderPlaced, 18, order("o-2", "u-2", 99900, p[1])),
		ev(aisle.TypeOrderLabeled, 30, aisle.OrderLabeled{OrderID: "o-1", Fraud: ptr(true)}),
		ev(aisle.TypeOrderLabeled, 31, aisle.OrderLabeled{OrderID: "o-3", Fraud: ptr(false)}), // before its order
		ev(aisle.TypeOrderPlaced, 20, order("o-3", "u-1", 1500, p[1])),
		ev(aisle.TypeOrderLabeled, 32, aisle.OrderLabeled{OrderID: "o-1", Fraud: ptr(false)}), // the first label wins
	}
	// Enough picks that a worker and a replay racing over them overlap.
	for i := range 3000 {
		outcome, store := aisle.TypePickFound, stores(i)
		if i%3 == 0 {
			outcome = aisle.TypePickNotFound
		}
		history = append(history, ev(outcome, 40+i%17, pick(store, store.Products[i%len(store.Products)], "")))
	}
	return history
}

func mustEvent(t *testing.T, id, eventType string, at time.Time, data any) aisle.Event {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return aisle.Event{ID: id, Type: eventType, Time: at.UTC(), Source: "test", Data: raw}
}

// eventRecords are the records of events, keyed by entity as Publish keys
// them, but not validated, so that tests can write what Publish refuses.
func eventRecords(t *testing.T, events ...aisle.Event) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		value, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		topic, err := aisle.TopicFor(ev.Type)
		if err != nil {
			t.Fatal(err)
		}
		key := []byte(nil)
		if d, err := aisle.DecodeEvent(value, topic, time.Now()); err == nil {
			key = []byte(d.Key())
		}
		recs[i] = &kgo.Record{Topic: topic, Key: key, Value: value}
	}
	return recs
}

// replayFeatures snapshots the features under prefix, without the
// availability versions: replay and the workers write the same features at
// different times.
func replayFeatures(t *testing.T, prefix string) map[string]map[string]string {
	t.Helper()
	return featurestest.FeaturesOnly(featurestest.MustSnapshot(t, prefix))
}

// apiAnswers are what the API says about the replayed entities.
type apiAnswers struct {
	Availability    [][]itemAvailability
	Recommendations [][]recommendation
}

func replayAnswers(ts *testServer, key string, s0, s1 testStore) apiAnswers {
	return apiAnswers{
		Availability: [][]itemAvailability{ts.availability(s0.ID, s0.Products...), ts.availability(s1.ID, s1.Products...)},
		Recommendations: [][]recommendation{
			ts.recommendations(key, "sess-a", s0.ID, 5), ts.recommendations(key, "sess-b", s0.ID, 5),
			ts.recommendations(key, "sess-c", s0.ID, 5),
		},
	}
}

// compareAnswers wants the same answers, but for probabilities and scores
// moving a little as the evidence ages between the two questions.
func compareAnswers(t *testing.T, want, got apiAnswers) {
	t.Helper()
	const tolerance = 1e-3
	close := func(a, b float64) bool { return math.Abs(a-b) <= tolerance }
	same := len(want.Availability) == len(got.Availability) && len(want.Recommendations) == len(got.Recommendations)
	for i := 0; same && i < len(want.Availability); i++ {
		same = len(want.Availability[i]) == len(got.Availability[i])
		for j := 0; same && j < len(want.Availability[i]); j++ {
			w, g := want.Availability[i][j], got.Availability[i][j]
			same = close(w.Probability, g.Probability)
			w.Probability, g.Probability = 0, 0
			same = same && reflect.DeepEqual(w, g)
		}
	}
	for i := 0; same && i < len(want.Recommendations); i++ {
		same = len(want.Recommendations[i]) == len(got.Recommendations[i])
		for j := 0; same && j < len(want.Recommendations[i]); j++ {
			w, g := want.Recommendations[i][j], got.Recommendations[i][j]
			same = close(w.Score, g.Score)
			w.Score, g.Score = 0, 0
			same = same && w == g
		}
	}
	if !same {
		t.Fatalf("answers after replay differ:\nwant %+v\ngot  %+v", want, got)
	}
	if len(slices.Concat(want.Recommendations...)) == 0 {
		t.Fatalf("no recommendations for the replayed session: the comparison shows nothing")
	}
}

// Bad replay flags are refused before anything is read or deleted.
func TestReplayFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topics", "aisle.nope"}, `"aisle.nope" is not an event topic`},
		{[]string{"--topics", ","}, "no topics named"},
		{[]string{"--batch", "0"}, "--batch must be at least 1"},
		{[]string{"--wipe", "--topics", aisle.TopicOrders}, "drop --topics"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		args := append([]string{"replay", "--redis-url", "redis://127.0.0.1:1/0", "--database-url", "postgres://127.0.0.1:1/none"}, tc.args...)
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
