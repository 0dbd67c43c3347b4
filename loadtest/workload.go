package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

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
		rep.Sent, rep.Due = OpenLoop(runCtx, w.cfg.Rate, w.cfg.Requests, w.cfg.Concurrency, func(ctx context.Context, seq int64, due time.Time) {
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
	case "storeListing100":
		var data struct {
			Store struct {
				Products struct {
					Edges []struct {
						Node struct {
							Availability *json.RawMessage `json:"availability"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"products"`
			} `json:"store"`
		}
		err := Post(ctx, w.client, w.url, key, Request(`query($s: ID!) { store(id: $s) { products(first: 100) { edges { node { id name priceCents availability { productId probability status updatedAt carried } } } } } }`,
			map[string]any{"s": store}), &data)
		if edges := data.Store.Products.Edges; err == nil && (len(edges) == 0 || edges[0].Node.Availability == nil) {
			err = &Error{Code: "BAD_ANSWER", Status: 200, Message: fmt.Sprintf("%d products, the first without availability", len(edges))}
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
