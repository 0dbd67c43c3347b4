package live

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// counterLoader returns, for each key, "topic:item#n" where n counts loads, so
// tests can tell an old value from a newer one.
func counterLoader(loads *atomic.Int64) Loader[string] {
	return func(ctx context.Context, keys []Key) ([]string, error) {
		n := loads.Add(1)
		out := make([]string, len(keys))
		for i, k := range keys {
			out[i] = fmt.Sprintf("%s:%s#%d", k.Topic, k.Item, n)
		}
		return out, nil
	}
}

func startHub(t *testing.T, load Loader[string]) (*Hub[string], context.CancelFunc) {
	t.Helper()
	h := NewHub("test", load, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, cancel
}

func next(t *testing.T, sub *Subscription[string]) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	values, ok := sub.Next(ctx)
	if !ok {
		t.Fatal("subscription ended or timed out waiting for a value")
	}
	return values
}

func TestSubscriberGetsOnlyItsItems(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	narrow := h.Subscribe("s-1", []string{"p-1"})
	whole := h.Subscribe("s-1", nil)
	other := h.Subscribe("s-2", nil)
	defer narrow.Close()
	defer whole.Close()
	defer other.Close()

	h.Notify(Key{"s-1", "p-2"})
	if got := next(t, whole); len(got) != 1 || got[0] != "s-1:p-2#1" {
		t.Fatalf("whole-store subscriber got %v, want [s-1:p-2#1]", got)
	}
	h.Notify(Key{"s-1", "p-1"})
	if got := next(t, narrow); len(got) != 1 || got[0] != "s-1:p-1#2" {
		t.Fatalf("narrow subscriber got %v, want only p-1's value [s-1:p-1#2]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got, ok := other.Next(ctx); ok {
		t.Fatalf("subscriber of another store got %v", got)
	}
}

func TestSlowSubscriberKeepsNewestValueAndNeverBlocks(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	slow := h.Subscribe("s-1", []string{"p-1"})
	fast := h.Subscribe("s-1", []string{"p-1"})
	defer slow.Close()
	defer fast.Close()

	// The slow subscriber reads nothing while 1,000 changes are delivered;
	// the fast one keeps up. Notify must never block on the slow one.
	for i := 0; i < 1000; i++ {
		h.Notify(Key{"s-1", "p-1"})
		next(t, fast)
	}
	want := fmt.Sprintf("s-1:p-1#%d", loads.Load())
	if got := next(t, slow); len(got) != 1 || got[0] != want {
		t.Fatalf("slow subscriber got %v, want only the newest value %s", got, want)
	}
}

func TestShutdownClosesSubscriptions(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, cancel := startHub(t, counterLoader(&loads))
	sub := h.Subscribe("s-1", nil)
	cancel()
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	if _, ok := sub.Next(ctx); ok {
		t.Fatal("Next returned a value after shutdown")
	}
	if ctx.Err() != nil {
		t.Fatal("Next did not return when the hub shut down")
	}
	sub.Close() // closing again is harmless
	late := h.Subscribe("s-1", nil)
	if _, ok := late.Next(context.Background()); ok {
		t.Fatal("a subscription made after shutdown delivered a value")
	}
}

func TestFailedLoadIsRetried(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	healthy := counterLoader(&loads)
	var failures atomic.Int64
	h, _ := startHub(t, func(ctx context.Context, keys []Key) ([]string, error) {
		if failures.Add(1) <= 2 {
			return nil, fmt.Errorf("redis: connection refused")
		}
		return healthy(ctx, keys)
	})
	sub := h.Subscribe("s-1", nil)
	defer sub.Close()

	h.Notify(Key{"s-1", "p-1"})
	if got := next(t, sub); len(got) != 1 || got[0] != "s-1:p-1#1" {
		t.Fatalf("after two failed loads got %v, want the value of the third, successful one", got)
	}
	if n := failures.Load(); n != 3 {
		t.Fatalf("loads attempted = %d, want 3", n)
	}
}

// After the change feed was down, NotifyWatched gets every narrowed
// subscriber the current value of each item it names, changed or not.
func TestNotifyWatchedRefreshesNamedItems(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	narrow := h.Subscribe("s-1", []string{"p-1", "p-2"})
	defer narrow.Close()

	h.NotifyWatched()
	got := next(t, narrow)
	for len(got) < 2 {
		got = append(got, next(t, narrow)...)
	}
	slices.Sort(got)
	if want := []string{"s-1:p-1#1", "s-1:p-2#1"}; !slices.Equal(got, want) {
		t.Fatalf("after NotifyWatched the subscriber got %v, want p-1's and p-2's values from one load", got)
	}
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("stream closed while waiting for a value")
		}
		return v
	case <-time.After(2 * time.Second):
		t.Fatal("timed out waiting for a streamed value")
	}
	return ""
}

