// Package simulate is a seeded synthetic marketplace for item availability.
// Behind every store-product runs a hidden shelf and backroom: customers and
// shoppers take units; shrink (theft, spoilage) and mis-scanned sales remove
// units the retailer's system still counts (phantom stock) until a cycle count
// corrects it; deliveries, which are sometimes skipped or short, refill the
// shelf, though some units stay in the backroom (counted, not on the shelf)
// until the next restock; discontinued items stay listed but are never
// delivered again. Popularity is heavy-tailed: a few fast movers and many
// slow ones. The world shows itself only through events: retailer feeds that
// report the system count late and with errors (full snapshots or deltas of
// the changed counts; some stores send none, some feeds stop or freeze), and
// shoppers' picks, which miss about 3% of the items that are there. The
// hidden state travels with every event as ground truth for evaluation.
package simulate

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aisle/aisle/aisle"
)

// defaultStart is the simulated clock's start when Config.Start is zero: a
// Monday midnight, so that the first day begins with the overnight restock.
var defaultStart = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// Event sources written into the envelope.
const (
	SourceShopper = "simulator/shopper-app"
	SourceFeed    = "simulator/retailer-feed"
)

// Config seeds a simulation.
type Config struct {
	Seed  int64
	Start time.Time // simulated time of the first hour (UTC, on the hour); zero means 2026-01-05 00:00 UTC
	// ProbesPerDay, when positive, adds probe records: each store-product is
	// looked at that many times a day on average, at random times while the
	// store is open, as a customer asking "is it there?" would. Probes carry
	// the hidden state and no event, and use their own random streams, so
	// the events are the same with or without them.
	ProbesPerDay float64
}

// Record is one emitted event with the hidden state behind it, or a probe.
type Record struct {
	Event aisle.Event // for a probe, only its Time is set
	Probe bool        // a look at the hidden state, not an event
	Truth Truth
}

// Truth is the hidden state of the store-product an event is about, just
// before the event: for a pick, at the pick; for a feed level, at the moment
// the feed counted (which is earlier than the event time, by the feed's delay).
type Truth struct {
	StoreID     string
	ProductID   string
	OnShelf     int // units actually on the shelf
	Backroom    int // units in the backroom: counted by the system, not on the shelf
	SystemCount int // units the retailer's system believes it has
	// PicksPerDay is the store-product's expected marketplace picks a day:
	// slow movers are below one.
	PicksPerDay  float64
	Discontinued bool // still listed, never delivered again
	FeedMode     FeedMode
}

// FeedMode is how (and whether) a store's retailer feed reports.
type FeedMode string

// Feed modes of the simulated stores.
const (
	FeedNone     FeedMode = "none"     // the store sends no inventory feed
	FeedSnapshot FeedMode = "snapshot" // every count, every time
	FeedDelta    FeedMode = "delta"    // only the counts that changed since the last report
	// FeedFrozen sends snapshots that stopped changing at some point: a
	// stuck export, with fresh counting times.
	FeedFrozen  FeedMode = "frozen"
	FeedStopped FeedMode = "stopped" // snapshots until a point, then nothing
)

// Sim generates the event stream lazily, one simulated hour at a time, in
// event-time order. It is deterministic for a catalog and seed.
type Sim struct {
	seed    int64
	probes  float64 // probes per store-product per day
	stores  []*storeSim
	horizon time.Time // every event before horizon has been generated
	pending recordHeap
	seq     uint64 // generation order, the tie-break between equal times
	emitted uint64 // events returned so far: the event id counter
	orders  uint64 // order id counter
}

