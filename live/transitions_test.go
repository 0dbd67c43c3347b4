package live

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// stateLoader answers each key's value from a map the test sets, as
// "STATE/n", and reports every load on loaded.
type stateLoader struct {
	mu     sync.Mutex
	values map[Key]string
	loaded chan struct{}
}

func (l *stateLoader) set(k Key, v string) {
	l.mu.Lock()
	l.values[k] = v
	l.mu.Unlock()
}

func (l *stateLoader) load(ctx context.Context, keys []Key) ([]string, error) {
	l.mu.Lock()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = l.values[k]
	}
	l.mu.Unlock()
	l.loaded <- struct{}{}
	return out, nil
}

func state(v string) string { s, _, _ := strings.Cut(v, "/"); return s }

func TestStreamTransitionsSendsOnlyChangesOfState(t *testing.T) {
	t.Parallel()
	l := &stateLoader{values: map[Key]string{}, loaded: make(chan struct{}, 16)}
	h := NewHub("test-transitions", l.load, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	p1, p2 := Key{"s-1", "p-1"}, Key{"s-2", "p-2"}
	baseline := map[string]map[string]string{"s-1": {"p-1": "IN/0"}, "s-2": {"p-2": "IN/0"}}
	streamCtx, stop := context.WithCancel(context.Background())
	defer stop()
	alerts := StreamTransitions(streamCtx, h, baseline,
		func(prev, next string) bool { return state(prev) != state(next) },
		func(prev, next string) string { return prev + ">" + next })
	change := func(k Key, v string) {
		t.Helper()
		l.set(k, v)
		h.Notify(k)
		<-l.loaded
	}

	change(p1, "IN/1") // a new value within the same state: not sent
	change(p1, "LOW/2")
	if got := receive(t, alerts); got != "IN/1>LOW/2" {
		t.Fatalf("got %q, want the first change of state IN/1>LOW/2 (the same-state value before it must not be sent)", got)
	}
	change(p2, "OUT/1")
	if got := receive(t, alerts); got != "IN/0>OUT/1" {
		t.Fatalf("got %q, want the baseline compared: IN/0>OUT/1", got)
	}

	// A slow reader: the first change fills the channel, the second waits,
	// and its state changes back before the reader reads: it is not sent.
	change(p1, "OUT/3")
	change(p2, "IN/2")
	change(p2, "OUT/3")
	if got := receive(t, alerts); got != "LOW/2>OUT/3" {
		t.Fatalf("got %q, want LOW/2>OUT/3", got)
	}
	change(p1, "IN/4")
	if got := receive(t, alerts); got != "OUT/3>IN/4" {
		t.Fatalf("got %q, want OUT/3>IN/4: p-2 went OUT>IN>OUT while unread, which is no transition", got)
	}

	// Ending the stream's context unsubscribes every topic and forgets
	// their values.
	stop()
	for range alerts {
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.topics) != 0 || len(h.last) != 0 || len(h.tracked) != 0 {
		t.Fatalf("after the stream ended the hub still has topics %v, last %v, tracked %v", h.topics, h.last, h.tracked)
	}
}
