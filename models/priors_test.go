package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// synthObs draws picks of products whose true found rates are known: the
// category sets the rate, spread per product by spread, at 8 stores alike;
// some picks carry a fresh feed that is 0 when the pick will fail and 10
// when it will succeed, except for a few phantom counts. Picks are hours
// apart: none confirms the one before (outcomes here are coin flips, not a
// shelf that a shopper may miss).
func synthObs(seed uint64, n int, spread float64) []PickObservation {
	rng := rand.New(rand.NewPCG(seed, 7))
	categoryRate := map[string]float64{"pantry": 0.92, "produce": 0.6}
	var products []string
	rates := make(map[string]float64)
	categories := make(map[string]string)
	for i := range 40 {
		id := fmt.Sprintf("p%02d", i)
		cat := "pantry"
		if i%2 == 1 {
			cat = "produce"
		}
		products = append(products, id)
		categories[id] = cat
		rates[id] = min(max(categoryRate[cat]+spread*(rng.Float64()-0.5), 0.02), 0.98)
	}
	obs := make([]PickObservation, n)
	for i := range obs {
		id := products[rng.IntN(len(products))]
		store := fmt.Sprintf("s%d", rng.IntN(8))
		at := t0.Add(time.Duration(i) * (confirmWindow + time.Minute))
		found := rng.Float64() < rates[id]
		o := PickObservation{StoreID: store, ProductID: id, Category: categories[id], Found: found, At: at}
		if rng.Float64() < 0.5 {
			q := int64(0)
			if found != (rng.Float64() < 0.05) {
				q = 10
			}
			o.Evidence = AvailabilityEvidence{FeedQuantity: q, FeedAt: at.Add(-10 * time.Minute)}
		}
		obs[i] = o
	}
	return obs
}

func TestFitAvailabilityPriorsCounts(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	obs := []PickObservation{
		{ProductID: "a", Category: "x", Found: true, At: t0},
		{ProductID: "a", Category: "x", Found: false, At: t0.Add(time.Hour)},
		{ProductID: "b", Category: "x", Found: true, At: t0.Add(2 * time.Hour)},
		{ProductID: "c", Category: "y", Found: true, At: t0.Add(time.Minute),
			Evidence: AvailabilityEvidence{FeedQuantity: 4, FeedAt: t0.Add(time.Minute - m.FeedHalfLife)}},
	}
	p := m.FitAvailabilityPriors(obs)
	got := []FoundRate{p.Global, p.Categories["x"], p.Categories["y"], p.Products["a"], p.Products["b"], p.Products["c"]}
	// Item-weighted: each of a's two picks weighs a half; products count picks.
	want := []FoundRate{{2.5, 3}, {1.5, 2}, {1, 1}, {1, 2}, {1, 1}, {1, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts: got %+v, want %+v", got, want)
	}
	if p.Observations != 4 || !p.FittedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("observations %d fitted at %v", p.Observations, p.FittedAt)
	}
	// The feed was one half-life old at the pick: it counts half, in level
	// [3, 5) of products picked at least once a day (c: once in a window of
	// at least a day).
	for _, l := range p.FeedLevels {
		wantTotal := 0.0
		if l.Min == 3 && l.MinVelocity == 1 {
			wantTotal = 0.5
		}
		if math.Abs(l.Total-wantTotal) > 1e-12 || math.Abs(l.Found-wantTotal) > 1e-12 {
			t.Errorf("feed level %d: %+v, want found = total = %v", l.Min, l.FoundRate, wantTotal)
		}
	}
}

func TestFitAvailabilityPriorsEmpty(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	p := m.FitAvailabilityPriors(nil)
	if got := m.Probability(AvailabilityEvidence{}, p, "a", "x", t0); got != 0.5 {
		t.Fatalf("empty fit: got %v, want 0.5", got)
	}
}

