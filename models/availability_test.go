package models

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

type pickEvent struct {
	found bool
	at    time.Duration // after t0
}

func TestObservePickOrderInsensitive(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	tests := []struct {
		name   string
		events []pickEvent
	}{
		{"one", []pickEvent{{true, 0}}},
		{"same time", []pickEvent{{true, 0}, {false, 0}, {true, 0}}},
		{"spread", []pickEvent{{true, 0}, {false, time.Hour}, {true, 3 * time.Hour}, {false, 90 * time.Minute}}},
		{"days apart", []pickEvent{{false, 0}, {true, 48 * time.Hour}, {false, 47 * time.Hour}, {true, time.Minute}}},
		{"dense", func() []pickEvent {
			var evs []pickEvent
			for i := range 40 {
				evs = append(evs, pickEvent{i%3 != 0, time.Duration(i*i) * time.Minute})
			}
			return evs
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := applyPicks(m, tt.events)
			rng := rand.New(rand.NewPCG(1, 2))
			for range 50 {
				shuffled := append([]pickEvent(nil), tt.events...)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				got := applyPicks(m, shuffled)
				if !got.At.Equal(want.At) || math.Abs(got.Found-want.Found) > 1e-9 || math.Abs(got.NotFound-want.NotFound) > 1e-9 {
					t.Fatalf("order %v: got %+v, want %+v", shuffled, got, want)
				}
			}
		})
	}
}

func applyPicks(m AvailabilityModel, events []pickEvent) AvailabilityEvidence {
	var e AvailabilityEvidence
	for _, ev := range events {
		e = m.ObservePick(e, ev.found, t0.Add(ev.at))
	}
	return e
}

func TestObservePickDecay(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	e := m.ObservePick(AvailabilityEvidence{}, false, t0)
	e = m.ObservePick(e, true, t0.Add(m.PickHalfLife))
	if e.Found != 1 || math.Abs(e.NotFound-0.5) > 1e-12 || !e.At.Equal(t0.Add(m.PickHalfLife)) {
		t.Fatalf("after one half-life: %+v, want Found 1, NotFound 0.5", e)
	}
	// A late event one half-life older than At counts half.
	e = m.ObservePick(e, true, t0)
	if math.Abs(e.Found-1.5) > 1e-12 {
		t.Fatalf("late event: Found %v, want 1.5", e.Found)
	}
}

