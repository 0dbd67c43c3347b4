package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config is one bounded load run.
type Config struct {
	URL string // http://host:port of `aisle serve`
	// Keys are service API keys. HTTP workers take them in turn, and sockets
	// ConnectionsPerKey at a time, so that per-key limits of the server
	// apply to a share of the load only.
	Keys              []string
	ConnectionsPerKey int
	Duration          time.Duration // of the mixed workload
	Requests          int64         // stop the mixed workload after this many operations (0: Duration alone)
	Concurrency       int           // HTTP operations in flight (with a Rate: at most)
	// Rate, when positive, sends the mixed workload open loop: this many
	// operations per second, each timed from when it was due.
	Rate          float64
	Subscriptions int // subscriptions open during the run
	// SubscriptionsPerConnection are multiplexed on one websocket, as
	// graphql-transport-ws clients do: Subscriptions of them need
	// Connections() websockets.
	SubscriptionsPerConnection int
	FanoutProducts             int // store-products the availabilityChanged subscribers watch
	FanoutRounds               int // measured publish rounds (after one warm-up round)
	Mix                        Mix
	Log                        *slog.Logger
}

// Mix weighs the HTTP operations of the mixed workload.
type Mix map[string]int

// DefaultMix is mostly reads, as a storefront's traffic is.
const DefaultMix = "stores=1,availability=4,recommendations=2,orderRisk=1,reportPick=2,recordSessionEvent=2,assessOrder=1"

// Operations are the HTTP operations a Mix can name.
// Besides the default mix's, "typename" is `{ __typename }`, the floor of
// any GraphQL request, and "availability100" the availability of a store's
// first 100 products, the hot read of BENCHMARKS.md §1.
var Operations = []string{"stores", "availability", "availability100", "recommendations", "orderRisk", "reportPick", "recordSessionEvent", "assessOrder", "typename"}

// ParseMix reads "name=weight,..." over Operations.
func ParseMix(s string) (Mix, error) {
	mix := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.Atoi(weight)
		if !ok || err != nil || w < 0 {
			return nil, fmt.Errorf("mix: want name=weight, got %q", part)
		}
		if !slices.Contains(Operations, name) {
			return nil, fmt.Errorf("mix: unknown operation %q (known: %s)", name, strings.Join(Operations, ", "))
		}
		mix[name] = w
	}
	total := 0
	for _, w := range mix {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix: every weight is 0")
	}
	return mix, nil
}

// Connections is how many websockets carry the subscriptions.
func (c Config) Connections() int {
	return (c.Subscriptions + c.SubscriptionsPerConnection - 1) / c.SubscriptionsPerConnection
}

// Validate refuses a config that would not make a bounded run.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("a server URL is required")
	case len(c.Keys) == 0:
		return errors.New("at least one API key is required")
	case c.Duration <= 0 && c.Requests <= 0:
		return errors.New("the duration or the request count must be positive")
	case c.Rate < 0:
		return fmt.Errorf("the rate must not be negative, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Subscriptions < 0 || c.FanoutRounds < 0:
		return errors.New("subscriptions and fan-out rounds must not be negative")
	case c.FanoutProducts < 1:
		return fmt.Errorf("fan-out products must be at least 1, got %d", c.FanoutProducts)
	case c.SubscriptionsPerConnection < 1:
		return fmt.Errorf("subscriptions per connection must be at least 1, got %d", c.SubscriptionsPerConnection)
	case c.ConnectionsPerKey < 1:
		return fmt.Errorf("connections per key must be at least 1, got %d", c.ConnectionsPerKey)
	case len(c.Mix) == 0:
		return errors.New("the operation mix is empty")
	}
	return nil
}

// Report is what a run measured.
type Report struct {
	URL         string               `json:"url"`
	Concurrency int                  `json:"concurrency"`
	OfferedRate float64              `json:"offered_per_second,omitempty"` // open loop: operations sent per second
	Elapsed     time.Duration        `json:"elapsed_ns"`                   // of the mixed workload
	Operations  map[string]*OpReport `json:"operations"`
	Total       OpReport             `json:"total"`
	Subs        SubscriptionReport   `json:"subscriptions"`
	Memory      MemoryReport         `json:"memory"`
	Fanout      FanoutReport         `json:"fanout"`
	Notes       []string             `json:"notes,omitempty"`

	errExamples map[string]string          // code → one message, for the log
	latencies   map[string][]time.Duration // by operation
}

// OpReport is one operation's figures over the mixed workload.
type OpReport struct {
	Latencies
	PerSecond float64        `json:"per_second"`
	Errors    map[string]int `json:"errors,omitempty"` // by extensions.code
}

