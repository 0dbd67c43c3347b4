package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/eval"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
)

// newCommand returns a flag set for a subcommand with the shared connection
// flags registered, and a logger writing JSON to stderr.
func newCommand(name string, stderr io.Writer) (*flag.FlagSet, *Config) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &Config{}
	commonFlags(fs, c)
	return fs, c
}

func commandLogger(c *Config, stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel}))
}

// flagEnv names the environment variable behind flags whose values need
// parsing; a malformed variable is reported like a malformed flag. (Text
// flags take their variable as their default where they are registered.)
var flagEnv = map[string]string{
	"partitions":                       "AISLE_PARTITIONS",
	"replication-factor":               "AISLE_REPLICATION_FACTOR",
	"log-level":                        "AISLE_LOG_LEVEL",
	"demo":                             "AISLE_DEMO",
	"in-stock-above":                   "AISLE_IN_STOCK_ABOVE",
	"low-stock-above":                  "AISLE_LOW_STOCK_ABOVE",
	"fraud-review-at":                  "AISLE_FRAUD_REVIEW_AT",
	"fraud-block-at":                   "AISLE_FRAUD_BLOCK_AT",
	"env":                              "AISLE_ENV",
	"rate-limit":                       "AISLE_RATE_LIMIT",
	"rate-burst":                       "AISLE_RATE_BURST",
	"max-subscriptions-per-connection": "AISLE_MAX_SUBSCRIPTIONS_PER_CONNECTION",
	"max-connections-per-key":          "AISLE_MAX_CONNECTIONS_PER_KEY",
	"max-subscriptions-per-key":        "AISLE_MAX_SUBSCRIPTIONS_PER_KEY",
	"ws-ping-interval":                 "AISLE_WS_PING_INTERVAL",
	"ws-init-timeout":                  "AISLE_WS_INIT_TIMEOUT",
	"key-cache-ttl":                    "AISLE_KEY_CACHE_TTL",
	"session-timeout":                  "AISLE_SESSION_TIMEOUT",
	"stall-threshold":                  "AISLE_STALL_THRESHOLD",
	"redis-cluster":                    "AISLE_REDIS_CLUSTER",
}

// parseCommand applies the environment, then parses args and refuses
// positional leftovers.
func parseCommand(fs *flag.FlagSet, args []string) error {
	rest, err := parseCommandArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), rest)
	}
	return nil
}

// parseCommandArgs is parseCommand for commands that take positional
// arguments, which it returns.
func parseCommandArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	for flagName, envName := range flagEnv {
		v := os.Getenv(envName)
		if v == "" || fs.Lookup(flagName) == nil {
			continue
		}
		if err := fs.Set(flagName, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", envName, v, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

func runMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs, c := newCommand("migrate", stderr)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	return catalog.Migrate(ctx, c.directDatabaseURL(), commandLogger(c, stderr))
}

const keysUsage = "usage: aisle keys create --role ROLE [--retailer ID] [--user ID] --name N\n       aisle keys revoke KEY_ID | --name N"

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "revoke" {
		return revokeKeys(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%s", keysUsage)
	}
	fs, c := newCommand("keys create", stderr)
	role := fs.String("role", "", "customer, shopper, retailer, ops or service")
	retailerID := fs.String("retailer", "", "the retailer a retailer key acts for")
	userID := fs.String("user", "", "the user a customer key acts for")
	name := fs.String("name", "", "what the key is for, shown in audits")
	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	r, err := aisle.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("%s", aisle.ErrorMessage(err))
	}
	if strings.TrimSpace(*name) == "" {
		return fmt.Errorf("--name is required")
	}
	db, err := catalog.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := db.CreateKey(ctx, r, *retailerID, *userID, *name)
	if err != nil {
		return fmt.Errorf("create key: %s", aisle.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "created %s key %q; store it now, it is not shown again:\n%s\n", r, *name, key)
	return nil
}

// revokeKeys revokes one key by ID or every live key with a name. Servers
// refuse the key over HTTP within their key cache TTL and close its open
// websockets (4403) within twice that (--key-cache-ttl).
func revokeKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("keys revoke", stderr)
	name := fs.String("name", "", "revoke every live key with this name")
	rest, err := parseCommandArgs(fs, args)
	if err != nil {
		return err
	}
	var id string
	if len(rest) > 0 { // the ID, possibly followed by more flags
		id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("keys revoke: unexpected arguments %q", fs.Args())
		}
	}
	if (id == "") == (*name == "") {
		return fmt.Errorf("keys revoke: give a key ID or --name, not both\n%s", keysUsage)
	}
	db, err := catalog.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	ids := []string{id}
	if id != "" {
		err = db.RevokeKey(ctx, id)
	} else {
		ids, err = db.RevokeKeysByName(ctx, *name)
	}
	if err != nil {
		return fmt.Errorf("revoke key: %s", aisle.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "revoked %s\n", strings.Join(ids, " "))
	return nil
}

