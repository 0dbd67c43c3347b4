package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Subscription queries: which a socket runs depends on its index.
const (
	availabilitySubscription    = `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { productId probability status updatedAt } }`
	recommendationsSubscription = `subscription($session: ID!, $store: ID!) { recommendationsUpdated(sessionId: $session, storeId: $store, first: 10) { product { id } score reason } }`
	riskAlertsSubscription      = `subscription { riskAlerts(minScore: 0) { orderId score decision } }`
)

// subscriptionKind spreads the subscriptions, by their index in the run:
// one in 50 watches risk alerts, one in 50 a session's recommendations, the
// rest one store-product's availability (the fan-out that is timed).
func subscriptionKind(i int) string {
	switch i % 50 {
	case 24:
		return "recommendationsUpdated"
	case 49:
		return "riskAlerts"
	}
	return "availabilityChanged"
}

// subscribers owns the sockets and their reading goroutines.
type subscribers struct {
	cfg Config
	w   *workload

	mu        sync.Mutex
	sockets   []*socket
	closing   bool
	messages  map[string]int
	errors    map[string]int
	completed map[string]int
	dropped   int

	readers   sync.WaitGroup
	stopRead  context.CancelFunc
	readCtx   context.Context
	closeOnce sync.Once

	availability int                   // availabilityChanged subscribers
	round        atomic.Pointer[round] // the fan-out round being measured
}

// socket is one connection. Connection c runs the subscriptions of index
// c×SubscriptionsPerConnection up to the next connection's, each with its
// index as operation id, so every message names its subscription's kind.
type socket struct {
	*Socket
	index int // which of the run's connections
}

func newSubscribers(cfg Config, w *workload) *subscribers {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscribers{cfg: cfg, w: w, messages: map[string]int{}, errors: map[string]int{}, completed: map[string]int{}, readCtx: ctx, stopRead: cancel}
}

// fanoutProduct is the product availabilityChanged subscriber j watches.
func (s *subscribers) fanoutProduct(j int) string {
	return s.w.product[s.w.stores[0]][j%s.cfg.FanoutProducts]
}

// kindOf is the kind of the subscription with operation id id (see socket).
func kindOf(id string) string {
	i, err := strconv.Atoi(id)
	if err != nil {
		return "unknown"
	}
	return subscriptionKind(i)
}

// connect dials the sockets, 32 at a time, and starts a reader on each.
func (s *subscribers) connect(ctx context.Context, rep *Report) {
	n := s.cfg.Connections()
	rep.Subs = SubscriptionReport{Requested: s.cfg.Subscriptions, PerConnection: s.cfg.SubscriptionsPerConnection, Failures: map[string]int{}, ByKind: map[string]int{}}
	rep.Subs.Keys = min(len(s.cfg.Keys), (n+s.cfg.ConnectionsPerKey-1)/s.cfg.ConnectionsPerKey)
	s.cfg.Log.Info("load: connecting", "sockets", n, "subscriptions_per_socket", s.cfg.SubscriptionsPerConnection, "keys", rep.Subs.Keys)
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		key := s.cfg.Keys[(i/s.cfg.ConnectionsPerKey)%len(s.cfg.Keys)]
		g.Go(func() error {
			dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			sock, err := Dial(dialCtx, s.cfg.URL, key)
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				rep.Subs.Failures[shortReason(err)]++
				return nil
			}
			if s.closing {
				sock.conn.CloseNow()
				return nil
			}
			sk := &socket{Socket: sock, index: i}
			s.sockets = append(s.sockets, sk)
			s.readers.Go(func() { s.read(sk) })
			return nil
		})
	}
	_ = g.Wait()
	rep.Subs.ConnectTime = time.Since(start)
	rep.Subs.Connected = len(s.sockets)
}

