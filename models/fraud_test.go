package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestFraudFeaturesArePointInTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mem := NewVelocityMemory()
	order := func(id, user, card, device, address string, cents int64, at time.Time) FraudOrder {
		return FraudOrder{OrderID: id, UserID: user, StoreID: "s-1", Card: card, Device: device, IP: "10.0.0.1", Address: address, AmountCents: cents, At: at}
	}
	// u-1's history: four 20.00 orders over ten days on card-1, dev-1.
	for i := range 4 {
		mem.Order(order("o-"+string(rune('a'+i)), "u-1", "card-1", "dev-1", "addr-1", 2000, t0.AddDate(0, 0, -10+3*i)))
	}
	// Declines on card-2 from dev-2, 15 and 5 minutes before; another user on dev-2.
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(-15 * time.Minute)})
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(-5 * time.Minute)})
	mem.Order(order("o-x", "u-2", "card-3", "dev-2", "addr-1", 1000, t0.Add(-50*time.Minute)))
	// Something in a later bucket must not count (within the scoring time's
	// own bucket, later events cannot be told apart; serving and replay
	// never hold them).
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(2 * time.Hour)})

	o := order("o-now", "u-1", "card-2", "dev-2", "addr-1", 12000, t0)
	got := map[string]float64{}
	for i, v := range ComputeFraudFeatures(o, mem.Snapshot(o)) {
		got[FraudFeatures[i].Name] = v
	}
	for name, want := range map[string]float64{
		"amount":                   120,
		"amount_vs_usual":          6, // 120 against a 20.00 mean
		"first_order":              0,
		"account_age_days":         10,
		"user_orders_24h":          0,
		"new_device":               1,
		"new_card":                 1,
		"new_address":              0,
		"card_failed_payments_10m": 1, // the one 15 minutes ago is out, the future one too
		"card_failed_payments_24h": 2,
		"device_cards_24h":         2, // card-3 ordered, card-2 declined (and scored now)
		"device_accounts_7d":       2,
		"address_accounts_7d":      2,
		"device_orders_1h":         1,
		"ip_accounts_24h":          2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if mem.Order(order("o-a", "u-1", "card-1", "dev-1", "addr-1", 2000, t0)) {
		t.Error("an order recorded twice")
	}
}

// Reasons read as an analyst reads them: plurals, units and currency, and
// the card's, device's and address's risk, carrying the same labels, as one.
func TestReasonsReadRight(t *testing.T) {
	t.Parallel()
	describe := map[string]func(float64) string{}
	for _, f := range FraudFeatures {
		describe[f.Name] = f.Describe
	}
	for _, tc := range []struct {
		feature string
		value   float64
		want    string
	}{
		{"address_cards_7d", 1, "1 card paid for deliveries to this address in the last 7 days"},
		{"user_orders_1h", 1, "1 earlier order by this account in the last hour"},
		{"user_orders_1h", 2, "2 earlier orders by this account in the last hour"},
		{"amount", 450, "order amount 450.00 USD"},
		{"account_age_days", 1.0 / 24 / 60, "account first ordered 1 minute ago"},
		{"account_age_days", 0, "no earlier order by this account"},
		{"card_risk_7d", 0.25, "25% fraud among labelled orders on this card (labels of the last 7 complete days, shrunk toward 1%)"},
	} {
		if got := describe[tc.feature](tc.value); got != tc.want {
			t.Errorf("%s(%v) = %q, want %q", tc.feature, tc.value, got, tc.want)
		}
	}

	contributions := []Contribution{
		{Feature: "card_risk", Value: 0.4, Contribution: 1.2},
		{Feature: "device_risk", Value: 0.4, Contribution: 1.1},
		{Feature: "new_device", Value: 1, Contribution: 0.9},
		{Feature: "address_risk", Value: 0.4, Contribution: 0.8},
		{Feature: "store_risk", Value: 0.1, Contribution: 0.7},
		{Feature: "card_risk_7d", Value: 0.4, Contribution: 0.6}, // another window: its own reason
	}
	got := Reasons(contributions, 3)
	want := "40% fraud among labelled orders on this card, from this device and to this delivery address (labels of the last 30 complete days, shrunk toward 1%)"
	if len(got) != 3 || got[0].Description != want || math.Abs(got[0].Contribution-3.1) > 1e-9 {
		t.Fatalf("reasons %+v, want first one for the three equal 30-day risks (%q, 3.1)", got, want)
	}
	if got[1].Feature != "new_device" || got[2].Feature != "store_risk" {
		t.Errorf("reasons %+v, want the new device then the store's risk next", got)
	}
}

