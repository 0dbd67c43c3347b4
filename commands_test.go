package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming/streamingtest"
)

func TestEvalCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"eval"}, {"eval", "weather"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage: aisle eval availability|recommendations|fraud") {
			t.Errorf("%v: %v, want the usage", args, err)
		}
	}
	if err := run(context.Background(), []string{"eval", "fraud", "--seed", "x"}, io.Discard, io.Discard); err == nil {
		t.Error("eval fraud --seed x: no error")
	}
	for _, args := range [][]string{
		{"eval", "availability", "--refit-every", "30m"}, // too often to mean a schedule
		{"eval", "availability", "--refit-every", "-24h"},
		{"eval", "fraud", "--refit-every", "24h"}, // only availability refits
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}

	// The contract output: one JSON object with the seed, the model's
	// metrics and each baseline's.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"eval", "availability", "--seed", "2", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var report struct {
		Seed      int64                     `json:"seed"`
		Model     map[string]any            `json:"model"`
		Baselines map[string]map[string]any `json:"baselines"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if report.Seed != 2 || report.Model["log_loss"] == nil || report.Model["ece"] == nil || len(report.Baselines) == 0 {
		t.Errorf("report %+v, want seed 2 with the model's log_loss and ece and baselines", report)
	}
}

// AISLE_REDIS_CLUSTER is a boolean that --redis-cluster overrides.
func TestRedisClusterFlag(t *testing.T) {
	t.Setenv("AISLE_REDIS_CLUSTER", "maybe")
	if err := NewMain(io.Discard).ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "AISLE_REDIS_CLUSTER") {
		t.Errorf("AISLE_REDIS_CLUSTER=maybe: %v, want an error naming it", err)
	}
	t.Setenv("AISLE_REDIS_CLUSTER", "true")
	m := NewMain(io.Discard)
	if err := m.ParseFlags(nil); err != nil || !m.Config.RedisCluster {
		t.Errorf("AISLE_REDIS_CLUSTER=true: cluster %v, error %v", m.Config.RedisCluster, err)
	}
	m = NewMain(io.Discard)
	if err := m.ParseFlags([]string{"--redis-cluster=false"}); err != nil || m.Config.RedisCluster {
		t.Errorf("--redis-cluster=false over AISLE_REDIS_CLUSTER=true: cluster %v, error %v", m.Config.RedisCluster, err)
	}
}

// Every command's -h prints its flags under a usage line and is not a
// failure (main exits 0 on flag.ErrHelp); no flag's argument reads as a
// stray word of its description ("-fraud-history aisle train fraud").
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"serve"}, {"migrate"}, {"keys", "create"}, {"keys", "list"}, {"keys", "revoke"}, {"simulate"},
		{"batch", "priors"}, {"batch", "copurchase"}, {"eval", "fraud"}, {"train", "fraud"},
		{"models", "list"}, {"replay"}, {"catalog", "import"}, {"seed", "demo"}, {"load"},
	}
	argName := regexp.MustCompile(`^  -[a-z-]+(?: (\S+))?$`)
	for _, cmd := range commands {
		var stderr bytes.Buffer
		err := run(context.Background(), append(cmd, "-h"), io.Discard, &stderr)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v -h: %v, want flag.ErrHelp", cmd, err)
			continue
		}
		help := stderr.String()
		if want := "usage: aisle " + strings.Join(cmd, " ") + " [flags]"; !strings.HasPrefix(help, want) {
			t.Errorf("%v -h starts %q, want %q", cmd, strings.SplitN(help, "\n", 2)[0], want)
		}
		for _, line := range strings.Split(help, "\n") {
			m := argName.FindStringSubmatch(line)
			if m == nil || m[1] == "" {
				continue
			}
			if name := m[1]; name != "string" && name != "int" && name != "float" && name != "development|production" && strings.ToUpper(name) != name {
				t.Errorf("%v -h: %q: the argument reads %q", cmd, line, name)
			}
		}
	}
}

// Every duration flag takes days: 60d, 1d12h.
func TestDurationFlagsTakeDays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"60d", 60 * 24 * time.Hour}, {"1d12h", 36 * time.Hour}, {"90m", 90 * time.Minute}, {"0", 0}, {"1d30m15s", 24*time.Hour + 30*time.Minute + 15*time.Second},
	} {
		if got, err := parseDuration(tc.in); err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "d", "1.5d", "-1d", "1d-2h", "60 days", "1dd"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q): no error", bad)
		}
	}
	if got := formatDuration(30 * 24 * time.Hour); got != "30d" {
		t.Errorf("formatDuration(30 days) = %q, want 30d", got)
	}
	m := NewMain(io.Discard)
	if err := m.ParseFlags([]string{"--feature-ttl", "60d", "--drain-timeout", "1d12h"}); err != nil {
		t.Fatal(err)
	}
	if m.Config.FeatureTTL != 60*24*time.Hour || m.Config.DrainTimeout != 36*time.Hour {
		t.Errorf("--feature-ttl 60d --drain-timeout 1d12h: %s, %s", m.Config.FeatureTTL, m.Config.DrainTimeout)
	}
	// A command's own window: the flag set of train fraud, as it parses it.
	fs, _ := newCommand("train fraud", io.Discard)
	since := durationFlag(fs, "since", 30*24*time.Hour, "window")
	if err := parseCommand(fs, []string{"--since", "60d"}); err != nil || *since != 60*24*time.Hour {
		t.Errorf("--since 60d: %s, %v; want 60 days", *since, err)
	}
}

// Every flag of serve has one environment variable, named in its help and
// applied under the flag on the command line.
func TestEveryServeFlagHasOneEnvVar(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &Config{})
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		env := flagEnv[f.Name]
		if env == "" || !strings.HasSuffix(f.Usage, "("+env+")") {
			t.Errorf("--%s: environment variable %q, help %q", f.Name, env, f.Usage)
		}
		if other, dup := seen[env]; dup {
			t.Errorf("--%s and --%s share %s", f.Name, other, env)
		}
		seen[env] = f.Name
	})
	t.Setenv("AISLE_DRAIN_TIMEOUT", "2d")
	t.Setenv("AISLE_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("KAFKA_BROKERS", "k1:9092, k2:9092")
	m := NewMain(io.Discard)
	if err := m.ParseFlags([]string{"--http-addr", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.DrainTimeout != 48*time.Hour || c.HTTPAddr != "127.0.0.1:2" || strings.Join(c.KafkaBrokers, ",") != "k1:9092,k2:9092" {
		t.Errorf("from the environment: drain %s, http %s (the flag wins), brokers %v", c.DrainTimeout, c.HTTPAddr, c.KafkaBrokers)
	}
	t.Setenv("AISLE_DRAIN_TIMEOUT", "soon")
	if err := NewMain(io.Discard).ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "AISLE_DRAIN_TIMEOUT") {
		t.Errorf("AISLE_DRAIN_TIMEOUT=soon: %v, want an error naming it", err)
	}
}

// keys create prints the KEY_ID that keys revoke takes; keys list shows
// every key without the secret.
func TestKeysCreateListRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := postgrestest.NewDatabaseURL(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"keys", "create", "--database-url", dbURL, "--role", "ops", "--name", "oncall"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`key (k-\d+) "oncall"`).FindStringSubmatch(out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	secret := lines[len(lines)-1]
	if id == nil || !strings.HasPrefix(secret, "aisle_") {
		t.Fatalf("keys create printed %q, want the KEY_ID and the key alone on the last line", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"keys", "revoke", "--database-url", dbURL, id[1]}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "revoked "+id[1]) {
		t.Fatalf("keys revoke %s: %v, %q", id[1], err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"keys", "list", "--database-url", dbURL}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	list := out.String()
	if !regexp.MustCompile(id[1]+`\s+oncall\s+ops\s+-\s+\S+Z\s+\S+Z`).MatchString(list) || strings.Contains(list, secret) {
		t.Errorf("keys list:\n%s\nwant %s, its name, role, no scope, created and revoked times, and never the key", list, id[1])
	}
}

// An infrastructure failure reaches the operator with its cause, not as
// "internal error".
func TestCommandsShowTheCauseOfInfrastructureFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := postgrestest.NewDatabaseURL(t)
	if err := run(ctx, []string{"migrate", "--database-url", dbURL}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `ALTER TABLE api_keys ADD CONSTRAINT no_new_keys CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"keys", "create", "--database-url", dbURL, "--role", "ops", "--name", "n"}, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "no_new_keys") {
		t.Errorf("keys create on a table refusing rows: %v, want the database's reason", err)
	}
}

// simulate --fraud-history publishes the history and exits.
func TestSimulateFraudHistoryExits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbURL := postgrestest.NewDatabaseURL(t)
	db, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	broker := streamingtest.MustStartBroker(t, 1)
	var out bytes.Buffer
	err = run(ctx, []string{"simulate", "--fraud-history", "1", "--database-url", dbURL, "--kafka-brokers", strings.Join(broker.Addrs(), ",")}, &out, io.Discard)
	if err != nil || ctx.Err() != nil {
		t.Fatalf("simulate --fraud-history 1: %v (context: %v)", err, ctx.Err())
	}
	if !strings.Contains(out.String(), "train fraud --since 1d") {
		t.Errorf("output %q, want how to train on it", out.String())
	}
	end, err := streamingtest.MustAdmin(t, broker.Addrs()).EndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end[aisle.TopicOrders][0] == 0 {
		t.Errorf("no orders published: end offsets %v", end)
	}
}
