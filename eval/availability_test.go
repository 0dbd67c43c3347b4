package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestAvailabilitySeed1 holds the model to what it reaches on the shelf
// world: better log-loss than both baselines, an ECE of at most 0.03, a
// higher AUC and found rate among IN_STOCK items than the last event's,
// every segment scored, reproducibly.
func TestAvailabilitySeed1(t *testing.T) {
	t.Parallel()
	r, err := Availability(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range r.Baselines {
		if !(r.Model.LogLoss < b.LogLoss) {
			t.Errorf("model log-loss %v is not below %s's %v", r.Model.LogLoss, name, b.LogLoss)
		}
	}
	if len(r.Baselines) != 2 {
		t.Errorf("baselines %v, want global_rate and last_event", r.Baselines)
	}
	if r.Model.ECE > 0.03 {
		t.Errorf("model ECE %v > 0.03", r.Model.ECE)
	}
	if r.Model.AUC <= r.Baselines[BaselineLastEvent].AUC || r.Baselines[BaselineGlobalRate].AUC != 0.5 {
		t.Errorf("AUC: model %v, last_event %v, global_rate %v", r.Model.AUC, r.Baselines[BaselineLastEvent].AUC, r.Baselines[BaselineGlobalRate].AUC)
	}
	if r.Data.EvalPicks < 10000 || r.Data.TrainPicks < 5000 || r.Data.EvalProbes < 10000 {
		t.Errorf("too few picks or probes: %+v", r.Data)
	}
	if last := r.Baselines[BaselineLastEvent]; !(r.Model.InStockFoundRate > last.InStockFoundRate) {
		t.Errorf("found rate of picks shown IN_STOCK: model %v, last_event %v", r.Model.InStockFoundRate, last.InStockFoundRate)
	}
	for _, seg := range segmentNames {
		got := r.Model.Segments[seg]
		if got.Probes < 200 {
			t.Errorf("segment %s: %d probes", seg, got.Probes)
		}
		if g := r.Baselines[BaselineGlobalRate].Segments[seg]; !(got.LogLoss < g.LogLoss) {
			t.Errorf("segment %s: model log-loss %v, global rate %v", seg, got.LogLoss, g.LogLoss)
		}
	}
	// Showing fewer, likelier items finds more of them.
	sel := r.Model.Selection
	if len(sel) != 3 || !(sel[0].FoundRate > sel[1].FoundRate && sel[1].FoundRate > sel[2].FoundRate && sel[2].FoundRate > r.Data.EvalFoundRate) {
		t.Errorf("selection %+v, overall found rate %v", sel, r.Data.EvalFoundRate)
	}

	// The JSON contract, byte for byte the same on a second run.
	first, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Availability(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := json.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("seed 1 twice, different JSON:\n%s\n%s", first, second)
	}
	var doc struct {
		Seed      *int64                                `json:"seed"`
		Model     map[string]any                        `json:"model"`
		Baselines map[string]map[string]json.RawMessage `json:"baselines"`
	}
	if err := json.Unmarshal(first, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Seed == nil || *doc.Seed != 1 {
		t.Errorf("seed missing or wrong in %s", first)
	}
	for _, key := range []string{"log_loss", "brier", "ece", "auc", "empty_shown_in_stock", "in_stock_found_rate", "segments"} {
		if _, ok := doc.Model[key]; !ok {
			t.Errorf("model.%s missing or not a number in %s", key, first)
		}
		for _, name := range []string{BaselineGlobalRate, BaselineLastEvent} {
			if _, ok := doc.Baselines[name][key]; !ok {
				t.Errorf("baselines.%s.%s missing in %s", name, key, first)
			}
		}
	}

	text := r.String()
	for _, want := range []string{"seed 1", "model", BaselineGlobalRate, BaselineLastEvent, "log_loss"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func TestScore(t *testing.T) {
	t.Parallel()
	preds := []prediction{
		{p: 0.9, found: true, onShelf: true},
		{p: 0.8, found: true, onShelf: true},
		{p: 0.8, found: false, onShelf: true},
		{p: 0.3, found: true, onShelf: true},
		{p: 0.2, found: false, onShelf: false},
	}
	m := score(preds)
	wantLogLoss := -(math.Log(0.9) + math.Log(0.8) + math.Log(0.2) + math.Log(0.3) + math.Log(0.8)) / 5
	wantBrier := (0.01 + 0.04 + 0.64 + 0.49 + 0.04) / 5
	// Bins: 0.2 → [0.2,0.3) alone, 0.3 alone, 0.8 ×2, 0.9 alone.
	wantECE := (0.2 + 0.7 + 2*0.3 + 0.1) / 5
	// 3 found × 2 not found = 6 pairs: 0.9, 0.8 and 0.3 beat 0.2; 0.9 beats the
	// not-found 0.8; found 0.8 ties it (half); 0.3 loses to it.
	wantAUC := (3 + 1 + 0.5) / 6
	for name, got := range map[string][2]float64{
		"log_loss": {m.LogLoss, wantLogLoss}, "brier": {m.Brier, wantBrier}, "ece": {m.ECE, wantECE}, "auc": {m.AUC, wantAUC},
	} {
		if math.Abs(got[0]-got[1]) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got[0], got[1])
		}
	}
	// Top 50% is 2.5 picks: 0.9, then half of the 0.8 pair (one found of two).
	if s := m.Selection[0]; s.Share != 0.5 || math.Abs(s.FoundRate-(1+0.75)/2.5) > 1e-12 || s.OnShelfRate != 1 {
		t.Errorf("top 50%% = %+v", s)
	}
	// A constant predictor selects the base rate at every level.
	constant := score([]prediction{{p: 0.7, found: true}, {p: 0.7, found: false}, {p: 0.7, found: true}, {p: 0.7, found: true}})
	for _, s := range constant.Selection {
		if math.Abs(s.FoundRate-0.75) > 1e-12 {
			t.Errorf("constant predictor selection %+v, want found rate 0.75", s)
		}
	}
	if constant.AUC != 0.5 {
		t.Errorf("constant predictor AUC %v, want 0.5", constant.AUC)
	}
}

// Refitting the priors every 24 h on every pick so far, as a nightly
// `aisle batch priors` does, is what the evaluation of a deployment with
// the CronJob is: four fits over the scored days, a better log-loss and
// ECE than one fit on the first days (seed 1: 0.3395 -> 0.3349, ECE
// 0.0185 -> 0.0118), and an interval too short for a schedule refused.
func TestAvailabilityRefitsEvery24h(t *testing.T) {
	t.Parallel()
	once, err := Availability(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	nightly, err := Availability(1, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if once.Data.Fits != 1 || nightly.Data.Fits != 4 || nightly.Data.RefitEveryHours != 24 {
		t.Errorf("fits: %d once, %d nightly (every %vh); want 1 and 4 every 24h", once.Data.Fits, nightly.Data.Fits, nightly.Data.RefitEveryHours)
	}
	if nightly.Data.TrainPicks != once.Data.TrainPicks || nightly.Data.EvalProbes != once.Data.EvalProbes {
		t.Errorf("nightly refits scored other data: %+v, once %+v", nightly.Data, once.Data)
	}
	if !(nightly.Model.LogLoss < once.Model.LogLoss && nightly.Model.ECE < once.Model.ECE) {
		t.Errorf("nightly refits: log-loss %v, ECE %v; one fit %v, %v", nightly.Model.LogLoss, nightly.Model.ECE, once.Model.LogLoss, once.Model.ECE)
	}
	if !strings.Contains(nightly.String(), "refitting every 24h on every pick so far (4 fits)") {
		t.Errorf("report does not say it refitted:\n%s", nightly.String())
	}
	if _, err := Availability(1, 30*time.Minute); err == nil || !strings.Contains(err.Error(), "at least 1h") {
		t.Errorf("refit every 30m: %v, want it refused", err)
	}
}
