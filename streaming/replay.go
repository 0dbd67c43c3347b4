package streaming

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	Brokers []string
	// Appliers are what each replayed topic's events are applied with; Replay
	// reads exactly these topics. They are the stream workers' appliers, so
	// replay writes what the workers would, with the same bookkeeping in
	// each entity's hash.
	Appliers map[string]Applier
	Catalog  Catalog // events naming unknown stores or products are rejected, as the workers dead-letter them
	Log      *slog.Logger
	// Batch is how many records of a partition are applied per pipelined
	// round trip, like one polled batch of a stream worker (at least 1).
	Batch int
}

// ReplayStats counts what Replay did with one topic's records.
type ReplayStats struct {
	Records int // read
	Applied int // new to the features
	// Skipped records changed nothing: most were applied before (by the
	// workers or an earlier replay: their watermark or event id is
	// recorded), a few change nothing by the appliers' rules (a second
	// label of an order, a session event of another user).
	Skipped int
	// Rejected records fail validation, name unknown stores or products, or
	// are refused by the applier (see Consumer); the stream workers sent
	// them to the dead-letter topic.
	Rejected int
}

// Replay reads every record of the appliers' topics from the oldest retained
// offset up to the end offsets as of the call (see ReadRecords) and applies
// them as the stream workers do: decoded, validated and checked against the
// catalog by the workers' own rule (decodeRecords, which judges an event's
// time against its record's timestamp, as the workers do), and applied in
// offset order within each partition, each atomically with its entities'
// bookkeeping (aisle.Update). What was applied before is skipped, so Replay is idempotent and
// safe beside running workers, and a worker that later reads the same
// records applies none of them again. Records an applier keeps refusing
// (not an outage) are found as the workers find them and counted as
// rejected. Replay stops at the first other error (Redis unavailable, the
// catalog failing, ctx ending) and returns the stats so far with it;
// running it again resumes, since what it applied is skipped.
func Replay(ctx context.Context, cfg ReplayConfig) (map[string]*ReplayStats, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Batch < 1 {
		return nil, fmt.Errorf("replay: batch must be at least 1, got %d", cfg.Batch)
	}
	stats := make(map[string]*ReplayStats, len(cfg.Appliers))
	for topic := range cfg.Appliers {
		stats[topic] = &ReplayStats{}
	}
	// Records wait here per partition until a batch is full or the read
	// ends; partitions are independent, so only their own order matters.
	pending := make(map[topicPartition]*replayBatch)
	apply := func(tp topicPartition) error {
		err := applyReplayBatch(ctx, cfg, stats[tp.topic], pending[tp])
		delete(pending, tp)
		return err
	}
	err := ReadRecords(ctx, cfg.Brokers, slices.Sorted(maps.Keys(cfg.Appliers)), cfg.Log, func(topicID string, r *kgo.Record) error {
		stats[r.Topic].Records++
		tp := topicPartition{r.Topic, r.Partition}
		b := pending[tp]
		if b == nil {
			b = &replayBatch{topicID: topicID}
			pending[tp] = b
		}
		b.records = append(b.records, r)
		if len(b.records) < cfg.Batch {
			return nil
		}
		return apply(tp)
	})
	for tp := range pending {
		if err != nil {
			break
		}
		err = apply(tp)
	}
	if err != nil {
		return stats, fmt.Errorf("replay: %w", err)
	}
	return stats, nil
}

// replayBatch is records of one partition waiting to be applied, in offset
// order.
type replayBatch struct {
	topicID string
	records []*kgo.Record
}

// applyReplayBatch applies one partition's records, in order, after leaving
// out (and counting) those the workers reject.
func applyReplayBatch(ctx context.Context, cfg ReplayConfig, st *ReplayStats, b *replayBatch) error {
	topic := b.records[0].Topic
	d, err := decodeRecords(b.topicID, b.records, func(retailerIDs, storeIDs, productIDs []string) (aisle.Unknown, error) {
		return lookupUnknown(ctx, cfg.Catalog, retailerIDs, storeIDs, productIDs)
	})
	if err != nil {
		return fmt.Errorf("look up the stores and products of %s: %w", topic, err)
	}
	st.Rejected += len(d.rejects)
	if len(d.updates) == 0 {
		return nil
	}
	a := cfg.Appliers[topic]
	// As the workers do, records the applier keeps refusing are found and
	// left out (the workers dead-lettered them); an outage stops the replay.
	applied := make([]bool, len(d.updates))
	var stop error
	failed, ok := isolateItems(len(d.updates), func(lo, hi, tries int) (bool, error) {
		var err error
		for range tries {
			var got []bool
			if got, err = a.Apply(ctx, d.updates[lo:hi]); err == nil {
				copy(applied[lo:hi], got)
				return true, nil
			}
			if dependencyDown(err) || ctx.Err() != nil {
				stop = err
				return false, nil
			}
		}
		return true, err
	})
	if !ok {
		return fmt.Errorf("%s: %w", a.Name, stop)
	}
	for i, ok := range applied {
		switch {
		case failed[i] != nil:
			st.Rejected++
			cfg.Log.Warn("replay: the applier refuses a record; left out, as the workers dead-lettered it",
				"applier", a.Name, "topic", topic, "partition", d.from[i].Partition, "offset", d.from[i].Offset, "err", failed[i])
		case ok:
			st.Applied++
		default:
			st.Skipped++
		}
	}
	return nil
}

// GroupMembers returns how many members the consumer group has now: the
// stream workers that are running.
func GroupMembers(ctx context.Context, brokers []string, group string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("describe group %s: %w", group, err)
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error() // a group that never existed is "Dead", not an error
	}
	if err != nil {
		return 0, fmt.Errorf("describe group %s on %v: %w", group, brokers, err)
	}
	return len(described[group].Members), nil
}
