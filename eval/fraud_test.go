package eval_test

import (
	"testing"

	"github.com/aisle/aisle/eval"
)

// The targets on the simulated marketplace: AUC ≥ 0.85 and average
// precision ≥ 0.5, above the hand-written rules. (About 15 s.)
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
	if r.Model.AUC < 0.85 || r.Model.AveragePrecision < 0.5 {
		t.Errorf("model %+v misses AUC >= 0.85, AP >= 0.5", r.Model)
	}
	if r.Model.AUC <= rules.AUC || r.Model.AveragePrecision <= rules.AveragePrecision || r.Model.CardPrecisionAt100 <= rules.CardPrecisionAt100 {
		t.Errorf("model %+v does not beat the rules %+v", r.Model, rules)
	}
	if random.AUC < 0.4 || random.AUC > 0.6 || random.AveragePrecision > 0.05 {
		t.Errorf("random baseline %+v is not random", random)
	}
	if len(r.Days) != 7 || r.Data.FraudRate < 0.005 || r.Data.FraudRate > 0.02 {
		t.Errorf("%d test days, fraud rate %.4f", len(r.Days), r.Data.FraudRate)
	}
}
