// Package models holds Aisle's intelligence: availability, recommendation and
// fraud scoring. It is pure Go with no I/O and imports nothing of Aisle's, so
// every formula here is table-tested in isolation.
package models

import (
	"math"
	"time"
)

// AvailabilityEvidence is what the online store keeps per store-product.
// Pick counts decay exponentially with event time; they are valued as of At,
// the latest pick time seen, which makes updates order-insensitive: an older
// event is discounted to At before it is added.
type AvailabilityEvidence struct {
	Found    float64   // decayed count of pick.found, valued at At
	NotFound float64   // decayed count of pick.not_found and pick.replaced, valued at At
	At       time.Time // latest pick event time; zero when no pick was seen

	FeedQuantity int64     // the retailer feed's latest level (by event time)
	FeedAt       time.Time // event time of FeedQuantity; zero when no feed was seen
}

// UpdatedAt is the event time of the newest evidence, zero when there is none.
func (e AvailabilityEvidence) UpdatedAt() time.Time {
	if e.FeedAt.After(e.At) {
		return e.FeedAt
	}
	return e.At
}

// decayPerSecond converts a half-life into an exponential decay rate.
func decayPerSecond(halfLife time.Duration) float64 {
	return math.Ln2 / halfLife.Seconds()
}

// ObservePick adds one pick outcome at event time t. The online store's Lua
// script mirrors this function exactly; a test in features/ checks that.
func (m AvailabilityModel) ObservePick(e AvailabilityEvidence, found bool, t time.Time) AvailabilityEvidence {
	decay := m.PickDecayPerSecond()
	weight := 1.0
	switch {
	case e.At.IsZero():
		e.Found, e.NotFound, e.At = 0, 0, t
	case t.After(e.At):
		scale := math.Exp(-decay * t.Sub(e.At).Seconds())
		e.Found *= scale
		e.NotFound *= scale
		e.At = t
	default:
		weight = math.Exp(-decay * e.At.Sub(t).Seconds())
	}
	if found {
		e.Found += weight
	} else {
		e.NotFound += weight
	}
	return e
}

// ObserveFeed records a retailer feed level at event time t. The newest level
// by event time wins; on a tie the level already recorded is kept, so replays
// in any order converge.
func (m AvailabilityModel) ObserveFeed(e AvailabilityEvidence, quantity int64, t time.Time) AvailabilityEvidence {
	if e.FeedAt.IsZero() || t.After(e.FeedAt) {
		e.FeedQuantity, e.FeedAt = quantity, t
	}
	return e
}
