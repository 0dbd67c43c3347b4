package models

import (
	"math"
	"testing"
	"time"
)

// Finding (issue 18, feeds that lose weight as they age): a positive count
// that a shopper then found the product behind faded from its counting as
// if nobody had looked since, so a feed that counts every 6 hours, or one
// that stopped, weighed an eighth of a fresh count 6 hours on although a
// pick had just confirmed it. Priors fitted so (ConfirmedCountsFadeFromFound)
// fade it from the confirming pick; a count no shopper looked behind since,
// or one a shopper did not find, is weighed as before, and so is every
// count under priors fitted before (seeds 4-6: log-loss .3594/.3523/.3381
// -> .3566/.3502/.3366).
func TestConfirmedCountFadesFromThePick(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	now := t0.Add(48 * time.Hour)
	counted := m.ObserveCount(AvailabilityEvidence{}, 5, now.Add(-6*time.Hour), now.Add(-6*time.Hour))
	foundSince := m.ObservePick(counted, true, now.Add(-5*time.Minute))
	notFoundSince := m.ObservePick(counted, false, now.Add(-5*time.Minute))
	foundBefore := m.ObserveCount(m.ObservePick(AvailabilityEvidence{}, true, now.Add(-7*time.Hour)), 5, now.Add(-6*time.Hour), now.Add(-6*time.Hour))
	sixHoursOld := math.Exp2(-6 * time.Hour.Hours() / m.FeedHalfLife.Hours())
	fiveMinutesOld := math.Exp2(-5 * time.Minute.Hours() / m.FeedHalfLife.Hours())
	for _, tc := range []struct {
		name               string
		e                  AvailabilityEvidence
		fromFound, fitted0 float64 // freshness with and without fading from the found pick
	}{
		{"count 6 h old, found 5 min ago", foundSince, fiveMinutesOld, sixHoursOld},
		{"count 6 h old, nobody looked since", counted, sixHoursOld, sixHoursOld},
		{"count 6 h old, not found 5 min ago", notFoundSince, 0, 0},
		{"count 6 h old, found before it", foundBefore, sixHoursOld, sixHoursOld},
	} {
		if got := m.feedFreshness(tc.e, now, true); math.Abs(got-tc.fromFound) > 1e-9 {
			t.Errorf("%s: freshness %v, want %v", tc.name, got, tc.fromFound)
		}
		if got := m.feedFreshness(tc.e, now, false); math.Abs(got-tc.fitted0) > 1e-9 {
			t.Errorf("%s, priors fitted before: freshness %v, want %v as before", tc.name, got, tc.fitted0)
		}
	}
	before := testPriors() // milk's prior is about 0.3; a count of 5 says 0.95
	after := before
	after.ConfirmedCountsFadeFromFound = true
	item := ShelfItem{StoreID: "s-1", ProductID: "milk", Category: "dairy"}
	if p, old := m.ProbabilityOf(foundSince, after, item, now), m.ProbabilityOf(foundSince, before, item, now); !(p > old+0.05) {
		t.Errorf("confirmed count: probability %.3f, want well above %.3f, its answer fading from the count", p, old)
	}
	if p, old := m.ProbabilityOf(counted, after, item, now), m.ProbabilityOf(counted, before, item, now); p != old {
		t.Errorf("count nobody looked behind: probability %.3f, want %.3f as before", p, old)
	}
	if !m.FitAvailabilityPriors([]PickObservation{{StoreID: "s-1", ProductID: "milk", Category: "dairy", Found: true, At: now, Evidence: foundSince}}).ConfirmedCountsFadeFromFound {
		t.Error("fitted priors do not fade confirmed counts from the pick")
	}
}
