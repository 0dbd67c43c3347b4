package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

func TestFraudRegistryAndAudit(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	model := models.FraudModel{Features: []string{"amount"}, Logistic: models.LogisticModel{Means: []float64{40}, Stds: []float64{20}, Weights: []float64{0.5}, Bias: -4}}

	if _, ok, err := db.ActiveFraudModelVersion(ctx); err != nil || ok {
		t.Fatalf("a fresh registry has an active version (%v, %v)", ok, err)
	}
	var versions []int64
	for range 2 {
		v, err := db.SaveFraudModel(ctx, postgres.FraudModelVersion{WindowStart: t0, WindowEnd: t0.Add(time.Hour), Model: model, Metrics: map[string]float64{"rows": 500}})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	for _, v := range []int64{versions[0], versions[1], versions[1]} {
		if err := db.ActivateFraudModel(ctx, v); err != nil {
			t.Fatalf("activate %d: %v", v, err)
		}
		if active, ok, err := db.ActiveFraudModelVersion(ctx); err != nil || !ok || active != v {
			t.Fatalf("active version %d (%v, %v), want %d", active, ok, err, v)
		}
	}
	if err := db.ActivateFraudModel(ctx, 999); aisle.ErrorCode(err) != aisle.ENOTFOUND {
		t.Errorf("activating a missing version: %v, want NOT_FOUND", err)
	}
	list, err := db.FraudModels(ctx)
	if err != nil || len(list) != 2 || !list[0].Active || list[1].Active || list[0].Model.Logistic.Bias != -4 || list[0].Metrics["rows"] != 500 {
		t.Fatalf("FraudModels = %+v, %v", list, err)
	}

	// An assessment without reasons, stored once; the second save returns the first.
	a := postgres.FraudAssessment{
		OrderID: "o-1", UserID: "u-1", StoreID: "s-1", AmountCents: 1200, OrderTime: t0, Score: 0.01,
		Decision: models.FraudApprove, Reasons: models.Reasons(nil, 3), Features: map[string]float64{"amount": 12},
		ModelVersion: versions[1], AssessedAt: t0.Add(time.Second),
	}
	if _, created, err := db.SaveFraudAssessment(ctx, a); err != nil || !created {
		t.Fatalf("first save: created %v, %v", created, err)
	}
	again := a
	again.Score = 0.9
	stored, created, err := db.SaveFraudAssessment(ctx, again)
	if err != nil || created || stored.Score != 0.01 || len(stored.Reasons) != 0 || stored.Features["amount"] != 12 {
		t.Fatalf("second save: %+v, created %v, %v; want the first assessment", stored, created, err)
	}
	labeled, err := db.LabelFraudAssessments(ctx, []postgres.FraudLabel{{EventID: "e-l1", OrderID: "o-1", Fraud: true, LabeledAt: t0.Add(48 * time.Hour)}, {EventID: "e-l2", OrderID: "o-404", Fraud: true}})
	if err != nil || !labeled[0] || labeled[1] {
		t.Fatalf("labels recorded %v, %v", labeled, err)
	}
	if labeled, _ := db.LabelFraudAssessments(ctx, []postgres.FraudLabel{{EventID: "e-l3", OrderID: "o-1", Fraud: false}}); labeled[0] {
		t.Error("a second label replaced the first")
	}
	got, err := db.FraudAssessment(ctx, "o-1")
	if err != nil || got.Fraud == nil || !*got.Fraud || !got.AssessedAt.Equal(a.AssessedAt) {
		t.Errorf("FraudAssessment = %+v, %v", got, err)
	}
	if _, err := db.FraudAssessment(ctx, "o-404"); aisle.ErrorCode(err) != aisle.ENOTFOUND {
		t.Errorf("unknown order: %v, want NOT_FOUND", err)
	}
}

func TestARetriedLabelStepCountsTheAssessmentsItLabelled(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	model := models.FraudModel{Features: []string{"amount"}, Logistic: models.LogisticModel{Means: []float64{40}, Stds: []float64{20}, Weights: []float64{0.5}}}
	version, err := db.SaveFraudModel(ctx, postgres.FraudModelVersion{WindowStart: t0, WindowEnd: t0, Model: model, Metrics: map[string]float64{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o-1", "o-2"} {
		a := postgres.FraudAssessment{OrderID: id, UserID: "u-1", StoreID: "s-1", AmountCents: 1200, OrderTime: t0,
			Decision: models.FraudApprove, Reasons: models.Reasons(nil, 3), Features: map[string]float64{}, ModelVersion: version, AssessedAt: t0}
		if _, _, err := db.SaveFraudAssessment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	label := postgres.FraudLabel{EventID: "e-l1", OrderID: "o-1", Fraud: true, LabeledAt: t0.Add(48 * time.Hour)}
	other := postgres.FraudLabel{EventID: "e-l2", OrderID: "o-2", Fraud: false, LabeledAt: t0.Add(7 * 24 * time.Hour)}
	// The first try records o-1's label and fails before reporting it.
	if _, err := db.RecordFraudLabels(ctx, []postgres.FraudLabel{label}); err != nil {
		t.Fatal(err)
	}
	labeled, err := db.LabelFraudAssessments(ctx, []postgres.FraudLabel{label, other})
	if err != nil {
		t.Fatal(err)
	}
	if !labeled[0] {
		t.Error("the retried step reports the label its first try recorded a duplicate")
	}
	if !labeled[1] {
		t.Error("the retried step's new label is not reported recorded")
	}
	if labeled, err := db.LabelFraudAssessments(ctx, []postgres.FraudLabel{label}); err != nil || labeled[0] {
		t.Errorf("a redelivery of a reported label is reported recorded (%v, %v)", labeled, err)
	}
	second := postgres.FraudLabel{EventID: "e-l3", OrderID: "o-1", Fraud: false, LabeledAt: t0.Add(72 * time.Hour)}
	if labeled, err := db.LabelFraudAssessments(ctx, []postgres.FraudLabel{second}); err != nil || labeled[0] {
		t.Errorf("a second label of the order is reported recorded (%v, %v)", labeled, err)
	}
	got, err := db.FraudAssessment(ctx, "o-1")
	if err != nil || got.Fraud == nil || !*got.Fraud || !got.LabeledAt.Equal(label.LabeledAt) {
		t.Errorf("o-1 = %+v, %v; want its first label", got, err)
	}
}
