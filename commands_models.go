package main

// The commands that fit and evaluate models: eval and batch priors here;
// train fraud and models in commands_fraud.go; batch copurchase in
// commands_recommend.go.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/eval"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/streaming"
)

// evaluations are the models `aisle eval` knows. Each simulates, trains
// where needed and evaluates on held-out data: the same options give the
// same numbers.
var evaluations = map[string]func(evalOptions) (fmt.Stringer, error){
	"availability":    func(o evalOptions) (fmt.Stringer, error) { return eval.Availability(o.seed, o.refitEvery) },
	"recommendations": func(o evalOptions) (fmt.Stringer, error) { return eval.Recommendations(o.seed) },
	"fraud":           func(o evalOptions) (fmt.Stringer, error) { return eval.Fraud(o.seed) },
	"replacements":    func(o evalOptions) (fmt.Stringer, error) { return eval.Replacements(o.seed) },
}

// evalOptions are the flags of `aisle eval`: refitEvery only availability
// has (0 for the others).
type evalOptions struct {
	seed       int64
	refitEvery time.Duration
}

// runEval is `aisle eval availability|recommendations|fraud|replacements
// [--seed N] [--json]`, availability also [--refit-every D].
func runEval(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || evaluations[args[0]] == nil {
		return fmt.Errorf("usage: aisle eval availability|recommendations|fraud|replacements [--seed N] [--json]")
	}
	fs := flag.NewFlagSet("eval "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "simulation seed: the same seed gives the same numbers")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	refitEvery := new(time.Duration)
	if args[0] == "availability" {
		refitEvery = durationFlag(fs, "refit-every", 0, "refit the priors this often during the scored days, on every pick so far, as a scheduled aisle batch priors would (0: fit once, on the first 3 days; at least 1h)")
	}
	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	report, err := evaluations[args[0]](evalOptions{seed: *seed, refitEvery: *refitEvery})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(report)
	}
	_, err = io.WriteString(stdout, report.String())
	return err
}

func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "copurchase" {
		return runBatchCoPurchase(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "priors" {
		return fmt.Errorf("usage: aisle batch priors|copurchase [flags]")
	}
	fs, c := newCommand("batch priors", stderr)
	since := durationFlag(fs, "since", 30*24*time.Hour, "fit the picks of this long before now")
	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	db, log, err := openBatchJob(ctx, c, *since, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	return batchPriors(ctx, db, c.KafkaBrokers, time.Now(), *since, stdout, log)
}

// openBatchJob does what every batch and training command does after
// parsing its flags: check the --since window, point at the running `aisle
// serve`'s embedded broker unless a cluster is named, and open the catalog.
func openBatchJob(ctx context.Context, c *Config, since time.Duration, stderr io.Writer) (*postgres.DB, *slog.Logger, error) {
	if since <= 0 {
		return nil, nil, fmt.Errorf("--since must be positive, got %s", since)
	}
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{c.EmbeddedKafka}
	}
	log := commandLogger(c, stderr)
	db, err := postgres.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return nil, nil, err
	}
	return db, log, nil
}

// batchPriors refits the availability priors from the inventory and picking
// history in Kafka, saves them, and prints a one-line summary.
func batchPriors(ctx context.Context, db *postgres.DB, brokers []string, now time.Time, since time.Duration, stdout io.Writer, log *slog.Logger) error {
	history := availability.NewHistory(now.Add(-since))
	topics := []string{aisle.TopicInventory, aisle.TopicPicking}
	err := streaming.ReadTopics(ctx, brokers, topics, log, func(topic string, _ int32, _ int64, value []byte, stamped time.Time) error {
		history.Add(topic, value, stamped)
		return nil
	})
	if err != nil {
		return fmt.Errorf("batch priors: %w", err)
	}
	fit, err := availability.RefitPriors(ctx, db, models.DefaultAvailabilityModel(), history)
	if err != nil {
		return fmt.Errorf("batch priors: %w", err)
	}
	p := fit.Priors
	_, err = fmt.Fprintf(stdout, "availability priors saved: %d picks, global found rate %.4f, fitted_at %s (%d events replayed; skipped %d duplicate, %d invalid, %d older than %s)\n",
		p.Observations, p.Global.Found/p.Global.Total, p.FittedAt.Format(time.RFC3339Nano),
		fit.Events, fit.Duplicates, fit.Invalid, fit.Older, formatDuration(since))
	return err
}