// ErrorCount sums the errors by code.
func (o OpReport) ErrorCount() int {
	n := 0
	for _, c := range o.Errors {
		n += c
	}
	return n
}

// SubscriptionReport counts the websocket side.
type SubscriptionReport struct {
	Requested     int            `json:"requested"`
	PerConnection int            `json:"per_connection"` // subscriptions multiplexed on one socket
	Connected     int            `json:"connected"`      // sockets acknowledged
	Established   int            `json:"established"`    // subscriptions sent on them
	Keys          int            `json:"keys"`
	ConnectTime   time.Duration  `json:"connect_ns"` // to establish all of them
	Failures      map[string]int `json:"failures,omitempty"`
	ByKind        map[string]int `json:"by_kind"`
	Messages      map[string]int `json:"messages"`            // next messages by kind
	Errors        map[string]int `json:"errors,omitempty"`    // error messages by kind
	Completed     map[string]int `json:"completed,omitempty"` // subscriptions the server completed, by kind
	Dropped       int            `json:"dropped"`             // connections the server ended before the run did
}

// MemoryReport is the server's memory at five points of the run, each
// scraped right after the server completed two GCs (see settle), and its
// growth per connection and per subscription.
type MemoryReport struct {
	Before     Memory `json:"before"`     // warmed up, no sockets
	Connected  Memory `json:"connected"`  // every socket acknowledged, none subscribed: the baseline of a bare connection
	Subscribed Memory `json:"subscribed"` // one subscription on every socket
	With       Memory `json:"with"`       // still subscribed, after the workload and the fan-out
	After      Memory `json:"after"`      // sockets closed
	// LivePerSubscription is the growth of the live heap plus stacks
	// (Memory.Live) from Before to Subscribed per subscription, its share
	// of the connection it runs on included; LivePerConnection what a bare
	// connection costs (Before to Connected, per connection);
	// LiveAddedPerSubscription what a subscription adds to its connection
	// (Connected to Subscribed); ReleasedPerSubscription
	// what closing gave back (With to After). InUsePerSubscription and
	// RSSPerSubscription are the growth from Before to Subscribed of heap in
	// use plus stacks (garbage included) and of the resident set.
	LivePerSubscription       float64 `json:"live_bytes_per_subscription"`
	LivePerConnection         float64 `json:"live_bytes_per_connection"`
	LiveAddedPerSubscription  float64 `json:"live_bytes_added_per_subscription"`
	ReleasedPerSubscription   float64 `json:"released_bytes_per_subscription"`
	InUsePerSubscription      float64 `json:"inuse_bytes_per_subscription"`
	RSSPerSubscription        float64 `json:"rss_bytes_per_subscription"`
	GoroutinesPerConnection   float64 `json:"goroutines_per_connection"`
	GoroutinesPerSubscription float64 `json:"goroutines_per_subscription"`
	// GoroutinesAddedPerSubscription excludes the connection's.
	GoroutinesAddedPerSubscription float64 `json:"goroutines_added_per_subscription"`
}

// FanoutReport times one published change to every subscriber of it.
type FanoutReport struct {
	Rounds      int       `json:"rounds"`
	Subscribers int       `json:"subscribers"` // availabilityChanged subscribers
	Expected    int       `json:"expected"`    // deliveries the measured rounds should make
	Latency     Latencies `json:"latency"`     // reportPick sent → message read, per delivery
	Missed      int       `json:"missed"`
	WarmupMiss  int       `json:"warmup_missed"`
}

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

// sessions is how many sessions (and customers) the workload writes to and reads.
const sessions = 500

