package streaming_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/streaming"
)

// A broker restarted on the same data directory still has the events and
// the group's committed offsets.
func TestEmbeddedBrokerKeepsEventsAndOffsetsAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	log := testLogger(t)

	b1, err := streaming.StartEmbeddedBroker(ctx, "127.0.0.1:0", dir, 2, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	if err := streaming.EnsureTopics(ctx, b1.Addrs(), 0, 0); err != nil {
		t.Fatal(err)
	}
	p1 := mustProducer(t, b1.Addrs())
	evs := []aisle.Event{
		pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now),
		pickEvent("e-2", aisle.TypePickNotFound, "s-2", "p-2", now),
		pickEvent("e-3", aisle.TypePickFound, "s-3", "p-3", now),
	}
	publish(t, p1, evs...)
	fs := featurestest.MustOpen(t)
	group := "g-restart"
	stop := startConsumer(t, consumerConfig(t, b1.Addrs(), fs, group))
	waitFor(t, "the group to commit", func() bool { return lagZero(t, b1.Addrs(), group, aisle.TopicPicking) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedBefore, _ := offsets(t, b1.Addrs(), group, aisle.TopicPicking)
	p1.Close()
	b1.Close()

	b2, err := streaming.StartEmbeddedBroker(ctx, "127.0.0.1:0", dir, 2, log)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	defer b2.Close()
	if err := streaming.EnsureTopics(ctx, b2.Addrs(), 0, 0); err != nil {
		t.Fatalf("EnsureTopics after restart: %v", err)
	}

	recs := consumeAll(t, b2.Addrs(), aisle.TopicPicking, len(evs))
	ids := map[string]bool{}
	for _, r := range recs {
		for _, ev := range evs {
			if string(r.Value) == string(mustJSON(ev)) {
				ids[ev.ID] = true
			}
		}
	}
	if len(recs) != len(evs) || len(ids) != len(evs) {
		t.Fatalf("after restart the topic has %d records matching %v, want the %d events", len(recs), ids, len(evs))
	}
	committedAfter, ends := offsets(t, b2.Addrs(), group, aisle.TopicPicking)
	if len(committedAfter.Offsets().Sorted()) == 0 || !lagZero(t, b2.Addrs(), group, aisle.TopicPicking) {
		t.Fatalf("committed offsets after restart %v (before %v), end offsets %v", committedAfter, committedBefore, ends)
	}
	for _, o := range committedBefore.Offsets().Sorted() {
		if after, _ := committedAfter.Lookup(o.Topic, o.Partition); after.At != o.At {
			t.Fatalf("committed offset of %s/%d was %d, is %d after restart", o.Topic, o.Partition, o.At, after.At)
		}
	}
}

func TestStartEmbeddedBrokerAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := streaming.StartEmbeddedBroker(context.Background(), ln.Addr().String(), "", 1, testLogger(t))
	if err == nil {
		b.Close()
		t.Fatal("started a broker on a port that is in use")
	}
	if !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "KAFKA_BROKERS") {
		t.Fatalf("error %q does not say the address is in use and how to proceed", err)
	}
}

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := streaming.StartEmbeddedBroker(ctx, "127.0.0.1:0", "", 4, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 2 {
		if err := streaming.EnsureTopics(ctx, b.Addrs(), 0, 0); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	ends := endOffsets(t, b.Addrs(), streaming.Topics()...)
	for _, topic := range streaming.Topics() {
		want := 4
		if topic == aisle.TopicCatalog {
			want = 1 // keeps the catalog's events in the order they were published
		}
		if n := len(ends[topic]); n != want || int32(n) != streaming.PartitionsOf(topic, 4) {
			t.Fatalf("topic %s has %d partitions, want %d", topic, n, want)
		}
	}
}