// New returns a simulator over cat.
func New(cat Catalog, cfg Config) (*Sim, error) {
	if err := cat.validate(); err != nil {
		return nil, fmt.Errorf("simulation catalog: %w", err)
	}
	start := cfg.Start
	if start.IsZero() {
		start = defaultStart
	}
	s := &Sim{seed: cfg.Seed, probes: max(cfg.ProbesPerDay, 0), horizon: start.UTC()}
	for i, st := range cat.Stores {
		if len(st.Products) > 0 {
			s.stores = append(s.stores, newStoreSim(cfg.Seed, i, st, cat.Categories, s.horizon))
		}
	}
	return s, nil
}

// Generate returns every event of the first d of simulated time.
func Generate(cat Catalog, cfg Config, d time.Duration) ([]Record, error) {
	s, err := New(cat, cfg)
	if err != nil {
		return nil, err
	}
	end := s.horizon.Add(d)
	var out []Record
	for {
		r := s.Next()
		if !r.Event.Time.Before(end) {
			return out, nil
		}
		out = append(out, r)
	}
}

// Next returns the next event in event-time order; the stream never ends.
func (s *Sim) Next() Record {
	for len(s.pending) == 0 || !s.pending[0].Event.Time.Before(s.horizon) {
		s.advanceHour()
	}
	r := heap.Pop(&s.pending).(pending).Record
	if !r.Probe {
		s.emitted++
		r.Event.ID = fmt.Sprintf("sim%d-%d", s.seed, s.emitted)
	}
	return r
}

// advanceHour simulates every store-product over the next hour.
func (s *Sim) advanceHour() {
	from := s.horizon
	to := from.Add(time.Hour)
	for _, st := range s.stores {
		marks := st.schedule(from, to)
		for _, it := range st.items {
			s.simulateItem(st, it, marks, from, to)
		}
	}
	s.horizon = to
}

// Shape of the simulated world. Rates are per store-product per day.
const (
	openHour          = 8
	closeHour         = 22
	medianPicksPerDay = 1.5 // marketplace picks of a median product at an average store
	popularitySpread  = 1.4 // log-normal sigma of popularity: heavy-tailed, many slow movers
	walkInsPerPick    = 3.0 // units taken by walk-in customers per marketplace pick
	secondRestock     = 9 * time.Hour
	cycleCountHour    = 2 * time.Hour // nightly cycle counts, each item once a week
	feedDropRate      = 0.03          // share of items missing from a feed snapshot
	replaceRate       = 0.5           // share of out-of-stock picks the shopper replaces
	shopperMissRate   = 0.03          // mean chance a shopper misses an item that is there
	shortDelivery     = 0.15          // share of deliveries that bring half of what was ordered
	discontinuedShare = 0.03          // share of store-products listed but no longer delivered
	shoppersPerShop   = 20
)

// hourWeights is the share of a day's traffic in each hour: open 08:00-22:00,
// busier at lunch and after work.
var hourWeights = func() [24]float64 {
	var w [24]float64
	total := 0.0
	for h := openHour; h < closeHour; h++ {
		w[h] = 1
		if h >= 11 && h < 14 {
			w[h] += 0.5
		}
		if h >= 16 && h < 20 {
			w[h] += 1
		}
		total += w[h]
	}
	for h := range w {
		w[h] /= total
	}
	return w
}()

// storeSim is a store's parameters and state.
type storeSim struct {
	id         string
	index      int
	rng        *rand.Rand
	traffic    float64       // demand multiplier
	restockAt  time.Duration // time of day of the overnight restock
	feedMode   FeedMode
	feedChange time.Time // when a frozen feed froze or a stopped one stopped
	feedEvery  time.Duration
	feedDelay  time.Duration // mean delay between counting and publishing
	feedNoise  float64       // chance that a reported count is off
	backroom   float64       // chance that a delivery's units wait in the backroom
	misScan    float64       // chance that a sale is scanned as another product
	missFactor float64       // how well this store's shelves are kept
	nextCount  time.Time     // next feed snapshot
	items      []*itemSim
	byCategory map[string][]string // for replacements
}

