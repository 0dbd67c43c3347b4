package simulate

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aisle/aisle/aisle"
)

// SourceShoppingApp is the envelope source of simulated session and order events.
const SourceShoppingApp = "simulator/shopping-app"

// ShoppingConfig shapes the simulated customers.
type ShoppingConfig struct {
	Seed      int64
	Start     time.Time // simulated time of the first day (UTC midnight); zero means 2026-01-05
	Customers int       // > 0
	// Missions is how many shopping missions (recipes, meal plans) exist;
	// each is a handful of products from a few categories bought together.
	Missions int // > 0
	// SessionsPerDay is each customer's mean number of sessions a day.
	SessionsPerDay float64
	// IDSuffix is appended to every session and order id, so that a second
	// live run of the same seed starts new sessions and places new orders
	// instead of repeating ids that the stream would drop as duplicates.
	IDSuffix string
}

// DefaultShoppingConfig is the world of `aisle simulate` and the evaluation.
func DefaultShoppingConfig(seed int64) ShoppingConfig {
	return ShoppingConfig{Seed: seed, Customers: 2000, Missions: 300, SessionsPerDay: 0.25}
}

// Shopping simulates customers shopping in sessions: each session follows
// one or two missions (a recipe, a meal plan) drawn from the customer's
// favourites, plus the customer's staples (bought again and again) and a few
// impulse items, all with Zipf-like popularity. A customer looks at items
// (sometimes after a search), adds most of them to the cart, removes one now
// and then and usually checks out, which places an order. The structure is
// hidden; only the events show it. Deterministic for a catalog and config.
type Shopping struct {
	cfg       ShoppingConfig
	rng       *rand.Rand
	stores    []Store
	carried   []map[string]bool // by store index
	products  []string          // every product, sorted
	category  map[string]string
	missions  [][]string
	customers []shoppingCustomer
	horizon   time.Time
	pending   recordHeap
	seq       uint64
	sessions  uint64
	emitted   uint64
}

type shoppingCustomer struct {
	id        string
	store     int
	missions  []int    // favourite missions
	staples   []string // bought in most sessions
	sessionsW float64  // this customer's session rate multiplier
}

// NewShopping returns a shopping simulation over cat.
func NewShopping(cat Catalog, cfg ShoppingConfig) (*Shopping, error) {
	if err := cat.validate(); err != nil {
		return nil, fmt.Errorf("shopping catalog: %w", err)
	}
	if cfg.Customers <= 0 || cfg.Missions <= 0 || !(cfg.SessionsPerDay > 0) {
		return nil, aisle.Errorf(aisle.EINVALID, "shopping needs customers, missions and sessions per day > 0, got %+v", cfg)
	}
	start := cfg.Start
	if start.IsZero() {
		start = defaultStart
	}
	w := &Shopping{
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), hashString("shopping"))),
		category: cat.Categories,
		horizon:  start.UTC(),
	}
	all := make(map[string]bool)
	for _, st := range cat.Stores {
		if len(st.Products) == 0 {
			continue
		}
		carried := make(map[string]bool, len(st.Products))
		for _, p := range st.Products {
			carried[p] = true
			all[p] = true
		}
		w.stores = append(w.stores, st)
		w.carried = append(w.carried, carried)
	}
	for p := range all {
		w.products = append(w.products, p)
	}
	slices.Sort(w.products)
	// Popularity: a random permutation ranks the products; draws are Zipf
	// over the ranks.
	w.rng.Shuffle(len(w.products), func(i, j int) { w.products[i], w.products[j] = w.products[j], w.products[i] })
	byCategory := make(map[string][]string)
	var categories []string
	for _, p := range w.products {
		c := w.category[p]
		if byCategory[c] == nil {
			categories = append(categories, c)
		}
		byCategory[c] = append(byCategory[c], p)
	}
	for range cfg.Missions {
		// A mission spans 2-3 categories with 2-3 products from each.
		var m []string
		for range 2 + w.rng.IntN(2) {
			inCategory := byCategory[categories[w.rng.IntN(len(categories))]]
			for range 2 + w.rng.IntN(2) {
				if p := inCategory[w.zipf(len(inCategory), 0.8)]; !slices.Contains(m, p) {
					m = append(m, p)
				}
			}
		}
		w.missions = append(w.missions, m)
	}
	for i := range cfg.Customers {
		c := shoppingCustomer{
			id:        fmt.Sprintf("u-%05d", i+1),
			store:     w.rng.IntN(len(w.stores)),
			sessionsW: math.Exp(0.5 * w.rng.NormFloat64()),
		}
		for range 2 + w.rng.IntN(3) {
			c.missions = append(c.missions, w.zipf(len(w.missions), 1.0))
		}
		for range 2 + w.rng.IntN(4) {
			if p := w.products[w.zipf(len(w.products), 1.1)]; !slices.Contains(c.staples, p) {
				c.staples = append(c.staples, p)
			}
		}
		w.customers = append(w.customers, c)
	}
	return w, nil
}

