package streaming_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func mustProducer(t testing.TB, brokers []string) *streaming.Producer {
	t.Helper()
	p, err := streaming.NewProducer(brokers, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func consumerConfig(t testing.TB, brokers []string, fs *features.Store, group string) streaming.ConsumerConfig {
	return streaming.ConsumerConfig{
		Brokers: brokers,
		Group:   group,
		Appliers: map[string][]streaming.Applier{
			aisle.TopicInventory: {{Name: "availability", Apply: fs.ApplyAvailability}},
			aisle.TopicPicking:   {{Name: "availability", Apply: fs.ApplyAvailability}},
		},
		Catalog:        newFixedCatalog(5, 50),
		DLQ:            mustProducer(t, brokers),
		Log:            testLogger(t),
		CommitInterval: 100 * time.Millisecond,
	}
}

func publish(t testing.TB, p *streaming.Producer, evs ...aisle.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := p.Publish(context.Background(), ev, ""); err != nil {
			t.Fatalf("publish %s: %v", ev.ID, err)
		}
	}
}

func TestConsumerAppliesEvents(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	fs := featurestest.MustOpen(t)
	p := mustProducer(t, b.Addrs())
	m := models.DefaultAvailabilityModel()

	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
	picks := []aisle.Event{
		pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now.Add(-2*time.Hour)),
		pickEvent("e-2", aisle.TypePickNotFound, "s-1", "p-1", now.Add(-time.Hour)),
		pickEvent("e-3", aisle.TypePickFound, "s-1", "p-1", now.Add(-3*time.Hour)), // out of order
	}
	publish(t, p, picks...)
	publish(t, p, inventoryEvent("f-1", "s-1", "p-1", 12, now.Add(-30*time.Minute)))

	startConsumer(t, consumerConfig(t, b.Addrs(), fs, "g-apply"))

	var want models.AvailabilityEvidence
	for _, ev := range picks {
		want = m.ObservePick(want, ev.Type == aisle.TypePickFound, ev.Time)
	}
	want = m.ObserveFeed(want, 12, now.Add(-30*time.Minute))
	waitFor(t, "features of s-1:p-1 to match the model", func() bool {
		return sameEvidence(readAvailability(t, fs, sp), want)
	})
}

// sameEvidence compares evidence as the store keeps it (ms, float64).
func sameEvidence(got, want models.AvailabilityEvidence) bool {
	return math.Abs(got.Found-want.Found) < 1e-9 && math.Abs(got.NotFound-want.NotFound) < 1e-9 &&
		got.At.Equal(want.At) && got.FeedQuantity == want.FeedQuantity && got.FeedAt.Equal(want.FeedAt)
}

