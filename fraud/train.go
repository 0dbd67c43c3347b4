package fraud

import (
	"slices"
	"strings"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// Training needs this much labelled history: fewer orders or frauds fit
// noise, not fraud.
const (
	MinTrainingOrders = 200
	MinTrainingFrauds = 10
)

// holdoutShare is the newest share of the labelled orders that a first fit
// is scored on, for the version's metrics; the stored model is then fitted
// on all of them.
const holdoutShare = 0.2

// Train fits a model version to an event history (order.placed,
// payment.failed and order.labeled, in any order): every labelled order
// with its features as serving computed them when it was placed
// (Dataset replays the same velocity code), leaving out the features it
// learned the wrong way round (recorded in the metrics as
// "contradicts:FEATURE", their weight). The version's metrics
// are those of a fit on the older 80 % scored on the newest 20 %, so they
// say how the model does on orders it has not seen. EINVALID when the
// history has too few labelled orders or frauds.
func Train(events []*aisle.Decoded) (postgres.FraudModelVersion, error) {
	var rows []Example
	frauds := 0
	for _, ex := range Dataset(events) {
		if ex.Labeled {
			rows = append(rows, ex)
			if ex.Fraud {
				frauds++
			}
		}
	}
	if len(rows) < MinTrainingOrders || frauds < MinTrainingFrauds {
		return postgres.FraudModelVersion{}, aisle.Errorf(aisle.EINVALID,
			"not enough labelled history: %d labelled orders of which %d fraud; training needs at least %d and %d",
			len(rows), frauds, MinTrainingOrders, MinTrainingFrauds)
	}
	slices.SortStableFunc(rows, func(a, b Example) int { return a.Order.At.Compare(b.Order.At) })
	split := int(float64(len(rows)) * (1 - holdoutShare))
	metrics := map[string]float64{
		"rows":         float64(len(rows)),
		"frauds":       float64(frauds),
		"holdout_rows": float64(len(rows) - split),
	}
	if train, test := rows[:split], rows[split:]; hasBothOutcomes(train) && hasBothOutcomes(test) {
		m, _, err := fit(train)
		if err != nil {
			return postgres.FraudModelVersion{}, err
		}
		scorer, err := models.NewFraudScorer(m)
		if err != nil {
			return postgres.FraudModelVersion{}, err
		}
		scores := make([]float64, len(test))
		labels := make([]bool, len(test))
		for i, ex := range test {
			scores[i], _ = scorer.Score(ex.Features)
			labels[i] = ex.Fraud
		}
		metrics["holdout_auc"], metrics["holdout_average_precision"] = models.FraudRanking(scores, labels)
	}
	m, dropped, err := fit(rows)
	if err != nil {
		return postgres.FraudModelVersion{}, err
	}
	metrics["contradicting_features"] = float64(len(dropped))
	for _, c := range dropped {
		metrics["contradicts:"+c.Feature] = c.Weight
	}
	first := slices.MinFunc(rows, func(a, b Example) int { return a.Order.At.Compare(b.Order.At) })
	last := slices.MaxFunc(rows, func(a, b Example) int { return a.Order.At.Compare(b.Order.At) })
	return postgres.FraudModelVersion{
		WindowStart: first.Order.At.UTC(),
		WindowEnd:   last.Order.At.UTC(),
		Model:       m,
		Metrics:     metrics,
	}, nil
}

// fit fits a model to rows without the features it learns the wrong way
// round (models.FitFraudModel), which it returns.
func fit(rows []Example) (models.FraudModel, []models.Contradiction, error) {
	X := make([][]float64, len(rows))
	y := make([]bool, len(rows))
	for i, ex := range rows {
		X[i], y[i] = ex.Features, ex.Fraud
	}
	return models.FitFraudModel(X, y, models.DefaultLogisticOptions())
}

// Contradictions lists the features v was fitted without because the
// history taught them the wrong way round (a young marketplace makes old
// accounts look risky), with the weight each had: `aisle train fraud`
// prints them, so that they are not dropped silently.
func Contradictions(v postgres.FraudModelVersion) []models.Contradiction {
	var out []models.Contradiction
	for name, w := range v.Metrics {
		if f, ok := strings.CutPrefix(name, "contradicts:"); ok {
			out = append(out, models.Contradiction{Feature: f, Weight: w})
		}
	}
	slices.SortFunc(out, func(a, b models.Contradiction) int { return strings.Compare(a.Feature, b.Feature) })
	return out
}

func hasBothOutcomes(rows []Example) bool {
	return slices.ContainsFunc(rows, func(ex Example) bool { return ex.Fraud }) &&
		slices.ContainsFunc(rows, func(ex Example) bool { return !ex.Fraud })
}
