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
