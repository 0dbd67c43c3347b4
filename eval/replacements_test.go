package eval

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestReplacementsBeatBaselines holds the model to its target on seeds 1–3:
// a better hit rate@5 than both baselines; and the same seed gives the same
// report.
func TestReplacementsBeatBaselines(t *testing.T) {
	t.Parallel()
	for _, seed := range []int64{1, 2, 3} {
		r, err := Replacements(seed)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", r)
		if len(r.Baselines) != 2 {
			t.Fatalf("baselines %v, want %s and %s", r.Baselines, BaselineMostAvailable, BaselineMostPopular)
		}
		for name, b := range r.Baselines {
			if !(r.Model.HR > b.HR && r.Model.MRR > b.MRR) {
				t.Errorf("seed %d: model %+v does not beat %s %+v", seed, r.Model, name, b)
			}
		}
		if r.Data.Cases < 1000 || r.Data.History < 1000 {
			t.Errorf("seed %d: too little data: %+v", seed, r.Data)
		}
		if seed != 1 {
			continue
		}
		again, err := Replacements(seed)
		if err != nil || !reflect.DeepEqual(r, again) {
			t.Errorf("seed 1 twice: %+v then %+v (%v)", r, again, err)
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Seed      *int64                        `json:"seed"`
			Model     map[string]float64            `json:"model"`
			Baselines map[string]map[string]float64 `json:"baselines"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Seed == nil || len(doc.Model) != 2 || len(doc.Baselines[BaselineMostPopular]) != 2 {
			t.Errorf("JSON %s does not follow {seed, model: {hr_at_5, mrr_at_5}, baselines}: %v", raw, err)
		}
		if _, ok := doc.Model["hr_at_5"]; !ok {
			t.Errorf("JSON %s has no model.hr_at_5", raw)
		}
	}
}
