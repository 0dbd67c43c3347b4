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
	// LastFound is the outcome of the latest pick (at At). Of picks at the
	// same millisecond a not-found wins, so that the order they arrive in
	// does not matter.
	LastFound bool

	FeedQuantity int64     // the retailer feed's latest level (the latest count), a signed system count
	FeedAt       time.Time // event time of FeedQuantity; zero when no feed was seen
	CountedAt    time.Time // when FeedQuantity was counted (FeedAt when the feed did not say)
	// LevelSince is when the feed level was first counted at FeedQuantity,
	// of the run of equal latest counts that ends at CountedAt: since when
	// the count has not moved. Zero for evidence recorded before it was
	// kept (CountedAt is taken then).
	LevelSince time.Time
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
		e.Found, e.NotFound, e.At, e.LastFound = 0, 0, t, found
	case t.After(e.At):
		scale := math.Exp(-decay * t.Sub(e.At).Seconds())
		e.Found *= scale
		e.NotFound *= scale
		e.At, e.LastFound = t, found
	default:
		weight = math.Exp(-decay * e.At.Sub(t).Seconds())
		if t.Equal(e.At) {
			e.LastFound = e.LastFound && found
		}
	}
	if found {
		e.Found += weight
	} else {
		e.NotFound += weight
	}
	return e
}

// ObserveFeed records a retailer feed level counted at its event time t.
func (m AvailabilityModel) ObserveFeed(e AvailabilityEvidence, quantity int64, t time.Time) AvailabilityEvidence {
	return m.ObserveCount(e, quantity, t, t)
}

// ObserveCount records a retailer feed level counted at countedAt and sent
// at event time t. The latest count wins; on a tie the level already
// recorded is kept, so replays in any order converge. A count that wins
// with the quantity already recorded keeps LevelSince: the count has not
// moved since then. (That is the one order-dependent part: a count of the
// same quantity arriving after a later one is not seen. One
// store-product's levels travel on one partition, so a replay sees them in
// the same order.) The online store's Lua script mirrors this function
// exactly.
func (m AvailabilityModel) ObserveCount(e AvailabilityEvidence, quantity int64, countedAt, t time.Time) AvailabilityEvidence {
	if e.FeedAt.IsZero() || countedAt.After(e.countedAt()) {
		e.LevelSince = e.nextLevelSince(quantity, countedAt)
		e.FeedQuantity, e.FeedAt, e.CountedAt = quantity, t, countedAt
	}
	return e
}

// nextLevelSince is LevelSince once a count of quantity at countedAt
// replaces e's level.
func (e AvailabilityEvidence) nextLevelSince(quantity int64, countedAt time.Time) time.Time {
	if e.FeedAt.IsZero() || quantity != e.FeedQuantity {
		return countedAt
	}
	return e.levelSince()
}

// levelSince is since when the feed level has stood at FeedQuantity; for
// evidence recorded before that was kept, since its count.
func (e AvailabilityEvidence) levelSince() time.Time {
	if e.LevelSince.IsZero() || e.LevelSince.After(e.countedAt()) {
		return e.countedAt()
	}
	return e.LevelSince
}

// unsoldSince is since when a positive feed level has stood still with no
// shopper finding the product (a found pick is a sale the count should
// show), zero when the level is not positive: nobody can buy what is not on
// the shelf, so a count that stopped moving for a product that normally
// sells is likely phantom stock.
func (e AvailabilityEvidence) unsoldSince() time.Time {
	if e.FeedAt.IsZero() || e.FeedQuantity <= 0 {
		return time.Time{}
	}
	since := e.levelSince()
	if !e.At.IsZero() && e.LastFound && e.At.After(since) {
		since = e.At
	}
	return since
}

// feedFreshness is how much the latest feed level is worth at now, from 1
// (fresh) to 0 (nothing). How long a level lasts depends on what it says
// and on what shoppers saw since it was counted:
//
//   - a count of zero or below holds at full weight until a shopper finds
//     the product after it, or until RestockInterval has passed since it was
//     counted; then it fades, halving every FeedHalfLife. An empty shelf stays
//     empty until someone refills it.
//   - a positive count fades from the time it was counted, halving every
//     FeedHalfLife, so a stopped feed loses weight as it ages; and it
//     counts for nothing once a shopper did not find the product after it
//     (phantom stock: the system counts units that are not on the shelf).
//     With fadeFromFound (priors fitted so: ConfirmedCountsFadeFromFound), a
//     shopper who found the product after it confirmed the count then, and
//     it fades from that pick instead: what it says was true then.
func (m AvailabilityModel) feedFreshness(e AvailabilityEvidence, now time.Time, fadeFromFound bool) float64 {
	if e.FeedAt.IsZero() {
		return 0
	}
	counted := e.countedAt()
	pickedSince := !e.At.IsZero() && e.At.After(counted)
	if e.FeedQuantity <= 0 {
		if pickedSince && e.LastFound {
			return 0
		}
		return decayFactor(decayPerSecond(m.FeedHalfLife), now.Sub(counted)-m.RestockInterval)
	}
	if pickedSince && !e.LastFound {
		return 0
	}
	if pickedSince && fadeFromFound {
		counted = e.At
	}
	return decayFactor(decayPerSecond(m.FeedHalfLife), now.Sub(counted))
}

