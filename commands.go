package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// The commands, grouped in files by what the operator does with them: run
// the server (server.go and serve_*.go), administer the database and its
// keys (commands_admin.go), publish events into Kafka (commands_publish.go),
// fit and evaluate models (commands_models.go, commands_fraud.go,
// commands_recommend.go), rebuild features from the topics
// (commands_replay.go) and measure a running server (commands_load.go).
const usage = `usage: aisle [command] [flags]

commands:
  serve       run the API and stream workers (default)
  migrate     apply database migrations
  keys create --role ROLE [--retailer ID] [--user ID] --name N
              create an API key; prints its KEY_ID, then the key alone on
              the last line
  keys list   list API keys: id, name, role, scope, created, revoked, last
              used (never the keys themselves)
  keys revoke KEY_ID | --name N
              revoke a key, or every live key with a name; servers refuse
              it within --key-cache-ttl and close its websockets within 2×
  simulate    publish a synthetic marketplace's events to Kafka
  batch priors [--since D]
              fit availability found-rate priors from the last D of the
              inventory and picking topics (default 30d)
  batch copurchase [--since D] [--k N] [--min-support N]
              fit co-purchase neighbours and popularity from the order
              history of the last D (default 90d)
  eval availability|recommendations|fraud|replacements [--seed N] [--json]
              evaluate a model on simulated data; availability also takes
              --refit-every D (refit the priors that often, as a schedule
              would; default: fit once)
  train fraud [--since D] [--activate]
              fit a fraud model version from the last D of the orders and
              labels topics (default 30d) and store it in PostgreSQL
  models list | models activate VERSION
              list fraud model versions; make one the serving version
  replay [--wipe] [--topics T,...]
              rebuild the Redis features from the event topics; --wipe first
              deletes the prefix's keys (stop the stream workers first)
  catalog import [--batch N] FILE...
              publish a marketplace's catalog (JSON Lines or CSV files) to
              aisle.catalog; prints what was published and every rejected
              line with its number and reason
  seed demo   publish the demo catalog to aisle.catalog (refused with
              AISLE_ENV=production)
  load [--url U] [--duration D] [--concurrency N] [--subscriptions N] [--json]
              run a bounded mixed workload against a running server and
              report latency, errors, memory per subscription and fan-out

Durations are Go's (90s, 15m, 12h) with whole days before them (60d, 1d12h).
Every flag of serve, and the connection flags every command shares, can be
set by one environment variable, named in the flag's help.
Run "aisle COMMAND -h" for a command's flags.`

// run dispatches a command line; it is main without the process exit, so
// tests can run commands in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		command, args = args[0], args[1:]
	}
	switch command {
	case "serve":
		m := NewMain(stderr)
		if err := m.ParseFlags(args); err != nil {
			return err
		}
		return m.Run(ctx)
	case "migrate":
		return runMigrate(ctx, args, stderr)
	case "keys":
		return runKeys(ctx, args, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stdout, stderr)
	case "batch":
		return runBatch(ctx, args, stdout, stderr)
	case "eval":
		return runEval(args, stdout, stderr)
	case "train":
		return runTrain(ctx, args, stdout, stderr)
	case "models":
		return runModels(ctx, args, stdout, stderr)
	case "replay":
		return runReplay(ctx, args, stdout, stderr)
	case "catalog":
		return runCatalog(ctx, args, stdout, stderr)
	case "seed":
		return runSeed(ctx, args, stdout, stderr)
	case "load":
		return runLoad(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", command, usage)
}

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
	return newLogger(stderr, c.LogLevel)
}

// positionalArgs are the arguments of the commands that take some, for
// their help.
var positionalArgs = map[string]string{
	"catalog import": " FILE...",
	"keys revoke":    " KEY_ID | --name N",
}

// parseCommand applies the environment (see flagEnv), then parses args and
// refuses positional leftovers.
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
// arguments, which it returns. -h prints the command's flags and returns
// flag.ErrHelp.
func parseCommandArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: aisle %s [flags]%s\n\nflags:\n", fs.Name(), positionalArgs[fs.Name()])
		fs.PrintDefaults()
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}
