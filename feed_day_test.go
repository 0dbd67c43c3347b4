package main

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// Issue 18 (the eval targets): the hour of the day and a zero's own
// calibration, learnt by the priors fit, reach the answer. From a feed on
// Kafka to the answer, under priors that shift every hour down by 2 on
// the log-odds scale and calibrate zeros to 0.5: a fresh count of 8 is
// answered as the model scores it with those priors, well below the same
// count under the same priors without the hour shifts, and a fresh zero
// is answered 0.5.
func TestFeedShelfDayReachesTheAnswer(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(2)
	eight, zero := products[0], products[1]

	priors := models.DefaultAvailabilityPriors()
	priors.FittedAt, priors.Observations = time.Now().UTC().Truncate(time.Second), 163
	priors.HourShifts = make([]float64, 24)
	for h := range priors.HourShifts {
		priors.HourShifts[h] = -2
	}
	priors.FeedZeroCalibration = models.Calibration{Points: []models.CalibrationPoint{{Raw: 0, Calibrated: 0.5}, {Raw: 1, Calibrated: 0.5}}}
	ts.insertPriors(priors)

	counted := time.Now().UTC().Truncate(time.Millisecond).Add(-10 * time.Minute)
	level := func(product string, qty int) aisle.Event {
		return feedLevel(t, fmt.Sprintf("day-%s-%s", store.ID, product), store.ID, product, qty, counted, counted.Add(5*time.Minute))
	}
	ts.publish(level(eight, 8), level(zero, 0))

	var items []itemAvailability
	eventually(t, 90*time.Second, func() string {
		if !ts.servesPriors(priors) {
			return "the priors are not served yet"
		}
		items = ts.availability(store.ID, products...)
		return countsApplied(ts, store.ID, products, counted)
	})
	model := models.DefaultAvailabilityModel()
	now := time.Now()
	e := models.AvailabilityEvidence{FeedQuantity: 8, FeedAt: counted.Add(5 * time.Minute), CountedAt: counted, LevelSince: counted}
	item := models.ShelfItem{StoreID: store.ID, ProductID: eight, Category: ""}
	want := model.ProbabilityOf(e, priors, item, now)
	unshifted := priors
	unshifted.HourShifts = nil
	without := model.ProbabilityOf(e, unshifted, item, now)
	// The answer is a little older than now; a count minutes old moves
	// little in the time the query took.
	if got := items[0].Probability; math.Abs(got-want) > 0.03 || !(got < without-0.2) {
		t.Errorf("a fresh count of 8: P(on shelf) %.3f, want the model's %.3f under hour shifts of -2 (%.3f without them)", got, want, without)
	}
	if got := items[1].Probability; math.Abs(got-0.5) > 1e-6 {
		t.Errorf("a fresh zero: P(on shelf) %.6f, want the zeros' calibration, 0.5", got)
	}
}
