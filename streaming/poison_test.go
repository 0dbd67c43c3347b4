package streaming_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/internal/faulttest"
	"github.com/aisle/aisle/internal/promtest"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

func orderEvent(id, user, store string, at time.Time) aisle.Event {
	amount := int64(1200)
	return event(id, aisle.TypeOrderPlaced, at, aisle.OrderPlaced{
		OrderID: "o-" + id, UserID: user, StoreID: store, AmountCents: &amount,
		CardFingerprint: "c-1", DeviceID: "d-1", IP: "192.0.2.1", AddressHash: "a-1",
		Items: []aisle.OrderItem{{ProductID: "p-1", Quantity: 1}},
	})
}

func labelEvent(id, order string, at time.Time) aisle.Event {
	fraud := true
	return event(id, aisle.TypeOrderLabeled, at, aisle.OrderLabeled{OrderID: order, Fraud: &fraud})
}

// dlqRecords reads the whole dead-letter topic (nothing when it was never
// written).
func dlqRecords(t *testing.T, brokers []string) []*kgo.Record {
	t.Helper()
	end, _ := endOffsets(t, brokers, aisle.TopicDLQ).Lookup(aisle.TopicDLQ, 0)
	if end.Offset <= 0 {
		return nil
	}
	return consumeAll(t, brokers, aisle.TopicDLQ, int(end.Offset))
}

// The four records that held their partition for ever (issue: poison
// records): a NUL in a pick's store_id (the catalog lookup got SQLSTATE
// 22021 from PostgreSQL on every retry), a NUL in an order's user_id (the
// order history insert did), a NUL in a label's order_id (as labelOrder
// published it; the assessment labels update did) and an invalid record
// with a key of about 1 MB, whose dead letter was larger than the
// producer's limit (MESSAGE_TOO_LARGE on every retry). Each is
// dead-lettered with its reason, and the good event after it on the same
// partition is applied, with the real catalog and appliers.
func TestConsumerDeadLettersPoisonRecords(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	db := postgrestest.MustOpenSeededDB(t)
	prefix := featurestest.NewPrefix()
	fs := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	at := time.Now().Add(-time.Minute)

	bigKey := strings.Repeat("k", 1_000_000)
	poison := []struct {
		rec    *kgo.Record
		reason string
	}{
		{record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("x-1", aisle.TypePickFound, "s-1\x00", "p-1", at))), `store_id "s-1\x00" contains a control character`},
		{record(aisle.TopicOrders, "u-1", mustJSON(orderEvent("x-2", "u-1\x00", "s-1", at))), `user_id "u-1\x00" contains a control character`},
		{record(aisle.TopicLabels, "o", mustJSON(labelEvent("x-3", "o\x00", at))), `order_id "o\x00" contains a control character`},
		{record(aisle.TopicPicking, bigKey, []byte(`{"id": "x-4"`)), "bad envelope"},
	}
	recs := []*kgo.Record{}
	for _, p := range poison {
		recs = append(recs, p.rec)
	}
	recs = append(recs,
		record(aisle.TopicPicking, "s-1:p-2", mustJSON(pickEvent("g-1", aisle.TypePickFound, "s-1", "p-2", at))),
		record(aisle.TopicOrders, "u-2", mustJSON(orderEvent("g-2", "u-2", "s-1", at))),
		record(aisle.TopicLabels, "o-g-2", mustJSON(labelEvent("g-3", "o-g-2", at))),
	)
	// The big key needs a client that allows it; the broker takes 1 MiB.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()

	cfg := consumerConfig(t, brokers, fs, "g-poison")
	cfg.Catalog = db
	cfg.Appliers = map[string][]streaming.Applier{
		aisle.TopicPicking: {{Name: "availability", Apply: fs.ApplyAvailability}},
		aisle.TopicOrders:  {{Name: "velocity", Apply: fs.ApplyVelocity}, {Name: "order_history", Apply: recommend.OrderHistory(db)}},
		aisle.TopicLabels:  {{Name: "label_risk", Apply: fs.ApplyLabels}, {Name: "assessment_labels", Apply: fraud.RecordLabels(db)}},
	}
	startConsumer(t, cfg)
	topics := []string{aisle.TopicPicking, aisle.TopicOrders, aisle.TopicLabels}
	waitFor(t, "every partition committed to its end", func() bool { return lagZero(t, brokers, "g-poison", topics...) })

	if got := readAvailability(t, fs, aisle.StoreProduct{StoreID: "s-1", ProductID: "p-2"}); got.Found != 1 {
		t.Errorf("the pick after the poison ones: found %v, want 1", got.Found)
	}
	baskets, err := db.Baskets(context.Background(), at.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(baskets) != 1 {
		t.Errorf("order history has %d baskets, want 1 (the good order)", len(baskets))
	}
	label, err := featurestest.Client(t).HGetAll(context.Background(), prefix+features.KeyName("fl", "o-g-2")).Result()
	if err != nil || len(label) == 0 {
		t.Errorf("label of o-g-2 after the poison label: %v %v, want it recorded", label, err)
	}

	dlq := dlqRecords(t, brokers)
	if len(dlq) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(poison))
	}
	for _, p := range poison {
		var got *kgo.Record
		for _, r := range dlq {
			if h := headers(r); h[streaming.HeaderTopic] == p.rec.Topic && h[streaming.HeaderOffset] == strconv.FormatInt(p.rec.Offset, 10) {
				got = r
			}
		}
		if got == nil {
			t.Errorf("no dead letter of %s/%d", p.rec.Topic, p.rec.Offset)
			continue
		}
		if reason := headers(got)[streaming.HeaderError]; !strings.Contains(reason, p.reason) {
			t.Errorf("dead letter of %s/%d: reason %q, want %q", p.rec.Topic, p.rec.Offset, reason, p.reason)
		}
	}
}

