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
	// The feed levels separate: an empty feed predicts failure.
	empty, _ := p.FeedRate(0, 0)
	full, _ := p.FeedRate(10, 0)
	if !(empty < 0.15 && full > 0.9) {
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