// Each kind of bad record goes to the DLQ with its reason and origin, the
// partition keeps flowing, and the offsets committed at shutdown cover
// everything, rejects included.
func TestConsumerDeadLettersBadEvents(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	fs := featurestest.MustOpen(t)
	brokers := b.Addrs()

	missingQty := event("f-bad", aisle.TypeInventoryLevel, now, map[string]string{"store_id": "s-1", "product_id": "p-1"})
	bad := []struct {
		rec    *kgo.Record
		reason string // substring of the aisle-error header
	}{
		{record(aisle.TopicPicking, "s-1:p-1", []byte(`{"id": "e-1", "type": `)), "bad envelope"},
		{record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-2", "pick.teleported", "s-1", "p-1", now))), `unknown event type "pick.teleported"`},
		{record(aisle.TopicInventory, "s-1:p-1", mustJSON(missingQty)), "missing quantity"},
		{record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-4", aisle.TypePickFound, "s-9", "p-1", now))), "unknown store s-9"},
		{record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-5", aisle.TypePickFound, "s-1", "p-77", now))), "unknown product p-77"},
		{stamped(record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-6", aisle.TypePickFound, "s-1", "p-1", now.Add(time.Hour)))), now), "in the future"},
	}
	var recs []*kgo.Record
	for _, bd := range bad {
		recs = append(recs, bd.rec)
	}
	// Good events after the bad ones, on the same partitions.
	recs = append(recs,
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("e-7", aisle.TypePickFound, "s-1", "p-1", now))),
		record(aisle.TopicInventory, "s-1:p-1", mustJSON(inventoryEvent("f-8", "s-1", "p-1", 4, now))),
	)
	streamingtest.Produce(t, brokers, recs...) // fills in each record's partition and offset

	group := "g-dlq"
	stop := startConsumer(t, consumerConfig(t, brokers, fs, group))
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
	waitFor(t, "the good events after the bad ones", func() bool {
		e := readAvailability(t, fs, sp)
		return e.Found == 1 && e.FeedQuantity == 4
	})

	dlq := consumeAll(t, brokers, aisle.TopicDLQ, len(bad))
	if len(dlq) != len(bad) {
		t.Fatalf("%d records on the DLQ, want %d", len(dlq), len(bad))
	}
	byOrigin := map[string]*kgo.Record{}
	for _, r := range dlq {
		h := headers(r)
		byOrigin[h[streaming.HeaderTopic]+"/"+h[streaming.HeaderPartition]+"/"+h[streaming.HeaderOffset]] = r
	}
	for _, bd := range bad {
		origin := bd.rec.Topic + "/" + strconv.Itoa(int(bd.rec.Partition)) + "/" + strconv.FormatInt(bd.rec.Offset, 10)
		r := byOrigin[origin]
		if r == nil {
			t.Fatalf("no DLQ record for %s (%s); DLQ has %v", origin, bd.reason, keys(byOrigin))
		}
		if got := headers(r)[streaming.HeaderError]; !strings.Contains(got, bd.reason) {
			t.Errorf("DLQ record of %s: %s = %q, want it to contain %q", origin, streaming.HeaderError, got, bd.reason)
		}
		if string(r.Key) != string(bd.rec.Key) || string(r.Value) != string(bd.rec.Value) {
			t.Errorf("DLQ record of %s: key %q value %q, want the original %q %q", origin, r.Key, r.Value, bd.rec.Key, bd.rec.Value)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	// Committed offsets are the end offsets: bad records count as processed.
	committed, ends := offsets(t, brokers, group, aisle.TopicPicking, aisle.TopicInventory)
	for _, r := range recs {
		c, ok := committed.Lookup(r.Topic, r.Partition)
		end, _ := ends.Lookup(r.Topic, r.Partition)
		if !ok || c.At != end.Offset || end.Offset <= r.Offset {
			t.Fatalf("committed offset of %s/%d = %d (found %v), want the end offset %d", r.Topic, r.Partition, c.At, ok, end.Offset)
		}
	}
}

// A second group replaying the same records, and the same event produced
// twice at different offsets, change nothing.
func TestConsumerRedeliveryIsNotDoubleCounted(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	fs := featurestest.MustOpen(t)
	brokers := b.Addrs()
	p := mustProducer(t, brokers)
	m := models.DefaultAvailabilityModel()

	first := pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now.Add(-time.Hour))
	publish(t, p,
		first,
		pickEvent("e-2", aisle.TypePickNotFound, "s-1", "p-1", now.Add(-2*time.Hour)),
		inventoryEvent("f-1", "s-1", "p-1", 3, now.Add(-time.Hour)),
		pickEvent("e-3", aisle.TypePickFound, "s-2", "p-2", now),
		first, // redelivered by a producer retry: same id, new offset
	)
	want := m.ObservePick(models.AvailabilityEvidence{}, true, now.Add(-time.Hour))
	want = m.ObservePick(want, false, now.Add(-2*time.Hour))
	want = m.ObserveFeed(want, 3, now.Add(-time.Hour))

	topics := []string{aisle.TopicPicking, aisle.TopicInventory}
	sps := []aisle.StoreProduct{{StoreID: "s-1", ProductID: "p-1"}, {StoreID: "s-2", ProductID: "p-2"}}
	var snapshot []models.AvailabilityEvidence
	for _, group := range []string{"g-first", "g-replay"} {
		stop := startConsumer(t, consumerConfig(t, brokers, fs, group))
		waitFor(t, group+" to commit everything", func() bool { return lagZero(t, brokers, group, topics...) })
		if err := stop(); err != nil {
			t.Fatalf("%s: Run returned %v", group, err)
		}
		got, err := fs.Availability(context.Background(), sps)
		if err != nil {
			t.Fatal(err)
		}
		if snapshot == nil {
			snapshot = got
		}
		if !sameEvidence(got[0], want) {
			t.Fatalf("after %s: features %+v, want %+v (e-1 once)", group, got[0], want)
		}
		if got[1].Found != 1 || got[0] != snapshot[0] || got[1] != snapshot[1] {
			t.Fatalf("after %s: features %+v, want %+v", group, got, snapshot)
		}
	}
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

func keys(m map[string]*kgo.Record) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// flakyCatalog fails its first calls, like a catalog whose database is
// briefly down; the batch must be retried, not dropped or skipped.
type flakyCatalog struct {
	streaming.Catalog
	failures chan struct{} // one token per call still to fail
}

func (c flakyCatalog) UnknownIDs(ctx context.Context, storeIDs, productIDs []string) (stores, products map[string]bool, err error) {
	select {
	case <-c.failures:
		return nil, nil, errors.New("catalog unavailable")
	default:
		return c.Catalog.UnknownIDs(ctx, storeIDs, productIDs)
	}
}

func TestConsumerRetriesFailedSteps(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	fs := featurestest.MustOpen(t)
	brokers := b.Addrs()
	publish(t, mustProducer(t, brokers),
		pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now),
		pickEvent("e-2", aisle.TypePickFound, "s-1", "p-1", now),
	)
	failures := make(chan struct{}, 3)
	for range cap(failures) {
		failures <- struct{}{}
	}
	cfg := consumerConfig(t, brokers, fs, "g-retry")
	cfg.Catalog = flakyCatalog{cfg.Catalog, failures}
	stop := startConsumer(t, cfg)
	waitFor(t, "both picks", func() bool {
		return readAvailability(t, fs, aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}).Found == 2
	})
	if len(failures) != 0 {
		t.Fatalf("%d catalog failures left, want all 3 used", len(failures))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !lagZero(t, brokers, "g-retry", aisle.TopicPicking) {
		t.Fatal("offsets not committed after the retried batch")
	}
}

// A second member joining mid-stream revokes partitions from the first;
// every event is still applied exactly once and all offsets are committed.
func TestConsumerRebalanceLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 6)
	fs := featurestest.MustOpen(t)
	brokers := b.Addrs()
	catalog := newFixedCatalog(5, 50)
	var sps []aisle.StoreProduct
	for s := range 5 {
		for p := range 10 {
			sps = append(sps, aisle.StoreProduct{StoreID: "s-" + strconv.Itoa(s), ProductID: "p-" + strconv.Itoa(p)})
		}
	}
	// All picks found at the same time: each adds exactly 1.
	const perRound = 1000
	produceRound := func(round int) {
		recs := make([]*kgo.Record, perRound)
		for i := range recs {
			sp := sps[i%len(sps)]
			ev := pickEvent("e-"+strconv.Itoa(round)+"-"+strconv.Itoa(i), aisle.TypePickFound, sp.StoreID, sp.ProductID, now)
			recs[i] = record(aisle.TopicPicking, sp.String(), mustJSON(ev))
		}
		streamingtest.Produce(t, brokers, recs...)
	}
	total := func() float64 {
		got, err := fs.Availability(context.Background(), sps)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, e := range got {
			sum += e.Found
		}
		return sum
	}

	group := "g-rebalance"
	cfg := consumerConfig(t, brokers, fs, group)
	cfg.Catalog = catalog
	cfg.MaxPollRecords = 50 // many small batches, so the rebalance lands mid-stream
	produceRound(0)
	stopA := startConsumer(t, cfg)
	waitFor(t, "the first member to start", func() bool { return total() > 0 })
	stopB := startConsumer(t, cfg)
	produceRound(1)
	waitFor(t, "both members to own partitions", func() bool { return membersWithPartitions(t, brokers, group) == 2 })
	waitFor(t, "every event applied", func() bool { return total() >= 2*perRound })
	waitFor(t, "all offsets committed", func() bool { return lagZero(t, brokers, group, aisle.TopicPicking) })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if got := total(); got != 2*perRound {
		t.Fatalf("sum of found counts = %v, want %d: events lost or double-counted", got, 2*perRound)
	}
}

func membersWithPartitions(t testing.TB, brokers []string, group string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(context.Background(), group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	n := 0
	for _, m := range described[group].Members {
		if c, ok := m.Assigned.AsConsumer(); ok && len(c.Topics) > 0 && len(c.Topics[0].Partitions) > 0 {
			n++
		}
	}
	return n
}

// recordingApplier remembers the ids of the events it was given, per topic.
type recordingApplier struct {
	mu  sync.Mutex
	ids map[string][]string
}

func (r *recordingApplier) apply(_ context.Context, updates []aisle.Update) ([]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	applied := make([]bool, len(updates))
	for i, u := range updates {
		r.ids[u.Origin.Topic] = append(r.ids[u.Origin.Topic], u.Event.ID)
		applied[i] = true
	}
	return applied, nil
}

func (r *recordingApplier) seen(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids[topic])
}

// Each topic's valid events reach every applier configured for it, in
// order; events naming unknown stores or products are dead-lettered; topics
// without appliers are not consumed.
func TestConsumerRoutesTopicsToTheirAppliers(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	view := func(id, product string) aisle.Event {
		return event(id, aisle.TypeSessionView, now, aisle.SessionEvent{SessionID: "se-1", UserID: "u-1", StoreID: "s-1", ProductID: product})
	}
	amount := int64(1200)
	order := func(id, store string) aisle.Event {
		return event(id, aisle.TypeOrderPlaced, now, aisle.OrderPlaced{
			OrderID: "o-" + id, UserID: "u-1", StoreID: store, AmountCents: &amount,
			CardFingerprint: "c-1", DeviceID: "d-1", IP: "192.0.2.1", AddressHash: "a-1",
			Items: []aisle.OrderItem{{ProductID: "p-1", Quantity: 1}, {ProductID: "p-2", Quantity: 3}},
		})
	}
	publish(t, mustProducer(t, brokers),
		view("v-1", "p-1"), view("v-2", "p-77"), view("v-3", "p-2"),
		order("1", "s-1"), order("2", "s-9"),
		pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now),
	)

	first, second := &recordingApplier{ids: map[string][]string{}}, &recordingApplier{ids: map[string][]string{}}
	cfg := consumerConfig(t, brokers, nil, "g-route")
	cfg.Appliers = map[string][]streaming.Applier{
		aisle.TopicSessions: {{Name: "first", Apply: first.apply}},
		aisle.TopicOrders:   {{Name: "first", Apply: first.apply}, {Name: "second", Apply: second.apply}},
	}
	stop := startConsumer(t, cfg)
	waitFor(t, "sessions and orders to be committed", func() bool {
		return lagZero(t, brokers, "g-route", aisle.TopicSessions, aisle.TopicOrders)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"sessions", first.seen(aisle.TopicSessions), []string{"v-1", "v-3"}},
		{"orders, first applier", first.seen(aisle.TopicOrders), []string{"1"}},
		{"orders, second applier", second.seen(aisle.TopicOrders), []string{"1"}},
		{"second applier's sessions", second.seen(aisle.TopicSessions), nil},
		{"picking (no applier)", first.seen(aisle.TopicPicking), nil},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: applied %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	reasons := map[string]bool{}
	for _, r := range consumeAll(t, brokers, aisle.TopicDLQ, 2) {
		reasons[headers(r)[streaming.HeaderError]] = true
	}
	if !reasons["unknown product p-77"] || !reasons["unknown store s-9"] {
		t.Errorf("DLQ reasons %v, want unknown product p-77 and unknown store s-9", reasons)
	}
	committed, _ := offsets(t, brokers, "g-route", aisle.TopicPicking)
	if c, ok := committed.Lookup(aisle.TopicPicking, 0); ok {
		t.Errorf("the group committed offset %d of aisle.picking, which it has no applier for", c.At)
	}
}