// itemSim is a store-product's parameters and hidden state.
type itemSim struct {
	productID    string
	category     string
	rng          *rand.Rand
	probeRng     *rand.Rand // probe times, apart from the world's randomness
	picksPerDay  float64
	walkInPerDay float64
	shrinkPerDay float64
	capacity     int
	twoRestocks  bool
	reliability  float64 // chance that a scheduled restock happens
	discontinued bool    // never delivered again
	missRate     float64 // chance a shopper misses an item that is there
	countDay     time.Weekday
	shelf        int
	backroom     int
	system       int
	reported     int // the last level the feed published, for delta feeds
	frozen       int // the level a frozen feed keeps reporting
}

// productParams are shared by every store carrying a product.
type productParams struct {
	popularity, cover, reliability, missRate, shrinkShare float64
	twoRestocks                                           bool
}

func newStoreSim(seed int64, index int, st Store, categories map[string]string, start time.Time) *storeSim {
	rng := rand.New(rand.NewPCG(uint64(seed), hashString("store", st.ID)))
	s := &storeSim{
		id:         st.ID,
		index:      index,
		rng:        rng,
		traffic:    math.Exp(0.3 * rng.NormFloat64()),
		restockAt:  4*time.Hour + time.Duration(rng.Float64()*float64(3*time.Hour)),
		feedMode:   feedModeOf(rng.Float64()),
		feedChange: start.Add(time.Duration((1 + 3*rng.Float64()) * float64(24*time.Hour))),
		feedEvery:  []time.Duration{3 * time.Hour, 4 * time.Hour, 6 * time.Hour}[rng.IntN(3)],
		feedDelay:  20*time.Minute + time.Duration(rng.Float64()*float64(70*time.Minute)),
		feedNoise:  0.05 + 0.2*rng.Float64(),
		backroom:   0.15 * rng.Float64(),
		misScan:    0.05 * rng.Float64(),
		missFactor: math.Exp(0.25 * rng.NormFloat64()),
		byCategory: make(map[string][]string),
	}
	s.nextCount = start.Add(time.Duration(rng.Float64() * float64(s.feedEvery)))
	products := make(map[string]productParams)
	for _, id := range st.Products {
		category := categories[id]
		s.byCategory[category] = append(s.byCategory[category], id)
		pp, ok := products[id]
		if !ok {
			pp = newProductParams(seed, id, category)
			products[id] = pp
		}
		s.items = append(s.items, newItemSim(seed, s, id, category, pp))
	}
	return s
}

// feedModeOf draws a store's feed mode from a uniform u: most stores send
// snapshots, some deltas, some none; a few feeds freeze or stop.
func feedModeOf(u float64) FeedMode {
	switch {
	case u < 0.15:
		return FeedNone
	case u < 0.25:
		return FeedFrozen
	case u < 0.35:
		return FeedStopped
	case u < 0.6:
		return FeedDelta
	}
	return FeedSnapshot
}

func newProductParams(seed int64, productID, category string) productParams {
	crng := rand.New(rand.NewPCG(uint64(seed), hashString("category", category)))
	catDemand := math.Exp(0.35 * crng.NormFloat64())
	catCover := math.Exp(0.3 * crng.NormFloat64())
	catReliability := 0.82 + 0.16*crng.Float64()
	catMiss := shopperMissRate * (0.7 + 0.6*crng.Float64())
	catShrink := 0.01 + 0.04*crng.Float64()
	catTwoRestocks := crng.Float64() < 0.3

	prng := rand.New(rand.NewPCG(uint64(seed), hashString("product", productID)))
	return productParams{
		popularity:  catDemand * math.Exp(popularitySpread*prng.NormFloat64()),
		cover:       catCover * math.Exp(0.45*prng.NormFloat64()),
		reliability: min(max(catReliability+0.04*prng.NormFloat64(), 0.5), 0.995),
		missRate:    min(catMiss*math.Exp(0.3*prng.NormFloat64()), 0.15),
		shrinkShare: catShrink,
		twoRestocks: catTwoRestocks,
	}
}