// countedAt is when the feed level was counted, for evidence recorded
// before counts had their own time.
func (e AvailabilityEvidence) countedAt() time.Time {
	if e.CountedAt.IsZero() {
		return e.FeedAt
	}
	return e.CountedAt
}

// AvailabilitySignal names one reason in the evidence that a product may not
// be where the feed or the prior says, as the GraphQL enum spells it.
type AvailabilitySignal string

// Availability signals.
const (
	// SignalPhantomStock: the feed says there are units, but recent picks
	// did not find the product.
	SignalPhantomStock AvailabilitySignal = "PHANTOM_STOCK"
	// SignalFeedSaysZero: the latest feed level is zero or below.
	SignalFeedSaysZero AvailabilitySignal = "FEED_SAYS_ZERO"
	// SignalFeedStale: the latest feed level is older than FeedStaleAfter.
	SignalFeedStale AvailabilitySignal = "FEED_STALE"
	// SignalNoFeed: no feed level was ever seen for the store-product.
	SignalNoFeed AvailabilitySignal = "NO_FEED"
	// SignalRecentNotFound: the latest pick did not find the product.
	SignalRecentNotFound AvailabilitySignal = "RECENT_NOT_FOUND"
	// SignalNoRecentSales: the feed's positive count has not moved, and no
	// shopper found the product, for longer than the product usually takes
	// to sell, and the priors learned that such counts are often phantom
	// stock (see AvailabilityPriors.StallShifts).
	SignalNoRecentSales AvailabilitySignal = "NO_RECENT_SALES"
)

// FeedStaleAfter is the age after which a feed level is called stale: feeds
// report at least daily.
const FeedStaleAfter = 24 * time.Hour

// EvidenceView is the evidence behind an answer, as a retailer sees it.
type EvidenceView struct {
	Found, NotFound float64 // decayed pick counts, valued at now
	LastPickAt      time.Time
	LastPickFound   bool
	FeedQuantity    int64
	FeedAt          time.Time
	CountedAt       time.Time
	LevelSince      time.Time // since when the feed level has not moved; zero without a feed
	Prior           float64   // the prior mean the posterior was shrunk to
	Signals         []AvailabilitySignal
}

// Explain describes the evidence of item as of now.
func (m AvailabilityModel) Explain(e AvailabilityEvidence, priors AvailabilityPriors, item ShelfItem, now time.Time) EvidenceView {
	v := EvidenceView{
		LastPickAt:    e.At,
		LastPickFound: e.LastFound,
		FeedQuantity:  e.FeedQuantity,
		FeedAt:        e.FeedAt,
		CountedAt:     e.countedAt(),
	}
	if !e.FeedAt.IsZero() {
		v.LevelSince = e.levelSince()
	}
	// What the view shows is e's own times; what it computes is read on
	// the store's clock, as the probability is.
	e, now = priors.answerClock(e, item, now)
	v.Prior = priors.ItemMean(item, now)
	if !e.At.IsZero() {
		scale := decayFactor(m.PickDecayPerSecond(), now.Sub(e.At))
		v.Found, v.NotFound = finiteCount(e.Found)*scale, finiteCount(e.NotFound)*scale
	}
	v.Signals = m.signals(e, now)
	if priors.stallShift(e, item.ProductID, now) < 0 {
		v.Signals = append(v.Signals, SignalNoRecentSales)
	}
	return v
}

// signals names what in e argues against the product being on the shelf.
func (m AvailabilityModel) signals(e AvailabilityEvidence, now time.Time) []AvailabilitySignal {
	var out []AvailabilitySignal
	switch {
	case e.FeedAt.IsZero():
		out = append(out, SignalNoFeed)
	case e.FeedQuantity <= 0:
		out = append(out, SignalFeedSaysZero)
	case m.phantomStock(e):
		out = append(out, SignalPhantomStock)
	}
	if !e.FeedAt.IsZero() && now.Sub(e.countedAt()) > FeedStaleAfter {
		out = append(out, SignalFeedStale)
	}
	if !e.At.IsZero() && !e.LastFound {
		out = append(out, SignalRecentNotFound)
	}
	return out
}

// phantomStock reports whether a positive feed level is contradicted by the
// picks since it was counted: the latest pick, made after the count, did not
// find the product. The model then drops the feed's weight (feedFreshness).
func (m AvailabilityModel) phantomStock(e AvailabilityEvidence) bool {
	return e.FeedQuantity > 0 && !e.At.IsZero() && e.At.After(e.countedAt()) && !e.LastFound
}