// zipf draws a rank in [0, n) with probability proportional to 1/(rank+1)^s.
func (w *Shopping) zipf(n int, s float64) int {
	// Inverse transform on the continuous approximation of the Zipf CDF.
	u := w.rng.Float64()
	if s == 1 {
		return min(n-1, int(math.Exp(u*math.Log(float64(n)+1)))-1)
	}
	a := 1 - s
	x := math.Pow(1+u*(math.Pow(float64(n)+1, a)-1), 1/a)
	return min(n-1, max(0, int(x)-1))
}

// Next returns the next event in event-time order; the stream never ends.
func (w *Shopping) Next() aisle.Event {
	for len(w.pending) == 0 || !w.pending[0].Event.Time.Before(w.horizon) {
		w.advanceDay()
	}
	ev := heap.Pop(&w.pending).(pending).Event
	w.emitted++
	ev.ID = fmt.Sprintf("shop%d-%d", w.cfg.Seed, w.emitted)
	return ev
}

// GenerateShopping returns every event of the first d of simulated time.
func GenerateShopping(cat Catalog, cfg ShoppingConfig, d time.Duration) ([]aisle.Event, error) {
	w, err := NewShopping(cat, cfg)
	if err != nil {
		return nil, err
	}
	end := w.horizon.Add(d)
	var out []aisle.Event
	for {
		ev := w.Next()
		if !ev.Time.Before(end) {
			return out, nil
		}
		out = append(out, ev)
	}
}

// advanceDay starts the sessions of the next simulated day.
func (w *Shopping) advanceDay() {
	day := w.horizon
	for i := range w.customers {
		c := &w.customers[i]
		n := poisson(w.rng, w.cfg.SessionsPerDay*c.sessionsW)
		for range n {
			// Sessions start between 07:00 and 23:00.
			at := day.Add(7*time.Hour + time.Duration(w.rng.Float64()*float64(16*time.Hour)))
			w.session(c, at)
		}
	}
	w.horizon = day.Add(24 * time.Hour)
}

func poisson(rng *rand.Rand, mean float64) int {
	n := 0
	for t := rng.ExpFloat64(); t < mean; t += rng.ExpFloat64() {
		n++
	}
	return n
}