func newItemSim(seed int64, st *storeSim, productID, category string, pp productParams) *itemSim {
	rng := rand.New(rand.NewPCG(uint64(seed), hashString("item", st.id, productID)))
	picks := medianPicksPerDay * pp.popularity * st.traffic
	consumption := picks * (1 + walkInsPerPick)
	restocks := 1.0
	if pp.twoRestocks {
		restocks = 2
	}
	// Capacity covers cover·1.15 days of consumption between restocks: below
	// one day's worth, the shelf runs empty before the next restock.
	capacity := max(2, int(math.Round(consumption*1.15*pp.cover/restocks)))
	it := &itemSim{
		productID:    productID,
		category:     category,
		rng:          rng,
		probeRng:     rand.New(rand.NewPCG(uint64(seed), hashString("probe", st.id, productID))),
		picksPerDay:  picks,
		walkInPerDay: picks * walkInsPerPick,
		shrinkPerDay: consumption * pp.shrinkShare,
		capacity:     capacity,
		twoRestocks:  pp.twoRestocks,
		reliability:  pp.reliability,
		missRate:     min(pp.missRate*st.missFactor, 0.15),
		countDay:     time.Weekday(rng.IntN(7)),
	}
	it.discontinued = rng.Float64() < discontinuedShare
	it.shelf = int(math.Round(float64(capacity) * (0.4 + 0.6*rng.Float64())))
	it.system = it.shelf + rng.IntN(3)
	it.reported, it.frozen = -1, it.system
	return it
}

// markKind is a scheduled store-level happening.
type markKind int

const (
	markRestock markKind = iota
	markSecondRestock
	markCycleCount
	markCount // feed snapshot
)

// mark is a scheduled happening within the hour being simulated.
type mark struct {
	at    time.Time
	kind  markKind
	delay time.Duration // for markCount: when the snapshot is published
}

// schedule lists the store's scheduled happenings in [from, to), in time order.
func (s *storeSim) schedule(from, to time.Time) []mark {
	var marks []mark
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	add := func(at time.Time, kind markKind) {
		if !at.Before(from) && at.Before(to) {
			marks = append(marks, mark{at: at, kind: kind})
		}
	}
	add(day.Add(s.restockAt), markRestock)
	add(day.Add(s.restockAt+secondRestock), markSecondRestock)
	add(day.Add(cycleCountHour), markCycleCount)
	for ; s.nextCount.Before(to); s.nextCount = s.nextCount.Add(s.feedEvery) {
		if s.sends(s.nextCount) && !s.nextCount.Before(from) {
			delay := time.Duration((0.5 + s.rng.Float64()) * float64(s.feedDelay))
			marks = append(marks, mark{at: s.nextCount, kind: markCount, delay: delay})
		}
	}
	// At most a handful of marks: insertion sort keeps equal times in order.
	for i := 1; i < len(marks); i++ {
		for j := i; j > 0 && marks[j].at.Before(marks[j-1].at); j-- {
			marks[j], marks[j-1] = marks[j-1], marks[j]
		}
	}
	return marks
}

// sends reports whether the store's feed counts at t.
func (s *storeSim) sends(t time.Time) bool {
	switch s.feedMode {
	case FeedNone:
		return false
	case FeedStopped:
		return t.Before(s.feedChange)
	}
	return true
}