// A dead letter is bounded whatever the record: a key of about 1 MB and
// oversized headers are cut, the original sizes and what was cut are in
// headers, and a producer's own aisle-* headers follow Aisle's, renamed, so
// that they can never pass for Aisle's. An empty value says so, not "EOF".
func TestDeadLettersAreBoundedAndHeadersOurs(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	fs := featurestest.MustOpen(t)
	big := record(aisle.TopicPicking, strings.Repeat("k", 900_000), []byte(`not json`))
	big.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}, {Key: "blob", Value: []byte(strings.Repeat("b", 50_000))}}
	forged := record(aisle.TopicPicking, "s-1:p-1", []byte(`{}`))
	forged.Headers = []kgo.RecordHeader{{Key: "aisle-error", Value: []byte("all good")}, {Key: "Aisle-Topic", Value: []byte("aisle.orders")}, {Key: "trace", Value: []byte("t-2")}}
	empty := record(aisle.TopicPicking, "s-1:p-1", nil)
	good := record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", time.Now())))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), big, forged, empty, good).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()

	startConsumer(t, consumerConfig(t, brokers, fs, "g-bounded"))
	waitFor(t, "the partition committed to its end", func() bool { return lagZero(t, brokers, "g-bounded", aisle.TopicPicking) })
	dlq := dlqRecords(t, brokers)
	if len(dlq) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dlq))
	}
	h := headers(dlq[0])
	if len(dlq[0].Key) != 1024 || string(dlq[0].Value) != "not json" {
		t.Errorf("dead letter of the big record: key %d bytes, value %q; want the key cut to 1024 bytes and the value whole", len(dlq[0].Key), dlq[0].Value)
	}
	for k, want := range map[string]string{
		streaming.HeaderTruncated:   "key,headers",
		streaming.HeaderKeyBytes:    "900000",
		streaming.HeaderValueBytes:  "8",
		streaming.HeaderHeaderBytes: strconv.Itoa(len("trace") + 3 + len("blob") + 50_000),
		streaming.HeaderOffset:      "0",
		"trace":                     "t-1",
	} {
		if h[k] != want {
			t.Errorf("dead letter of the big record: header %s = %q, want %q", k, h[k], want)
		}
	}
	if _, ok := h["blob"]; ok {
		t.Error("the oversized header was kept")
	}

	var keys []string
	for _, kv := range dlq[1].Headers {
		keys = append(keys, kv.Key+"="+string(kv.Value))
	}
	want := []string{"aisle-error=missing id", "aisle-topic=aisle.picking", "aisle-partition=0", "aisle-offset=1",
		"original-aisle-error=all good", "original-Aisle-Topic=aisle.orders", "trace=t-2"}
	if !slices.Equal(keys, want) {
		t.Errorf("headers of the forged record's dead letter:\n%v\nwant\n%v", keys, want)
	}
	if got := headers(dlq[2])[streaming.HeaderError]; got != "empty record value" {
		t.Errorf("empty value: reason %q, want %q", got, "empty record value")
	}
}

