package models

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Fraud arrives two ways: through the customer (here, declines on the card)
// or through a compromised store, where every order is fraud whatever the
// customer looks like. The fit learns both mechanisms, a store's fraud labels
// of yesterday raise an old, declines-free customer's order above review,
// and the reasons name what explains each score.
func TestFitLearnsTheStoreMechanism(t *testing.T) {
	t.Parallel()
	names := FraudFeatureNames()
	ageAt, declinesAt := slices.Index(names, "account_age_days"), slices.Index(names, "card_failed_payments_10m")
	freshAt, staleAt := slices.Index(names, "store_fresh_frauds_1d"), slices.Index(names, "store_stale_frauds_1d")
	rng := rand.New(rand.NewPCG(5, 6))
	var X [][]float64
	var y []bool
	for i := range 4000 {
		row := make([]float64, len(FraudFeatures))
		row[ageAt] = 30 + rng.Float64()*300
		fraud := false
		switch {
		case i%20 == 0: // the customer's: declines before the order
			row[declinesAt] = float64(2 + rng.IntN(5))
			fraud = true
		case i%20 == 1: // a compromised store's: an ordinary customer
			row[freshAt], row[staleAt] = float64(2+rng.IntN(5)), float64(3+rng.IntN(6))
			fraud = true
		case i%40 == 2: // a store with a fraud or two yesterday, not compromised
			row[staleAt] = float64(1 + rng.IntN(2))
		}
		X, y = append(X, row), append(y, fraud)
	}
	m, _, err := FitFraudModel(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	if m.Store == nil || !slices.Equal(m.Store.Features, StoreFraudFeatures) || m.Store.Logistic.Weights[0] <= 0 || m.Store.Logistic.Weights[1] <= 0 {
		t.Fatalf("store mechanism %+v, want positive weights on %v", m.Store, StoreFraudFeatures)
	}
	if slices.ContainsFunc(m.Features, func(f string) bool { return strings.HasPrefix(f, "store_") }) {
		t.Errorf("the order mechanism reads the store's labels: %v", m.Features)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	atStore := make([]float64, len(FraudFeatures))
	atStore[ageAt], atStore[freshAt], atStore[staleAt] = 200, 4, 4
	p, contributions := s.Score(atStore)
	if p < DefaultFraudThresholds().ReviewAt {
		t.Errorf("an order at a store with 8 frauds yesterday scores %.3f, below review", p)
	}
	want := []string{"4 fraud orders at this store in yesterday's labels, placed at most 3 days before",
		"4 fraud orders at this store in yesterday's labels, placed more than 3 days before"}
	if r := Reasons(contributions, 3); len(r) < 2 || !slices.Contains(want, r[0].Description) || !slices.Contains(want, r[1].Description) {
		t.Errorf("reasons %+v, want first the two of %q", r, want)
	}
	declined := make([]float64, len(FraudFeatures))
	declined[ageAt], declined[declinesAt] = 200, 4
	p, contributions = s.Score(declined)
	if r := Reasons(contributions, 3); p < DefaultFraudThresholds().ReviewAt || len(r) == 0 || r[0].Feature != "card_failed_payments_10m" {
		t.Errorf("an order after 4 declines at a clean store: score %.3f, reasons %+v; want above review, the declines first", p, r)
	}
	clean := make([]float64, len(FraudFeatures))
	clean[ageAt] = 200
	if p, _ := s.Score(clean); p > 0.05 {
		t.Errorf("an ordinary order scores %.3f", p)
	}
}

// A stored version without the store mechanism (every version before it)
// loads without one and scores with its logistic regression alone.
func TestOneMechanismVersionScoresAsBefore(t *testing.T) {
	t.Parallel()
	stored := `{"features":["amount","new_device"],"logistic":{"means":[40,0.1],"stds":[20,0.3],"weights":[0.5,1.2],"bias":-4}}`
	var m FraudModel
	if err := json.Unmarshal([]byte(stored), &m); err != nil {
		t.Fatal(err)
	}
	if m.Store != nil {
		t.Fatalf("store mechanism %+v from a version without one", m.Store)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]float64, len(FraudFeatures))
	idx, _ := FraudFeatureIndex(m.Features)
	raw[idx[0]], raw[idx[1]] = 80, 1
	p, _ := s.Score(raw)
	if want := sigmoid(-4 + 0.5*(80-40)/20 + 1.2*(1-0.1)/0.3); math.Abs(p-want) > 1e-12 {
		t.Errorf("score %v, want %v", p, want)
	}
	again, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(again), `"store"`) {
		t.Errorf("a one-mechanism version stores %s", again)
	}
}

