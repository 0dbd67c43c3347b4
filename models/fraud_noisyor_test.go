package models

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Fraud arrives two ways: through the customer (here, declines on the card)
// or through a compromised store, where every order is fraud whatever the
// customer looks like. The fit learns both mechanisms, a store's fraud labels
// of yesterday raise an old, declines-free customer's order above review,
// and the reasons name what explains each score.
func TestFitLearnsTheStoreMechanism(t *testing.T) {
	t.Parallel()
	names := FraudFeatureNames()
	ageAt, declinesAt, storeAt := slices.Index(names, "account_age_days"), slices.Index(names, "card_failed_payments_10m"), slices.Index(names, "store_frauds_1d")
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
			row[storeAt] = float64(5 + rng.IntN(10))
			fraud = true
		case i%40 == 2: // a store with a fraud or two yesterday, not compromised
			row[storeAt] = float64(1 + rng.IntN(2))
		}
		X, y = append(X, row), append(y, fraud)
	}
	m, _, err := FitFraudModel(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	if m.Store == nil || !slices.Equal(m.Store.Features, StoreFraudFeatures) || m.Store.Logistic.Weights[0] <= 0 {
		t.Fatalf("store mechanism %+v, want a positive weight on %v", m.Store, StoreFraudFeatures)
	}
	if slices.ContainsFunc(m.Features, func(f string) bool { return strings.HasPrefix(f, "store_") }) {
		t.Errorf("the order mechanism reads the store's labels: %v", m.Features)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	atStore := make([]float64, len(FraudFeatures))
	atStore[ageAt], atStore[storeAt] = 200, 8
	p, contributions := s.Score(atStore)
	if p < DefaultFraudThresholds().ReviewAt {
		t.Errorf("an order at a store with 8 frauds yesterday scores %.3f, below review", p)
	}
	want := "8 fraud orders at this store in yesterday's labels"
	if r := Reasons(contributions, 3); len(r) == 0 || r[0].Description != want {
		t.Errorf("reasons %+v, want first %q", r, want)
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