// A dead-letter topic whose limit is below even the bounded copy (a small
// max.message.bytes) gets the reject's headers alone, saying everything was
// cut, instead of holding the partition for ever.
func TestDeadLetterTheTopicRefusesIsWrittenAsHeaders(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	fs := featurestest.MustOpen(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	limit := "4096"
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, aisle.TopicDLQ)
	if err == nil {
		_, err = resp.On(aisle.TopicDLQ, nil)
	}
	cl.Close()
	if err != nil {
		t.Fatalf("set the DLQ's max.message.bytes: %v", err)
	}
	noise := make([]byte, 60_000) // incompressible: the producer compresses
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	big := record(aisle.TopicPicking, "s-1:p-1", noise)
	good := record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", time.Now())))
	streamingtest.Produce(t, brokers, big, good)

	startConsumer(t, consumerConfig(t, brokers, fs, "g-stub"))
	waitFor(t, "the partition committed to its end", func() bool { return lagZero(t, brokers, "g-stub", aisle.TopicPicking) })
	if got := readAvailability(t, fs, aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}); got.Found != 1 {
		t.Errorf("the pick after the refused dead letter: found %v, want 1", got.Found)
	}
	dlq := dlqRecords(t, brokers)
	if len(dlq) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dlq))
	}
	h := headers(dlq[0])
	if len(dlq[0].Key) != 0 || len(dlq[0].Value) != 0 || h[streaming.HeaderTruncated] != "key,value,headers" ||
		h[streaming.HeaderValueBytes] != "60000" || h[streaming.HeaderKeyBytes] != "7" || h[streaming.HeaderError] == "" {
		t.Errorf("dead letter: key %q, %d value bytes, headers %v; want the headers alone, saying so", dlq[0].Key, len(dlq[0].Value), h)
	}
}

// sqlError looks like a pgconn.PgError.
type sqlError struct{ code, msg string }

func (e sqlError) Error() string    { return fmt.Sprintf("ERROR: %s (SQLSTATE %s)", e.msg, e.code) }
func (e sqlError) SQLState() string { return e.code }

// txApplier applies a call all or nothing, like a PostgreSQL transaction,
// and refuses every call holding an event whose id starts with "poison".
// It records each event once (by id), in the order applied.
type txApplier struct {
	mu      sync.Mutex
	applied []string
	seen    map[string]bool
	calls   int
}

func (a *txApplier) apply(_ context.Context, updates []aisle.Update) ([]bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	for _, u := range updates {
		if strings.HasPrefix(u.Event.ID, "poison") {
			return nil, fmt.Errorf("record: %w", sqlError{"22021", `invalid byte sequence for encoding "UTF8": 0x00`})
		}
	}
	done := make([]bool, len(updates))
	for i, u := range updates {
		if !a.seen[u.Event.ID] {
			a.seen[u.Event.ID] = true
			a.applied = append(a.applied, u.Event.ID)
			done[i] = true
		}
	}
	return done, nil
}

func (a *txApplier) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.applied)
}

