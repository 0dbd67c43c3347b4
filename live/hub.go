// Package live fans state changes out to GraphQL subscriptions.
//
// One Hub runs per API process. The online store tells it which keys changed
// (Notify, fed by one Redis pub/sub connection); the Hub loads the new value of
// each changed key once, with one batched load, and hands it to every
// subscriber of that key. Publishers never block: Notify only records the key,
// and each subscriber keeps the newest unread value per key, so a slow client
// costs at most one value per key it watches and still gets the latest state.
// A subscriber with more than MaxPending unread values (a whole-store
// subscription of a client that stopped reading, during a burst) is
// closed instead: memory per subscriber is bounded by MaxPending values
// plus the one in its channel, and its client can subscribe again.
//
// A subscriber either pulls values with Subscription.Next, or (Stream) has
// the hub push them into the channel a GraphQL subscription reads, which
// costs no goroutine per subscriber: with thousands of websocket
// subscriptions, goroutine stacks are most of their memory.
//
// StreamTransitions is Stream across several topics for subscribers that
// want a value only when it changes state (a product's status, not each
// new probability): the hub remembers the newest value of every item of
// the topics such streams watch, one copy shared by all of them, and
// compares each change with it.
package live

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	subscriptionsActive = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aisle_live_subscriptions",
		Help: "Active live subscriptions by hub.",
	}, []string{"hub"})
	valuesDelivered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_live_values_total",
		Help: "Values handed to subscribers by hub.",
	}, []string{"hub"})
	valuesReplaced = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_live_values_replaced_total",
		Help: "Unread values replaced by a newer value for the same key (slow subscribers), by hub.",
	}, []string{"hub"})
	subscribersDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_live_subscribers_dropped_total",
		Help: "Subscriptions closed because they had more than MaxPending unread values, by hub.",
	}, []string{"hub"})
	loadErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_live_load_errors_total",
		Help: "Failed loads of changed values by hub.",
	}, []string{"hub"})
)

// MaxPending bounds the unread values, one per item, that one subscriber
// may hold; a subscriber past it is closed. A subscription narrowed to at
// most MaxPending items is never closed for it.
const MaxPending = 256

// Key names one piece of state: a topic (e.g. a store) and an item in it
// (e.g. a product). Subscribers watch a topic, optionally narrowed to items.
type Key struct {
	Topic string
	Item  string
}

// Loader reads the current values of changed keys, in the order given.
type Loader[V any] func(ctx context.Context, keys []Key) ([]V, error)

// Hub fans out changed values to subscribers; see the package comment.
type Hub[V any] struct {
	name string
	load Loader[V]
	log  *slog.Logger
	// The hub's series of the per-value counters, looked up once: Stream
	// deliveries count them under mu, once per subscriber of a change.
	delivered, replaced prometheus.Counter

	mu      sync.Mutex
	changed map[Key]struct{} // keys notified since the last load
	wake    chan struct{}    // one-slot signal that changed is not empty
	topics  map[string]map[*Subscription[V]]struct{}
	backlog map[*Subscription[V]]struct{} // pushed subscriptions whose channel was full
	// last is the newest value loaded for each item of the topics that
	// transition streams watch (tracked counts those streams per topic):
	// what a change is compared with to tell a new state from a new value
	// within the same state.
	last    map[string]map[string]V
	tracked map[string]int
	closed  bool
}

// NewHub returns a hub named name (used in metrics) that loads values with load.
func NewHub[V any](name string, load Loader[V], log *slog.Logger) *Hub[V] {
	return &Hub[V]{
		name:      name,
		load:      load,
		log:       log,
		delivered: valuesDelivered.WithLabelValues(name),
		replaced:  valuesReplaced.WithLabelValues(name),
		changed:   make(map[Key]struct{}),
		wake:      make(chan struct{}, 1),
		topics:    make(map[string]map[*Subscription[V]]struct{}),
		backlog:   make(map[*Subscription[V]]struct{}),
		last:      make(map[string]map[string]V),
		tracked:   make(map[string]int),
	}
}