// Chargebacks come one to seven days after an order, so a store's fraud
// labels of yesterday go on coming for a week after its compromise ended;
// those on its orders of the last few days stop within days. The replay
// counts them apart, and the store mechanism tells a compromise running
// now from one that ended days ago by them.
func TestFreshStoreFraudsTellARunningCompromiseFromAnEndedOne(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	mem := NewVelocityMemory()
	order := func(id string, at time.Time) {
		mem.Order(FraudOrder{OrderID: id, UserID: "u-" + id, StoreID: "s-1", Card: "c-" + id, Device: "d-" + id, IP: "10.0.0.1", Address: "a-" + id, AmountCents: 5000, At: at})
	}
	yesterday := now.AddDate(0, 0, -1)
	order("fresh", now.AddDate(0, 0, -1-FreshFraudDays)) // labelled FreshFraudDays days after
	order("old", now.AddDate(0, 0, -2-FreshFraudDays))   // one day later than that
	order("legit", now.AddDate(0, 0, -2))
	mem.Label("fresh", true, yesterday)
	mem.Label("old", true, yesterday)
	mem.Label("legit", false, yesterday)
	probe := FraudOrder{OrderID: "o-probe", UserID: "u-probe", StoreID: "s-1", Card: "c-fresh", At: now}
	names := FraudFeatureNames()
	got := ComputeFraudFeatures(probe, mem.Snapshot(probe))
	storeAt, freshAt, staleAt := slices.Index(names, "store_frauds_1d"), slices.Index(names, "store_fresh_frauds_1d"), slices.Index(names, "store_stale_frauds_1d")
	if got[storeAt] != 2 || got[freshAt] != 1 || got[staleAt] != 1 {
		t.Errorf("store_frauds_1d %v, store_fresh_frauds_1d %v, store_stale_frauds_1d %v: want 2, 1 and 1", got[storeAt], got[freshAt], got[staleAt])
	}
	if card := mem.Snapshot(probe).Card; slices.ContainsFunc(slices.Collect(maps.Keys(card)), func(f string) bool { return strings.HasPrefix(f, fieldFreshFraud) }) {
		t.Errorf("the card counts fresh frauds: %v", card)
	}

	rng := rand.New(rand.NewPCG(9, 10))
	var X [][]float64
	var y []bool
	for i := range 6000 {
		row := make([]float64, len(FraudFeatures))
		fraud := false
		switch i % 30 {
		case 0, 1: // a store compromised now
			row[freshAt], row[staleAt] = float64(2+rng.IntN(5)), float64(4+rng.IntN(6))
			fraud = true
		case 2, 3: // one whose compromise ended days ago
			row[staleAt] = float64(6 + rng.IntN(10))
		case 4:
			fraud = rng.IntN(20) == 0
		}
		X, y = append(X, row), append(y, fraud)
	}
	m, _, err := FitFraudModel(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	running, ended := make([]float64, len(FraudFeatures)), make([]float64, len(FraudFeatures))
	running[freshAt], running[staleAt], ended[staleAt] = 3, 5, 8
	pRunning, _ := s.Score(running)
	pEnded, _ := s.Score(ended)
	if pRunning < DefaultFraudThresholds().BlockAt || pEnded > DefaultFraudThresholds().ReviewAt {
		t.Errorf("a store compromised now scores %.3f, one whose compromise ended %.3f: want above block and below review", pRunning, pEnded)
	}
}

// A stored two-mechanism version from before the fresh and stale counts
// (its store mechanism on store_frauds_1d) scores as it did: yesterday's
// count read linearly, capped at 20.
func TestStoreMechanismOnYesterdaysCountScoresAsBefore(t *testing.T) {
	t.Parallel()
	stored := `{"features":["amount"],"logistic":{"means":[40],"stds":[20],"weights":[0.5],"bias":-4},
		"store":{"features":["store_frauds_1d"],"logistic":{"means":[0.2],"stds":[1.5],"weights":[0.9],"bias":-6}}}`
	var m FraudModel
	if err := json.Unmarshal([]byte(stored), &m); err != nil {
		t.Fatal(err)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]float64, len(FraudFeatures))
	idx, _ := FraudFeatureIndex([]string{"amount", "store_frauds_1d"})
	raw[idx[0]], raw[idx[1]] = 80, 25
	p, _ := s.Score(raw)
	order, store := sigmoid(-4+0.5*(80-40)/20), sigmoid(-6+0.9*(20-0.2)/1.5)
	if want := 1 - (1-order)*(1-store); math.Abs(p-want) > 1e-12 {
		t.Errorf("score %v, want %v", p, want)
	}
}