func TestObserveFeedLastWriterWins(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	e := m.ObserveFeed(AvailabilityEvidence{}, 5, t0)
	e = m.ObserveFeed(e, 9, t0.Add(-time.Minute)) // older: ignored
	if e.FeedQuantity != 5 || !e.FeedAt.Equal(t0) {
		t.Fatalf("older feed overwrote: %+v", e)
	}
	e = m.ObserveFeed(e, 7, t0) // tie: keep existing
	if e.FeedQuantity != 5 {
		t.Fatalf("tie overwrote: %+v", e)
	}
	e = m.ObserveFeed(e, 0, t0.Add(time.Minute))
	if e.FeedQuantity != 0 || !e.FeedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("newer feed ignored: %+v", e)
	}
	if !e.UpdatedAt().Equal(t0.Add(time.Minute)) {
		t.Fatalf("UpdatedAt %v", e.UpdatedAt())
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	tests := []struct {
		p    float64
		want AvailabilityStatus
	}{
		{0.999, AvailabilityInStock},
		{m.InStockAbove + 1e-9, AvailabilityInStock},
		{m.InStockAbove, AvailabilityLowStock},
		{m.LowStockAbove + 1e-9, AvailabilityLowStock},
		{m.LowStockAbove, AvailabilityOutOfStock},
		{0.001, AvailabilityOutOfStock},
	}
	for _, tt := range tests {
		if got := m.Status(tt.p); got != tt.want {
			t.Errorf("Status(%v) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

// testPriors: global 80%, dairy 60%, milk 30% with plenty of picks.
func testPriors() AvailabilityPriors {
	return AvailabilityPriors{
		Global:         FoundRate{Found: 799, Total: 998}, // (799+1)/(998+2) = 0.8
		Categories:     map[string]FoundRate{"dairy": {Found: 600, Total: 1000}},
		Products:       map[string]FoundRate{"milk": {Found: 300, Total: 1000}},
		CategoryShrink: 10,
		ProductShrink:  10,
		FeedLevels: []FeedLevelRate{
			{Min: 0, FoundRate: FoundRate{Found: 100, Total: 1000}},
			{Min: 3, FoundRate: FoundRate{Found: 950, Total: 1000}},
		},
		PriorStrength: 2,
		FeedStrength:  4,
	}
}

func TestProbabilityWithoutEvidenceIsThePrior(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	p := testPriors()
	tests := []struct {
		name, product, category string
		want                    float64
	}{
		{"product", "milk", "dairy", (300 + 10*((600+10*0.8)/1010)) / 1010},
		{"unknown product: its category", "cream", "dairy", (600 + 10*0.8) / 1010},
		{"unknown category: global", "bread", "bakery", 0.8},
	}
	for _, tt := range tests {
		got := m.Probability(AvailabilityEvidence{}, p, tt.product, tt.category, t0)
		if math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if mean := p.Mean(tt.product, tt.category); math.Abs(got-mean) > 1e-12 {
			t.Errorf("%s: Probability %v differs from Mean %v", tt.name, got, mean)
		}
	}
	if got := m.Probability(AvailabilityEvidence{}, AvailabilityPriors{}, "x", "y", t0); got != 0.5 {
		t.Errorf("zero priors: got %v, want 0.5", got)
	}
}

func TestProbabilityEvidence(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	p := testPriors()
	prior := p.Mean("milk", "dairy")
	prob := func(e AvailabilityEvidence, now time.Time) float64 {
		return m.Probability(e, p, "milk", "dairy", now)
	}
	found := m.ObservePick(AvailabilityEvidence{}, true, t0)
	notFound := m.ObservePick(AvailabilityEvidence{}, false, t0)
	emptyFeed := m.ObserveFeed(AvailabilityEvidence{}, 0, t0)
	fullFeed := m.ObserveFeed(AvailabilityEvidence{}, 12, t0)

	// Beta posterior: prior worth 2 picks plus one fresh pick.
	if got, want := prob(found, t0), (2*prior+1)/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("fresh found: got %v, want %v", got, want)
	}
	if got, want := prob(notFound, t0), 2*prior/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("fresh not found: got %v, want %v", got, want)
	}
	// One half-life later the pick counts half.
	if got, want := prob(found, t0.Add(m.PickHalfLife)), (2*prior+0.5)/2.5; math.Abs(got-want) > 1e-12 {
		t.Errorf("found a half-life ago: got %v, want %v", got, want)
	}
	// A fresh feed level is worth FeedStrength picks at its level's rate.
	emptyRate, _ := p.FeedRate(0, 0)
	if got, want := prob(emptyFeed, t0), (2*prior+4*emptyRate)/6; math.Abs(got-want) > 1e-12 {
		t.Errorf("fresh empty feed: got %v, want %v", got, want)
	}
	if !(prob(fullFeed, t0) > prior) {
		t.Errorf("a full feed should raise the probability above the prior %v", prior)
	}
	// Old evidence fades back to the prior.
	for _, e := range []AvailabilityEvidence{found, notFound, emptyFeed, fullFeed} {
		if got := prob(e, t0.Add(30*24*time.Hour)); math.Abs(got-prior) > 1e-6 {
			t.Errorf("evidence %+v a month later: got %v, want the prior %v", e, got, prior)
		}
	}
	// Evidence stamped in the future (clock skew) is not amplified.
	if got, want := prob(found, t0.Add(-time.Hour)), prob(found, t0); got != want {
		t.Errorf("future evidence: got %v, want %v", got, want)
	}
}

func TestProbabilityNeverNaN(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	ms := []AvailabilityModel{DefaultAvailabilityModel(), {}, {PickHalfLife: -time.Hour, FeedHalfLife: -time.Hour}}
	priors := []AvailabilityPriors{
		{}, testPriors(), DefaultAvailabilityPriors(),
		{Global: FoundRate{Found: nan, Total: inf}, Products: map[string]FoundRate{"milk": {Found: -5, Total: nan}}, PriorStrength: nan, FeedStrength: inf},
		{Global: FoundRate{Found: 10, Total: 10}, Calibration: Calibration{Points: []CalibrationPoint{{Raw: 0.5, Calibrated: 1}}}},
	}
	evidence := []AvailabilityEvidence{
		{},
		{Found: nan, NotFound: nan, At: t0},
		{Found: inf, NotFound: inf, At: t0, FeedQuantity: -3, FeedAt: t0},
		{Found: -1, NotFound: 1e308, At: t0.Add(time.Hour)},
		{Found: 1e6, At: t0, FeedQuantity: 1 << 62, FeedAt: t0.Add(-1000 * time.Hour)},
	}
	for _, m := range ms {
		for _, p := range priors {
			for _, e := range evidence {
				got := m.Probability(e, p, "milk", "dairy", t0)
				if !(got > 0 && got < 1) {
					t.Errorf("model %+v priors %+v evidence %+v: got %v, want within (0,1)", m, p, e, got)
				}
			}
		}
	}
}

func TestPriorsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	p := testPriors()
	p.Calibration = Calibration{Points: []CalibrationPoint{{Raw: 0.1, Calibrated: 0.2}, {Raw: 0.9, Calibrated: 0.85}}}
	p.Observations = 1998
	p.FittedAt = t0
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got AvailabilityPriors
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\njson %s", got, p, b)
	}
	m := DefaultAvailabilityModel()
	e := AvailabilityEvidence{Found: 1, NotFound: 2, At: t0, FeedQuantity: 2, FeedAt: t0}
	if a, b := m.Probability(e, p, "milk", "dairy", t0), m.Probability(e, got, "milk", "dairy", t0); a != b {
		t.Fatalf("probability changed through JSON: %v != %v", a, b)
	}
}

