// Command aisle is Aisle's one binary: the GraphQL API, the stream workers,
// the embedded Kafka-protocol broker, and the batch, simulation and
// evaluation commands. See README.md.
package main

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/aisle/aisle/httpapi"
)

func main() {
	setGCDefault()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // the flags' help is printed: asked for, not a failure
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aisle:", err)
		os.Exit(1)
	}
}

// Main is the serve command: it owns every resource and goroutine of a running
// server and releases them in reverse order.
type Main struct {
	Config Config
	Log    *slog.Logger
	logOut io.Writer

	// Listening addresses, known once Run has started listening (tests use :0).
	HTTPListener    net.Listener
	MetricsListener net.Listener // nil without --metrics-addr
	KafkaBrokers    []string     // Config.KafkaBrokers, or the embedded broker's address
	started         chan struct{}

	persisted *httpapi.PersistedOperations // loaded by ParseFlags, so a bad file stops start-up at once
}

// NewMain returns a Main logging JSON to logOut.
func NewMain(logOut io.Writer) *Main {
	return &Main{logOut: logOut, started: make(chan struct{})}
}

func (m *Main) runsAPI() bool    { return m.Config.Role != "stream" }
func (m *Main) runsStream() bool { return m.Config.Role != "api" }

// Run starts everything in dependency order, serves until ctx is done, then
// drains: stop taking work, finish in-flight writes, commit offsets, close
// subscriptions, and release resources in reverse order.
//
// The parts, each in a file of its own: the dependencies (serve_deps.go:
// PostgreSQL, Redis, Kafka), the long-lived goroutines (serve_workers.go),
// the stream workers (serve_stream.go), the API's domains and handler
// (serve_api.go) and the listeners (serve_http.go).
func (m *Main) Run(ctx context.Context) error {
	var res resources
	defer res.release()

	deps, err := m.openDependencies(ctx, &res)
	if err != nil {
		return err
	}
	// Its context outlives ctx, so that on SIGTERM the HTTP server stops
	// taking requests before the workers drain; the deferred drain runs
	// before the resources are released, on every return path.
	w := newWorkers(ctx, m.Config.DrainTimeout)
	defer w.drain()

	consumer, err := m.startStream(deps, w)
	if err != nil {
		return err
	}
	ready := readiness(deps.db, deps.features, deps.producer, consumer)
	handler := httpapi.Ops(ready, m.Log) // a stream worker serves its probes and metrics only
	if m.runsAPI() {
		if handler, err = m.startAPI(ctx, deps, w, ready, &res); err != nil {
			return err
		}
	}
	servers, err := m.listen(handler, ready, w)
	if err != nil {
		return err
	}

	close(m.started)

	select {
	case <-ctx.Done():
		m.Log.Info("shutting down: draining in-flight work")
	case <-w.ctx.Done():
		m.Log.Error("shutting down after a failure")
	}
	servers.shutdown(ctx, m.Config.DrainTimeout, m.Log)
	if err := w.drain(); err != nil {
		return err
	}
	m.Log.Info("drained cleanly")
	return nil
}

// Started is closed once Run is serving; tests wait on it before dialling.
func (m *Main) Started() <-chan struct{} { return m.started }
