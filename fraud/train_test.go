package fraud_test

import (
	"strings"
	"testing"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
)

func TestTrainFitsAVersionFromHistory(t *testing.T) {
	t.Parallel()
	cat := simulate.SyntheticCatalog(5, simulate.CatalogSize{Stores: 30, Products: 50, Categories: 5, ProductsPerStore: 20})
	w := simulate.DefaultFraudWorld(5, cat.Stores)
	w.Days, w.Customers, w.ScenarioScale = 14, 1000, 0.5
	records, err := simulate.GenerateFraud(w)
	if err != nil {
		t.Fatal(err)
	}
	var events []*aisle.Decoded
	for _, r := range records {
		events = append(events, r.Event)
	}
	v, err := fraud.Train(events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.NewFraudScorer(v.Model); err != nil {
		t.Fatalf("the trained model does not load: %v", err)
	}
	if v.Metrics["rows"] < 1000 || v.Metrics["frauds"] < 10 || v.Metrics["holdout_auc"] < 0.7 {
		t.Errorf("metrics %v: want over 1,000 labelled rows, 10 frauds and a holdout AUC of 0.7, well above chance", v.Metrics)
	}
	if !v.WindowStart.Before(v.WindowEnd) || v.WindowStart.Before(w.Start) {
		t.Errorf("window %s..%s for a world starting %s", v.WindowStart, v.WindowEnd, w.Start)
	}

	_, err = fraud.Train(events[:50])
	if aisle.ErrorCode(err) != aisle.EINVALID || !strings.Contains(aisle.ErrorMessage(err), "not enough labelled history") {
		t.Errorf("training on 50 events: %v, want EINVALID about too little history", err)
	}
}