func BenchmarkProbability(b *testing.B) {
	m := DefaultAvailabilityModel()
	p := m.FitAvailabilityPriors(synthObs(5, 5000, 0.5))
	e := AvailabilityEvidence{Found: 1.2, NotFound: 0.4, At: t0, FeedQuantity: 3, FeedAt: t0.Add(-time.Hour)}
	now := t0.Add(time.Hour)
	for b.Loop() {
		m.Probability(e, p, "p07", "produce", now)
	}
}

// The latest pick's outcome does not depend on the order picks arrive in:
// an older pick leaves it, and of simultaneous picks a not-found wins.
func TestObservePickLastFound(t *testing.T) {
	m := DefaultAvailabilityModel()

	for _, tc := range []struct {
		name  string
		picks []bool // outcomes, in arrival order
		times []time.Duration
		want  bool
	}{
		{"newer found", []bool{false, true}, []time.Duration{0, time.Minute}, true},
		{"older found after a newer not-found", []bool{false, true}, []time.Duration{time.Minute, 0}, false},
		{"tie, found first", []bool{true, false}, []time.Duration{0, 0}, false},
		{"tie, not-found first", []bool{false, true}, []time.Duration{0, 0}, false},
		{"one found", []bool{true}, []time.Duration{0}, true},
	} {
		var e AvailabilityEvidence
		for i, found := range tc.picks {
			e = m.ObservePick(e, found, t0.Add(tc.times[i]))
		}
		if e.LastFound != tc.want {
			t.Errorf("%s: LastFound = %t, want %t", tc.name, e.LastFound, tc.want)
		}
	}
}

