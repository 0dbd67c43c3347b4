package availability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// unusedPublisher fails the test if the service publishes: loading priors
// must not.
type unusedPublisher struct{ t *testing.T }

func (p unusedPublisher) Publish(context.Context, aisle.Event, string) (aisle.Receipt, error) {
	p.t.Error("published while loading priors")
	return aisle.Receipt{}, errors.New("unused")
}

func (p unusedPublisher) PublishEvents(context.Context, []*aisle.Decoded) ([]string, error) {
	p.t.Error("published while loading priors")
	return nil, errors.New("unused")
}

func (p unusedPublisher) PublishBatch(context.Context, []*aisle.Decoded) ([]aisle.Receipt, error) {
	p.t.Error("published while loading priors")
	return nil, errors.New("unused")
}

// Finding (issue 18): nothing told an operator that serving had loaded new
// priors. A load of priors other than those served is logged and sets the
// fitted-at gauge; a refresh that finds the same priors says nothing.
func TestRefreshPriorsTellsTheOperator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	svc, err := availability.NewService(ctx, db, featurestest.MustOpen(t), unusedPublisher{t}, models.DefaultAvailabilityModel(), log)
	if err != nil {
		t.Fatal(err)
	}
	fitted := time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)
	priors := models.DefaultAvailabilityPriors()
	priors.FittedAt, priors.Observations = fitted, 1234
	priors.ShopperMiss = models.MissRate{Missed: 30, Confirmed: 1000}
	if err := db.SaveAvailabilityPriors(ctx, priors); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := svc.RefreshPriors(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var loads []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "serving new availability priors" {
			loads = append(loads, rec)
		}
	}
	if len(loads) != 2 {
		t.Fatalf("logged %d loads, want the defaults' and the new fit's:\n%s", len(loads), logs.String())
	}
	if got := loads[1]; got["fitted_at"] != fitted.Format(time.RFC3339) || got["observations"] != 1234.0 {
		t.Errorf("new fit logged as %v", got)
	}
	if got := gauge(t, "aisle_availability_priors_fitted_timestamp_seconds"); got != float64(fitted.Unix()) {
		t.Errorf("fitted-at gauge %v, want %v", got, fitted.Unix())
	}
}

func gauge(t *testing.T, name string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