func TestStreamSlowReaderGetsNewestValuesAndNeverBlocks(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	ctx, unsubscribe := context.WithCancel(context.Background())
	defer unsubscribe()
	slow := Stream(ctx, h, "s-1", []string{"p-1", "p-2"}, func(v string) string { return "got " + v })
	fast := h.Subscribe("s-1", []string{"p-1"})
	defer fast.Close()

	// The first value fills the slow reader's channel; the hub must keep
	// delivering to others while it holds the newer values back.
	h.Notify(Key{"s-1", "p-2"})
	for deadline := time.Now().Add(2 * time.Second); len(slow) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first value never reached the stream")
		}
	}
	for i := 0; i < 100; i++ {
		h.Notify(Key{"s-1", "p-1"})
		next(t, fast)
	}
	first := receive(t, slow)
	if first != "got s-1:p-2#1" {
		t.Fatalf("first streamed value = %q, want the value sent before the channel filled", first)
	}
	want := fmt.Sprintf("got s-1:p-1#%d", loads.Load())
	var got []string
	for len(got) == 0 || got[len(got)-1] != want {
		got = append(got, receive(t, slow))
		if len(got) > 2 {
			t.Fatalf("slow reader got %v, want at most one older value, then the newest %s", got, want)
		}
	}

	unsubscribe()
	select {
	case v, ok := <-slow:
		if ok {
			t.Fatalf("stream delivered %q after the reader unsubscribed", v)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stream not closed after its context ended")
	}
}

func TestShutdownClosesStreams(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, cancel := startHub(t, counterLoader(&loads))
	ch := Stream(context.Background(), h, "s-1", nil, func(v string) string { return v })
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("stream delivered a value on shutdown")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stream not closed when the hub shut down")
	}
	if _, ok := <-Stream(context.Background(), h, "s-1", nil, func(v string) string { return v }); ok {
		t.Fatal("a stream made after shutdown delivered a value")
	}
}

// TestSubscriberPastMaxPendingIsClosed: a whole-topic subscriber that
// stops reading during a burst of changes to more than MaxPending items is
// closed instead of holding a value per item; a narrow subscriber of the
// same topic is not.
func TestSubscriberPastMaxPendingIsClosed(t *testing.T) {
	// Not parallel: it watches the process-wide drop counter, which other
	// tests' hubs also move.
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	stalled := Stream(context.Background(), h, "s-1", nil, func(v string) string { return v })
	narrow := h.Subscribe("s-1", []string{"p-1"})
	defer narrow.Close()
	before := testutil.ToFloat64(subscribersDropped.WithLabelValues("test"))
	for i := range MaxPending + 2 {
		h.Notify(Key{"s-1", fmt.Sprintf("p-%d", i)})
	}
	// Poll the counter: the close is only visible on the subscriber's
	// channel, and reading that would relieve the pressure under test.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(subscribersDropped.WithLabelValues("test")) == before {
		if time.Now().After(deadline) {
			t.Fatalf("a subscriber with %d unread values is still open", MaxPending+2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	received := 0
	for range stalled {
		received++
	}
	if received > 1 {
		t.Errorf("the closed subscriber still got %d values, want at most the one in its channel", received)
	}
	if got := next(t, narrow); len(got) != 1 || !strings.HasPrefix(got[0], "s-1:p-1#") {
		t.Errorf("narrow subscriber got %v", got)
	}
}

// A stream made under WithReadySignal signals once per value it puts in
// its channel and once when it closes it, so that a reader that receives
// only after a signal never blocks and never misses one.
func TestReadySignalOncePerValueAndClose(t *testing.T) {
	t.Parallel()
	var loads atomic.Int64
	h, _ := startHub(t, counterLoader(&loads))
	signals := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	ctx, taken := WithReadySignal(ctx, func() { signals <- struct{}{} })
	ch := Stream(ctx, h, "s-1", []string{"p-1"}, func(v string) string { return v })
	if !taken() {
		t.Fatal("Stream did not take the ready signal of its context")
	}
	if _, second := WithReadySignal(ctx, func() {}); second() {
		t.Fatal("a fresh signal reports taken")
	}
	receive := func() (string, bool) {
		t.Helper()
		select {
		case v, ok := <-ch:
			return v, ok
		default:
			t.Fatal("signalled, but the channel has nothing to receive")
			return "", false
		}
	}
	for i := 1; i <= 3; i++ {
		h.Notify(Key{"s-1", "p-1"})
		<-signals
		if v, ok := receive(); !ok || v != fmt.Sprintf("s-1:p-1#%d", i) {
			t.Fatalf("value %d after its signal: %q, %v", i, v, ok)
		}
	}
	cancel()
	<-signals
	if v, ok := receive(); ok {
		t.Fatalf("after the close signal got %q, want the channel closed", v)
	}
	if len(signals) != 0 {
		t.Fatalf("%d signals more than values and the close", len(signals))
	}

	empty := make(chan struct{}, 1)
	ctx, taken = WithReadySignal(context.Background(), func() { empty <- struct{}{} })
	out := StreamTransitions(ctx, h, nil, func(a, b string) bool { return a != b }, func(_, b string) string { return b })
	<-empty
	if _, ok := <-out; ok || !taken() {
		t.Fatal("a transition stream over no topics is not closed and signalled")
	}
}