// simulateItem runs one store-product through [from, to): Poisson arrivals of
// walk-in customers, shoppers and shrink at the hour's rates, interleaved with
// the scheduled marks. Arrivals are memoryless, so restarting the draw at
// each mark is exact.
func (s *Sim) simulateItem(st *storeSim, it *itemSim, marks []mark, from, to time.Time) {
	w := hourWeights[from.Hour()]
	walkIn, picks, shrinkage := it.walkInPerDay*w, it.picksPerDay*w, it.shrinkPerDay*w
	rate := (walkIn + picks + shrinkage) / time.Hour.Seconds() // per second
	probes := s.probeTimes(it, from, to)
	t := from
	for i := 0; i <= len(marks); i++ {
		until := to
		if i < len(marks) {
			until = marks[i].at
		}
		for rate > 0 {
			t = t.Add(time.Duration(it.rng.ExpFloat64() / rate * float64(time.Second)))
			if !t.Before(until) {
				break
			}
			probes = s.probe(st, it, probes, t)
			switch u := it.rng.Float64() * (walkIn + picks + shrinkage); {
			case u < walkIn:
				it.sell(it.rng.Float64() < st.misScan)
			case u < walkIn+picks:
				s.pick(st, it, t)
			default:
				if it.shelf > 0 {
					it.shelf-- // stolen or spoilt: gone, but the system still counts it
				}
			}
		}
		probes = s.probe(st, it, probes, until)
		if i == len(marks) {
			return
		}
		t = until
		s.apply(st, it, marks[i])
	}
}

// probeTimes draws the probes of [from, to), in order: a Poisson process at
// the configured rate spread over the open hours.
func (s *Sim) probeTimes(it *itemSim, from, to time.Time) []time.Time {
	if s.probes <= 0 || hourWeights[from.Hour()] == 0 {
		return nil
	}
	rate := s.probes / float64(closeHour-openHour) / time.Hour.Seconds()
	var times []time.Time
	for t := from; ; {
		t = t.Add(time.Duration(it.probeRng.ExpFloat64() / rate * float64(time.Second)))
		if !t.Before(to) {
			return times
		}
		times = append(times, t)
	}
}

// probe records the hidden state for the probes before until and returns the rest.
func (s *Sim) probe(st *storeSim, it *itemSim, probes []time.Time, until time.Time) []time.Time {
	for len(probes) > 0 && probes[0].Before(until) {
		s.seq++
		heap.Push(&s.pending, pending{
			Record: Record{Event: aisle.Event{Time: probes[0].Truncate(time.Millisecond)}, Probe: true, Truth: s.truth(st, it)},
			seq:    s.seq,
		})
		probes = probes[1:]
	}
	return probes
}

// sell takes one unit at the till: the shelf goes down, and the system too
// unless the sale was scanned as another product (phantom stock).
func (it *itemSim) sell(misScanned bool) {
	if it.shelf > 0 {
		it.shelf--
		if !misScanned {
			it.system = max(it.system-1, 0)
		}
	}
}

func (s *Sim) apply(st *storeSim, it *itemSim, m mark) {
	switch m.kind {
	case markRestock, markSecondRestock:
		if m.kind == markSecondRestock && !it.twoRestocks {
			return
		}
		it.restock(st)
	case markCycleCount:
		if m.at.Weekday() == it.countDay {
			it.system = it.shelf + it.backroom
		}
	case markCount:
		s.count(st, it, m)
	}
}

// restock moves the backroom's units to the shelf, then takes the delivery
// (unless it is skipped, short, or the item is discontinued): the order
// fills the shelf to capacity, but sometimes the staff leave it in the
// backroom until the next restock. The system counts every delivered unit.
func (it *itemSim) restock(st *storeSim) {
	moved := min(it.backroom, it.capacity-it.shelf)
	it.shelf += moved
	it.backroom -= moved
	if it.discontinued || it.rng.Float64() >= it.reliability {
		return
	}
	delivered := it.capacity - it.shelf
	if it.rng.Float64() < shortDelivery {
		delivered /= 2
	}
	it.system += delivered
	if it.rng.Float64() < st.backroom {
		it.backroom += delivered
	} else {
		it.shelf += delivered
	}
}