func TestFitAvailabilityPriorsLearns(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	train := synthObs(1, 20000, 0.6)
	p := m.FitAvailabilityPriors(train)

	// An unseen product's prior is its category's found rate (item-weighted:
	// 160 store-products, so a little shrunk to the global rate).
	for cat, r := range p.Categories {
		if got, want := p.Mean("unseen", cat), r.Found/r.Total; math.Abs(got-want) > 0.02 {
			t.Errorf("category %s prior %v, want about %v", cat, got, want)
		}
	}
	// The feed levels separate: an empty feed predicts failure (each level's
	// counts are item-weighted, in store-products, so its 5 pseudo-counts at
	// the global rate pull it more than 5 picks would).
	empty, _ := p.FeedRate(0, 0)
	full, _ := p.FeedRate(10, 0)
	if !(empty < 0.2 && full > 0.9) {
		t.Errorf("feed rates: empty %v full %v", empty, full)
	}
	// Fitted priors beat the global rate on fresh data from the same world.
	test := synthObs(2, 5000, 0.6)
	var fitted, global float64
	g := p.Mean("", "")
	for _, o := range test {
		fitted += logLoss(m.Probability(o.Evidence, p, o.ProductID, o.Category, o.At), o.Found)
		global += logLoss(g, o.Found)
	}
	if !(fitted < 0.8*global) {
		t.Errorf("log-loss: fitted %v, global %v", fitted/5000, global/5000)
	}
	// Deterministic for a slice.
	if again := m.FitAvailabilityPriors(train); !reflect.DeepEqual(again, p) {
		t.Errorf("two fits of the same data differ")
	}
	assertMonotone(t, p.Calibration)
}

func TestFitShrinkFollowsSpread(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	same := m.FitAvailabilityPriors(synthObs(3, 20000, 0))
	spread := m.FitAvailabilityPriors(synthObs(3, 20000, 0.9))
	// Identical products: trust the category; very different: trust the product.
	if !(same.ProductShrink >= 256 && spread.ProductShrink <= 32) {
		t.Errorf("product shrink: identical products %v, spread products %v", same.ProductShrink, spread.ProductShrink)
	}
}

func TestFitCalibration(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(4, 4))
	// An overconfident predictor: says 0.1 or 0.9 when the truth is 0.3 or 0.7.
	var p []float64
	var y []bool
	for range 4000 {
		hi := rng.IntN(2) == 1
		raw, truth := 0.1, 0.3
		if hi {
			raw, truth = 0.9, 0.7
		}
		p = append(p, raw)
		y = append(y, rng.Float64() < truth)
	}
	c := FitCalibration(p, y, nil)
	assertMonotone(t, c)
	for raw, want := range map[float64]float64{0.1: 0.3, 0.9: 0.7, 0.05: 0.3, 0.95: 0.7, 0.5: 0.5} {
		if got := c.Apply(raw); math.Abs(got-want) > 0.03 {
			t.Errorf("Apply(%v) = %v, want about %v", raw, got, want)
		}
	}
	if c := FitCalibration(p[:30], y[:30], nil); len(c.Points) != 0 {
		t.Errorf("30 picks: got %d points, want the identity", len(c.Points))
	}
	if got := (Calibration{}).Apply(0.42); got != 0.42 {
		t.Errorf("identity: got %v", got)
	}
}

func assertMonotone(t *testing.T, c Calibration) {
	t.Helper()
	for i := 1; i < len(c.Points); i++ {
		a, b := c.Points[i-1], c.Points[i]
		if b.Raw < a.Raw || b.Calibrated < a.Calibrated || b.Calibrated <= 0 || b.Calibrated >= 1 {
			t.Fatalf("calibration not monotone in (0,1) at %d: %+v then %+v", i, a, b)
		}
	}
}

func logLoss(p float64, found bool) float64 {
	if found {
		return -math.Log(p)
	}
	return -math.Log(1 - p)
}

