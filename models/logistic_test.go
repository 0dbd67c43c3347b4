package models

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTrainLogisticRecoversWeights(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		bias, w1, w2 float64
	}{
		{"rare positives", -4, 2, -1},
		{"balanced", 0, 1, 0.5},
		{"one input irrelevant", -2, 1.5, 0},
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		var X [][]float64
		var y []bool
		for range 20000 {
			a, b := rng.NormFloat64(), 3+2*rng.NormFloat64()
			// b is given unstandardised: its true weight per standard
			// deviation is w2.
			p := sigmoid(tc.bias + tc.w1*a + tc.w2*(b-3)/2)
			X = append(X, []float64{a, b, 7}) // and a constant input
			y = append(y, rng.Float64() < p)
		}
		m, err := TrainLogistic(X, y, LogisticOptions{L2: 0.01, MaxIterations: 50})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"bias", m.Bias, tc.bias}, {"w1", m.Weights[0], tc.w1}, {"w2", m.Weights[1], tc.w2}, {"constant", m.Weights[2], 0}} {
			if math.Abs(c.got-c.want) > 0.15 {
				t.Errorf("%s: %s = %.3f, want %.3f ± 0.15", tc.name, c.what, c.got, c.want)
			}
		}
	}
}

func TestTrainLogisticStaysFiniteOnSeparableData(t *testing.T) {
	t.Parallel()
	X := [][]float64{{0}, {1}, {2}, {3}, {10}, {11}}
	y := []bool{false, false, false, false, true, true}
	m, err := TrainLogistic(X, y, DefaultLogisticOptions())
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := m.Score([]float64{1})
	hi, _ := m.Score([]float64{11})
	if math.IsNaN(m.Bias) || math.IsInf(m.Weights[0], 0) || !(hi > 0.5 && lo < 0.5) {
		t.Errorf("model %+v scores %v and %v", m, lo, hi)
	}
	if _, err := TrainLogistic(X, make([]bool, len(X)), DefaultLogisticOptions()); err == nil {
		t.Error("training without positives succeeded")
	}
}

func TestFraudThresholdsDecide(t *testing.T) {
	t.Parallel()
	th := FraudThresholds{ReviewAt: 0.3, BlockAt: 0.8}
	for _, tc := range []struct {
		score float64
		want  FraudDecision
	}{{0, FraudApprove}, {0.299, FraudApprove}, {0.3, FraudReview}, {0.79, FraudReview}, {0.8, FraudBlock}, {1, FraudBlock}} {
		if got := th.Decide(tc.score); got != tc.want {
			t.Errorf("Decide(%v) = %s, want %s", tc.score, got, tc.want)
		}
	}
	for _, bad := range []FraudThresholds{{0, 0.5}, {0.6, 0.5}, {0.5, 1.1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

func TestFraudScorerReasons(t *testing.T) {
	t.Parallel()
	names := FraudFeatureNames()
	m := FraudModel{Features: names, Logistic: LogisticModel{
		Means: make([]float64, len(names)), Stds: make([]float64, len(names)), Weights: make([]float64, len(names)), Bias: -3,
	}}
	for j := range names {
		m.Logistic.Stds[j] = 1
	}
	idx, _ := FraudFeatureIndex([]string{"card_failed_payments_10m", "new_device", "amount"})
	m.Logistic.Weights[idx[0]] = 1   // log1p(7) ≈ 2.08
	m.Logistic.Weights[idx[1]] = 0.8 // 0.8
	m.Logistic.Weights[idx[2]] = -0.01
	s, err := NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]float64, len(names))
	raw[idx[0]], raw[idx[1]], raw[idx[2]] = 7, 1, 40
	p, contributions := s.Score(raw)
	if want := sigmoid(-3 + math.Log1p(7) + 0.8 - 0.4); math.Abs(p-want) > 1e-12 {
		t.Errorf("score %v, want %v", p, want)
	}
	reasons := Reasons(contributions, 3)
	if len(reasons) != 2 || reasons[0].Feature != "card_failed_payments_10m" || reasons[1].Feature != "new_device" {
		t.Fatalf("reasons %+v, want the declines then the new device (the amount lowers the score)", reasons)
	}
	if want := "7 failed payments on this card in the last 10 minutes"; reasons[0].Description != want {
		t.Errorf("description %q, want %q", reasons[0].Description, want)
	}

	// A count whose learned weight says fewer declines are riskier is never
	// given as a reason: "7 failed payments" would read backwards.
	m.Logistic.Means[idx[0]] = math.Log1p(20)
	m.Logistic.Weights[idx[0]] = -1
	s, err = NewFraudScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	_, low := s.Score(raw)
	if low[0].Feature != "card_failed_payments_10m" || low[0].Contribution <= minReasonContribution {
		t.Fatalf("top contribution %+v, want the declines, below the mean", low[0])
	}
	if r := Reasons(low, 3); len(r) != 1 || r[0].Feature != "new_device" {
		t.Errorf("reasons %+v, want only the new device", r)
	}

	if none := Reasons(contributions, 0); none == nil || len(none) != 0 {
		t.Errorf("no reasons = %#v, want an empty list", none)
	}
	if calm := Reasons(contributions[2:], 3); calm == nil || len(calm) != 0 {
		t.Errorf("reasons below the minimum = %#v, want an empty list", calm)
	}

	m.Features = append([]string{"shoe_size"}, names[1:]...)
	if _, err := NewFraudScorer(m); err == nil || !strings.Contains(err.Error(), "shoe_size") {
		t.Errorf("a model with an unknown feature: %v", err)
	}
}
