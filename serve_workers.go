package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// workers owns the server's long-lived goroutines. Each is started by Go
// under a name and runs until its context ends; the first to fail ends the
// context of all, and drain ends it and waits for them, bounded. The
// context outlives Run's, so that on SIGTERM the listeners stop taking
// requests before the workers stop.
type workers struct {
	ctx   context.Context // ended by drain or by the first failure
	group *errgroup.Group
	drain func() error // idempotent: stop every worker and wait, at most the drain timeout
}

func newWorkers(ctx context.Context, drainTimeout time.Duration) *workers {
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	group, groupCtx := errgroup.WithContext(work)
	return &workers{
		ctx:   groupCtx,
		group: group,
		drain: sync.OnceValue(func() error {
			stop()
			return waitAtMost(group.Wait, drainTimeout)
		}),
	}
}

// Go runs fn until the workers stop; its error, named, stops the others
// and is what Run returns.
func (w *workers) Go(name string, fn func(context.Context) error) {
	w.group.Go(func() error {
		if err := fn(w.ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// waitAtMost returns what wait returns, or an error once d has passed.
func waitAtMost(wait func() error, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("drain timed out after %s", d)
	}
}

// every returns long-lived work that calls refresh every interval until ctx
// is done. A failed refresh keeps what was loaded before and is logged.
func every(interval time.Duration, what string, log *slog.Logger, refresh func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
				if err := refresh(ctx); err != nil && ctx.Err() == nil {
					log.Warn(what+"; keeping what was loaded", "err", err)
				}
			}
		}
	}
}

// resources are what Run opened, closed in reverse order when it returns.
type resources struct{ closers []func() }

func (r *resources) add(close func()) { r.closers = append(r.closers, close) }

func (r *resources) release() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}