// session schedules one session's events from at.
func (w *Shopping) session(c *shoppingCustomer, at time.Time) {
	w.sessions++
	sessionID := fmt.Sprintf("ss-%d-%d%s", w.cfg.Seed, w.sessions, w.cfg.IDSuffix)
	store := w.stores[c.store]
	carried := w.carried[c.store]

	// The plan: one or two missions (mostly favourites), staples, impulses.
	var plan []string
	add := func(p string) {
		if carried[p] && !slices.Contains(plan, p) {
			plan = append(plan, p)
		}
	}
	missions := 1
	if w.rng.Float64() < 0.3 {
		missions = 2
	}
	for range missions {
		m := c.missions[w.rng.IntN(len(c.missions))]
		if w.rng.Float64() < 0.2 {
			m = w.zipf(len(w.missions), 1.0)
		}
		for _, p := range w.missions[m] {
			if w.rng.Float64() < 0.8 {
				add(p)
			}
		}
	}
	for _, p := range c.staples {
		if w.rng.Float64() < 0.5 {
			add(p)
		}
	}
	for range w.rng.IntN(3) {
		add(w.products[w.zipf(len(w.products), 1.1)])
	}
	w.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	data := aisle.SessionEvent{SessionID: sessionID, UserID: c.id, StoreID: store.ID}
	emit := func(eventType string, d any) {
		at = at.Add(time.Duration((5 + 60*w.rng.Float64()) * float64(time.Second))).Truncate(time.Millisecond)
		raw, _ := json.Marshal(d) // plain strings and numbers always encode
		w.seq++
		heap.Push(&w.pending, pending{Record: Record{Event: aisle.Event{Type: eventType, Time: at, Source: SourceShoppingApp, Data: raw}}, seq: w.seq})
	}
	item := func(eventType, product string) {
		d := data
		d.ProductID = product
		emit(eventType, d)
	}
	var cart []string
	for _, p := range plan {
		if w.rng.Float64() < 0.15 {
			d := data
			d.Query = w.category[p]
			emit(aisle.TypeSessionSearch, d)
		}
		if w.rng.Float64() < 0.25 { // a glance at something else first
			if other := w.products[w.zipf(len(w.products), 1.1)]; carried[other] {
				item(aisle.TypeSessionView, other)
			}
		}
		item(aisle.TypeSessionView, p)
		if w.rng.Float64() < 0.85 {
			item(aisle.TypeSessionAddToCart, p)
			cart = append(cart, p)
		}
	}
	if len(cart) > 1 && w.rng.Float64() < 0.1 {
		i := w.rng.IntN(len(cart))
		item(aisle.TypeSessionRemoveFromCart, cart[i])
		cart = slices.Delete(cart, i, i+1)
	}
	if len(cart) == 0 || w.rng.Float64() < 0.15 {
		return // abandoned
	}
	// "shop" keeps these ids apart from the fraud world's orders.
	orderID := fmt.Sprintf("o-shop%d-%d%s", w.cfg.Seed, w.sessions, w.cfg.IDSuffix)
	d := data
	d.OrderID = orderID
	emit(aisle.TypeSessionCheckout, d)
	w.placeOrder(c, store.ID, orderID, cart, emit)
}

// placeOrder emits the order.placed of a checkout, with the payment and
// device details a real order carries, stable per customer.
func (w *Shopping) placeOrder(c *shoppingCustomer, storeID, orderID string, cart []string, emit func(string, any)) {
	o := aisle.OrderPlaced{
		OrderID:         orderID,
		UserID:          c.id,
		StoreID:         storeID,
		CardFingerprint: fmt.Sprintf("card-%x", hashString("card", c.id)&0xffffffff),
		DeviceID:        fmt.Sprintf("dev-%x", hashString("device", c.id)&0xffffffff),
		AddressHash:     fmt.Sprintf("addr-%x", hashString("address", c.id)&0xffffffff),
	}
	h := hashString("ip", c.id)
	o.IP = fmt.Sprintf("10.%d.%d.%d", h&0xff, h>>8&0xff, 1+h>>16&0xfd)
	var amount int64
	for _, p := range cart {
		q := int64(1 + w.rng.IntN(2))
		amount += q * (99 + int64(hashString("price", p)%1900))
		o.Items = append(o.Items, aisle.OrderItem{ProductID: p, Quantity: q})
	}
	o.AmountCents = &amount
	emit(aisle.TypeOrderPlaced, o)
}

// RunShopping publishes the shopping world live, like Run: events in the
// simulator's order at cfg.Rate per second, stamped with the current time,
// so each session's events keep their order and its cart its contents.
// cfg.Start is ignored: shopping days start at midnight.
func RunShopping(ctx context.Context, cfg RunConfig, world ShoppingConfig, publish func(context.Context, aisle.Event) error) error {
	cfg.RunID = runIDOr(cfg.RunID)
	world.Seed, world.IDSuffix = cfg.Seed, "-"+cfg.RunID
	w, err := NewShopping(cfg.Catalog, world)
	if err != nil {
		return err
	}
	return pace(ctx, cfg, w.Next, publish)
}
