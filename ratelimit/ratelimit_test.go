package ratelimit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/faulttest"
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

// TestFallsBackToTheLocalAllowance: with Redis gone the process's own
// allowance decides, counted and logged once, not once per operation.
func TestFallsBackToTheLocalAllowance(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	l := mustOpen(t, featurestest.NewPrefix(), 1, 3, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Close(); err != nil { // the client is gone: every call fails
		t.Fatal(err)
	}
	// The counter is global: other tests of this process may add to it.
	before := testutil.ToFloat64(localDecisions)
	start := time.Now()
	allowed := 0
	for range 10 {
		if ok, _ := l.Allow(context.Background(), "ip:127.0.0.1"); ok {
			allowed++
		}
	}
	if most := 3 + int(time.Since(start).Seconds()); allowed < 3 || allowed > most {
		t.Errorf("allowed %d of 10 while Redis is unreachable, want the burst of 3..%d", allowed, most)
	}
	if got := testutil.ToFloat64(localDecisions) - before; got < float64(allowed) {
		t.Errorf("local-decisions counter rose by %v, want %d", got, allowed)
	}
	if n := strings.Count(logs.String(), "rate limiting is per process"); n != 1 {
		t.Errorf("logged the outage %d times, want once per %s:\n%s", n, "10s", logs.String())
	}
}

// TestConcurrentBurstStaysWithinTheAllowance: 4,000 operations of one
// caller at once, with Redis healthy and with Redis silent (every
// decision times out), admit at most 1.5× the allowance.
func TestConcurrentBurstStaysWithinTheAllowance(t *testing.T) {
	t.Parallel()
	if featurestest.Cluster() {
		t.Skip("silences one Redis server behind a proxy; a cluster client would follow the other masters")
	}
	const rate, burst, callers = 50, 100, 4000
	for _, silent := range []bool{false, true} {
		u, err := url.Parse(featurestest.URL())
		if err != nil {
			t.Fatal(err)
		}
		proxy := faulttest.NewProxy(t, u.Host)
		u.Host = proxy.Addr()
		rdb, err := features.NewClient(u.String(), false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Open(context.Background(), rdb, featurestest.NewPrefix(), rate, burst, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if silent {
			proxy.Blackhole()
		}
		start := time.Now()
		release := make(chan struct{})
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				<-release
				if ok, _ := l.Allow(context.Background(), "ip:203.0.113.9"); ok {
					admitted.Add(1)
				}
			})
		}
		close(release)
		wg.Wait()
		allowance := burst + rate*time.Since(start).Seconds()
		t.Logf("silent Redis %v: admitted %d of %d, allowance %.0f", silent, admitted.Load(), callers, allowance)
		if got := float64(admitted.Load()); got > 1.5*allowance || got < burst {
			t.Errorf("silent Redis %v: admitted %v of %d, allowance %.0f: want %d..%.0f", silent, got, callers, allowance, burst, 1.5*allowance)
		}
		_ = l.Close()
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