func runSimulate(ctx context.Context, args []string, stderr io.Writer) error {
	fs, c := newCommand("simulate", stderr)
	rate := fs.Float64("rate", 100, "events per second of each simulated world (shelves, shoppers)")
	seed := fs.Int64("seed", 1, "random seed: the same seed publishes the same sequence")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	perStore := fs.Int("products-per-store", demoProductsPerStore, "simulate this many products of each store's assortment (0: all)")
	fraudHistory := fs.Int("fraud-history", 0, "first publish this many days of simulated checkout history ending now, for `aisle train fraud`")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *fraudHistory < 0 {
		return fmt.Errorf("--fraud-history must be 0 or more days, got %d", *fraudHistory)
	}
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{c.EmbeddedKafka}
	}
	log := commandLogger(c, stderr)
	db, err := catalog.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	producer, err := streaming.NewProducer(c.KafkaBrokers, log)
	if err != nil {
		return err
	}
	defer producer.Close()
	if *fraudHistory > 0 {
		if err := publishFraudHistory(ctx, db, producer, *seed, *fraudHistory, log); err != nil {
			return err
		}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	return runSimulator(ctx, db, producer, *rate, *seed, *perStore, log)
}

// demoProductsPerStore is how much of each store's assortment the simulator
// animates by default: at tens of events per second every store then moves
// within seconds.
const demoProductsPerStore = 50

// runSimulator publishes the simulated marketplace over the real catalog
// until ctx is done.
func runSimulator(ctx context.Context, db *catalog.DB, producer *streaming.Producer, rate float64, seed int64, perStore int, log *slog.Logger) error {
	cat, err := simulationCatalog(ctx, db)
	if err != nil {
		return err
	}
	log.Info("simulator publishing", "rate", rate, "seed", seed, "stores", len(cat.Stores), "products_per_store", perStore)
	publish := func(ctx context.Context, ev aisle.Event) error {
		_, err := producer.Publish(ctx, ev, "") // keyed by the event's entity
		return err
	}
	// Beside the shelves: the shoppers' sessions and orders at the same
	// rate over every store's whole assortment, and at a fifth of the rate
	// the checkout's world (orders, declines and labels for fraud risk).
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return simulate.Run(ctx, simulate.RunConfig{Catalog: cat.Sample(perStore), Seed: seed, Rate: rate}, publish)
	})
	g.Go(func() error {
		return simulate.RunShopping(ctx, simulate.RunConfig{Catalog: cat, Seed: seed, Rate: rate}, simulate.DefaultShoppingConfig(seed), publish)
	})
	g.Go(func() error {
		return simulate.RunFraud(ctx, simulate.FraudRunConfig{Stores: cat.Sample(perStore).Stores, Seed: seed, Rate: rate / 5}, publish)
	})
	return g.Wait()
}

// simulationCatalog is the database's catalog as the simulator sees it.
func simulationCatalog(ctx context.Context, db *catalog.DB) (simulate.Catalog, error) {
	sc, err := db.SimulationCatalog(ctx)
	if err != nil {
		return simulate.Catalog{}, err
	}
	cat := simulate.Catalog{Categories: sc.Categories}
	for _, s := range sc.Stores {
		cat.Stores = append(cat.Stores, simulate.Store{ID: s.StoreID, Products: s.ProductIDs})
	}
	return cat, nil
}

// evaluations are the models `aisle eval` knows. Each simulates, trains
// where needed and evaluates on held-out data: the same seed gives the same
// numbers.
var evaluations = map[string]func(seed int64) (fmt.Stringer, error){
	"availability":    func(seed int64) (fmt.Stringer, error) { return eval.Availability(seed) },
	"recommendations": func(seed int64) (fmt.Stringer, error) { return eval.Recommendations(seed) },
	"fraud":           func(seed int64) (fmt.Stringer, error) { return eval.Fraud(seed) },
	"replacements":    func(seed int64) (fmt.Stringer, error) { return eval.Replacements(seed) },
}

// runEval is `aisle eval availability|recommendations|fraud|replacements [--seed N] [--json]`.
func runEval(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || evaluations[args[0]] == nil {
		return fmt.Errorf("usage: aisle eval availability|recommendations|fraud|replacements [--seed N] [--json]")
	}
	fs := flag.NewFlagSet("eval "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "simulation seed: the same seed gives the same numbers")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	if err := parseCommand(fs, args[1:]); err != nil {
		return err
	}
	report, err := evaluations[args[0]](*seed)
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
	since := fs.Duration("since", 30*24*time.Hour, "fit the picks of this long before now (720h = 30 days)")
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
func openBatchJob(ctx context.Context, c *Config, since time.Duration, stderr io.Writer) (*catalog.DB, *slog.Logger, error) {
	if since <= 0 {
		return nil, nil, fmt.Errorf("--since must be positive, got %s", since)
	}
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{c.EmbeddedKafka}
	}
	log := commandLogger(c, stderr)
	db, err := catalog.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return nil, nil, err
	}
	return db, log, nil
}

// batchPriors refits the availability priors from the inventory and picking
// history in Kafka, saves them, and prints a one-line summary.
func batchPriors(ctx context.Context, db *catalog.DB, brokers []string, now time.Time, since time.Duration, stdout io.Writer, log *slog.Logger) error {
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
		fit.Events, fit.Duplicates, fit.Invalid, fit.Older, since)
	return err
}