// Findings of issue 18: the model was calibrated to the wrong event. It
// learnt the found rate of picks, which counts shopper misses as empty
// shelves and is made mostly of fast movers' picks.
func TestCalibratedToTheShelf(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	rng := rand.New(rand.NewPCG(18, 1))
	t.Run("shopper misses are not empty shelves", func(t *testing.T) {
		t.Parallel()
		// Always on the shelf; shoppers miss 3% of the picks.
		var obs []PickObservation
		for i := range 3 * 24 * 2 {
			at := t0.Add(time.Duration(i) * 30 * time.Minute)
			for p := range 50 {
				obs = append(obs, PickObservation{StoreID: "s", ProductID: fmt.Sprintf("p%02d", p), Category: "c", Found: rng.Float64() >= 0.03, At: at})
			}
		}
		priors := m.FitAvailabilityPriors(obs)
		if miss := priors.ShopperMiss.Rate(); !(miss > 0.02 && miss < 0.045) {
			t.Errorf("learned miss rate %v, want about 0.03", miss)
		}
		// The found rate is 0.97; the item is on the shelf.
		if p := m.ProbabilityOf(AvailabilityEvidence{}, priors, ShelfItem{StoreID: "s", ProductID: "p01", Category: "c"}, t0.Add(80*time.Hour)); p < 0.985 {
			t.Errorf("P(on shelf) of an item always there %v, want above 0.985 (the found rate is 0.97)", p)
		}
	})
	t.Run("slow movers are not judged by fast movers", func(t *testing.T) {
		t.Parallel()
		// Ten fast movers picked every 2 h, found half the time; sixty slow
		// movers picked once in three days, found 95% of the time.
		var obs []PickObservation
		for i := range 3 * 12 {
			at := t0.Add(time.Duration(i) * 2 * time.Hour)
			for p := range 10 {
				obs = append(obs, PickObservation{StoreID: "s", ProductID: fmt.Sprintf("fast%d", p), Category: "c", Found: rng.IntN(2) == 0, At: at})
			}
			for p := range 60 {
				if p%36 == i%36 && p < 36 || p >= 36 && (p-36) == i%24 && i < 24 {
					obs = append(obs, PickObservation{StoreID: "s", ProductID: fmt.Sprintf("slow%d", p), Category: "c", Found: rng.Float64() < 0.95, At: at.Add(time.Minute)})
				}
			}
		}
		priors := m.FitAvailabilityPriors(obs)
		byPick := priors.Products["fast0"] // for the message only
		unseen := ShelfItem{StoreID: "s", ProductID: "never-picked", Category: "c"}
		if p := m.ProbabilityOf(AvailabilityEvidence{}, priors, unseen, t0.Add(80*time.Hour)); p < 0.8 {
			t.Errorf("P(on shelf) of a product without picks %v, want its slow peers' (about 0.95), not the picks' (fast0 found %v of %v)", p, byPick.Found, byPick.Total)
		}
	})
}

// Finding (issue 18): every feed counted the same, however often its levels
// and the picks disagreed. The fit learns each store's feed reliability from
// that, and serving weighs a store's feed by it.
func TestFeedReliabilityPerStore(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	obs := coinFlipPicks(m, 2, []string{"good", "frozen"}, func(_ *rand.Rand, store string, found bool) int64 {
		if store == "good" && !found {
			return 0
		}
		return 10 // a frozen export says 10 whatever the shelf holds
	})
	priors := m.FitAvailabilityPriors(obs)
	if good, frozen := priors.feedReliability("good", 10), priors.feedReliability("frozen", 10); !(frozen <= good/4 && good >= 1) {
		t.Fatalf("feed reliability: good %v, frozen %v; want the frozen feed trusted far less", good, frozen)
	}
	now := t0.Add(80 * time.Hour)
	says10 := AvailabilityEvidence{FeedQuantity: 10, FeedAt: now.Add(-5 * time.Minute), CountedAt: now.Add(-10 * time.Minute)}
	good := m.ProbabilityOf(says10, priors, ShelfItem{StoreID: "good", ProductID: "p01", Category: "c"}, now)
	// The frozen export's count has said 10 since the start, as its
	// history does.
	stood := says10
	stood.LevelSince = t0
	frozen := m.ProbabilityOf(stood, priors, ShelfItem{StoreID: "frozen", ProductID: "p01", Category: "c"}, now)
	// The truth at the frozen store is a coin flip; calibrating through the
	// steps' centroids leaves it a little above.
	if !(good > frozen+0.2 && frozen < 0.65) {
		t.Errorf("a fresh count of 10: P(on shelf) %v at the good feed's store, %v at the frozen one's", good, frozen)
	}
}

