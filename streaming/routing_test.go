package streaming_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/internal/promtest"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// A record whose key Kafka's default partitioner (murmur2) puts on another
// partition than the one it arrived on is counted, and warned about once
// naming the likely cause; it is still applied.
func TestConsumerCountsMisroutedRecords(t *testing.T) {
	t.Parallel()
	const partitions = 3
	b := streamingtest.MustStartBroker(t, partitions)
	brokers := b.Addrs()
	fs := featurestest.MustOpen(t)
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic(aisle.TopicPicking)
	at := now
	var recs []*kgo.Record
	for i, key := range []string{"s-1:p-1", "s-1:p-2", "s-2:p-3"} {
		ev := pickEvent("misrouted-"+strings.ReplaceAll(key, ":", "-"), aisle.TypePickFound, strings.Split(key, ":")[0], strings.Split(key, ":")[1], at)
		rec := record(aisle.TopicPicking, key, mustJSON(ev))
		rec.Partition = int32(byKey.Partition(rec, partitions))
		if i > 0 { // the first arrives where murmur2 puts it; the others elsewhere
			rec.Partition = (rec.Partition + 1) % partitions
		}
		recs = append(recs, rec)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	before := promtest.Gather(t).Total("aisle_stream_misrouted_records_total", map[string]string{"topic": aisle.TopicPicking})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var logs proctest.SyncBuffer
	cfg := consumerConfig(t, brokers, fs, "g-misrouted")
	cfg.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startConsumer(t, cfg)
	waitFor(t, "the group to commit every record", func() bool { return lagZero(t, brokers, "g-misrouted", aisle.TopicPicking) })

	if got := promtest.Gather(t).Total("aisle_stream_misrouted_records_total", map[string]string{"topic": aisle.TopicPicking}) - before; got != 2 {
		t.Errorf("misrouted records counted: %v, want 2", got)
	}
	if n := strings.Count(logs.String(), "murmur2_random"); n != 1 {
		t.Errorf("%d warnings naming -X partitioner=murmur2_random, want 1:\n%s", n, logs.String())
	}
}