// count publishes the feed's level of the item, as the store's feed mode
// reports it.
func (s *Sim) count(st *storeSim, it *itemSim, m mark) {
	if st.feedMode == FeedFrozen && m.at.Before(st.feedChange) {
		it.frozen = it.system
	}
	if it.rng.Float64() < feedDropRate {
		return
	}
	level := it.system
	if st.feedMode == FeedFrozen {
		level = it.frozen
	}
	if it.rng.Float64() < st.feedNoise {
		level = max(level+[]int{-2, -1, 1, 2}[it.rng.IntN(4)], 0)
	}
	if st.feedMode == FeedDelta && level == it.reported {
		return
	}
	it.reported = level
	q := int64(level)
	counted := m.at.Truncate(time.Millisecond)
	s.push(st, it, aisle.TypeInventoryLevel, SourceFeed, m.at.Add(m.delay),
		aisle.InventoryLevel{StoreID: st.id, ProductID: it.productID, Quantity: &q, CountedAt: &counted})
}

// pick emits a shopper's pick and takes the unit when it is found.
func (s *Sim) pick(st *storeSim, it *itemSim, t time.Time) {
	s.orders++
	p := aisle.Pick{
		StoreID:   st.id,
		ProductID: it.productID,
		ShopperID: fmt.Sprintf("shopper-%d-%d", st.index+1, it.rng.IntN(shoppersPerShop)+1),
		OrderID:   fmt.Sprintf("order%d-%d", s.seed, s.orders),
	}
	eventType := aisle.TypePickNotFound
	switch {
	case it.shelf > 0:
		if it.rng.Float64() >= it.missRate {
			eventType = aisle.TypePickFound
		}
	case it.rng.Float64() < replaceRate:
		if r, ok := st.replacement(it); ok {
			eventType = aisle.TypePickReplaced
			p.ReplacementProductID = r
		}
	}
	s.push(st, it, eventType, SourceShopper, t, p)
	if eventType == aisle.TypePickFound {
		it.sell(false)
	}
}

// replacement picks another product of the same category in the store, or
// any other product when the category has no other.
func (s *storeSim) replacement(it *itemSim) (string, bool) {
	candidates := s.byCategory[it.category]
	if len(candidates) < 2 {
		if len(s.items) < 2 {
			return "", false
		}
		for {
			if other := s.items[it.rng.IntN(len(s.items))]; other != it {
				return other.productID, true
			}
		}
	}
	for {
		if id := candidates[it.rng.IntN(len(candidates))]; id != it.productID {
			return id, true
		}
	}
}

// push queues an event, recording the hidden state before it happens.
func (s *Sim) push(st *storeSim, it *itemSim, eventType, source string, at time.Time, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("simulate: encode %s data: %v", eventType, err)) // plain structs always encode
	}
	s.seq++
	heap.Push(&s.pending, pending{
		Record: Record{
			Event: aisle.Event{Type: eventType, Time: at.Truncate(time.Millisecond), Source: source, Data: raw},
			Truth: s.truth(st, it),
		},
		seq: s.seq,
	})
}

// truth is the item's hidden state now.
func (s *Sim) truth(st *storeSim, it *itemSim) Truth {
	return Truth{
		StoreID: st.id, ProductID: it.productID,
		OnShelf: it.shelf, Backroom: it.backroom, SystemCount: it.system,
		PicksPerDay: it.picksPerDay, Discontinued: it.discontinued, FeedMode: st.feedMode,
	}
}

// pending is a generated event waiting for its turn.
type pending struct {
	Record
	seq uint64
}

// recordHeap orders pending events by time, then generation order.
type recordHeap []pending

func (h recordHeap) Len() int { return len(h) }
func (h recordHeap) Less(i, j int) bool {
	if !h[i].Event.Time.Equal(h[j].Event.Time) {
		return h[i].Event.Time.Before(h[j].Event.Time)
	}
	return h[i].seq < h[j].seq
}
func (h recordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)   { *h = append(*h, x.(pending)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// hashString derives a per-entity stream from names, so that an entity's
// randomness does not depend on what else is in the catalog.
func hashString(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
