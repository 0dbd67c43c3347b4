package loadtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOpenLoopSchedule checks the open loop's clock: every operation is due
// one interval after the previous one, whatever the operations take (here
// one at a time, so each waits for the one before), and exactly count start.
func TestOpenLoopSchedule(t *testing.T) {
	const count = 50
	var (
		mu   sync.Mutex
		dues = make([]time.Time, count)
		seen = make([]bool, count)
	)
	started, due := OpenLoop(context.Background(), 2000, count, 1, func(ctx context.Context, seq int64, due time.Time) {
		mu.Lock()
		defer mu.Unlock()
		dues[seq], seen[seq] = due, true
	})
	if started != count || due != count {
		t.Fatalf("started %d operations of %d due, want %d", started, due, count)
	}
	for i := range count {
		if !seen[i] {
			t.Fatalf("operation %d never ran", i)
		}
		if got := dues[i].Sub(dues[0]); got != time.Duration(i)*500*time.Microsecond {
			t.Errorf("operation %d due %v after the first, want %v", i, got, time.Duration(i)*500*time.Microsecond)
		}
	}
}

// TestOpenLoopStops checks that a cancelled context stops the sending and
// that the operations already started finish on an uncancelled context.
func TestOpenLoopStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu        sync.Mutex
		cancelled []bool
	)
	started, _ := OpenLoop(ctx, 1000, 0, 4, func(opCtx context.Context, seq int64, due time.Time) {
		if seq == 9 {
			cancel()
		}
		mu.Lock()
		cancelled = append(cancelled, opCtx.Err() != nil)
		mu.Unlock()
	})
	if started < 10 {
		t.Fatalf("started %d operations before the cancel, want at least 10", started)
	}
	for i, c := range cancelled {
		if c {
			t.Errorf("operation %d ran on a cancelled context", i)
		}
	}
}