// Finding (issue 18): a store's feed was worth one factor for every level,
// so a delta feed whose positive counts are right but whose noisy counts
// round down to a zero it never corrects had its zeros trusted as much as
// its counts (seed 1: delta zeros on the shelf about half the time, served
// about 0.3). The fit learns each store's zero reliability from the picks
// behind its zeros alone.
func TestFeedZeroReliabilityPerStore(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	obs := coinFlipPicks(m, 3, []string{"snapshot", "delta"}, func(rng *rand.Rand, store string, found bool) int64 {
		// Both feeds count 10 only of items that are there; the delta
		// feed's count of 4 in 10 of them rounds down to 0.
		if found && (store == "snapshot" || rng.Float64() < 0.6) {
			return 10
		}
		return 0
	})
	priors := m.FitAvailabilityPriors(obs)
	now := t0.Add(80 * time.Hour)
	fresh := func(quantity int64) AvailabilityEvidence {
		return AvailabilityEvidence{FeedQuantity: quantity, FeedAt: now.Add(-5 * time.Minute), CountedAt: now.Add(-10 * time.Minute), LevelSince: now.Add(-10 * time.Minute)}
	}
	p := func(store string, quantity int64) float64 {
		return m.ProbabilityOf(fresh(quantity), priors, ShelfItem{StoreID: store, ProductID: "p01", Category: "c"}, now)
	}
	// Behind the delta feed's zeros 2 in 7 items are there; behind the
	// snapshot's none. (One shared calibration of both stores' picks keeps
	// the two apart by less than that; before, both were 0.15. The
	// calibration is fitted on posteriors moved by the pick shifts of
	// these picks, each of which follows a pick; this item has none, and
	// falls between two steps: 0.10.)
	if snap, delta := p("snapshot", 0), p("delta", 0); !(snap < 0.12 && delta > snap+0.05) {
		t.Errorf("a fresh zero: P(on shelf) %v at the snapshot feed's store, %v at the delta feed's; want the delta zero trusted less", snap, delta)
	}
	if delta := p("delta", 10); delta < 0.9 {
		t.Errorf("a fresh count of 10 at the delta feed's store: P(on shelf) %v, want above 0.9 (its positive counts are right)", delta)
	}
	if snap, delta := priors.feedReliability("snapshot", 0), priors.feedReliability("delta", 0); !(delta < snap) {
		t.Errorf("zero reliability: snapshot %v, delta %v; want the delta feed's zero worth less", snap, delta)
	}
}

// coinFlipPicks is three days of history at each of stores: 40 products picked
// every 3 h, each found on a coin flip (seeded by seed), after a feed
// count that level gives for the store and the outcome. Picks 3 h apart:
// outcomes here are coin flips, not shoppers missing what a later pick
// finds.
func coinFlipPicks(m AvailabilityModel, seed uint64, stores []string, level func(rng *rand.Rand, store string, found bool) int64) []PickObservation {
	rng := rand.New(rand.NewPCG(18, seed))
	h := m.NewHistory()
	var obs []PickObservation
	for i := range 3 * 8 {
		at := t0.Add(time.Duration(i) * 3 * time.Hour)
		for p := range 40 {
			for _, store := range stores {
				item := ShelfItem{StoreID: store, ProductID: fmt.Sprintf("p%02d", p), Category: "c"}
				key := store + ":" + item.ProductID
				found := rng.IntN(2) == 0
				h.Count(key, level(rng, store, found), at.Add(-10*time.Minute), at.Add(-5*time.Minute))
				obs = append(obs, h.Pick(key, item, found, at))
			}
		}
	}
	return obs
}
