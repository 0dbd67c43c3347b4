package ratelimit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
)

func mustOpen(t *testing.T, prefix string, perSecond, burst int, log *slog.Logger) *Limiter {
	t.Helper()
	rdb, err := features.NewClient(featurestest.URL(), featurestest.Cluster())
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), rdb, prefix, perSecond, burst, log)
	if err != nil {
		t.Fatalf("open: %v (is Redis running? ./scripts/services.sh)", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestAllowanceIsShared: two limiters on one prefix, as two API replicas
// on one Redis, spend one allowance; another prefix has its own.
func TestAllowanceIsShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := featurestest.NewPrefix()
	a := mustOpen(t, prefix, 1, 4, slog.Default())
	b := mustOpen(t, prefix, 1, 4, slog.Default())

	start := time.Now()
	allowed := 0
	var retryAfter time.Duration
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, retry := l.Allow(ctx, "key:k-1")
		if ok {
			allowed++
		} else {
			retryAfter = retry
		}
	}
	// 4 at once, plus one per second that passed meanwhile.
	if most := 4 + int(time.Since(start).Seconds()); allowed < 4 || allowed > most {
		t.Fatalf("allowed %d of 10 across two replicas, want 4..%d", allowed, most)
	}
	if retryAfter <= 0 || retryAfter > time.Second {
		t.Errorf("retry after %s, want within the 1 s emission interval", retryAfter)
	}
	if ok, _ := a.Allow(ctx, "key:k-2"); !ok {
		t.Error("another key was refused: keys must not share an allowance")
	}
	other := mustOpen(t, featurestest.NewPrefix(), 1, 4, slog.Default())
	if ok, _ := other.Allow(ctx, "key:k-1"); !ok {
		t.Error("another prefix was refused: prefixes must not share an allowance")
	}
}

// TestFailsOpen: with Redis gone every operation is let through, counted
// and logged once, not once per operation.
func TestFailsOpen(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	l := mustOpen(t, featurestest.NewPrefix(), 1, 1, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Close(); err != nil { // the client is gone: every call fails
		t.Fatal(err)
	}
	// The counter is global: other tests of this process may add to it.
	before := testutil.ToFloat64(failedOpen)
	for range 5 {
		if ok, _ := l.Allow(context.Background(), "ip:127.0.0.1"); !ok {
			t.Fatal("refused while Redis is unreachable: want fail-open")
		}
	}
	if got := testutil.ToFloat64(failedOpen) - before; got < 5 {
		t.Errorf("failed-open counter rose by %v, want 5", got)
	}
	if n := strings.Count(logs.String(), "rate limiting is off"); n != 1 {
		t.Errorf("logged the outage %d times, want once per %s:\n%s", n, "10s", logs.String())
	}
}

// A caller that went away is let through without blaming Redis.
func TestCancelledCallerIsNotAnOutage(t *testing.T) {
	var logs bytes.Buffer
	l := mustOpen(t, featurestest.NewPrefix(), 1, 1, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, _ := l.Allow(ctx, "ip:127.0.0.1"); !ok {
		t.Error("refused a cancelled caller")
	}
	if logs.Len() != 0 {
		t.Errorf("a cancelled caller was logged as a Redis outage: %s", logs.String())
	}
}