func TestExplainSignals(t *testing.T) {
	m := DefaultAvailabilityModel()
	priors := DefaultAvailabilityPriors()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	feedAt := now.Add(-time.Hour)
	notFound := func(e AvailabilityEvidence, n int) AvailabilityEvidence {
		for i := range n {
			e = m.ObservePick(e, false, now.Add(-time.Duration(n-i)*time.Minute))
		}
		return e
	}
	for _, tc := range []struct {
		name string
		e    AvailabilityEvidence
		want []AvailabilitySignal
	}{
		{"nothing", AvailabilityEvidence{}, []AvailabilitySignal{SignalNoFeed}},
		{"feed of 30, not found since", notFound(AvailabilityEvidence{FeedQuantity: 30, FeedAt: feedAt}, 3), []AvailabilitySignal{SignalPhantomStock, SignalRecentNotFound}},
		{"feed of 30 after the not-founds", notFound(AvailabilityEvidence{FeedQuantity: 30, FeedAt: now.Add(-time.Second)}, 3), []AvailabilitySignal{SignalRecentNotFound}},
		{"feed says zero", AvailabilityEvidence{FeedQuantity: 0, FeedAt: feedAt}, []AvailabilitySignal{SignalFeedSaysZero}},
		{"negative count", AvailabilityEvidence{FeedQuantity: -4, FeedAt: feedAt}, []AvailabilitySignal{SignalFeedSaysZero}},
		{"stale feed", AvailabilityEvidence{FeedQuantity: 9, FeedAt: now.Add(-FeedStaleAfter - time.Minute)}, []AvailabilitySignal{SignalFeedStale}},
	} {
		got := m.Explain(tc.e, priors, ShelfItem{ProductID: "p-1", Category: "c-1"}, now)
		if !slices.Equal(got.Signals, tc.want) {
			t.Errorf("%s: signals %v, want %v", tc.name, got.Signals, tc.want)
		}
		if got.Prior != priors.Mean("p-1", "c-1") {
			t.Errorf("%s: prior %v", tc.name, got.Prior)
		}
	}
}

// Finding (issue 18): a feed's zero faded with a 2 h half-life, so "0 on
// hand" drifted back to the prior long before the next delivery. Now it
// holds until contradicted: a found pick after the count, or a restock
// interval passing.
func TestFeedZeroHoldsUntilContradicted(t *testing.T) {
	m := DefaultAvailabilityModel()
	priors := DefaultAvailabilityPriors()
	counted := t0
	zero := m.ObserveCount(AvailabilityEvidence{}, 0, counted, counted.Add(2*time.Hour))
	negative := m.ObserveCount(AvailabilityEvidence{}, -5, counted, counted.Add(2*time.Hour))
	prior := m.Probability(AvailabilityEvidence{}, priors, "p-1", "c-1", t0)
	fresh := m.Probability(zero, priors, "p-1", "c-1", counted)
	if fresh > prior-0.15 {
		t.Fatalf("a fresh zero count gives %.3f against the prior %.3f: it says too little to test", fresh, prior)
	}
	for _, tc := range []struct {
		name string
		e    AvailabilityEvidence
		at   time.Duration
		held bool // want the fresh zero's answer, else about the prior
	}{
		{"zero, 12 h later", zero, 12 * time.Hour, true},
		{"negative count, 20 h later", negative, 20 * time.Hour, true},
		{"zero, found by a shopper since", m.ObservePick(zero, true, counted.Add(3*time.Hour)), 4 * time.Hour, false},
		{"zero, long past a restock interval", zero, m.RestockInterval + 12*m.FeedHalfLife, false},
	} {
		p := m.Probability(tc.e, priors, "p-1", "c-1", counted.Add(tc.at))
		if tc.held && math.Abs(p-fresh) > 0.01 {
			t.Errorf("%s: probability %.3f, want the zero to hold at %.3f", tc.name, p, fresh)
		}
		if !tc.held && p < prior-0.05 {
			t.Errorf("%s: probability %.3f, want the zero dropped (prior %.3f)", tc.name, p, prior)
		}
	}
}

