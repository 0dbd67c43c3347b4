package eval

import (
	"math"
	"testing"
)

func TestFraudMetrics(t *testing.T) {
	t.Parallel()
	orders := func(scores []float64, fraud []bool) []scoredOrder {
		out := make([]scoredOrder, len(scores))
		for i := range scores {
			out[i] = scoredOrder{score: scores[i], fraud: fraud[i], card: string(rune('a' + i))}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		scores   []float64
		fraud    []bool
		auc, ap  float64
		cardPrec float64 // at 100, with fewer than 100 cards
	}{
		{"perfect", []float64{0.9, 0.8, 0.1, 0.05}, []bool{true, true, false, false}, 1, 1, 0.02},
		{"inverted", []float64{0.9, 0.8, 0.1, 0.05}, []bool{false, false, true, true}, 0, 0.5*(1.0/3) + 0.5*(2.0/4), 0.02},
		// Fraud ranked 1st and 3rd: precision 1 at recall ½, ⅔ at recall 1.
		{"mixed", []float64{0.9, 0.8, 0.7, 0.1}, []bool{true, false, true, false}, 0.75, 0.5 + 0.5*2.0/3, 0.02},
		// One tie group: AUC ½, AP the base rate.
		{"constant", []float64{0.5, 0.5, 0.5, 0.5}, []bool{true, false, false, false}, 0.5, 0.25, 0.01},
	} {
		m := fraudMetrics(orders(tc.scores, tc.fraud))
		if math.Abs(m.AUC-tc.auc) > 1e-12 || math.Abs(m.AveragePrecision-tc.ap) > 1e-12 || math.Abs(m.CardPrecisionAt100-tc.cardPrec) > 1e-12 {
			t.Errorf("%s: got %+v, want auc %v, ap %v, card precision %v", tc.name, m, tc.auc, tc.ap, tc.cardPrec)
		}
	}
}

func TestCardPrecisionCountsCardsOnce(t *testing.T) {
	t.Parallel()
	// Card x has three orders (one fraud); card y one legitimate order
	// scored higher than x's best; z a fraud scored lowest.
	orders := []scoredOrder{
		{0.7, false, "x"}, {0.2, true, "x"}, {0.6, false, "x"},
		{0.8, false, "y"},
		{0.1, true, "z"},
	}
	if got := cardPrecisionAtK(orders, 2); got != 0.5 {
		t.Errorf("precision@2 = %v, want 0.5 (y, then x: fraud by its second order)", got)
	}
	if got := cardPrecisionAtK(orders, 3); math.Abs(got-2.0/3) > 1e-12 {
		t.Errorf("precision@3 = %v, want 2/3", got)
	}
}
