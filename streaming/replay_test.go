package streaming_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// Replay writes what a stream worker writes, watermarks included (their
// field carries the broker's topic id, which replay must spell the same),
// counts what it skips and rejects (judging event times against record
// timestamps as the workers do), and stops when its context ends.
func TestReplayMatchesTheWorkers(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	brokers := b.Addrs()
	var recs []*kgo.Record
	for i := range 40 {
		product := fmt.Sprint("p-", i%7)
		ev := pickEvent(fmt.Sprint("e-", i), aisle.TypePickFound, "s-1", product, now)
		if i%4 == 0 {
			ev = inventoryEvent(fmt.Sprint("f-", i), "s-1", product, int64(i), now)
		}
		recs = append(recs, record(must(aisle.TopicFor(ev.Type)), "s-1:"+product, mustJSON(ev)))
	}
	recs = append(recs,
		record(aisle.TopicPicking, "k", []byte("not json")),
		record(aisle.TopicPicking, "s-9:p-1", mustJSON(pickEvent("e-unknown", aisle.TypePickFound, "s-9", "p-1", now))),
		recs[39], // produced twice: skipped by its event id, the entity's last
	)
	// Stamped by Kafka an hour before the worker reads it (a lag, an
	// outage), with an event time beyond that stamp's clock skew: worker and
	// replay both judge it by the stamp, so both reject it.
	recs = append(recs, stamped(record(aisle.TopicPicking, "s-1:p-1",
		mustJSON(pickEvent("e-late", aisle.TypePickFound, "s-1", "p-1", now.Add(-30*time.Minute)))), now.Add(-time.Hour)))
	streamingtest.Produce(t, brokers, recs...)

	workerPrefix := featurestest.NewPrefix()
	worker := featurestest.MustOpenAt(t, featurestest.URL(), workerPrefix)
	startConsumer(t, streaming.ConsumerConfig{
		Brokers: brokers, Group: "replay-test", Catalog: newFixedCatalog(2, 10),
		Appliers: map[string][]streaming.Applier{
			aisle.TopicPicking:   {{Name: "availability", Apply: worker.ApplyAvailability}},
			aisle.TopicInventory: {{Name: "availability", Apply: worker.ApplyAvailability}},
		},
		DLQ: mustProducer(t, brokers), Log: testLogger(t),
	})
	waitFor(t, "the worker to commit everything", func() bool {
		return lagZero(t, brokers, "replay-test", aisle.TopicPicking, aisle.TopicInventory)
	})

	replayedPrefix := featurestest.NewPrefix()
	replayed := featurestest.MustOpenAt(t, featurestest.URL(), replayedPrefix)
	cfg := streaming.ReplayConfig{
		Brokers: brokers, Catalog: newFixedCatalog(2, 10), Log: testLogger(t), Batch: 3,
		Appliers: map[string]streaming.Applier{
			aisle.TopicPicking:   {Name: "availability", Apply: replayed.ApplyAvailability},
			aisle.TopicInventory: {Name: "availability", Apply: replayed.ApplyAvailability},
		},
	}
	stats, err := streaming.Replay(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]streaming.ReplayStats{
		aisle.TopicPicking:   {Records: 34, Applied: 30, Skipped: 1, Rejected: 3},
		aisle.TopicInventory: {Records: 10, Applied: 10},
	}
	for topic, w := range want {
		if got := *stats[topic]; got != w {
			t.Errorf("%s: replay stats %+v, want %+v", topic, got, w)
		}
	}

	// Every key alike, the bookkeeping in each hash included (its mark
	// fields carry the broker's topic id, which replay must spell the same).
	if diff := featurestest.Diff(featurestest.DropWriterState(featurestest.MustSnapshot(t, replayedPrefix)),
		featurestest.DropWriterState(featurestest.MustSnapshot(t, workerPrefix))); diff != "" {
		t.Errorf("replay wrote other keys than the worker:\n%s", diff)
	}
	for i := range 7 {
		sp := aisle.StoreProduct{StoreID: "s-1", ProductID: fmt.Sprint("p-", i)}
		if w, r := readAvailability(t, worker, sp), readAvailability(t, replayed, sp); w != r {
			t.Errorf("%s: worker wrote %+v, replay %+v", sp, w, r)
		}
	}

	again, err := streaming.Replay(context.Background(), cfg)
	if err != nil || again[aisle.TopicPicking].Applied+again[aisle.TopicInventory].Applied != 0 {
		t.Errorf("second replay: %v, applied %+v %+v", err, *again[aisle.TopicPicking], *again[aisle.TopicInventory])
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := streaming.Replay(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled replay returned %v, want context.Canceled", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