// read runs one socket's reader until the connection ends.
func (s *subscribers) read(sk *socket) {
	err := sk.Read(s.readCtx, func(msg Message, at time.Time) { s.handle(kindOf(msg.ID), msg, at) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.dropped++
		s.cfg.Log.Warn("load: the server ended a connection", "connection", sk.index, "err", err)
	}
}

// subscribe starts its subscriptions on every connected socket, 32 sockets
// at a time: in 50, one riskAlerts, one recommendationsUpdated and 48
// availabilityChanged (see subscriptionKind).
func (s *subscribers) subscribe(ctx context.Context, rep *Report) {
	s.mu.Lock()
	sockets := slices.Clone(s.sockets)
	s.mu.Unlock()
	slices.SortFunc(sockets, func(a, b *socket) int { return a.index - b.index })
	type operation struct {
		id, kind, query string
		vars            map[string]any
	}
	var g errgroup.Group
	g.SetLimit(32)
	var mu sync.Mutex
	availability := 0
	per := s.cfg.SubscriptionsPerConnection
	for _, sk := range sockets {
		var ops []operation
		for i := sk.index * per; i < min((sk.index+1)*per, s.cfg.Subscriptions); i++ {
			op := operation{id: strconv.Itoa(i), kind: subscriptionKind(i), query: availabilitySubscription}
			switch op.kind {
			case "availabilityChanged":
				op.vars = map[string]any{"s": s.w.stores[0], "p": []string{s.fanoutProduct(availability)}}
				availability++
			case "recommendationsUpdated":
				op.query, op.vars = recommendationsSubscription, map[string]any{"session": s.w.session(i % sessions), "store": s.w.stores[1]}
			case "riskAlerts":
				op.query = riskAlertsSubscription
			}
			ops = append(ops, op)
		}
		g.Go(func() error {
			writeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for _, op := range ops {
				err := sk.Subscribe(writeCtx, op.id, op.query, op.vars)
				mu.Lock()
				if err != nil {
					rep.Subs.Failures["subscribe: "+shortReason(err)]++
				} else {
					rep.Subs.Established++
					rep.Subs.ByKind[op.kind]++
				}
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	s.availability = rep.Subs.ByKind["availabilityChanged"]
}

// handle counts a message and times fan-out deliveries.
func (s *subscribers) handle(kind string, msg Message, at time.Time) {
	s.mu.Lock()
	switch msg.Type {
	case "next":
		s.messages[kind]++
	case "complete":
		// riskAlerts completes a subscriber that falls 64 alerts behind.
		s.completed[kind]++
	default:
		s.errors[kind]++
		if s.errors[kind] == 1 {
			s.cfg.Log.Warn("load: subscription failed", "kind", kind, "type", msg.Type, "payload", string(msg.Payload))
		}
	}
	s.mu.Unlock()
	r := s.round.Load()
	if kind != "availabilityChanged" || msg.Type != "next" || r == nil {
		return
	}
	var payload struct {
		Data struct {
			AvailabilityChanged struct {
				ProductID string    `json:"productId"`
				UpdatedAt time.Time `json:"updatedAt"`
			} `json:"availabilityChanged"`
		} `json:"data"`
	}
	if json.Unmarshal(msg.Payload, &payload) != nil {
		return
	}
	item := payload.Data.AvailabilityChanged
	r.deliver(item.ProductID, item.UpdatedAt, at)
}

// waitLive waits until the server counts the live subscriptions this run
// opened (availabilityChanged and recommendationsUpdated run on its live
// hubs), so memory is read with all of them registered.
func (s *subscribers) waitLive(ctx context.Context, rep *Report) {
	want := rep.Memory.Before.Subscriptions + float64(rep.Subs.ByKind["availabilityChanged"]+rep.Subs.ByKind["recommendationsUpdated"])
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := ScrapeMemory(ctx, s.w.client, s.cfg.URL)
		if err == nil && m.Subscriptions >= want {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the server's aisle_live_subscriptions did not reach %.0f within 30 s (last scrape: %.0f, %v)", want, m.Subscriptions, err))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // the riskAlerts subscriptions have no gauge: give them a moment too
}

// round is one fan-out round: one pick per fan-out product, each expected
// at every subscriber of that product.
type round struct {
	sent map[string]probe // by product

	mu        sync.Mutex
	latencies []time.Duration
	want      int
	done      chan struct{}
}

type probe struct {
	at   time.Time // event time, ms precision, as updatedAt reports it
	sent time.Time // when the mutation was sent
}

func (r *round) deliver(product string, updatedAt, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.sent[product]
	if !ok || !updatedAt.Equal(p.at) || len(r.latencies) == r.want {
		return // an earlier round's late message, or a change of the workload
	}
	r.latencies = append(r.latencies, at.Sub(p.sent))
	if len(r.latencies) == r.want {
		close(r.done)
	}
}

// fanoutRoundTimeout bounds the wait for one round's deliveries.
const fanoutRoundTimeout = 10 * time.Second

// fanout publishes one pick per fan-out product per round (with the mixed
// workload stopped) and times each delivery from the sending of the
// reportPick mutation to its message at the subscriber. The first round
// warms up and is not timed.
func (s *subscribers) fanout(ctx context.Context, rep *Report) {
	if s.availability == 0 || s.cfg.FanoutRounds == 0 {
		return
	}
	f := &rep.Fanout
	f.Subscribers = s.availability
	perProduct := make(map[string]int, s.cfg.FanoutProducts)
	for j := range s.availability {
		perProduct[s.fanoutProduct(j)]++
	}
	s.cfg.Log.Info("load: fan-out rounds", "rounds", s.cfg.FanoutRounds, "subscribers", s.availability, "products", len(perProduct))
	var all []time.Duration
	for i := 0; i <= s.cfg.FanoutRounds && ctx.Err() == nil; i++ {
		r := &round{sent: map[string]probe{}, want: s.availability, done: make(chan struct{})}
		// Event times a millisecond apart and later than any before, so each
		// message names its pick.
		base := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
		k := 0
		for product := range perProduct {
			r.sent[product] = probe{at: base.Add(time.Duration(k) * time.Millisecond)}
			k++
		}
		s.round.Store(r)
		for product, p := range r.sent {
			for time.Now().Before(p.at) { // never an event time in the future
				time.Sleep(100 * time.Microsecond)
			}
			r.mu.Lock()
			p.sent = time.Now()
			r.sent[product] = p
			r.mu.Unlock()
			if err := s.w.reportPick(ctx, s.cfg.Keys[0], s.w.stores[0], product, p.at); err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("fan-out round %d: reportPick: %v", i, err))
				r.mu.Lock()
				r.want -= perProduct[product]
				delete(r.sent, product)
				if len(r.latencies) == r.want {
					close(r.done)
				}
				r.mu.Unlock()
			}
		}
		timer := time.NewTimer(fanoutRoundTimeout)
		select {
		case <-r.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		s.round.Store(nil)
		r.mu.Lock()
		missed := r.want - len(r.latencies)
		if i == 0 {
			f.WarmupMiss = missed
		} else {
			f.Rounds++
			f.Expected += r.want
			f.Missed += missed
			all = append(all, r.latencies...)
		}
		r.mu.Unlock()
	}
	f.Latency = Summarise(all)
}

// close closes every socket (64 at a time, each waiting for the server's
// close frame) and waits for the readers. It is idempotent.
func (s *subscribers) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		sockets := s.sockets
		s.mu.Unlock()
		// Sockets still dialling see closing and close themselves.
		s.cfg.Log.Info("load: closing subscriptions", "sockets", len(sockets))
		var g errgroup.Group
		g.SetLimit(64)
		for _, sock := range sockets {
			g.Go(func() error { _ = sock.Close(); return nil })
		}
		_ = g.Wait()
		s.stopRead()
		s.readers.Wait()
	})
}

// counts fills in what the readers counted; call it after close.
func (s *subscribers) counts(rep *SubscriptionReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep.Messages, rep.Errors, rep.Completed, rep.Dropped = s.messages, s.errors, s.completed, s.dropped
}

// shortReason keeps the last part of an error, so failures group by cause.
func shortReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i > 12 {
		msg = msg[i+2:]
	}
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
