package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
)

// runTrain is `aisle train fraud`.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "fraud" {
		return fmt.Errorf("usage: aisle train fraud [--since DURATION] [--activate]")
	}
	fs, c := newCommand("train fraud", stderr)
	since := durationFlag(fs, "since", 30*24*time.Hour, "train on the orders, declines and labels of this long before now")
	activate := fs.Bool("activate", false, "make the new version the one serving scores with")
	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	db, log, err := openBatchJob(ctx, c, *since, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	return trainFraud(ctx, db, c.KafkaBrokers, time.Now(), *since, *activate, stdout, log)
}

// trainFraud replays the orders and labels topics of the window, fits a
// fraud model version, stores it (and activates it when asked) and prints a
// one-line summary.
func trainFraud(ctx context.Context, db *postgres.DB, brokers []string, now time.Time, since time.Duration, activate bool, stdout io.Writer, log *slog.Logger) error {
	from := now.Add(-since)
	var events []*aisle.Decoded
	var invalid, older int
	err := streaming.ReadTopics(ctx, brokers, []string{aisle.TopicOrders, aisle.TopicLabels}, log, func(topic string, _ int32, _ int64, value []byte, stamped time.Time) error {
		d, err := aisle.DecodeEvent(value, topic, stamped)
		switch {
		case err != nil:
			invalid++ // the stream workers dead-lettered it too
		case d.Time.Before(from):
			older++
		default:
			events = append(events, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("train fraud: %w", err)
	}
	v, err := fraud.Train(events)
	if err != nil {
		return fmt.Errorf("train fraud: %s", operatorMessage(err))
	}
	version, err := db.SaveFraudModel(ctx, v)
	if err != nil {
		return fmt.Errorf("train fraud: %w", err)
	}
	state := "inactive: `aisle models activate " + strconv.FormatInt(version, 10) + "` to serve it"
	if activate {
		if err := db.ActivateFraudModel(ctx, version); err != nil {
			return fmt.Errorf("train fraud: %w", err)
		}
		state = "active"
	}
	_, err = fmt.Fprintf(stdout, "fraud model version %d saved (%s): %.0f labelled orders, %.0f fraud, %s to %s; holdout AUC %.3f, average precision %.3f (%d events replayed; skipped %d invalid, %d older than %s)\n",
		version, state, v.Metrics["rows"], v.Metrics["frauds"], v.WindowStart.Format(time.RFC3339), v.WindowEnd.Format(time.RFC3339),
		v.Metrics["holdout_auc"], v.Metrics["holdout_average_precision"], len(events), invalid, older, formatDuration(since))
	if err != nil {
		return err
	}
	for _, c := range fraud.Contradictions(v) {
		if _, err := fmt.Fprintf(stdout, "  left out %s: the history taught it the wrong way round (weight %+.2f)\n", c.Feature, c.Weight); err != nil {
			return err
		}
	}
	return nil
}

// runModels is `aisle models list|activate VERSION`.
func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: aisle models list | aisle models activate VERSION"
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	sub, args := args[0], args[1:]
	var version int64
	if sub == "activate" {
		if len(args) == 0 {
			return fmt.Errorf("%s", usage)
		}
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < 1 {
			return fmt.Errorf("VERSION must be a positive integer, got %q", args[0])
		}
		version, args = v, args[1:]
	} else if sub != "list" {
		return fmt.Errorf("%s", usage)
	}
	fs, c := newCommand("models "+sub, stderr)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "activate" {
		if err := db.ActivateFraudModel(ctx, version); err != nil {
			return fmt.Errorf("activate: %s", operatorMessage(err))
		}
		_, err := fmt.Fprintf(stdout, "fraud model version %d is active; serving switches to it within %s\n", version, fraud.DefaultModelPollInterval)
		return err
	}
	versions, err := db.FraudModels(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MODEL\tVERSION\tACTIVE\tTRAINED\tWINDOW\tROWS\tFRAUDS\tHOLDOUT AUC\tHOLDOUT AP")
	for _, v := range versions {
		active := ""
		if v.Active {
			active = "yes"
		}
		fmt.Fprintf(w, "fraud\t%d\t%s\t%s\t%s..%s\t%.0f\t%.0f\t%.3f\t%.3f\n", v.Version, active, v.TrainedAt.UTC().Format(time.RFC3339),
			v.WindowStart.UTC().Format(time.DateOnly), v.WindowEnd.UTC().Format(time.DateOnly),
			v.Metrics["rows"], v.Metrics["frauds"], v.Metrics["holdout_auc"], v.Metrics["holdout_average_precision"])
	}
	return w.Flush()
}

// publishFraudHistory publishes days of the simulated checkout (10,000
// customers over the catalog's stores) ending now, 64 events at a time.
func publishFraudHistory(ctx context.Context, db *postgres.DB, producer *streaming.Producer, seed int64, days int, log *slog.Logger) error {
	cat, err := simulationCatalog(ctx, db)
	if err != nil {
		return err
	}
	events, err := simulate.FraudHistory(simulate.DefaultFraudWorld(seed, cat.Stores), days, time.Now())
	if err != nil {
		return err
	}
	log.Info("publishing simulated checkout history", "days", days, "events", len(events))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, ev := range events {
		g.Go(func() error {
			_, err := producer.Publish(ctx, ev, "")
			return err
		})
	}
	return g.Wait()
}
