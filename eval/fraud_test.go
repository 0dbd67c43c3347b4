package eval_test

import (
	"testing"

	"github.com/aisle/aisle/eval"
)

// The targets on the simulated marketplace: AUC ≥ 0.9 and average
// precision ≥ 0.6, above the hand-written rules; compromised stores ranked
// at an average precision of 0.6 or more, above what the rules and the
// amount do, and no better than the ceiling of knowing which stores are
// compromised. (About a minute: the fit of two mechanisms is five times that
// of one.)
func TestFraudEvaluationMeetsTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("the fraud evaluation simulates five weeks")
	}
	t.Parallel()
	r, err := eval.Fraud(1)
	if err != nil {
		t.Fatal(err)
	}
	rules, random := r.Baselines[eval.BaselineRules], r.Baselines[eval.BaselineRandom]
	if r.Model.AUC < 0.9 || r.Model.AveragePrecision < 0.6 {
		t.Errorf("model %+v misses AUC >= 0.9, AP >= 0.6", r.Model)
	}
	store := r.Scenarios["compromised_store"]
	if ap := store["model"].AveragePrecision; ap < 0.6 || ap <= store[eval.BaselineRules].AveragePrecision || ap <= store[eval.BaselineAmount].AveragePrecision || ap > r.StoreCompromiseCeiling {
		t.Errorf("compromised_store AP %.3f: want at least 0.6, above the rules (%.3f) and the amount (%.3f), at most the ceiling %.3f",
			ap, store[eval.BaselineRules].AveragePrecision, store[eval.BaselineAmount].AveragePrecision, r.StoreCompromiseCeiling)
	}
	if r.Model.AUC <= rules.AUC || r.Model.AveragePrecision <= rules.AveragePrecision || r.Model.CardPrecisionAt100 <= rules.CardPrecisionAt100 {
		t.Errorf("model %+v does not beat the rules %+v", r.Model, rules)
	}
	if random.AUC < 0.4 || random.AUC > 0.6 || random.AveragePrecision > 0.05 {
		t.Errorf("random baseline %+v is not random", random)
	}
	if labels := r.StoreLabelsReference; labels <= 0 || labels > r.StoreCompromiseCeiling {
		t.Errorf("compromised_store by yesterday's labels %.3f: want above 0 and at most the ceiling %.3f", labels, r.StoreCompromiseCeiling)
	}
	if len(r.Days) != 7 || r.Data.FraudRate < 0.005 || r.Data.FraudRate > 0.02 {
		t.Errorf("%d test days, fraud rate %.4f", len(r.Days), r.Data.FraudRate)
	}
}
