package streaming

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadTopics reads the history of topics for batch jobs: every record from
// each partition's oldest retained offset up to its end offset (high
// watermark) as of the call. Records produced after the call are not read, so
// it finishes while producers keep writing. It calls fn once per record, in
// offset order within a partition (partitions interleave), with the record's
// timestamp (against which the workers judge an event time in the future:
// batch jobs decode with it to keep what the workers kept), and stops at fn's
// first error, which it returns. It joins no consumer group and commits
// nothing, so it never disturbs the stream workers. A topic that does not
// exist is an error; ctx ending stops the read with ctx's error. (A
// partition ending in a transaction marker, which Aisle's producers never
// write, would keep it waiting for a record at end-1 until ctx ends.)
func ReadTopics(ctx context.Context, brokers, topics []string, log *slog.Logger, fn func(topic string, partition int32, offset int64, value []byte, stamped time.Time) error) error {
	return ReadRecords(ctx, brokers, topics, log, func(_ string, r *kgo.Record) error {
		return fn(r.Topic, r.Partition, r.Offset, r.Value, r.Timestamp)
	})
}

// ReadRecords is ReadTopics for readers that need whole records (their
// timestamps) and the broker's id of their topic (hex, "" when the broker
// does not say), which the stream workers put in offset watermarks: replay
// writes the same watermarks.
func ReadRecords(ctx context.Context, brokers, topics []string, log *slog.Logger, fn func(topicID string, r *kgo.Record) error) error {
	if log == nil {
		log = slog.Default()
	}
	ends, err := historyBounds(ctx, brokers, topics)
	if err != nil || len(ends) == 0 {
		return err
	}
	start := make(map[string]map[int32]kgo.Offset, len(ends))
	remaining := 0 // partitions not read to their end yet
	for topic, partitions := range ends {
		start[topic] = make(map[int32]kgo.Offset, len(partitions))
		for p := range partitions {
			start[topic][p] = kgo.NewOffset().AtStart()
			remaining++
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(start),
		// Retention may delete the oldest records while we read: resume
		// from whatever is oldest then.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(kgoLogger{log}),
	)
	if err != nil {
		return fmt.Errorf("read topics %v: %w", topics, err)
	}
	defer cl.Close()

	for remaining > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read topics %v: %w", topics, err)
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("read topics %v: %w", topics, err)
		}
		var stop error
		fetches.EachTopic(func(t kgo.FetchTopic) {
			topicID := topicIDString(t.TopicID)
			for _, p := range t.Partitions {
				end, reading := ends[t.Topic][p.Partition]
				for _, r := range p.Records {
					if !reading || stop != nil {
						break
					}
					if r.Offset < end {
						stop = fn(topicID, r)
					}
					if r.Offset >= end-1 {
						// Read to the end: stop fetching what producers
						// write after the call.
						cl.PauseFetchPartitions(map[string][]int32{t.Topic: {p.Partition}})
						delete(ends[t.Topic], p.Partition)
						remaining--
						reading = false
					}
				}
			}
		})
		if stop != nil {
			return stop
		}
	}
	return nil
}

// topicIDString is a topic id as the offset watermarks spell it: hex, or ""
// when the broker did not send one.
func topicIDString(id [16]byte) string {
	if id == [16]byte{} {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// historyBounds lists, per topic and partition, the end offset of each
// partition that holds records, leaving out empty ones.
func historyBounds(ctx context.Context, brokers, topics []string) (map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("read topics %v: %w", topics, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = listedError(starts)
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %v on %v: %w", topics, brokers, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = listedError(ends)
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v on %v: %w", topics, brokers, err)
	}
	bounds := make(map[string]map[int32]int64)
	ends.Each(func(end kadm.ListedOffset) {
		if s, ok := starts.Lookup(end.Topic, end.Partition); ok && end.Offset <= s.Offset {
			return // empty, or everything was deleted
		}
		if bounds[end.Topic] == nil {
			bounds[end.Topic] = make(map[int32]int64)
		}
		bounds[end.Topic][end.Partition] = end.Offset
	})
	return bounds, nil
}

// listedError names a missing topic plainly instead of by Kafka error code.
func listedError(l kadm.ListedOffsets) error {
	var err error
	l.Each(func(o kadm.ListedOffset) {
		switch {
		case err != nil || o.Err == nil:
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			err = fmt.Errorf("topic %s does not exist", o.Topic)
		default:
			err = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
		}
	})
	return err
}
