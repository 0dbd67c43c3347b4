package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/loadtest"
	"github.com/aisle/aisle/postgres"
)

// runLoad is `aisle load`: a bounded mixed workload against a running
// `aisle serve` (see BENCHMARKS.md §6).
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("load", stderr)
	cfg := loadtest.Config{}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the server's base URL")
	key := fs.String("key", "", "a service API key to use for everything; empty creates keys in --database-url")
	fs.IntVar(&cfg.ConnectionsPerKey, "connections-per-key", 100, "websocket connections per created key (keep it within the server's --max-connections-per-key)")
	durationVar(fs, &cfg.Duration, "duration", 30*time.Second, "how long the mixed workload runs")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop the mixed workload after this many operations (0: --duration alone)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "HTTP operations in flight (with --rate: at most; keep it well above rate × latency)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "send the mixed workload open loop at this many operations per second, each timed from when it was due (0: closed loop at --concurrency)")
	fs.IntVar(&cfg.Subscriptions, "subscriptions", 5000, "websocket subscriptions open during the run")
	fs.IntVar(&cfg.SubscriptionsPerConnection, "subscriptions-per-connection", 1, "subscriptions multiplexed on one websocket (keep it within the server's --max-subscriptions-per-connection)")
	fs.IntVar(&cfg.FanoutProducts, "fanout-products", 10, "store-products the availabilityChanged subscribers are spread over")
	fs.IntVar(&cfg.FanoutRounds, "fanout-rounds", 20, "timed rounds of one pick per fan-out product, after the workload")
	mix := fs.String("mix", loadtest.DefaultMix, "operation=weight,... of the mixed workload")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Mix, err = loadtest.ParseMix(*mix); err != nil {
		return err
	}
	if cfg.ConnectionsPerKey < 1 {
		return fmt.Errorf("--connections-per-key must be at least 1, got %d", cfg.ConnectionsPerKey)
	}
	if cfg.SubscriptionsPerConnection < 1 {
		return fmt.Errorf("--subscriptions-per-connection must be at least 1, got %d", cfg.SubscriptionsPerConnection)
	}
	cfg.Log = commandLogger(c, stderr)
	if *key != "" {
		cfg.Keys = []string{*key}
	} else {
		// One key per connections-per-key sockets, and at least one for HTTP.
		n := max(1, (cfg.Connections()+cfg.ConnectionsPerKey-1)/cfg.ConnectionsPerKey)
		if cfg.Keys, err = createLoadKeys(ctx, c, n, stderr); err != nil {
			return err
		}
	}
	report, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(report)
	}
	return report.Write(stdout)
}

// createLoadKeys creates n service keys in the server's database, as `aisle
// keys create --role service` would.
func createLoadKeys(ctx context.Context, c *Config, n int, stderr io.Writer) ([]string, error) {
	db, err := postgres.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	name := "aisle load " + time.Now().UTC().Format(time.RFC3339)
	keys := make([]string, n)
	for i := range keys {
		var hash []byte
		keys[i], hash = auth.NewKey()
		if _, err = db.CreateKey(ctx, hash, aisle.RoleService, "", "", fmt.Sprintf("%s #%d", name, i+1)); err != nil {
			return nil, fmt.Errorf("create load key: %s", operatorMessage(err))
		}
	}
	return keys, nil
}
