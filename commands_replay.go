package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/pipeline"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/streaming"
)

// runReplay is `aisle replay [--wipe] [--topics T,…] [--group G]`: it
// rebuilds the Redis features of the key prefix from the event topics (Kafka
// is the ground truth, docs/design.md "Processing guarantees").
//
// Replay re-runs the pipeline's replayed steps (pipeline.Replay): the Redis
// features, and the catalog from aisle.catalog. The other PostgreSQL tables
// the workers fill (order history, assessment labels) are never wiped and
// already hold every event the workers consumed.
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
	fset.Func("topics", "comma-separated `TOPICS` to replay (default: every event topic)", func(s string) error {
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
	durationVar(fset, &c.FeatureTTL, "feature-ttl", features.DefaultTTL, "how long an untouched entity's features are kept: serve's --feature-ttl")
	group := fset.String("group", streaming.DefaultGroup, "consumer group of the stream workers, which must be stopped for --wipe")
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
	db, err := postgres.Open(ctx, c.DatabaseURL, log)
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
	appliers := pipeline.Replay(fs, db, log, topics)
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