// A history in which older accounts are the fraudulent ones (a young
// marketplace whose fraud rings bought aged accounts) teaches account age the
// wrong way round: the fit leaves it out and says so.
func TestFitLeavesOutFeaturesLearnedTheWrongWayRound(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	ageAt, declinesAt := slices.Index(FraudFeatureNames(), "account_age_days"), slices.Index(FraudFeatureNames(), "card_failed_payments_10m")
	var X [][]float64
	var y []bool
	for i := range 2000 {
		fraud := i%10 == 0
		row := make([]float64, len(FraudFeatures))
		row[ageAt] = rng.Float64() * 20
		if fraud {
			row[ageAt] += 30
			row[declinesAt] = float64(rng.IntN(6))
		}
		X, y = append(X, row), append(y, fraud)
	}
	m, dropped, err := FitFraudModel(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0].Feature != "account_age_days" || dropped[0].Weight <= 0 {
		t.Fatalf("left out %+v, want account_age_days", dropped)
	}
	if slices.Contains(m.Features, "account_age_days") || !slices.Contains(m.Features, "card_failed_payments_10m") {
		t.Errorf("the model's features %v", m.Features)
	}
	if bad, _ := m.Contradictions(X, y); len(bad) != 0 {
		t.Errorf("the shipped model still contradicts: %+v", bad)
	}
}

// Card testing spreads its declines over many cards: a device with many
// declines is riskier, and of two such devices the one whose declines were
// all on this card (a customer retrying) less so. The fit then weighs the
// card's declines against the device's, below zero, though alone they go
// with fraud; that is a feature used beside a correlated one, not one
// learned the wrong way round, and the fit keeps it.
func TestFitKeepsAFeatureWeighedAgainstACorrelatedOne(t *testing.T) {
	t.Parallel()
	names := FraudFeatureNames()
	cardAt, deviceAt := slices.Index(names, "card_failed_payments_10m"), slices.Index(names, "device_failed_payments_1h")
	rng := rand.New(rand.NewPCG(7, 8))
	var X [][]float64
	var y []bool
	for i := range 4000 {
		row := make([]float64, len(FraudFeatures))
		fraud := i%20 == 0
		switch {
		case fraud: // card testing: many declines on the device, few on each card
			row[deviceAt] = float64(3 + rng.IntN(6))
			row[cardAt] = float64(1 + rng.IntN(2))
		case i%20 < 4: // a customer retrying one card
			row[cardAt] = float64(1 + rng.IntN(4))
			row[deviceAt] = row[cardAt]
		}
		X, y = append(X, row), append(y, fraud)
	}
	m, dropped, err := FitFraudModel(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 0 {
		t.Errorf("left out %+v as learned the wrong way round", dropped)
	}
	j := slices.Index(m.Features, "card_failed_payments_10m")
	if j < 0 || m.Logistic.Weights[j] >= 0 {
		t.Fatalf("features %v, weights %v: want the card's declines kept, weighed below zero beside the device's", m.Features, m.Logistic.Weights)
	}
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	cardTesting := make([]float64, len(FraudFeatures))
	cardTesting[deviceAt], cardTesting[cardAt] = 6, 1
	p, contributions := s.Score(cardTesting)
	if r := Reasons(contributions, 3); p < DefaultFraudThresholds().ReviewAt || slices.ContainsFunc(r, func(c Contribution) bool { return c.Feature == "card_failed_payments_10m" }) {
		t.Errorf("a card-testing order scores %.3f with reasons %+v: want above review, the card's declines not among them", p, r)
	}
}

// Delayed-label risk over 1, 7 and 30 days: a label counts in a window once
// its day is over and while the day is inside it, so a store defrauded this
// week reads riskier over 7 days than one whose fraud was labelled weeks ago.
func TestLabelRiskWindowsTellRecentFromOld(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	o := FraudOrder{OrderID: "o-now", UserID: "u-1", StoreID: "s-recent", Card: "c", Device: "d", IP: "10.0.0.1", Address: "a", At: now}
	state := EntityState{}
	state.Apply(LabelOps(EntityStore, time.Time{}, now.AddDate(0, 0, -1), true))  // yesterday
	state.Apply(LabelOps(EntityStore, time.Time{}, now.AddDate(0, 0, -5), true))  // this week
	state.Apply(LabelOps(EntityStore, time.Time{}, now.AddDate(0, 0, -20), true)) // weeks ago
	state.Apply(LabelOps(EntityStore, time.Time{}, now, true))                    // today: not yet
	got := map[string]float64{}
	for i, v := range ComputeFraudFeatures(o, FraudSnapshot{Store: state}) {
		got[FraudFeatures[i].Name] = v
	}
	shrunk := func(fraud, labelled float64) float64 { return (fraud + 0.02) / (labelled + 2) }
	for name, want := range map[string]float64{
		"store_risk_1d": shrunk(1, 1), "store_risk_7d": shrunk(2, 2), "store_risk": shrunk(3, 3),
	} {
		if math.Abs(got[name]-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	old := EntityState{}
	old.Apply(LabelOps(EntityStore, time.Time{}, now.AddDate(0, 0, -20), true))
	old.Apply(LabelOps(EntityStore, time.Time{}, now.AddDate(0, 0, -21), true))
	for i, v := range ComputeFraudFeatures(o, FraudSnapshot{Store: old}) {
		if FraudFeatures[i].Name == "store_risk_7d" && v != shrunk(0, 0) {
			t.Errorf("labels of three weeks ago count in the 7-day risk: %v", v)
		}
	}
}