// Finding (issue 18): phantom stock stayed "in stock": a positive feed
// outweighed shoppers who could not find the product. A not-found after the
// count now drops the feed's weight.
func TestPhantomStockIsNotInStock(t *testing.T) {
	m := DefaultAvailabilityModel()
	priors := DefaultAvailabilityPriors()
	plenty := m.ObserveCount(AvailabilityEvidence{}, 30, t0, t0.Add(time.Hour))
	if p := m.Probability(plenty, priors, "p-1", "c-1", t0.Add(time.Hour)); m.Status(p) != AvailabilityInStock {
		t.Fatalf("a fresh count of 30 alone: %.3f %s, want IN_STOCK", p, m.Status(p))
	}
	phantom := m.ObservePick(plenty, false, t0.Add(90*time.Minute))
	p := m.Probability(phantom, priors, "p-1", "c-1", t0.Add(2*time.Hour))
	if m.Status(p) == AvailabilityInStock {
		t.Errorf("a count of 30, then a shopper did not find it: %.3f IN_STOCK", p)
	}
	if got := m.Explain(phantom, priors, ShelfItem{ProductID: "p-1", Category: "c-1"}, t0.Add(2*time.Hour)).Signals; !slices.Contains(got, SignalPhantomStock) {
		t.Errorf("signals %v, want PHANTOM_STOCK", got)
	}
	// A not-found before the count is not phantom stock: the count is newer
	// (the not-found still counts, decayed, so it is not IN_STOCK at the
	// default priors).
	before := m.ObserveCount(m.ObservePick(AvailabilityEvidence{}, false, t0.Add(-time.Minute)), 30, t0, t0.Add(time.Hour))
	if q := m.Probability(before, priors, "p-1", "c-1", t0.Add(time.Hour)); !(q > p+0.05) || m.Status(q) == AvailabilityOutOfStock {
		t.Errorf("a not-found, then a count of 30: %.3f %s, want above the phantom's %.3f", q, m.Status(q), p)
	}
	if got := m.Explain(before, priors, ShelfItem{ProductID: "p-1", Category: "c-1"}, t0.Add(time.Hour)).Signals; slices.Contains(got, SignalPhantomStock) {
		t.Errorf("a not-found, then a count of 30: signals %v, want no PHANTOM_STOCK", got)
	}
}

// A count of the quantity already recorded keeps the time the level
// started; a different quantity, or the first count, starts it again; an
// older count changes nothing.
func TestObserveCountLevelSince(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	type count struct {
		qty     int64
		counted time.Duration
	}
	for _, tc := range []struct {
		name   string
		counts []count
		want   time.Duration
	}{
		{"first count", []count{{5, 0}}, 0},
		{"unchanged", []count{{5, 0}, {5, time.Hour}, {5, 3 * time.Hour}}, 0},
		{"moved", []count{{5, 0}, {4, time.Hour}, {4, 3 * time.Hour}}, time.Hour},
		{"moved back", []count{{5, 0}, {4, time.Hour}, {5, 3 * time.Hour}}, 3 * time.Hour},
		{"an older count", []count{{5, time.Hour}, {5, 0}}, time.Hour},
		{"an older, different count", []count{{5, time.Hour}, {7, 0}, {5, 2 * time.Hour}}, time.Hour},
	} {
		var e AvailabilityEvidence
		for _, c := range tc.counts {
			e = m.ObserveCount(e, c.qty, t0.Add(c.counted), t0.Add(c.counted+time.Hour))
		}
		if !e.LevelSince.Equal(t0.Add(tc.want)) {
			t.Errorf("%s: level since %s, want %s", tc.name, e.LevelSince, t0.Add(tc.want))
		}
	}
	// Evidence recorded before LevelSince was kept: its count is the start.
	old := AvailabilityEvidence{FeedQuantity: 5, FeedAt: t0, CountedAt: t0}
	if e := m.ObserveCount(old, 5, t0.Add(time.Hour), t0.Add(time.Hour)); !e.LevelSince.Equal(t0) {
		t.Errorf("an old hash counted again: level since %s, want %s", e.LevelSince, t0)
	}
}

// stallPriors: a fast mover (8 picks a day), a slow one (0.1 a day), picks
// spread evenly over the day, and stall shifts that lower counts which
// stood still over 2 expected picks and more.
func stallPriors() AvailabilityPriors {
	p := testPriors()
	p.WindowDays = 10
	p.Products = map[string]FoundRate{"fast": {Found: 70, Total: 80}, "slow": {Found: 1, Total: 1}}
	p.StallShifts = []StallShift{{Min: 0, Shift: 0.1}, {Min: 2, Shift: -1}, {Min: 8, Shift: -2}}
	return p
}

