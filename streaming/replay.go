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
	"github.com/aisle/aisle/features"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	Brokers []string
	// Appliers are what each replayed topic's events are applied with; Replay
	// reads exactly these topics. They are the stream workers' appliers, so
	// replay writes what the workers would, with the same dedup keys and
	// offset watermarks.
	Appliers map[string]Applier
	Catalog  Catalog // events naming unknown stores or products are skipped, as the workers dead-letter them
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
	// Rejected records fail validation or name unknown stores or products;
	// the stream workers sent them to the dead-letter topic.
	Rejected int
}

// Replay reads every record of the appliers' topics from the oldest retained
// offset up to the end offsets as of the call (see ReadRecords) and applies
// them as the stream workers do: decoded and validated by aisle.DecodeEvent,
// checked against the catalog, and applied in offset order within each
// partition, each with its dedup key and offset watermark. What was applied
// before is skipped, so Replay is idempotent and safe beside running
// workers, and a worker that later reads the same records applies none of
// them again. An event's time is judged against its record's timestamp, the
// moment the worker would have judged it. Replay stops at the first error
// (Redis or the catalog failing, ctx ending) and returns the stats so far
// with it; running it again resumes, since what it applied is skipped.
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
	pending := make(map[topicPartition][]features.Update)
	apply := func(tp topicPartition) error {
		err := applyReplayBatch(ctx, cfg, stats[tp.topic], pending[tp])
		delete(pending, tp)
		return err
	}
	err := ReadRecords(ctx, cfg.Brokers, slices.Sorted(maps.Keys(cfg.Appliers)), cfg.Log, func(topicID string, r *kgo.Record) error {
		st := stats[r.Topic]
		st.Records++
		d, err := aisle.DecodeEvent(r.Value, r.Topic, r.Timestamp)
		if err != nil {
			st.Rejected++
			return nil
		}
		tp := topicPartition{r.Topic, r.Partition}
		pending[tp] = append(pending[tp], features.Update{
			Event:  d,
			Origin: features.Origin{Topic: r.Topic, TopicID: topicID, Partition: r.Partition, Offset: r.Offset},
		})
		if len(pending[tp]) < cfg.Batch {
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

// applyReplayBatch applies one partition's updates, in order, after leaving
// out those that name unknown stores or products.
func applyReplayBatch(ctx context.Context, cfg ReplayConfig, st *ReplayStats, updates []features.Update) error {
	if len(updates) == 0 {
		return nil
	}
	storeIDs, productIDs := references(updates)
	stores, products, err := cfg.Catalog.UnknownIDs(ctx, storeIDs, productIDs)
	if err != nil {
		return fmt.Errorf("look up the stores and products of %s: %w", updates[0].Origin.Topic, err)
	}
	kept := updates[:0]
	for _, u := range updates {
		if u.Event.UnknownReference(stores, products) != "" {
			st.Rejected++
			continue
		}
		kept = append(kept, u)
	}
	if len(kept) == 0 {
		return nil
	}
	a := cfg.Appliers[kept[0].Origin.Topic]
	applied, err := a.Apply(ctx, kept)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	for _, ok := range applied {
		if ok {
			st.Applied++
		} else {
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
