package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/streaming"
)

// featureAppliers are the appliers that write each event topic's features to
// Redis: what `aisle replay` rebuilds.
func featureAppliers(fs *features.Store) map[string]streaming.Applier {
	return map[string]streaming.Applier{
		aisle.TopicInventory: {Name: "availability", Apply: fs.ApplyAvailability},
		aisle.TopicPicking:   {Name: "availability", Apply: fs.ApplyAvailability},
		aisle.TopicSessions:  {Name: "sessions", Apply: fs.ApplySessions},
		aisle.TopicOrders:    {Name: "velocity", Apply: fs.ApplyVelocity},
		aisle.TopicLabels:    {Name: "label_risk", Apply: fs.ApplyLabels},
	}
}

// streamAppliers are the stream workers' appliers: the features, then what
// the topics keep in PostgreSQL (order history, the labels of assessments).
func streamAppliers(fs *features.Store, db *catalog.DB, log *slog.Logger) map[string][]streaming.Applier {
	appliers := make(map[string][]streaming.Applier)
	for topic, a := range featureAppliers(fs) {
		appliers[topic] = []streaming.Applier{a}
	}
	appliers[aisle.TopicOrders] = append(appliers[aisle.TopicOrders], streaming.Applier{Name: "order_history", Apply: recommend.OrderHistory(db)})
	appliers[aisle.TopicLabels] = append(appliers[aisle.TopicLabels], streaming.Applier{Name: "assessment_labels", Apply: fraud.RecordLabels(db)})
	appliers[aisle.TopicCatalog] = []streaming.Applier{catalogApplier(db)}
	appliers[aisle.TopicPicking] = append(appliers[aisle.TopicPicking], streaming.Applier{Name: "accepted_replacements", Apply: recommend.AcceptedReplacements(db)})
	appliers[aisle.TopicInventory] = append(appliers[aisle.TopicInventory], streaming.Applier{Name: "uncarried_check", Apply: availability.FlagUncarried(db, log)})
	appliers[aisle.TopicPicking] = append(appliers[aisle.TopicPicking], streaming.Applier{Name: "uncarried_check", Apply: availability.FlagUncarried(db, log)})
	return appliers
}

// runReplay is `aisle replay [--wipe] [--topics T,…] [--group G]`: it
// rebuilds the Redis features of the key prefix from the event topics (Kafka
// is the ground truth, docs/design.md "Processing guarantees").
//
// Replay writes Redis, and the catalog from aisle.catalog (last-writer-wins
// by event time, so replaying it onto a fresh database rebuilds the same
// rows, and onto a current one changes nothing). The other PostgreSQL
// tables the workers fill (order history, assessment labels) are upserts
// keyed by order, never wiped, and already hold every event the workers
// consumed; re-running them would cost a write per order for nothing.
//
// Without --wipe, replay applies only what the features lack: records at or
// below a partition's watermark, or whose event id is recorded, are skipped
// atomically with each write, so it is safe while stream workers run (each
// record is applied by whichever of them gets there first, in offset order).
// --wipe first deletes every key under the prefix (SCAN on every master and
// UNLINK in batches, never FLUSHDB, so other prefixes sharing the Redis are
// untouched) and then replays every topic. Workers
// running meanwhile would apply newer records onto the emptied features and
// move the watermarks past what replay has still to apply, so --wipe refuses
// while the stream workers' consumer group has members.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset, c := newCommand("replay", stderr)
	wipe := fset.Bool("wipe", false, "first delete every key under --redis-prefix (refused while stream workers run)")
	topics := aisle.EventTopics
	fset.Func("topics", "comma-separated topics to replay (default: every event topic)", func(s string) error {
		topics = splitList(s)
		for _, t := range topics {
			if !slices.Contains(aisle.EventTopics, t) {
				return fmt.Errorf("%q is not an event topic (%v)", t, aisle.EventTopics)
			}
		}
		if len(topics) == 0 {
			return errors.New("no topics named")
		}
		return nil
	})
	fset.DurationVar(&c.FeatureTTL, "feature-ttl", features.DefaultTTL, "how long an untouched entity's features are kept: serve's --feature-ttl")
	group := fset.String("group", env("AISLE_CONSUMER_GROUP", streaming.DefaultGroup), "consumer group of the stream workers, which must be stopped for --wipe (AISLE_CONSUMER_GROUP)")
	batch := fset.Int("batch", 1000, "records of a partition applied per Redis round trip")
	if err := parseCommand(fset, args); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("--batch must be at least 1, got %d", *batch)
	}
	if *wipe && len(topics) != len(aisle.EventTopics) {
		return errors.New("--wipe deletes the features of every topic, so it replays every topic: drop --topics")
	}
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{c.EmbeddedKafka} // the running `aisle serve`'s embedded broker
	}
	log := commandLogger(c, stderr)
	db, err := catalog.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	fs, err := features.Open(ctx, c.RedisURL, c.RedisPrefix, models.DefaultAvailabilityModel(), features.WithTTL(c.FeatureTTL), features.WithCluster(c.RedisCluster))
	if err != nil {
		return err
	}
	defer fs.Close()

	start := time.Now()
	if *wipe {
		members, err := streaming.GroupMembers(ctx, c.KafkaBrokers, *group)
		if err != nil {
			return err
		}
		if members > 0 {
			return fmt.Errorf("--wipe refused: consumer group %s has %d running stream workers; stop them (or replay without --wipe, which is safe beside them)", *group, members)
		}
		if err := fs.DeleteAll(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wiped every key under %q\n", c.RedisPrefix)
	}
	appliers := featureAppliers(fs)
	appliers[aisle.TopicCatalog] = catalogApplier(db)
	for topic := range appliers {
		if !slices.Contains(topics, topic) {
			delete(appliers, topic)
		}
	}
	stats, err := streaming.Replay(ctx, streaming.ReplayConfig{Brokers: c.KafkaBrokers, Appliers: appliers, Catalog: db, Log: log, Batch: *batch})
	printReplayStats(stdout, topics, stats, time.Since(start))
	if err != nil {
		return fmt.Errorf("%w (run replay again to resume: what it applied is skipped)", err)
	}
	return nil
}

// printReplayStats prints one line per topic and the totals.
func printReplayStats(w io.Writer, topics []string, stats map[string]*streaming.ReplayStats, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\trecords\tapplied\tskipped\trejected\t")
	var total streaming.ReplayStats
	for _, t := range topics {
		st := stats[t]
		if st == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", t, st.Records, st.Applied, st.Skipped, st.Rejected)
		total.Records += st.Records
		total.Applied += st.Applied
		total.Skipped += st.Skipped
		total.Rejected += st.Rejected
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\n", total.Records, total.Applied, total.Skipped, total.Rejected)
	_ = tw.Flush()
	fmt.Fprintf(w, "replayed in %s (skipped: changed nothing, e.g. applied before; rejected: invalid or naming an unknown store or product, as in the dead-letter topic)\n", took.Round(time.Millisecond))
}
