package models

import (
	"math"
	"time"
)

// AvailabilityModel turns evidence into a probability that a product is on the
// shelf, and a probability into a status. Its fields are structural: the pick
// half-life is baked into the evidence the online store keeps, so changing it
// means replaying the topics. Everything fitted from data lives in
// AvailabilityPriors instead.
type AvailabilityModel struct {
	PickHalfLife time.Duration // how fast pick evidence fades
	FeedHalfLife time.Duration // how fast a retailer feed level stops being trusted
	// RestockInterval is how long a feed's zero holds before it starts to
	// fade: about the time between deliveries.
	RestockInterval time.Duration

	InStockAbove  float64 // probability above which the status is IN_STOCK
	LowStockAbove float64 // probability above which the status is LOW_STOCK (else OUT_OF_STOCK)
}

// DefaultAvailabilityModel returns the parameters used in serving and evaluation.
func DefaultAvailabilityModel() AvailabilityModel {
	return AvailabilityModel{
		PickHalfLife:    2 * time.Hour,
		FeedHalfLife:    2 * time.Hour,
		RestockInterval: 24 * time.Hour,
		InStockAbove:    0.8,
		LowStockAbove:   0.35,
	}
}

// PickDecayPerSecond is the exponential decay rate of pick evidence.
func (m AvailabilityModel) PickDecayPerSecond() float64 { return decayPerSecond(m.PickHalfLife) }

// AvailabilityStatus is the coarse answer shown to customers.
type AvailabilityStatus string

// Availability statuses, as named in the GraphQL enum.
const (
	AvailabilityInStock    AvailabilityStatus = "IN_STOCK"
	AvailabilityLowStock   AvailabilityStatus = "LOW_STOCK"
	AvailabilityOutOfStock AvailabilityStatus = "OUT_OF_STOCK"
)

// Status maps a probability to a status through the model's thresholds.
func (m AvailabilityModel) Status(p float64) AvailabilityStatus {
	switch {
	case p > m.InStockAbove:
		return AvailabilityInStock
	case p > m.LowStockAbove:
		return AvailabilityLowStock
	}
	return AvailabilityOutOfStock
}

// minProbability keeps answers inside (0, 1): no evidence makes an item
// certainly there or certainly gone, and log-loss stays finite.
const minProbability = 0.001

// Probability is the chance that productID (of category) is on the shelf at
// now, at no store in particular (no store rate, every feed as reliable as
// the fitted FeedStrength): ProbabilityOf an item without a store.
func (m AvailabilityModel) Probability(e AvailabilityEvidence, priors AvailabilityPriors, productID, category string, now time.Time) float64 {
	return m.ProbabilityOf(e, priors, ShelfItem{ProductID: productID, Category: category}, now)
}

// ProbabilityOf is the chance that item is on the shelf at now, given its
// evidence: where a shopper or a customer can take it, which is not that the
// system counts units and not that a shopper finds it. It starts from the
// mean of a Beta posterior of the chance that a pick finds the item:
//
//   - the prior: the product's found rate shrunk to its category's and its
//     velocity level's, moved by the store's rate and the hour's (ItemMean),
//     worth priors.PriorStrength pseudo-picks;
//   - plus the decayed pick counts, decayed further from e.At to now (the
//     not-founds left out when the latest pick found the product, under
//     priors fitted so: FoundSupersedesNotFound);
//   - plus the latest feed level as pseudo-picks at that level's found rate,
//     worth priors.FeedStrength times the store's feed reliability times its
//     freshness (see feedFreshness: a zero holds until contradicted, a
//     positive count fades, from a shopper's finding the product after it
//     if one did, and is dropped once a shopper does not find the product
//     after it);
//
// moves it by the stall shift of a positive count that has not moved for
// as long as the product takes to sell (priors.StallShifts), by the hour
// of the day's shift (priors.HourShifts) and by the latest pick's
// (priors.PickShifts: its outcome and the picks expected since), then
// calibrates it to the found rate of picks (zeros and items without a
// feed by calibrations of their own), divides by the share of
// items on the shelf that shoppers find (1 - the learned miss rate), and
// clamps it to [0.001, 0.999]. With no evidence it is the (calibrated)
// prior; it is never NaN, even for corrupt evidence.
func (m AvailabilityModel) ProbabilityOf(e AvailabilityEvidence, priors AvailabilityPriors, item ShelfItem, now time.Time) float64 {
	e, now = priors.answerClock(e, item, now)
	feed := priors.feedStrength() * priors.feedReliability(item.StoreID, e.FeedQuantity)
	p := m.posterior(e, priors, priors.ItemMean(item, now), priors.priorStrength(), feed, priors.PicksPerDay(item.ProductID), now)
	p = shiftLogOdds(p, priors.stallShift(e, item.ProductID, now)+priors.hourShift(now)+priors.pickShift(e, item.ProductID, now))
	return clampProbability(priors.calibration(e).Apply(p) / (1 - priors.ShopperMiss.Rate()))
}

// shiftLogOdds moves p by shift on the log-odds scale.
func shiftLogOdds(p, shift float64) float64 {
	if shift == 0 {
		return p
	}
	return logistic(logit(p) + shift)
}

// posterior is the uncalibrated posterior mean with explicit strengths, which
// FitAvailabilityPriors searches over, of a product picked picksPerDay
// times a day.
func (m AvailabilityModel) posterior(e AvailabilityEvidence, priors AvailabilityPriors, mean, priorStrength, feedStrength, picksPerDay float64, now time.Time) float64 {
	alpha, beta := priorStrength*mean, priorStrength*(1-mean)
	if !e.At.IsZero() {
		scale := decayFactor(m.PickDecayPerSecond(), now.Sub(e.At))
		alpha += finiteCount(e.Found) * scale
		if !(e.LastFound && priors.FoundSupersedesNotFound) {
			beta += finiteCount(e.NotFound) * scale
		}
	}
	if rate, ok := priors.FeedRate(e.FeedQuantity, picksPerDay); ok {
		w := feedStrength * m.feedFreshness(e, now, priors.ConfirmedCountsFadeFromFound)
		alpha += w * rate
		beta += w * (1 - rate)
	}
	if !(alpha+beta > 0) || math.IsInf(alpha+beta, 0) {
		return mean
	}
	return alpha / (alpha + beta)
}

// decayFactor is exp(-rate·age). Evidence from the future (clock skew) is
// taken at face value rather than amplified.
func decayFactor(rate float64, age time.Duration) float64 {
	if age <= 0 {
		return 1
	}
	f := math.Exp(-rate * age.Seconds())
	if math.IsNaN(f) {
		return 0
	}
	return f
}

// finiteCount reads a stored count defensively: negative, NaN or infinite
// values (a corrupt hash) count as no evidence.
func finiteCount(x float64) float64 {
	if x > 0 && !math.IsInf(x, 1) {
		return x
	}
	return 0
}

func clampProbability(p float64) float64 {
	switch {
	case math.IsNaN(p):
		return 0.5
	case p < minProbability:
		return minProbability
	case p > 1-minProbability:
		return 1 - minProbability
	}
	return p
}
