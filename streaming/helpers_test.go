package streaming_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/streaming"
)

// fixedCatalog is a catalog over a fixed set of stores and products: our own
// Catalog interface, standing in for the PostgreSQL adapter (package postgres).
type fixedCatalog struct {
	stores, products map[string]bool
}

func newFixedCatalog(stores, products int) fixedCatalog {
	c := fixedCatalog{stores: map[string]bool{}, products: map[string]bool{}}
	for i := range stores {
		c.stores[fmt.Sprint("s-", i)] = true
	}
	for i := range products {
		c.products[fmt.Sprint("p-", i)] = true
	}
	return c
}

func (c fixedCatalog) UnknownIDs(_ context.Context, storeIDs, productIDs []string) (stores, products map[string]bool, err error) {
	stores, products = map[string]bool{}, map[string]bool{}
	for _, id := range storeIDs {
		if !c.stores[id] {
			stores[id] = true
		}
	}
	for _, id := range productIDs {
		if !c.products[id] {
			products[id] = true
		}
	}
	return stores, products, nil
}

// UnknownRetailers knows no retailer: these tests publish no catalog events.
func (c fixedCatalog) UnknownRetailers(_ context.Context, ids []string) (map[string]bool, error) {
	unknown := map[string]bool{}
	for _, id := range ids {
		unknown[id] = true
	}
	return unknown, nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// event builds an envelope; data is marshalled as is.
func event(id, typ string, at time.Time, data any) aisle.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return aisle.Event{ID: id, Type: typ, Time: at, Source: "test", Data: raw}
}

func pickEvent(id, typ, store, product string, at time.Time) aisle.Event {
	return event(id, typ, at, aisle.Pick{StoreID: store, ProductID: product, ShopperID: "sh-1", OrderID: "o-" + id})
}

func inventoryEvent(id, store, product string, qty int64, at time.Time) aisle.Event {
	return event(id, aisle.TypeInventoryLevel, at, aisle.InventoryLevel{StoreID: store, ProductID: product, Quantity: &qty})
}

func record(topic, key string, value []byte) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
}

// stamped sets r's timestamp, the time its event's time is judged against
// (Produce stamps the others with the time they are produced).
func stamped(r *kgo.Record, at time.Time) *kgo.Record {
	r.Timestamp = at
	return r
}

func mustJSON(ev aisle.Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// consumeAll reads n records of topic from the start, without a group.
func consumeAll(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records from %s: %v", len(recs), n, topic, err)
		}
		fetches.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		recs = append(recs, fetches.Records()...)
	}
	return recs
}

// startConsumer runs a consumer until the test ends or stop is called; stop
// returns Run's error.
func startConsumer(t testing.TB, cfg streaming.ConsumerConfig) (stop func() error) {
	t.Helper()
	_, stop = runConsumer(t, cfg)
	return stop
}

// runConsumer is startConsumer for tests that also ask the consumer (Ready).
func runConsumer(t testing.TB, cfg streaming.ConsumerConfig) (c *streaming.Consumer, stop func() error) {
	t.Helper()
	c, err := streaming.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("consumer did not stop within 30s of cancel")
			}
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return c, stop
}

// waitFor polls cond until it holds or 15s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lagZero reports whether group has committed the end offset of every
// non-empty partition of topics.
func lagZero(t testing.TB, brokers []string, group string, topics ...string) bool {
	t.Helper()
	committed, ends, err := groupOffsets(t, brokers, group, topics...)
	if err != nil {
		return false // e.g. the group has not committed yet
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		c, found := committed.Lookup(o.Topic, o.Partition)
		if !found || c.At != o.Offset {
			ok = false
		}
	})
	return ok
}

func offsets(t testing.TB, brokers []string, group string, topics ...string) (kadm.OffsetResponses, kadm.ListedOffsets) {
	t.Helper()
	committed, ends, err := groupOffsets(t, brokers, group, topics...)
	if err != nil {
		t.Fatal(err)
	}
	return committed, ends
}

// groupOffsets returns group's committed offsets and the end offsets of topics.
func groupOffsets(t testing.TB, brokers []string, group string, topics ...string) (kadm.OffsetResponses, kadm.ListedOffsets, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	return committed, ends, nil
}

func readAvailability(t testing.TB, fs *features.Store, sp aisle.StoreProduct) models.AvailabilityEvidence {
	t.Helper()
	got, err := fs.Availability(context.Background(), []aisle.StoreProduct{sp})
	if err != nil {
		t.Fatalf("Availability: %v", err)
	}
	return got[0]
}

func endOffsets(t testing.TB, brokers []string, topics ...string) kadm.ListedOffsets {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topics...)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	return ends
}
