package eval

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestRecommendationsSeed1 holds the model to its target: better HR@20 and
// MRR@20 than both baselines.
func TestRecommendationsSeed1(t *testing.T) {
	t.Parallel()
	r, err := Recommendations(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	if len(r.Baselines) != 2 {
		t.Fatalf("baselines %v, want popularity and sequential_rules", r.Baselines)
	}
	for name, b := range r.Baselines {
		if !(r.Model.HR > b.HR && r.Model.MRR > b.MRR) {
			t.Errorf("model %+v does not beat %s %+v on both metrics", r.Model, name, b)
		}
	}
	if r.Data.Predictions < 10000 || r.Data.TrainOrders < 5000 {
		t.Errorf("too little data: %+v", r.Data)
	}

	var doc struct {
		Seed      *int64                        `json:"seed"`
		Model     map[string]float64            `json:"model"`
		Baselines map[string]map[string]float64 `json:"baselines"`
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Seed == nil || *doc.Seed != 1 {
		t.Fatalf("JSON %s: %v", raw, err)
	}
	for _, m := range append([]map[string]float64{doc.Model}, doc.Baselines["popularity"], doc.Baselines["sequential_rules"]) {
		if _, ok := m["hr_at_20"]; !ok || len(m) != 2 {
			t.Errorf("metrics %v, want exactly hr_at_20 and mrr_at_20 (JSON %s)", m, raw)
		}
	}
}

// The same seed gives byte-identical JSON (on a smaller world, to be quick).
func TestRecommendationsIsDeterministic(t *testing.T) {
	t.Parallel()
	small := shoppingExperiment{customers: 300, days: 10, trainDays: 7}
	var runs [2][]byte
	for i := range runs {
		r, err := recommendations(7, small)
		if err != nil {
			t.Fatal(err)
		}
		if runs[i], err = json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(runs[0], runs[1]) {
		t.Fatalf("seed 7 twice, different JSON:\n%s\n%s", runs[0], runs[1])
	}
	other, err := recommendations(8, small)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(other); bytes.Equal(again, runs[0]) {
		t.Errorf("seeds 7 and 8 gave the same report: the seed is not used")
	}
}