// Notify records that key changed. It never blocks and is cheap for keys
// nobody watches.
func (h *Hub[V]) Notify(key Key) {
	h.mu.Lock()
	if _, watched := h.topics[key.Topic]; !watched || h.closed {
		h.mu.Unlock()
		return
	}
	h.changed[key] = struct{}{}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// NotifyWatched records that every item a subscription names may have
// changed, for when changes may have gone unannounced (the change feed was
// down): subscribers then get the current value even if they missed the
// change. Subscriptions to a whole topic name no items, so they are not
// refreshed; they see the next change of each item.
func (h *Hub[V]) NotifyWatched() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	for topic, subs := range h.topics {
		for sub := range subs {
			for item := range sub.items {
				h.changed[Key{Topic: topic, Item: item}] = struct{}{}
			}
		}
	}
	pending := len(h.changed) > 0
	h.mu.Unlock()
	if pending {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// retryDelay is how long the hub waits before loading again after a failed
// load; the failed keys stay pending, so their newest value still arrives.
const retryDelay = 200 * time.Millisecond

// backlogDelay is how often the hub retries pushing values into the full
// channels of slow Stream subscribers. The channel has no "was read" signal
// the hub could wait on without a goroutine per subscriber, so it polls,
// and only while some channel is full.
const backlogDelay = 20 * time.Millisecond

// Run loads and delivers changed values until ctx is done, then closes every
// subscription.
func (h *Hub[V]) Run(ctx context.Context) {
	defer h.close()
	retry := time.NewTimer(retryDelay)
	retry.Stop()
	defer retry.Stop()
	backlog := time.NewTimer(backlogDelay)
	backlog.Stop()
	defer backlog.Stop()
	for {
		changed := true
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-retry.C:
		case <-backlog.C:
			changed = false
		}
		if changed {
			if err := h.deliverChanged(ctx); err != nil && ctx.Err() == nil {
				loadErrors.WithLabelValues(h.name).Inc()
				h.log.Error("live: load changed values; retrying", "hub", h.name, "retry_in", retryDelay, "err", err)
				retry.Reset(retryDelay)
			}
		}
		if h.pushBacklog() {
			backlog.Reset(backlogDelay)
		}
	}
}

// pushBacklog retries the subscriptions whose channel was full and reports
// whether some still are.
func (h *Hub[V]) pushBacklog() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.backlog {
		if sub.closed || sub.push() {
			delete(h.backlog, sub)
		}
	}
	return len(h.backlog) > 0
}

// deliverChanged loads the pending keys and offers their values to the
// subscribers. After a failed load the keys are pending again.
func (h *Hub[V]) deliverChanged(ctx context.Context) error {
	h.mu.Lock()
	keys := make([]Key, 0, len(h.changed))
	for k := range h.changed {
		keys = append(keys, k)
	}
	clear(h.changed)
	h.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	values, err := h.load(ctx, keys)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		for _, k := range keys {
			if _, watched := h.topics[k.Topic]; watched {
				h.changed[k] = struct{}{}
			}
		}
		return err
	}
	for i, k := range keys {
		prev, known := h.remember(k, values[i])
		for sub := range h.topics[k.Topic] {
			sub.offer(k.Item, prev, known, values[i])
		}
	}
	return nil
}

// remember records v as the newest value of k when transition streams
// watch its topic, and returns the value it replaces; called with h.mu held.
func (h *Hub[V]) remember(k Key, v V) (prev V, known bool) {
	items, tracked := h.last[k.Topic]
	if !tracked {
		return prev, false
	}
	prev, known = items[k.Item]
	items[k.Item] = v
	return prev, known
}

// Subscribe watches topic, narrowed to items when items is not empty, for
// a caller that reads values with Next. The caller must Close the
// subscription (or let the hub close it on shutdown).
func (h *Hub[V]) Subscribe(topic string, items []string) *Subscription[V] {
	done := make(chan struct{})
	return h.subscribe(&Subscription[V]{
		wake:    make(chan struct{}, 1),
		done:    done,
		onClose: func() { close(done) },
	}, topic, items)
}

