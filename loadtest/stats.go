// Package loadtest drives a running Aisle API the way its clients do: GraphQL
// over HTTP with keep-alive connections and graphql-transport-ws
// subscriptions. `aisle load` runs its workload; the Go benchmarks of the
// main package share its client and latency statistics.
package loadtest

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Latencies summarises the latencies of one operation over a run, as
// nearest-rank percentiles of every sample.
type Latencies struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Summarise sorts ds in place and takes nearest-rank percentiles.
func Summarise(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	slices.Sort(ds)
	rank := func(q float64) time.Duration {
		return ds[max(0, int(math.Ceil(q*float64(len(ds))))-1)]
	}
	return Latencies{N: len(ds), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: ds[len(ds)-1]}
}

// ClosedLoop runs op from concurrency goroutines, each starting its next
// operation when the previous one returns, until count operations have
// started (count > 0) or ctx is done. worker is the goroutine's index, so op
// can spread work over keys or products. It returns the latency of every
// successful operation, in no particular order, and the first error when
// stopOnError is set; otherwise op's errors are the caller's to count.
func ClosedLoop(ctx context.Context, concurrency int, count int64, stopOnError bool, op func(ctx context.Context, worker int) error) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next      atomic.Int64
		wg        sync.WaitGroup
		firstErr  error
		errOnce   sync.Once
		perWorker = make([][]time.Duration, concurrency)
	)
	for w := range concurrency {
		if count > 0 {
			perWorker[w] = make([]time.Duration, 0, count/int64(concurrency)+1)
		}
		wg.Go(func() {
			for ctx.Err() == nil && (count <= 0 || next.Add(1) <= count) {
				t0 := time.Now()
				if err := op(ctx, w); err != nil {
					if stopOnError {
						errOnce.Do(func() { firstErr = err; cancel() })
						return
					}
					continue
				}
				perWorker[w] = append(perWorker[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(perWorker...), firstErr
}

// OpenLoop starts op at a fixed rate (per second) until count operations
// have been started (count > 0) or ctx is done, and waits for the started
// ones, which run on ctx's values but are not cancelled with it (cutting
// off the slowest would hide them). op gets the time its operation was
// due: measured from then, not from when it started, a server that falls
// behind cannot hide its backlog by slowing the sender (coordinated
// omission). At most maxInFlight run at once; when that many are running,
// the next waits, and the wait counts in its latency. It returns how many
// operations started and how many were due by the time sending stopped:
// more due than started means the server fell so far behind that the
// sender could not send them all (those are not in any latency).
func OpenLoop(ctx context.Context, rate float64, count int64, maxInFlight int, op func(ctx context.Context, seq int64, due time.Time)) (started, due int64) {
	interval := time.Duration(float64(time.Second) / rate)
	opCtx := context.WithoutCancel(ctx)
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for ; count <= 0 || started < count; started++ {
		due := start.Add(time.Duration(started) * interval)
		if wait := time.Until(due); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		seq := started
		wg.Go(func() {
			defer func() { <-slots }()
			op(opCtx, seq, due)
		})
	}
	due = started
	if ctx.Err() != nil {
		due = max(started, int64(time.Since(start)/interval)) // those whose time came before the end
		if count > 0 {
			due = min(due, count)
		}
	}
	wg.Wait()
	return started, due
}