// Run runs the whole bounded load: sockets and subscriptions, the mixed
// HTTP workload with them open, the fan-out rounds, then closes everything.
// Errors of operations are counted in the report; Run fails only when the
// run itself cannot go on (no catalog, no metrics).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * cfg.Concurrency}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	w := &workload{cfg: cfg, client: client, url: cfg.URL + "/graphql", run: strconv.FormatInt(time.Now().UnixMilli(), 36)}
	if err := w.loadCatalog(ctx); err != nil {
		return nil, err
	}
	rep := &Report{URL: cfg.URL, Concurrency: cfg.Concurrency, Operations: map[string]*OpReport{}, errExamples: map[string]string{}, latencies: map[string][]time.Duration{}}
	var err error
	mem := &rep.Memory
	if mem.Before, err = w.settle(ctx, rep, "before the subscriptions"); err != nil {
		return nil, err
	}

	subs := newSubscribers(cfg, w)
	defer subs.close()
	subs.connect(ctx, rep)
	if mem.Connected, err = w.settle(ctx, rep, "with the connections open"); err != nil {
		return nil, err
	}
	subs.subscribe(ctx, rep)
	subs.waitLive(ctx, rep)
	if mem.Subscribed, err = w.settle(ctx, rep, "with the subscriptions started"); err != nil {
		return nil, err
	}

	w.mixed(ctx, rep)
	subs.fanout(ctx, rep)
	if mem.With, err = w.settle(ctx, rep, "with the subscriptions open"); err != nil {
		return nil, err
	}

	subs.close()
	subs.counts(&rep.Subs)
	if mem.After, err = w.settle(ctx, rep, "after closing the subscriptions"); err != nil {
		return nil, err
	}
	if n := float64(rep.Subs.Established); n > 0 {
		mem.LivePerSubscription = (mem.Subscribed.Live() - mem.Before.Live()) / n
		mem.LivePerConnection = (mem.Connected.Live() - mem.Before.Live()) / float64(rep.Subs.Connected)
		mem.LiveAddedPerSubscription = (mem.Subscribed.Live() - mem.Connected.Live()) / n
		mem.ReleasedPerSubscription = (mem.With.Live() - mem.After.Live()) / n
		mem.InUsePerSubscription = (mem.Subscribed.InUse() - mem.Before.InUse()) / n
		mem.RSSPerSubscription = (mem.Subscribed.RSS - mem.Before.RSS) / n
		mem.GoroutinesPerConnection = (mem.Connected.Goroutines - mem.Before.Goroutines) / float64(rep.Subs.Connected)
		mem.GoroutinesPerSubscription = (mem.Subscribed.Goroutines - mem.Before.Goroutines) / n
		mem.GoroutinesAddedPerSubscription = (mem.Subscribed.Goroutines - mem.Connected.Goroutines) / n
	}
	for code, msg := range rep.errExamples {
		cfg.Log.Warn("load: operations failed", "code", code, "example", msg)
	}
	return rep, ctx.Err()
}

// workload holds what the HTTP operations share.
type workload struct {
	cfg     Config
	client  *http.Client
	url     string
	run     string   // makes this run's order ids unique
	stores  []string // stores[0] is the fan-out store, never written by the mixed workload
	product map[string][]string
	orders  atomic.Int64
}