// Stream watches topic, narrowed to items when items is not empty, and
// returns a channel the hub itself sends convert(value) to, for a GraphQL
// subscription resolver. There is no goroutine per subscriber: the hub
// sends only when the channel has room, keeps the newest unsent value per
// item otherwise, and retries those every backlogDelay, so a slow reader
// never blocks the hub and still gets the latest state. The subscription
// ends, closing the channel, when ctx is done or the hub shuts down.
func Stream[V, G any](ctx context.Context, h *Hub[V], topic string, items []string, convert func(V) G) <-chan G {
	out := make(chan G, 1)
	ready := takeReadySignal(ctx)
	sub := h.subscribe(&Subscription[V]{
		// The hub is the only sender and sends under its lock, so room
		// seen here cannot vanish before the send.
		send: func(_, v V) bool {
			if len(out) == cap(out) {
				return false
			}
			out <- convert(v)
			ready()
			return true
		},
		onClose: func() {
			close(out)
			ready()
		},
	}, topic, items)
	context.AfterFunc(ctx, sub.Close)
	return out
}

// StreamTransitions is Stream over several topics (whole topics, every
// item) for values that matter only when they change state: it sends
// convert(prev, next) when changed(prev, next), where prev is the value
// the hub loaded for the item before next. Values in between that do not
// change the state are not sent, and a state that changes and changes back
// while the reader is slow is not sent either. baseline holds the values
// of the topics' items now, by topic and item, for the first change to be
// compared with; when other transition streams already watch a topic the
// hub's own newer values are kept instead. An item missing from the
// baseline is remembered at its first change and reported from its second.
// Each topic is one subscription of the hub, with its own MaxPending; when
// one is closed the stream ends.
func StreamTransitions[V, G any](ctx context.Context, h *Hub[V], baseline map[string]map[string]V, changed func(prev, next V) bool, convert func(prev, next V) G) <-chan G {
	out := make(chan G, 1)
	ready := takeReadySignal(ctx)
	ended := false // guarded by h.mu, as every send and close is
	subs := make([]*Subscription[V], 0, len(baseline))
	for topic, values := range baseline {
		sub := &Subscription[V]{
			changed:  changed,
			baseline: values,
			send: func(prev, next V) bool {
				if ended {
					return true // the stream is over; its other topics go with ctx
				}
				if len(out) == cap(out) {
					return false
				}
				out <- convert(prev, next)
				ready()
				return true
			},
			onClose: func() {
				if !ended {
					ended = true
					close(out)
					ready()
				}
			},
		}
		subs = append(subs, h.subscribe(sub, topic, nil))
	}
	if len(subs) == 0 {
		close(out)
		ready()
		return out
	}
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, sub := range subs {
			h.unsubscribeLocked(sub)
		}
	})
	return out
}

func (h *Hub[V]) subscribe(sub *Subscription[V], topic string, items []string) *Subscription[V] {
	sub.hub = h
	sub.topic = topic
	if len(items) > 0 {
		sub.items = make(map[string]struct{}, len(items))
		for _, it := range items {
			sub.items[it] = struct{}{}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		sub.closeLocked()
		return sub
	}
	subs := h.topics[topic]
	if subs == nil {
		subs = make(map[*Subscription[V]]struct{})
		h.topics[topic] = subs
	}
	subs[sub] = struct{}{}
	if sub.changed != nil {
		if h.tracked[topic] == 0 {
			h.last[topic] = sub.baseline
			if h.last[topic] == nil {
				h.last[topic] = make(map[string]V)
			}
		}
		h.tracked[topic]++
	}
	sub.baseline = nil
	subscriptionsActive.WithLabelValues(h.name).Inc()
	return sub
}

func (h *Hub[V]) unsubscribe(sub *Subscription[V]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unsubscribeLocked(sub)
}

// unsubscribeLocked is unsubscribe with h.mu held; deliverChanged may be
// ranging over the topic's subscribers, from which it deletes sub.
func (h *Hub[V]) unsubscribeLocked(sub *Subscription[V]) {
	if subs, ok := h.topics[sub.topic]; ok {
		if _, ok := subs[sub]; ok {
			delete(subs, sub)
			subscriptionsActive.WithLabelValues(h.name).Dec()
			if sub.changed != nil {
				if h.tracked[sub.topic]--; h.tracked[sub.topic] == 0 {
					delete(h.tracked, sub.topic)
					delete(h.last, sub.topic)
				}
			}
		}
		if len(subs) == 0 {
			delete(h.topics, sub.topic)
		}
	}
	delete(h.backlog, sub)
	clear(sub.pending)
	sub.order = nil
	sub.closeLocked()
}

func (h *Hub[V]) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, subs := range h.topics {
		for sub := range subs {
			sub.closeLocked()
			subscriptionsActive.WithLabelValues(h.name).Dec()
		}
	}
	clear(h.topics)
	clear(h.backlog)
	clear(h.last)
	clear(h.tracked)
}

