package live

import "context"

// readySignal is what WithReadySignal puts in a context: the function to
// call when a stream's channel has something to read, and whether a
// stream took it.
type readySignal struct {
	ready func()
	taken bool
}

type readySignalKey struct{}

// WithReadySignal returns a context for a subscription resolver under
// which Stream and StreamTransitions call ready once after each value they
// put into the channel they return and once after they close it, so that
// the reader can receive exactly once per call instead of holding a
// goroutine blocked on the channel. ready is called with the hub's lock
// held: it must not block or call the hub. taken reports, once the
// resolver has returned, whether such a stream was made under ctx; when it
// was not, the channel gets no signal and must be read the usual way.
func WithReadySignal(ctx context.Context, ready func()) (_ context.Context, taken func() bool) {
	s := &readySignal{ready: ready}
	return context.WithValue(ctx, readySignalKey{}, s), func() bool { return s.taken }
}

// takeReadySignal returns the ready function of ctx's signal, marking it
// taken, or a no-op when ctx has none (or another stream took it: one
// channel per signal).
func takeReadySignal(ctx context.Context) func() {
	s, _ := ctx.Value(readySignalKey{}).(*readySignal)
	if s == nil || s.taken {
		return func() {}
	}
	s.taken = true
	return s.ready
}