// loadCatalog lists a few stores of the catalog and their products.
func (w *workload) loadCatalog(ctx context.Context) error {
	var data struct {
		Stores struct {
			Edges []struct {
				Node struct {
					ID       string `json:"id"`
					Products struct {
						Edges []struct {
							Node struct {
								ID string `json:"id"`
							} `json:"node"`
						} `json:"edges"`
					} `json:"products"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"stores"`
	}
	body := Request(`{ stores(first: 4) { edges { node { id products(first: 100) { edges { node { id } } } } } } }`, nil)
	if err := Post(ctx, w.client, w.url, w.cfg.Keys[0], body, &data); err != nil {
		return fmt.Errorf("list the catalog: %w", err)
	}
	w.product = map[string][]string{}
	for _, e := range data.Stores.Edges {
		w.stores = append(w.stores, e.Node.ID)
		for _, p := range e.Node.Products.Edges {
			w.product[e.Node.ID] = append(w.product[e.Node.ID], p.Node.ID)
		}
	}
	if len(w.stores) < 2 || len(w.product[w.stores[0]]) < w.cfg.FanoutProducts {
		return fmt.Errorf("the catalog has %d stores and %d products in the first: want 2 stores and %d products (run `aisle serve`, which seeds the demo catalog)",
			len(w.stores), len(w.product[w.stores[0]]), w.cfg.FanoutProducts)
	}
	return nil
}

// settleGCs is how many GCs settle waits for: the first may have started
// before it did.
const settleGCs = 2

// settle runs the mixed workload's operations from 4 workers until the server
// has completed settleGCs garbage collections (at most 30 s), then scrapes its
// memory: the heap goal is then fresh (see Memory.Live), which is as close to
// forcing a GC as a client can get. Before the subscriptions it also warms
// the server's caches, so that their growth is not counted as the
// subscriptions'. Its operations are not reported.
func (w *workload) settle(ctx context.Context, rep *Report, when string) (Memory, error) {
	start, err := ScrapeMemory(ctx, w.client, w.cfg.URL)
	if err != nil {
		return Memory{}, err
	}
	var names []string
	for name, weight := range w.cfg.Mix {
		if weight > 0 {
			names = append(names, name)
		}
	}
	settleCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last Memory
	var g errgroup.Group
	for worker := range 4 {
		g.Go(func() error {
			for settleCtx.Err() == nil {
				_ = w.do(settleCtx, names[rand.IntN(len(names))], worker)
			}
			return nil
		})
	}
	for settleCtx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if last, err = ScrapeMemory(settleCtx, w.client, w.cfg.URL); err == nil && last.GCs >= start.GCs+settleGCs {
			break
		}
	}
	cancel()
	_ = g.Wait()
	if ctx.Err() != nil {
		return Memory{}, ctx.Err()
	}
	if last.GCs < start.GCs+settleGCs {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the server completed %.0f GCs in 30 s, not %d: its live-heap figure is older", when, last.GCs-start.GCs, settleGCs))
	}
	// The workers' last requests were running; let their garbage not matter
	// by reading the goal the GC set, and the rest after they ended.
	return ScrapeMemory(ctx, w.client, w.cfg.URL)
}

// key is the API key of HTTP worker i.
func (w *workload) key(i int) string { return w.cfg.Keys[i%len(w.cfg.Keys)] }

// mixed runs the HTTP operations in the configured mix for the configured
// duration or count: from Concurrency closed-loop workers, or, with a Rate,
// open loop at that rate with at most Concurrency in flight.
func (w *workload) mixed(ctx context.Context, rep *Report) {
	var names []string
	for _, name := range Operations {
		for range w.cfg.Mix[name] {
			names = append(names, name)
		}
	}
	type sample struct {
		op  string
		d   time.Duration
		err error
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	record := func(s sample) {
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	runCtx := ctx
	if w.cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, w.cfg.Duration)
		defer cancel()
	}
	w.cfg.Log.Info("load: mixed workload", "concurrency", w.cfg.Concurrency, "rate", w.cfg.Rate, "duration", w.cfg.Duration, "requests", w.cfg.Requests)
	start := time.Now()
	if w.cfg.Rate > 0 {
		rep.OfferedRate = w.cfg.Rate
		OpenLoop(runCtx, w.cfg.Rate, w.cfg.Requests, w.cfg.Concurrency, func(ctx context.Context, seq int64, due time.Time) {
			op := names[rand.IntN(len(names))]
			err := w.do(ctx, op, int(seq))
			record(sample{op, time.Since(due), err})
		})
	} else {
		_, _ = ClosedLoop(runCtx, w.cfg.Concurrency, w.cfg.Requests, false, func(ctx context.Context, worker int) error {
			op := names[rand.IntN(len(names))]
			t0 := time.Now()
			err := w.do(ctx, op, worker)
			if ctx.Err() != nil {
				return ctx.Err() // cut off by the end of the run: neither a sample nor an error
			}
			record(sample{op, time.Since(t0), err})
			return err
		})
	}
	rep.Elapsed = time.Since(start)
	var all []time.Duration
	for _, s := range samples {
		o := rep.Operations[s.op]
		if o == nil {
			o = &OpReport{Errors: map[string]int{}}
			rep.Operations[s.op] = o
		}
		if s.err != nil {
			code := ErrorCode(s.err)
			o.Errors[code]++
			rep.errExamples[code] = s.op + ": " + s.err.Error()
			continue
		}
		rep.latencies[s.op] = append(rep.latencies[s.op], s.d)
		all = append(all, s.d)
	}
	rep.Total.Errors = map[string]int{}
	for op, o := range rep.Operations {
		o.Latencies = Summarise(rep.latencies[op])
		o.PerSecond = float64(o.N) / rep.Elapsed.Seconds()
		for code, n := range o.Errors {
			rep.Total.Errors[code] += n
		}
	}
	rep.Total.Latencies = Summarise(all)
	rep.Total.PerSecond = float64(rep.Total.N) / rep.Elapsed.Seconds()
}

// do runs one operation of the mix and checks its answer's shape.
func (w *workload) do(ctx context.Context, op string, worker int) error {
	key := w.key(worker)
	// The mixed workload reads and writes every store but the fan-out one.
	store := w.stores[1+rand.IntN(len(w.stores)-1)]
	products := w.product[store]
	product := products[rand.IntN(len(products))]
	session := rand.IntN(sessions)
	switch op {
	case "stores":
		var data struct {
			Stores struct {
				Edges []json.RawMessage `json:"edges"`
			} `json:"stores"`
		}
		err := Post(ctx, w.client, w.url, key, Request(`{ stores(first: 20) { edges { node { id name retailer { id name } } } } }`, nil), &data)
		if err == nil && len(data.Stores.Edges) == 0 {
			err = &Error{Code: "BAD_ANSWER", Status: 200, Message: "no stores"}
		}
		return err
	case "typename":
		var data struct {
			Typename string `json:"__typename"`
		}
		err := Post(ctx, w.client, w.url, key, Request(`{ __typename }`, nil), &data)
		if err == nil && data.Typename != "Query" {
			err = &Error{Code: "BAD_ANSWER", Status: 200, Message: fmt.Sprintf("__typename %q", data.Typename)}
		}
		return err
	case "availability", "availability100":
		ids := products // loadCatalog lists up to 100 per store
		if op == "availability" {
			ids = make([]string, 20)
			for i := range ids {
				ids[i] = products[rand.IntN(len(products))]
			}
		}
		var data struct {
			Availability []json.RawMessage `json:"availability"`
		}
		err := Post(ctx, w.client, w.url, key, Request(`query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { productId probability status updatedAt } }`,
			map[string]any{"s": store, "p": ids}), &data)
		if err == nil && len(data.Availability) != len(ids) {
			err = &Error{Code: "BAD_ANSWER", Status: 200, Message: fmt.Sprintf("%d items for %d ids", len(data.Availability), len(ids))}
		}
		return err
	case "recommendations":
		return Post(ctx, w.client, w.url, key, Request(`query($session: ID!, $store: ID!) { recommendations(sessionId: $session, storeId: $store, first: 10) { product { id name } score reason } }`,
			map[string]any{"session": w.session(session), "store": w.stores[1]}), nil)
	case "orderRisk":
		// An order this run assessed when there is one; an unknown order is null, not an error.
		order := "o-load-" + w.run + "-0"
		if n := w.orders.Load(); n > 0 {
			order = fmt.Sprint("o-load-", w.run, "-", rand.Int64N(n))
		}
		return Post(ctx, w.client, w.url, key, Request(`query($o: ID!) { orderRisk(orderId: $o) { orderId score decision } }`, map[string]any{"o": order}), nil)
	case "reportPick":
		return w.reportPick(ctx, key, store, product, time.Time{})
	case "recordSessionEvent":
		kind := []string{"VIEW", "VIEW", "ADD_TO_CART"}[rand.IntN(3)]
		return Post(ctx, w.client, w.url, key, Request(`mutation($in: SessionEventInput!) { recordSessionEvent(input: $in) { eventId } }`,
			map[string]any{"in": map[string]any{"sessionId": w.session(session), "storeId": w.stores[1], "type": kind, "productId": w.product[w.stores[1]][rand.IntN(len(w.product[w.stores[1]]))], "userId": fmt.Sprint("u-load-", session)}}), nil)
	case "assessOrder":
		n := w.orders.Add(1) - 1
		user := fmt.Sprint("u-load-", n%2000)
		in := map[string]any{
			"orderId": fmt.Sprint("o-load-", w.run, "-", n), "userId": user, "storeId": store, "amountCents": 1000 + rand.IntN(20000),
			"cardFingerprint": "card-" + user, "deviceId": "dev-" + user, "addressHash": "addr-" + user,
			"ip":    fmt.Sprintf("10.1.%d.%d", n%2000/250, n%250+1), // a home IP per customer, as BenchmarkAssessOrder does
			"items": []map[string]any{{"productId": product, "quantity": 1 + rand.IntN(3)}},
		}
		var data struct {
			AssessOrder *struct {
				ModelVersion int `json:"modelVersion"`
			} `json:"assessOrder"`
		}
		err := Post(ctx, w.client, w.url, key, Request(`mutation($in: AssessOrderInput!) { assessOrder(input: $in) { orderId score decision modelVersion reasons { feature } } }`,
			map[string]any{"in": in}), &data)
		if err == nil && (data.AssessOrder == nil || data.AssessOrder.ModelVersion == 0) {
			err = &Error{Code: "BAD_ANSWER", Status: 200, Message: "no model version"}
		}
		return err
	}
	return fmt.Errorf("unknown operation %q", op)
}

// session names session i; user u-load-i owns it (its first event says so).
func (w *workload) session(i int) string { return fmt.Sprint("ss-load-", i) }

// reportPick reports a found pick; at is its event time (zero: now, set by the server).
func (w *workload) reportPick(ctx context.Context, key, store, product string, at time.Time) error {
	in := map[string]any{"storeId": store, "productId": product, "orderId": "o-load-pick", "outcome": "FOUND", "shopperId": "sh-load"}
	if !at.IsZero() {
		in["time"] = at.Format(time.RFC3339Nano)
	}
	return Post(ctx, w.client, w.url, key, Request(`mutation($in: ReportPickInput!) { reportPick(input: $in) { eventId } }`, map[string]any{"in": in}), nil)
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