// Subscription receives the newest value of each key it watches.
type Subscription[V any] struct {
	hub   *Hub[V]
	topic string
	items map[string]struct{} // nil: every item of the topic

	// A transition subscription (StreamTransitions) takes only values
	// for which changed(prev, next) holds; baseline is the topic's values
	// when it subscribes, handed to the hub.
	changed  func(prev, next V) bool
	baseline map[string]V

	// Everything below is guarded by hub.mu: offers happen under it.
	pending map[string]pendingValue[V] // created on the first value that waits
	order   []string                   // items in pending, in arrival order
	closed  bool
	onClose func() // called once, when the subscription closes

	// A Subscribe subscription is woken on wake and reads with Next.
	wake chan struct{}
	done chan struct{}
	// A Stream subscription has values pushed with send, which reports
	// false, sending nothing, when the reader's channel is full.
	send func(prev, next V) bool
}

// pendingValue is an unread value and, for transition subscriptions, the
// value before the first unread one: what the reader last had.
type pendingValue[V any] struct {
	prev, next V
}

// offer stores v as the newest value of item; prev is the value the hub
// loaded before it, when known. Called with hub.mu held.
func (s *Subscription[V]) offer(item string, prev V, known bool, v V) {
	if s.closed {
		return
	}
	if s.items != nil {
		if _, ok := s.items[item]; !ok {
			return
		}
	}
	waiting, unread := s.pending[item]
	if s.changed != nil && !unread && (!known || !s.changed(prev, v)) {
		return
	}
	if s.send != nil && len(s.order) == 0 && s.send(prev, v) {
		s.hub.delivered.Inc()
		return
	}
	if s.pending == nil {
		s.pending = make(map[string]pendingValue[V])
	}
	if unread {
		s.hub.replaced.Inc()
		prev = waiting.prev
	} else if len(s.order) >= MaxPending {
		subscribersDropped.WithLabelValues(s.hub.name).Inc()
		s.hub.unsubscribeLocked(s)
		return
	} else {
		s.order = append(s.order, item)
	}
	s.pending[item] = pendingValue[V]{prev: prev, next: v}
	if s.send != nil {
		s.hub.backlog[s] = struct{}{}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push sends pending values, oldest change first, while the reader's
// channel has room, and reports whether none are left; called with hub.mu
// held.
func (s *Subscription[V]) push() bool {
	n, sent := 0, 0
	for ; n < len(s.order); n++ {
		p := s.pending[s.order[n]]
		if s.changed == nil || s.changed(p.prev, p.next) {
			// else the state changed back while the reader was slow
			if !s.send(p.prev, p.next) {
				break
			}
			sent++
		}
		delete(s.pending, s.order[n])
	}
	s.order = s.order[:copy(s.order, s.order[n:])]
	s.hub.delivered.Add(float64(sent))
	return len(s.order) == 0
}

// Next waits for new values and returns them, oldest change first. ok is false
// once the subscription is closed or ctx is done.
func (s *Subscription[V]) Next(ctx context.Context) (values []V, ok bool) {
	for {
		s.hub.mu.Lock()
		if len(s.order) > 0 {
			values = make([]V, len(s.order))
			for i, item := range s.order {
				values[i] = s.pending[item].next
			}
			clear(s.pending)
			s.order = s.order[:0]
			s.hub.mu.Unlock()
			s.hub.delivered.Add(float64(len(values)))
			return values, true
		}
		s.hub.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// Close stops the subscription; it is safe to call more than once.
func (s *Subscription[V]) Close() { s.hub.unsubscribe(s) }

// closeLocked marks the subscription closed; called with hub.mu held.
func (s *Subscription[V]) closeLocked() {
	if !s.closed {
		s.closed = true
		s.onClose()
	}
}