// An applier that keeps refusing a batch for a reason that is not an
// outage: the records it refuses alone are found (the others of the batch
// applied once each, in order), dead-lettered with the applier's reason,
// and not given to the appliers after it.
func TestConsumerIsolatesRecordsAnApplierRefuses(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	var recs []*kgo.Record
	var good []string
	for i := range 20 {
		id := "e-" + strconv.Itoa(i)
		if i == 5 || i == 13 || i == 14 {
			id = "poison-" + strconv.Itoa(i)
		} else {
			good = append(good, id)
		}
		recs = append(recs, record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent(id, aisle.TypePickFound, "s-1", "p-1", now))))
	}
	streamingtest.Produce(t, brokers, recs...)
	first, second := &txApplier{seen: map[string]bool{}}, &recordingApplier{ids: map[string][]string{}}
	cfg := consumerConfig(t, brokers, nil, "g-isolate")
	cfg.Appliers = map[string][]streaming.Applier{
		aisle.TopicPicking: {{Name: "first", Apply: first.apply}, {Name: "second", Apply: second.apply}},
	}
	before := promtest.Gather(t)
	stop := startConsumer(t, cfg)
	waitFor(t, "the partition committed to its end", func() bool { return lagZero(t, brokers, "g-isolate", aisle.TopicPicking) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := first.ids(); !slices.Equal(got, good) {
		t.Errorf("first applier applied %v, want %v", got, good)
	}
	if got := second.seen(aisle.TopicPicking); !slices.Equal(got, good) {
		t.Errorf("second applier got %v, want %v (each good event once, no poison)", got, good)
	}
	dlq := dlqRecords(t, brokers)
	var offsets []string
	for _, r := range dlq {
		h := headers(r)
		offsets = append(offsets, h[streaming.HeaderOffset])
		if reason := h[streaming.HeaderError]; !strings.Contains(reason, "first refused the event") || !strings.Contains(reason, "SQLSTATE 22021") {
			t.Errorf("dead letter at %s: reason %q, want the applier and its error", h[streaming.HeaderOffset], reason)
		}
	}
	if !slices.Equal(offsets, []string{"5", "13", "14"}) {
		t.Errorf("dead letters of offsets %v, want 5, 13, 14", offsets)
	}
	labels := map[string]string{"topic": aisle.TopicPicking, "reason": "apply", "type": aisle.TypePickFound}
	a, _ := promtest.Gather(t).Value("aisle_stream_events_rejected_total", labels)
	if b, _ := before.Value("aisle_stream_events_rejected_total", labels); a-b != 3 {
		t.Errorf("rejected{reason=apply} rose by %v, want 3", a-b)
	}
}

// outageApplier fails like a dependency that is down until heal is closed:
// connection refused, a driver's timeout, Redis loading its data.
type outageApplier struct {
	heal  chan struct{}
	mu    sync.Mutex
	calls int
	ids   []string
}

func (a *outageApplier) apply(_ context.Context, updates []aisle.Update) ([]bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	select {
	case <-a.heal:
	default:
		switch a.calls % 3 {
		case 0:
			return nil, fmt.Errorf("apply: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		case 1:
			return nil, fmt.Errorf("apply: i/o: %w", context.DeadlineExceeded)
		default:
			return nil, fmt.Errorf("apply: %w", loadingError{})
		}
	}
	for _, u := range updates {
		a.ids = append(a.ids, u.Event.ID)
	}
	return make([]bool, len(updates)), nil
}

// loadingError looks like go-redis's error for a Redis that is loading.
type loadingError struct{}

func (loadingError) Error() string { return "LOADING Redis is loading the dataset in memory" }
func (loadingError) RedisError()   {}

// While a dependency is down the partition waits, however many attempts
// that takes, and dead-letters nothing; meanwhile the stall shows in Ready
// (naming the partition), in its gauge, and in the lag, which counts the
// records not applied yet. Once the dependency is back all of it clears.
func TestConsumerWaitsOutOutagesVisibly(t *testing.T) {
	// Not parallel: the partition gauges are the process's, the largest
	// figures of every consumer owning aisle.picking/0, and the parallel
	// tests run consumers of it too.
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	streamingtest.Produce(t, brokers,
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now))),
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-2", aisle.TypePickFound, "s-1", "p-1", now))),
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-3", aisle.TypePickFound, "s-1", "p-1", now))),
	)
	a := &outageApplier{heal: make(chan struct{})}
	cfg := consumerConfig(t, brokers, nil, "g-outage")
	cfg.Appliers = map[string][]streaming.Applier{aisle.TopicPicking: {{Name: "down", Apply: a.apply}}}
	cfg.StallThreshold = 300 * time.Millisecond
	c, _ := runConsumer(t, cfg)
	partition := map[string]string{"topic": aisle.TopicPicking, "partition": "0"}
	gauge := func(name string) float64 {
		v, _ := promtest.Gather(t).Value(name, partition)
		return v
	}
	waitFor(t, "Ready to name the stalled partition", func() bool {
		var stalled *streaming.StalledError
		return errors.As(c.Ready(), &stalled) && slices.Equal(stalled.Partitions, []string{"aisle.picking/0"})
	})
	if v := gauge("aisle_stream_partition_stalled"); v != 1 {
		t.Errorf("stalled gauge %v while stalled, want 1", v)
	}
	if v := gauge("aisle_stream_partition_stalled_seconds"); v < 0.3 {
		t.Errorf("stalled seconds %v while stalled, want at least the threshold", v)
	}
	if v := gauge("aisle_stream_consumer_lag_records"); v != 3 {
		t.Errorf("lag %v while stalled, want the 3 records not applied", v)
	}
	waitFor(t, "more failed attempts than a poison record gets", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.calls > 5 // a poison record would have been split by now
	})
	close(a.heal)
	waitFor(t, "the partition committed to its end", func() bool { return lagZero(t, brokers, "g-outage", aisle.TopicPicking) })
	if err := c.Ready(); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
	if v := gauge("aisle_stream_partition_stalled"); v != 0 {
		t.Errorf("stalled gauge %v after recovery, want 0", v)
	}
	if v := gauge("aisle_stream_consumer_lag_records"); v != 0 {
		t.Errorf("lag %v after recovery, want 0", v)
	}
	a.mu.Lock()
	ids := slices.Clone(a.ids)
	a.mu.Unlock()
	if !slices.Equal(ids, []string{"e-1", "e-2", "e-3"}) {
		t.Errorf("applied %v, want the three picks once", ids)
	}
	if dlq := dlqRecords(t, brokers); len(dlq) != 0 {
		t.Errorf("%d records dead-lettered during an outage, want none", len(dlq))
	}
}