// Finding (issue 18, zero-sales streak): a positive count that stopped
// moving for a product that sells was trusted like one that moves. Now it
// lowers the probability by the learned stall shift and is named
// NO_RECENT_SALES, while a slow mover, which expects no sale in that time,
// is left alone, and a found pick restarts the clock.
func TestStalledCountIsPhantomStock(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	priors := stallPriors()
	now := t0.Add(12 * time.Hour)
	var moving AvailabilityEvidence
	moving = m.ObserveCount(moving, 6, now.Add(-12*time.Hour), now.Add(-12*time.Hour))
	moving = m.ObserveCount(moving, 5, now.Add(-time.Hour), now.Add(-time.Hour))
	stalled := m.ObserveCount(m.ObserveCount(AvailabilityEvidence{}, 5, now.Add(-12*time.Hour), now.Add(-12*time.Hour)), 5, now.Add(-time.Hour), now.Add(-time.Hour))
	foundSince := m.ObservePick(stalled, true, now.Add(-30*time.Minute))
	zero := m.ObserveCount(m.ObserveCount(AvailabilityEvidence{}, 0, now.Add(-12*time.Hour), now.Add(-12*time.Hour)), 0, now.Add(-time.Hour), now.Add(-time.Hour))
	item := func(product string) ShelfItem {
		return ShelfItem{StoreID: "s-1", ProductID: product, Category: "dairy"}
	}
	for _, tc := range []struct {
		name     string
		e        AvailabilityEvidence
		product  string
		shift    float64 // the stall shift that applies
		signaled bool
	}{
		// 12 h of a fast mover's count standing still: 4 expected picks.
		{"fast mover, count stood still 12 h", stalled, "fast", -1, true},
		{"fast mover, count moved an hour ago", moving, "fast", 0.1, false},
		{"fast mover, found by a shopper since", foundSince, "fast", 0.1, false},
		{"slow mover, count stood still 12 h", stalled, "slow", 0.1, false},
		{"fast mover, zero stood still 12 h", zero, "fast", 0, false},
	} {
		if got := priors.stallShift(tc.e, tc.product, now); math.Abs(got-tc.shift) > 1e-12 {
			t.Errorf("%s: stall shift %v, want %v", tc.name, got, tc.shift)
		}
		unshifted := priors
		unshifted.StallShifts = nil
		p, base := m.ProbabilityOf(tc.e, priors, item(tc.product), now), m.ProbabilityOf(tc.e, unshifted, item(tc.product), now)
		if tc.shift < 0 && !(p < base-0.05) {
			t.Errorf("%s: probability %.3f, want well below %.3f without the stall", tc.name, p, base)
		}
		if tc.shift >= 0 && !(p >= base) {
			t.Errorf("%s: probability %.3f, want at least %.3f: nothing stalled", tc.name, p, base)
		}
		signals := m.Explain(tc.e, priors, item(tc.product), now).Signals
		if slices.Contains(signals, SignalNoRecentSales) != tc.signaled {
			t.Errorf("%s: signals %v, NO_RECENT_SALES wanted: %t", tc.name, signals, tc.signaled)
		}
	}
}

// Expected picks follow the day's pick profile: a night without picks adds
// none, a whole day adds a day's picks.
func TestExpectedPicksFollowTheDay(t *testing.T) {
	t.Parallel()
	p := stallPriors() // "fast": 8 picks a day
	p.PickHours = make([]float64, 24)
	for h := 8; h < 16; h++ {
		p.PickHours[h] = 1.0 / 8
	}
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     float64
	}{
		{"the night", day.Add(16 * time.Hour), day.Add(32 * time.Hour), 0},
		{"one open hour", day.Add(9 * time.Hour), day.Add(10 * time.Hour), 1},
		{"half an hour", day.Add(9*time.Hour + 15*time.Minute), day.Add(9*time.Hour + 45*time.Minute), 0.5},
		{"a day and an hour", day.Add(9 * time.Hour), day.Add(34 * time.Hour), 9},
		{"backwards", day.Add(10 * time.Hour), day.Add(9 * time.Hour), 0},
	} {
		if got := p.expectedPicks("fast", tc.from, tc.to); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v expected picks, want %v", tc.name, got, tc.want)
		}
	}
}
