package streaming_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

const (
	benchEvents     = 100_000
	benchPartitions = 6
)

// benchTopic starts a broker whose topics have benchPartitions partitions
// and fills aisle.picking and aisle.inventory with benchEvents valid events
// (4 picks to 1 inventory level) over 20 stores x 500 products.
func benchTopic(b *testing.B) (*streaming.Broker, fixedCatalog) {
	b.Helper()
	broker := streamingtest.MustStartBroker(b, benchPartitions)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	errs := make(chan error, 1)
	for i := range benchEvents {
		store, product := fmt.Sprint("s-", rng.IntN(20)), fmt.Sprint("p-", rng.IntN(500))
		at := now.Add(-time.Duration(rng.IntN(86_400_000)) * time.Millisecond)
		id := fmt.Sprint("e-", i)
		var ev aisle.Event
		switch i % 5 {
		case 0:
			ev = inventoryEvent(id, store, product, int64(rng.IntN(40)), at)
		case 1, 2:
			ev = pickEvent(id, aisle.TypePickFound, store, product, at)
		case 3:
			ev = pickEvent(id, aisle.TypePickNotFound, store, product, at)
		case 4:
			ev = event(id, aisle.TypePickReplaced, at, aisle.Pick{StoreID: store, ProductID: product, ShopperID: "sh-1", OrderID: "o-" + id, ReplacementProductID: "p-1"})
		}
		topic, _ := aisle.TopicFor(ev.Type)
		cl.Produce(ctx, record(topic, store+":"+product, mustJSON(ev)), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatalf("produce: %v", err)
	default:
	}
	return broker, newFixedCatalog(20, 500)
}

// BenchmarkIngest measures the stream worker end to end: a fresh consumer
// group reads the pre-produced events, validates them against the catalog
// and applies them to Redis, until every event is applied.
func BenchmarkIngest(b *testing.B) {
	broker, catalog := benchTopic(b)
	b.ResetTimer()
	group := 0
	for b.Loop() {
		b.StopTimer()
		fs := featurestest.MustOpen(b)
		group++
		cfg := consumerConfig(b, broker.Addrs(), fs, fmt.Sprint("g-ingest-", group))
		cfg.Catalog = catalog
		cfg.Log = testLogger(b)
		start := appliedTotal(b)
		b.StartTimer()

		stop := startConsumer(b, cfg)
		deadline := time.Now().Add(2 * time.Minute)
		for appliedTotal(b)-start < benchEvents {
			if time.Now().After(deadline) {
				b.Fatalf("applied %v of %d events in 2 minutes", appliedTotal(b)-start, benchEvents)
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkConsumeOnly is the baseline of BenchmarkIngest: a fresh group
// reads and decodes the same events, with no catalog check and no Redis.
func BenchmarkConsumeOnly(b *testing.B) {
	broker, _ := benchTopic(b)
	b.ResetTimer()
	group := 0
	for b.Loop() {
		group++
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(broker.Addrs()...),
			kgo.ConsumerGroup(fmt.Sprint("g-consume-", group)),
			kgo.ConsumeTopics(aisle.TopicPicking, aisle.TopicInventory),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		decoded := 0
		for decoded < benchEvents {
			fetches := cl.PollRecords(ctx, 10_000)
			if ctx.Err() != nil {
				b.Fatalf("decoded %d of %d events in 2 minutes", decoded, benchEvents)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				if _, err := aisle.DecodeEvent(r.Value, r.Topic, now); err != nil {
					b.Fatalf("decode: %v", err)
				}
				decoded++
			})
		}
		cancel()
		cl.Close()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// appliedTotal reads the consumer's applied-events counter from the default
// Prometheus registry (benchmarks run one at a time, so deltas are ours).
func appliedTotal(b *testing.B) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "aisle_stream_events_applied_total" {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() // applied and duplicate: every valid event
		}
		return total
	}
	return 0
}