// Real outages: the stream's Redis killed and PostgreSQL (catalog and order
// history) cut off, then blackholed; the partitions wait and apply every
// event once the dependency is back, dead-lettering nothing.
func TestConsumerWaitsOutRedisAndPostgresOutages(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	redis := faulttest.StartRedis(t)
	// A redis-server of the test's own, to kill: one server, also in the
	// suite's cluster pass.
	fs := featurestest.MustOpenAt(t, redis.URL(), featurestest.NewPrefix(), features.WithCluster(false))
	proxy, proxiedURL := faulttest.NewURLProxy(t, postgrestest.NewDatabaseURL(t))
	ctx := context.Background()
	db, err := postgres.Open(ctx, proxiedURL, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := consumerConfig(t, brokers, fs, "g-deps")
	cfg.Catalog = db
	cfg.StallThreshold = 200 * time.Millisecond
	cfg.Appliers = map[string][]streaming.Applier{
		aisle.TopicPicking: {{Name: "availability", Apply: fs.ApplyAvailability}},
		aisle.TopicOrders:  {{Name: "order_history", Apply: recommend.OrderHistory(db)}},
	}
	c, _ := runConsumer(t, cfg)
	stalled := func(partition string) func() bool {
		return func() bool {
			var s *streaming.StalledError
			return errors.As(c.Ready(), &s) && slices.Contains(s.Partitions, partition)
		}
	}
	sp := aisle.StoreProduct{StoreID: "s-2", ProductID: "p-7"}
	found := func() float64 {
		got, err := fs.Availability(ctx, []aisle.StoreProduct{sp})
		if err != nil {
			return -1
		}
		return got[0].Found
	}
	at := time.Now().Add(-time.Minute)

	redis.Kill()
	for i := range 5 {
		streamingtest.Produce(t, brokers, record(aisle.TopicPicking, sp.String(), mustJSON(pickEvent("r-"+strconv.Itoa(i), aisle.TypePickFound, sp.StoreID, sp.ProductID, at))))
	}
	retries := func(steps ...string) (n float64) {
		for _, step := range steps {
			v, _ := promtest.Gather(t).Value("aisle_stream_retries_total", map[string]string{"step": step})
			n += v
		}
		return n
	}
	// moreAttempts waits until the steps have failed a few more times: past
	// the attempts a poison record would get before it is isolated.
	moreAttempts := func(what string, steps ...string) {
		before := retries(steps...)
		waitFor(t, what, func() bool { return retries(steps...) >= before+3 })
	}
	waitFor(t, "the picking partition to stall while Redis is down", stalled("aisle.picking/0"))
	moreAttempts("more failed attempts while Redis is down", "availability")
	redis.Start()
	waitFor(t, "the picks applied once Redis is back", func() bool { return found() == 5 })

	proxy.Cut()
	streamingtest.Produce(t, brokers, record(aisle.TopicOrders, "u-9", mustJSON(orderEvent("d-1", "u-9", "s-3", at))))
	waitFor(t, "the orders partition to stall while PostgreSQL refuses", stalled("aisle.orders/0"))
	moreAttempts("more refused attempts while PostgreSQL refuses", "catalog", "order_history")
	proxy.Blackhole()
	before := retries("catalog", "order_history")
	waitFor(t, "an attempt to time out behind the partition", func() bool { return retries("catalog", "order_history") > before })
	proxy.Resume()
	waitFor(t, "the order applied once PostgreSQL is back", func() bool {
		baskets, err := db.Baskets(ctx, at.Add(-time.Hour))
		return err == nil && len(baskets) == 1
	})
	waitFor(t, "both partitions committed to their ends", func() bool {
		return lagZero(t, brokers, "g-deps", aisle.TopicPicking, aisle.TopicOrders)
	})
	if err := c.Ready(); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
	if dlq := dlqRecords(t, brokers); len(dlq) != 0 {
		t.Errorf("%d records dead-lettered during the outages, want none: %v", len(dlq), headers(dlq[0]))
	}
}
