// Package streamstatus reports the stream's event rates and freshness from
// Kafka itself: the topics' offsets and timestamps and the stream workers'
// committed offsets. An API process reads them whether or not it runs the
// stream workers, so the figures are true in split api/stream deployments.
package streamstatus

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// RateWindow is the span over which EventsPerSecond is measured.
const RateWindow = time.Minute

// readTimeout bounds the fetch of the newest committed records.
const readTimeout = 5 * time.Second

// Status is the pipeline's state at MeasuredAt.
type Status struct {
	MeasuredAt    time.Time
	ConsumerGroup string
	Topics        []TopicStatus
}

// TopicStatus is one topic's rate, lag and freshness.
type TopicStatus struct {
	Topic           string
	EventsPerSecond float64
	Lag             int64     // records past the group's committed offsets
	NewestAppliedAt time.Time // timestamp of the newest committed record; zero when none
}

// Reader reads Status from a Kafka cluster for one consumer group.
type Reader struct {
	brokers []string
	group   string
	Now     func() time.Time
}

// NewReader returns a Reader of the stream workers' group on brokers.
func NewReader(brokers []string, group string) *Reader {
	return &Reader{brokers: brokers, group: group, Now: time.Now}
}

// Status reads the pipeline's state (ops and service keys only). Each call
// opens its own Kafka client, so a Reader holds nothing open between calls.
func (r *Reader) Status(ctx context.Context) (Status, error) {
	p := aisle.PrincipalFromContext(ctx)
	if !p.Authenticated() {
		return Status{}, aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	}
	if p.Role != aisle.RoleOps && p.Role != aisle.RoleService {
		return Status{}, aisle.Errorf(aisle.EFORBIDDEN, "only ops and service keys may read the pipeline's status")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		return Status{}, fmt.Errorf("pipeline status: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	now := r.Now()
	topics := aisle.EventTopics
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return Status{}, fmt.Errorf("pipeline status: list end offsets: %w", err)
	}
	// The first offset at or after the window's start; the end offset
	// where no record is that recent.
	since, err := adm.ListOffsetsAfterMilli(ctx, now.Add(-RateWindow).UnixMilli(), topics...)
	if err == nil {
		err = since.Error()
	}
	if err != nil {
		return Status{}, fmt.Errorf("pipeline status: list offsets of the last minute: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, r.group)
	if err != nil {
		return Status{}, fmt.Errorf("pipeline status: fetch the offsets of group %s: %w", r.group, err)
	}

	byTopic := make(map[string]*TopicStatus, len(topics))
	out := Status{MeasuredAt: now, ConsumerGroup: r.group, Topics: make([]TopicStatus, len(topics))}
	for i, t := range topics {
		out.Topics[i].Topic = t
		byTopic[t] = &out.Topics[i]
	}
	newest := map[string]map[int32]kgo.Offset{} // the newest committed record of each partition
	ends.Each(func(end kadm.ListedOffset) {
		ts := byTopic[end.Topic]
		if s, ok := since.Lookup(end.Topic, end.Partition); ok {
			ts.EventsPerSecond += float64(end.Offset-s.Offset) / RateWindow.Seconds()
		}
		next := int64(0)
		if c, ok := committed.Lookup(end.Topic, end.Partition); ok && c.At >= 0 {
			next = c.At
		}
		ts.Lag += max(end.Offset-next, 0)
		if next > 0 {
			if newest[end.Topic] == nil {
				newest[end.Topic] = map[int32]kgo.Offset{}
			}
			newest[end.Topic][end.Partition] = kgo.NewOffset().At(next - 1)
		}
	})
	stamps, err := r.recordTimes(ctx, newest)
	if err != nil {
		return Status{}, err
	}
	for topic, t := range stamps {
		byTopic[topic].NewestAppliedAt = t
	}
	return out, nil
}

// recordTimes fetches the record at each given offset and returns, per
// topic, the newest of their timestamps. A record retention has deleted
// is skipped.
func (r *Reader) recordTimes(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]time.Time, error) {
	wanted := 0
	for _, ps := range offsets {
		wanted += len(ps)
	}
	newest := make(map[string]time.Time, len(offsets))
	if wanted == 0 {
		return newest, nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumePartitions(offsets),
		// Past retention: start at the oldest record, which is then newer
		// than the one asked for and tells nothing; it is ignored below.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, fmt.Errorf("pipeline status: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	seen := map[string]map[int32]bool{}
	for got := 0; got < wanted; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pipeline status: read the newest committed records: %w", ctx.Err())
		}
		if err := fetches.Err(); err != nil {
			return nil, fmt.Errorf("pipeline status: read the newest committed records: %w", err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			want, ok := offsets[rec.Topic][rec.Partition]
			if !ok || seen[rec.Topic][rec.Partition] {
				return
			}
			if seen[rec.Topic] == nil {
				seen[rec.Topic] = map[int32]bool{}
			}
			seen[rec.Topic][rec.Partition] = true
			got++
			cl.PauseFetchPartitions(map[string][]int32{rec.Topic: {rec.Partition}})
			if rec.Offset == want.EpochOffset().Offset && rec.Timestamp.After(newest[rec.Topic]) {
				newest[rec.Topic] = rec.Timestamp
			}
		})
	}
	return newest, nil
}
