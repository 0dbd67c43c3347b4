package streaming

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var misroutedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "aisle_stream_misrouted_records_total",
	Help: "Keyed records that arrived on another partition than Kafka's default partitioner (murmur2 of the key) puts their key on, by topic: " +
		"their producer partitions differently (librdkafka's default, crc32, e.g. kcat without -X partitioner=murmur2_random), " +
		"so one entity's events may be split over partitions and applied out of order.",
}, []string{"topic"})

// routingCheck counts the records of a consumer whose key belongs to
// another partition than the one they arrived on, and warns once. They are
// still applied: the check tells operators about a producer that breaks
// per-entity order, it does not refuse its events.
type routingCheck struct {
	log *slog.Logger
	key kgo.Partitioner

	mu         sync.Mutex
	partitions map[string]int // partitions of each topic, as last looked up
	warned     bool
}

func newRoutingCheck(log *slog.Logger) *routingCheck {
	return &routingCheck{log: log, key: kgo.StickyKeyPartitioner(nil), partitions: map[string]int{}}
}

// metadataTimeout bounds the look-up of a topic's partition count.
const metadataTimeout = 5 * time.Second

// check counts the records of one partition's batch that Kafka's default
// partitioner would have put elsewhere. Without the topic's partition
// count (metadata unreachable) it checks nothing: it asks again next batch.
// cl is the consumer's client, which looks the count up.
func (r *routingCheck) check(ctx context.Context, cl *kgo.Client, topic string, partition int32, records []*kgo.Record) {
	n := r.partitionCount(ctx, cl, topic, partition)
	if n == 0 {
		return
	}
	byKey := r.key.ForTopic(topic)
	misrouted := 0
	var first *kgo.Record
	for _, rec := range records {
		if len(rec.Key) == 0 {
			continue
		}
		if byKey.Partition(rec, n) != int(partition) {
			misrouted++
			if first == nil {
				first = rec
			}
		}
	}
	if misrouted == 0 {
		return
	}
	misroutedRecords.WithLabelValues(topic).Add(float64(misrouted))
	r.mu.Lock()
	warn := !r.warned
	r.warned = true
	r.mu.Unlock()
	if warn {
		r.log.Warn("records arrive on another partition than their key's: their producer does not partition like Kafka's default (murmur2), "+
			"so one entity's events may be applied out of order; a librdkafka producer such as kcat needs -X partitioner=murmur2_random "+
			"(counted in aisle_stream_misrouted_records_total; this is logged once)",
			"topic", topic, "partition", partition, "key", string(first.Key), "key_partition", byKey.Partition(first, n), "offset", first.Offset)
	}
}

// partitionCount returns topic's partition count, looked up again when a
// record arrives on a partition beyond it (partitions were added), or 0
// when it cannot be looked up.
func (r *routingCheck) partitionCount(ctx context.Context, cl *kgo.Client, topic string, partition int32) int {
	r.mu.Lock()
	n := r.partitions[topic]
	r.mu.Unlock()
	if int(partition) < n {
		return n
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || details[topic].Err != nil {
		return 0
	}
	n = len(details[topic].Partitions)
	r.mu.Lock()
	r.partitions[topic] = n
	r.mu.Unlock()
	if int(partition) >= n {
		return 0
	}
	return n
}
