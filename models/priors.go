package models

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// AvailabilityPriors is everything the availability model learns from pick
// history in batch: found rates globally, per category, per store and per
// product, how strongly to shrink one level to the next, what a feed level
// says, how much the prior and a feed are worth against live picks (and how
// far each store's feed is to be trusted), how often shoppers miss an item
// that is there, and a calibration. It is a plain value that round-trips
// through JSON, so it can be stored and loaded as a document. The zero value
// is usable: an uninformative 0.5 prior, no feed signal, no shopper misses.
//
// Global, category, store, velocity, hour and feed-level rates, the
// strengths and the calibration are item-weighted: each store-product's picks count as one
// store-product in all (a pick of a store-product picked n times weighs
// 1/n), so that they describe an item looked at a random moment, not the
// fast movers that make most picks. Product rates count picks.
type AvailabilityPriors struct {
	Global     FoundRate            `json:"global"`
	Categories map[string]FoundRate `json:"categories,omitempty"`
	Stores     map[string]FoundRate `json:"stores,omitempty"`
	Products   map[string]FoundRate `json:"products,omitempty"`

	// Velocities are item-weighted found rates by how fast the product
	// sells, in picks a day over the fit's window (WindowDays), ascending by
	// Min: slow movers are on the shelf more often than fast ones, and a
	// product without picks is in the slowest level.
	Velocities []VelocityRate `json:"velocities,omitempty"`
	WindowDays float64        `json:"window_days,omitempty"`
	// Hours are item-weighted found rates by hour of the day (on the
	// store's clock under LocalHours, else UTC), 24 of them or none:
	// shelves are fullest after the overnight restock and emptiest at
	// closing.
	Hours []FoundRate `json:"hours,omitempty"`

	// CategoryShrink, StoreShrink, VelocityShrink and ProductShrink are
	// pseudo-counts pulling a category's, a store's and a velocity level's
	// (and an hour's, as a velocity level's) rate to the global one and a
	// product's rate to its category's.
	CategoryShrink float64 `json:"category_shrink,omitempty"`
	StoreShrink    float64 `json:"store_shrink,omitempty"`
	VelocityShrink float64 `json:"velocity_shrink,omitempty"`
	ProductShrink  float64 `json:"product_shrink,omitempty"`

	// ShopperMiss counts picks confirmed to be on the shelf (a later pick of
	// the same store-product found it within confirmWindow) and the ones of
	// them the shopper did not find: P(found) = (1 - miss) · P(on shelf).
	ShopperMiss MissRate `json:"shopper_miss"`

	// FeedReliability scales FeedStrength per store: how much that store's
	// feed is worth, fitted from how often its levels and the picks disagree
	// (0: not at all; absent: 1).
	FeedReliability map[string]float64 `json:"feed_reliability,omitempty"`
	// FeedZeroReliability scales FeedStrength per store for a zero (or
	// negative) level instead, fitted on the picks behind the store's
	// zeros alone: a delta feed's noisy count rounded down to 0, which it
	// never corrects while the count does not move, says "none" of items
	// that are there, and is worth less than the same feed's positive
	// counts; a full snapshot's zero is usually right. Absent: the
	// store's FeedReliability.
	FeedZeroReliability map[string]float64 `json:"feed_zero_reliability,omitempty"`

	// FeedLevels are found rates by the latest feed quantity, ascending by
	// Min; a quantity falls in the last level whose Min it reaches.
	FeedLevels []FeedLevelRate `json:"feed_levels,omitempty"`

	// ConfirmedCountsFadeFromFound says the fit took a positive count that
	// a shopper then found the product behind to fade from that pick, not
	// from its counting (feedFreshness); the strengths, levels and
	// calibrations were fitted so. False (documents fitted before it): it
	// fades from its counting, as they were fitted.
	ConfirmedCountsFadeFromFound bool `json:"confirmed_counts_fade_from_found,omitempty"`
	// FoundSupersedesNotFound says the fit read a latest pick that found
	// the product as overruling the not-founds before it (posterior): the
	// shelf was refilled since they were seen, so they say nothing of it
	// now. False (documents fitted before it): they count, decayed, as they
	// were fitted.
	FoundSupersedesNotFound bool `json:"found_supersedes_not_found,omitempty"`
	// LocalHours says the fit read every hour of the day (PickHours, Hours,
	// HourShifts, the shopping day's opening) on the clock of the pick's
	// store where its observation had a Location (UTC where not), and
	// answers read them so (storeClock). False (documents fitted before
	// it): hours are UTC, as they were fitted.
	LocalHours bool `json:"local_hours,omitempty"`

	// PickHours is the share of picks in each hour of the day (as Hours), 24 of
	// them or none (then picks are spread evenly): how a product's picks a
	// day spread over the day, for the picks expected while a count stood
	// still.
	PickHours []float64 `json:"pick_hours,omitempty"`
	// StallShifts move the posterior, on the log-odds scale, of an item
	// whose positive feed level has not moved, and which no shopper found,
	// for as long as the product takes to sell Min picks (ascending by Min;
	// the last level whose Min the expected picks reach applies): a count
	// that stopped moving for a product that sells is likely phantom stock,
	// while a slow mover expects no sale and is left alone. They are fitted
	// as what the posterior leaves unexplained (see fitStallShifts).
	StallShifts []StallShift `json:"stall_shifts,omitempty"`
	// HourShifts move the posterior, on the log-odds scale, by the hour of
	// the day (as Hours), 24 of them or none: shelves are fullest after the
	// overnight restock and emptiest at closing, which neither a count
	// taken hours ago nor the prior (worth little next to a fresh feed)
	// says. Fitted as what the stall-shifted posterior leaves unexplained.
	HourShifts []float64 `json:"hour_shifts,omitempty"`
	// PickShifts move the posterior, on the log-odds scale, by the latest
	// pick's outcome, the picks expected since it (stallMins levels: the
	// found levels, then the not-found ones) and whether the shopping day
	// opened since (then the same again; see pickShiftLevel): a found pick
	// fades at the pick half-life alone, whether the product sold a dozen
	// times since or not once, and a not-found's empty shelf stays empty
	// until the overnight restock. Fitted as what the hour-shifted
	// posterior leaves unexplained.
	PickShifts []float64 `json:"pick_shifts,omitempty"`

	// PriorStrength is what the prior mean is worth in picks; FeedStrength is
	// what a fresh feed level is worth in picks.
	PriorStrength float64 `json:"prior_strength,omitempty"`
	FeedStrength  float64 `json:"feed_strength,omitempty"`

	Calibration Calibration `json:"calibration"`
	// NoFeedCalibration calibrates the items without any feed level: their
	// posterior rests on the prior and picks alone, and the same posterior
	// means less there than where a feed backs it. Empty: Calibration.
	NoFeedCalibration Calibration `json:"no_feed_calibration,omitzero"`
	// FeedZeroCalibration calibrates the items whose latest feed level is
	// zero or below: there the posterior rests on a count the picks since
	// may contradict, and a zero's posterior means something else than the
	// same posterior of a positive count. Empty: Calibration.
	FeedZeroCalibration Calibration `json:"feed_zero_calibration,omitzero"`

	Observations int       `json:"observations"`       // picks the fit saw
	FittedAt     time.Time `json:"fitted_at,omitzero"` // latest pick time in the fit
}

// FoundRate counts picks: Found of Total were found. Counts may be weighted.
type FoundRate struct {
	Found float64 `json:"found"`
	Total float64 `json:"total"`
}

// VelocityRate is the found rate of products picked at least Min times a
// day (and fewer than the next level's Min).
type VelocityRate struct {
	Min float64 `json:"min"`
	FoundRate
}

// StallShift is the log-odds shift of items whose positive count stood
// still over at least Min expected picks.
type StallShift struct {
	Min   float64 `json:"min"`
	Shift float64 `json:"shift"`
}

// MissRate counts picks of items that were on the shelf: Missed of
// Confirmed were not found.
type MissRate struct {
	Missed    float64 `json:"missed"`
	Confirmed float64 `json:"confirmed"`
}

// Rate is the share of confirmed picks missed, shrunk to none by
// missShrink pseudo-picks (so that a handful of picks cannot claim a high
// miss rate), at most maxShopperMiss.
func (r MissRate) Rate() float64 {
	missed, confirmed := finiteCount(r.Missed), finiteCount(r.Confirmed)
	return min(min(missed, confirmed)/(confirmed+missShrink), maxShopperMiss)
}

// ShelfItem names what is asked about: a store-product and the product's
// category. An empty StoreID means no store (the store's rate and feed
// reliability are left out).
type ShelfItem struct {
	StoreID, ProductID, Category string
	// Location is the store's time zone, from the catalog: the hours of the
	// day the priors learn and read are the store's own. nil reads them in
	// UTC.
	Location *time.Location
}

// FeedLevelRate is the found rate of picks made while the latest feed level
// was at least Min (and below the next level's Min), of products picked at
// least MinVelocity times a day (and fewer than the next class's): "2 left"
// of a slow mover lasts days, of a fast one an hour. Counts are weighted by
// the feed's freshness at the pick, so the rate is that of a fresh feed.
type FeedLevelRate struct {
	MinVelocity float64 `json:"min_velocity,omitempty"`
	Min         int64   `json:"min"`
	FoundRate
}

// Calibration maps a posterior mean to a calibrated probability (isotonic
// regression): points sorted by Raw with linear interpolation between them;
// below the first and above the last point the mapping is flat. The zero value (no points) is
// the identity.
type Calibration struct {
	Points []CalibrationPoint `json:"points,omitempty"`
}

// CalibrationPoint maps a raw posterior mean to the found rate observed there.
type CalibrationPoint struct {
	Raw        float64 `json:"raw"`
	Calibrated float64 `json:"calibrated"`
}

// Apply calibrates p.
func (c Calibration) Apply(p float64) float64 {
	pts := c.Points
	if len(pts) == 0 {
		return p
	}
	i, _ := slices.BinarySearchFunc(pts, p, func(pt CalibrationPoint, p float64) int { return cmp.Compare(pt.Raw, p) })
	switch {
	case i == 0:
		return pts[0].Calibrated
	case i == len(pts):
		return pts[len(pts)-1].Calibrated
	}
	lo, hi := pts[i-1], pts[i]
	if hi.Raw <= lo.Raw {
		return hi.Calibrated
	}
	f := (p - lo.Raw) / (hi.Raw - lo.Raw)
	return lo.Calibrated + f*(hi.Calibrated-lo.Calibrated)
}

// Defaults used when a field of the priors is unset (zero): before any fit,
// or for a document written before the field existed.
const (
	defaultCategoryShrink = 20
	defaultProductShrink  = 10
	defaultPriorStrength  = 3
	defaultFeedStrength   = 3
	// feedLevelShrink pulls a feed level's rate to the global rate.
	feedLevelShrink = 5
	// missShrink and maxShopperMiss bound the learned shopper miss rate.
	missShrink     = 20
	maxShopperMiss = 0.3
	// confirmWindow: a pick followed by a found pick of the same
	// store-product within it was on the shelf (shelves only empty
	// between deliveries, and deliveries are hours apart).
	confirmWindow = 2 * time.Hour
)

// feedLevelMins are the lower bounds of the feed levels FitAvailabilityPriors
// uses: empty, one, two, a few, some, many. Low levels are fine-grained
// because that is where phantom stock turns "2 left" into "none".
var feedLevelMins = []int64{0, 1, 2, 3, 5, 8, 13, 21}

// feedVelocityMins are the velocity classes (picks a day) of the feed levels.
var feedVelocityMins = []float64{0, 1, 4}

// stallMins are the lower bounds of the stall levels, in picks expected
// while the count stood still.
var stallMins = []float64{0, 0.5, 1, 2, 4, 8, 16}

// stallShiftPrior is the pseudo-weight (in store-products) of a Gaussian
// prior holding each stall shift at 0, so that a level with few picks
// moves little.
const stallShiftPrior = 10

// velocityMins are the lower bounds of the velocity levels, in picks a day.
var velocityMins = []float64{0, 0.25, 0.5, 1, 2, 4, 8, 16, 32}

// DefaultAvailabilityPriors are the priors to serve before any fit: a 90%
// global found rate and feed levels from typical grocery found rates, with
// default strengths. Serving replaces them with a fit of real pick history.
func DefaultAvailabilityPriors() AvailabilityPriors {
	return AvailabilityPriors{
		Global: FoundRate{Found: 18, Total: 20},
		FeedLevels: []FeedLevelRate{
			{Min: 0, FoundRate: FoundRate{Found: 2, Total: 10}},
			{Min: 1, FoundRate: FoundRate{Found: 6, Total: 10}},
			{Min: 3, FoundRate: FoundRate{Found: 8, Total: 10}},
			{Min: 6, FoundRate: FoundRate{Found: 9, Total: 10}},
		},
	}
}

// Mean is the prior found rate of productID in category, at no store in
// particular: the product's rate shrunk to the category's, itself shrunk to
// the global rate.
func (p AvailabilityPriors) Mean(productID, category string) float64 {
	product := p.Products[productID]
	return p.mean(p.Categories[category], p.velocityRate(product), product, FoundRate{}, FoundRate{})
}

// ItemMean is the prior found rate of item at now: Mean, moved by the
// store's rate and the hour's against the global one (on the log-odds
// scale). A product with no picks gets its category's, velocity level's
// and store's rates, which are item-weighted, so a slow mover is not
// judged by the fast movers of its category.
func (p AvailabilityPriors) ItemMean(item ShelfItem, now time.Time) float64 {
	product := p.Products[item.ProductID]
	return p.mean(p.Categories[item.Category], p.velocityRate(product), product, p.Stores[item.StoreID], p.hourRate(now))
}

// hourRate is the found rate at now's hour of the day, none when unknown.
func (p AvailabilityPriors) hourRate(now time.Time) FoundRate {
	if len(p.Hours) != 24 {
		return FoundRate{}
	}
	return p.Hours[now.UTC().Hour()]
}

// velocityRate is the found rate of the velocity level of a product with
// the given pick counts.
func (p AvailabilityPriors) velocityRate(product FoundRate) FoundRate {
	if len(p.Velocities) == 0 || !(p.WindowDays > 0) {
		return FoundRate{}
	}
	return p.Velocities[velocityIndex(p.Velocities, finiteCount(product.Total)/p.WindowDays)].FoundRate
}

// velocityIndex is the index of the last level whose Min picksPerDay reaches, or 0.
func velocityIndex(levels []VelocityRate, picksPerDay float64) int {
	i := 0
	for j, l := range levels {
		if picksPerDay >= l.Min {
			i = j
		}
	}
	return i
}

// mean is the prior found rate from the rates of a category, a velocity
// level, a product, a store and an hour: the category's, moved by the
// velocity level's (log-odds against the global rate), is what the
// product's rate is shrunk to; the store's and the hour's move the result.
func (p AvailabilityPriors) mean(category, velocity, product, store, hour FoundRate) float64 {
	global := p.GlobalRate()
	base := shrink(category, global, orDefault(p.CategoryShrink, defaultCategoryShrink))
	if velocity.Total > 0 {
		base = logistic(logit(base) + logit(shrink(velocity, global, orDefault(p.VelocityShrink, defaultCategoryShrink))) - logit(global))
	}
	x := logit(shrink(product, base, orDefault(p.ProductShrink, defaultProductShrink)))
	if store.Total > 0 {
		x += logit(shrink(store, global, orDefault(p.StoreShrink, defaultCategoryShrink))) - logit(global)
	}
	if hour.Total > 0 {
		x += logit(shrink(hour, global, orDefault(p.VelocityShrink, defaultCategoryShrink))) - logit(global)
	}
	return logistic(x)
}

func logit(p float64) float64 {
	p = clampProbability(p)
	return math.Log(p / (1 - p))
}

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// feedReliability is how much a level of quantity from store's feed is
// worth, as a factor of FeedStrength.
func (p AvailabilityPriors) feedReliability(store string, quantity int64) float64 {
	if r, ok := p.FeedZeroReliability[store]; quantity <= 0 && ok && r >= 0 && !math.IsInf(r, 1) {
		return r
	}
	if r, ok := p.FeedReliability[store]; ok && r >= 0 && !math.IsInf(r, 1) {
		return r
	}
	return 1
}

// GlobalRate is the found rate over all picks, with one pseudo-pick each way
// so that it is 0.5 with no data and never 0 or 1.
func (p AvailabilityPriors) GlobalRate() float64 {
	return shrink(p.Global, 0.5, 2)
}

// shrink is the posterior mean of a rate observed as r with k pseudo-counts at mean.
func shrink(r FoundRate, mean, k float64) float64 {
	found, total := finiteCount(r.Found), finiteCount(r.Total)
	if found > total {
		found = total
	}
	return (found + k*mean) / (total + k)
}

// FeedRate is the found rate for a feed quantity of a product picked
// picksPerDay times a day, or false when the priors have no feed levels.
func (p AvailabilityPriors) FeedRate(quantity int64, picksPerDay float64) (float64, bool) {
	if len(p.FeedLevels) == 0 {
		return 0, false
	}
	l := p.FeedLevels[feedLevelIndex(p.FeedLevels, quantity, picksPerDay)]
	return shrink(l.FoundRate, p.GlobalRate(), feedLevelShrink), true
}

// feedLevelIndex is the index of the level of quantity among the levels of
// the fastest velocity class picksPerDay reaches: the last whose Min
// quantity reaches, or the class's first.
func feedLevelIndex(levels []FeedLevelRate, quantity int64, picksPerDay float64) int {
	class := 0.0
	for _, l := range levels {
		if l.MinVelocity <= picksPerDay && l.MinVelocity > class {
			class = l.MinVelocity
		}
	}
	i := -1
	for j, l := range levels {
		if l.MinVelocity == class && (i < 0 || quantity >= l.Min) {
			i = j
		}
	}
	return max(i, 0)
}

// expectedPicks is how many picks productID is expected to get in [from,
// to), by its picks a day spread over the day as PickHours says.
func (p AvailabilityPriors) expectedPicks(productID string, from, to time.Time) float64 {
	perDay := p.PicksPerDay(productID)
	if !(perDay > 0) || !to.After(from) {
		return 0
	}
	if len(p.PickHours) != 24 {
		return perDay * to.Sub(from).Hours() / 24
	}
	days := math.Floor(to.Sub(from).Hours() / 24)
	share := days
	for t := from.Add(time.Duration(days) * 24 * time.Hour).UTC(); t.Before(to); {
		end := t.Truncate(time.Hour).Add(time.Hour)
		if end.After(to) {
			end = to
		}
		share += finiteCount(p.PickHours[t.Hour()]) * end.Sub(t).Hours()
		t = end
	}
	return perDay * share
}

// stallShift is the log-odds shift of item evidence e at now for a count
// that stood still (StallShifts); 0 when there is none.
func (p AvailabilityPriors) stallShift(e AvailabilityEvidence, productID string, now time.Time) float64 {
	since := e.unsoldSince()
	if since.IsZero() || len(p.StallShifts) == 0 {
		return 0
	}
	x := p.expectedPicks(productID, since, now)
	shift := 0.0
	for _, l := range p.StallShifts {
		if x >= l.Min {
			shift = l.Shift
		}
	}
	if math.IsNaN(shift) || math.IsInf(shift, 0) {
		return 0
	}
	return shift
}

// PicksPerDay is how often productID was picked a day over the fit's window.
func (p AvailabilityPriors) PicksPerDay(productID string) float64 {
	if !(p.WindowDays > 0) {
		return 0
	}
	return finiteCount(p.Products[productID].Total) / p.WindowDays
}

func (p AvailabilityPriors) priorStrength() float64 {
	return orDefault(p.PriorStrength, defaultPriorStrength)
}

func (p AvailabilityPriors) feedStrength() float64 {
	return orDefault(p.FeedStrength, defaultFeedStrength)
}

func orDefault(v, def float64) float64 {
	if v > 0 && !math.IsInf(v, 1) {
		return v
	}
	return def
}

// PickObservation is one historical pick for fitting priors.
type PickObservation struct {
	StoreID   string
	ProductID string
	Category  string
	Found     bool      // pick.found (not_found and replaced are false)
	At        time.Time // pick event time
	// Evidence is the store-product's evidence just before this pick was
	// applied (zero when unknown); it lets the fit weigh live evidence
	// against the prior and calibrate the result.
	Evidence AvailabilityEvidence
	Location *time.Location // the store's time zone (ShelfItem.Location)
}

// maxFitObservations caps the picks used for the strength search and the
// calibration, which replay every observation per candidate; the rates use
// every pick.
const maxFitObservations = 200_000

// FitAvailabilityPriors learns priors from pick history, in event-time
// order:
//
//  1. item-weighted found counts globally, per category, per store, per
//     velocity level, per hour and per feed level (also weighted by the
//     feed's freshness at the pick), and pick counts per product;
//  2. the shopper miss rate, from picks confirmed on the shelf by a later
//     found pick;
//  3. the shrinkage strengths, by leave-one-out likelihood over categories,
//     stores, then products (empirical Bayes);
//  4. the prior and feed strengths, by leave-one-out log-loss of the
//     posterior over a grid, then each store's feed reliability the same way;
//  5. the stall shifts: what those posteriors leave unexplained about picks
//     whose positive count stood still (fitStallShifts); then the hour
//     shifts and the pick shifts, each what the posteriors shifted so far
//     leave unexplained about the hour and about the latest pick;
//  6. an isotonic calibration of the shifted leave-one-out posteriors to the
//     found rate (and one of the zeros' and of the no-feed items' each,
//     with minClassCalibration picks), which Probability divides by
//     (1 - miss) to say "on the shelf".
//
// From step 4 on, picks are also weighed by momentWeight, so that every
// open hour counts alike.
//
// Leave-one-out removes a pick from its own product, category and store
// counts before predicting it, so the fit does not grade itself on what it
// memorised. The result is deterministic for a given slice.
func (m AvailabilityModel) FitAvailabilityPriors(obs []PickObservation) AvailabilityPriors {
	p := AvailabilityPriors{
		ConfirmedCountsFadeFromFound: true,
		FoundSupersedesNotFound:      true,
		LocalHours:                   true,
		Categories:                   make(map[string]FoundRate),
		Stores:                       make(map[string]FoundRate),
		Products:                     make(map[string]FoundRate),
		Observations:                 len(obs),
		ShopperMiss:                  shopperMisses(obs),
	}
	for _, o := range obs {
		if o.At.After(p.FittedAt) {
			p.FittedAt = o.At
		}
	}
	if len(obs) == 0 {
		return p
	}
	p.WindowDays = max(p.FittedAt.Sub(obs[0].At).Hours()/24, 1)
	obs = onStoreClocks(obs)
	weights := itemWeights(obs)
	productCategory := make(map[string]string)
	var levels []FeedLevelRate
	for _, v := range feedVelocityMins {
		for _, lo := range feedLevelMins {
			levels = append(levels, FeedLevelRate{MinVelocity: v, Min: lo})
		}
	}
	for i, o := range obs {
		y, w := boolFloat(o.Found), weights[i]
		p.Global = p.Global.plus(y, w)
		p.Categories[o.Category] = p.Categories[o.Category].plus(y, w)
		p.Stores[o.StoreID] = p.Stores[o.StoreID].plus(y, w)
		p.Products[o.ProductID] = p.Products[o.ProductID].plus(y, 1)
		if _, ok := productCategory[o.ProductID]; !ok {
			productCategory[o.ProductID] = o.Category
		}
	}
	p.FeedLevels = levels
	velocities := make([]VelocityRate, len(velocityMins))
	for i, lo := range velocityMins {
		velocities[i].Min = lo
	}
	for i, o := range obs {
		y := boolFloat(o.Found)
		v := &velocities[velocityIndex(velocities, p.PicksPerDay(o.ProductID))]
		v.FoundRate = v.plus(y, weights[i])
		if f := m.feedFreshness(o.Evidence, o.At, p.ConfirmedCountsFadeFromFound); f > 0 {
			l := &levels[feedLevelIndex(levels, o.Evidence.FeedQuantity, p.PicksPerDay(o.ProductID))]
			l.FoundRate = l.plus(y, weights[i]*f)
		}
	}
	p.Velocities = velocities
	p.PickHours = pickHours(obs)
	p.Hours = make([]FoundRate, 24)
	for i, o := range obs {
		h := &p.Hours[o.At.UTC().Hour()]
		*h = h.plus(boolFloat(o.Found), weights[i])
	}

	global := p.GlobalRate()
	p.CategoryShrink = fitShrink(groupsTo(p.Categories, func(string) float64 { return global }))
	p.StoreShrink = fitShrink(groupsTo(p.Stores, func(string) float64 { return global }))
	velocityGroups := make([]shrinkGroup, len(p.Velocities))
	for i, v := range p.Velocities {
		velocityGroups[i] = shrinkGroup{rate: v.FoundRate, mean: global}
	}
	p.VelocityShrink = fitShrink(velocityGroups)
	p.ProductShrink = fitShrink(groupsTo(p.Products, func(id string) float64 {
		return shrink(p.Categories[productCategory[id]], global, p.CategoryShrink)
	}))

	sample := strided(len(obs), maxFitObservations)
	fits := make([]fitPick, len(sample))
	for i, j := range sample {
		fits[i] = fitPick{PickObservation: obs[j], weight: weights[j] * p.momentWeight(obs[j].At), mean: p.looMean(obs[j], weights[j]), picksPerDay: p.PicksPerDay(obs[j].ProductID)}
	}
	p.PriorStrength, p.FeedStrength = m.fitStrengths(p, fits)
	p.FeedReliability = m.fitFeedReliability(p, fits, func(fitPick) bool { return true }, minReliabilityPicks)
	p.FeedZeroReliability = m.fitFeedReliability(p, fits, func(f fitPick) bool { return f.Evidence.FeedQuantity <= 0 }, minZeroReliabilityPicks)

	raw := make([]float64, len(fits))
	outcomes := make([]bool, len(fits))
	w := make([]float64, len(fits))
	for i, f := range fits {
		raw[i] = m.posterior(f.Evidence, p, f.mean, p.PriorStrength, p.FeedStrength*p.feedReliability(f.StoreID, f.Evidence.FeedQuantity), f.picksPerDay, f.At)
		outcomes[i], w[i] = f.Found, f.weight
	}
	p.StallShifts = p.fitStallShifts(fits, raw)
	for i, f := range fits {
		raw[i] = shiftLogOdds(raw[i], p.stallShift(f.Evidence, f.ProductID, f.At))
	}
	p.HourShifts = fitHourShifts(fits, raw)
	for i, f := range fits {
		raw[i] = shiftLogOdds(raw[i], p.hourShift(f.At))
	}
	p.PickShifts = p.fitPickShifts(fits, raw)
	for i, f := range fits {
		raw[i] = shiftLogOdds(raw[i], p.pickShift(f.Evidence, f.ProductID, f.At))
	}
	p.Calibration = FitCalibration(raw, outcomes, w)
	p.NoFeedCalibration = classCalibration(fits, raw, noFeed)
	p.FeedZeroCalibration = classCalibration(fits, raw, feedZero)
	return p
}

// minClassCalibration is the fewest picks a class of evidence needs for a
// calibration of its own.
const minClassCalibration = 300

// classCalibration is the calibration of the posteriors raw of the picks
// whose evidence is in the class, none when the class has fewer than
// minClassCalibration picks.
func classCalibration(fits []fitPick, raw []float64, in func(AvailabilityEvidence) bool) Calibration {
	var classRaw, weights []float64
	var outcomes []bool
	for i, f := range fits {
		if in(f.Evidence) {
			classRaw = append(classRaw, raw[i])
			outcomes = append(outcomes, f.Found)
			weights = append(weights, f.weight)
		}
	}
	if len(classRaw) < minClassCalibration {
		return Calibration{}
	}
	return FitCalibration(classRaw, outcomes, weights)
}

// noFeed and feedZero are the classes of evidence with a calibration of
// their own: no feed level at all, and a latest level of zero or below.
func noFeed(e AvailabilityEvidence) bool   { return e.FeedAt.IsZero() }
func feedZero(e AvailabilityEvidence) bool { return !e.FeedAt.IsZero() && e.FeedQuantity <= 0 }

// calibration is the calibration of evidence e.
func (p AvailabilityPriors) calibration(e AvailabilityEvidence) Calibration {
	switch {
	case noFeed(e) && len(p.NoFeedCalibration.Points) > 0:
		return p.NoFeedCalibration
	case feedZero(e) && len(p.FeedZeroCalibration.Points) > 0:
		return p.FeedZeroCalibration
	}
	return p.Calibration
}

// momentWeight weighs a pick at t so that every hour with picks counts
// alike (1 on average over the picks): picks crowd into the busy hours,
// where shelves run lower, and what is fitted on them is asked of any
// moment the store is open.
func (p AvailabilityPriors) momentWeight(t time.Time) float64 {
	if len(p.PickHours) != 24 {
		return 1
	}
	active := 0
	for _, share := range p.PickHours {
		if share > 0 {
			active++
		}
	}
	share := p.PickHours[t.UTC().Hour()]
	if !(share > 0) {
		return 1
	}
	return 1 / (float64(active) * share)
}

// pickHours is the share of obs in each hour of the day (UTC).
func pickHours(obs []PickObservation) []float64 {
	out := make([]float64, 24)
	for _, o := range obs {
		out[o.At.UTC().Hour()] += 1 / float64(len(obs))
	}
	return out
}

// fitStallShifts fits, stall level by stall level, the log-odds shift of
// the posteriors raw (of picks) that minimises their weighted log-loss
// plus a Gaussian prior at 0 worth stallShiftPrior store-products: what
// the posterior leaves unexplained about picks whose positive count stood
// still, and no shopper found the product, over that many expected picks.
// p.PickHours must be set.
func (p AvailabilityPriors) fitStallShifts(fits []fitPick, raw []float64) []StallShift {
	levels := make([]StallShift, len(stallMins))
	members := make([][]int, len(stallMins))
	for i, lo := range stallMins {
		levels[i].Min = lo
	}
	for i, f := range fits {
		since := f.Evidence.unsoldSince()
		if since.IsZero() {
			continue
		}
		x := p.expectedPicks(f.ProductID, since, f.At)
		j := 0
		for k, lo := range stallMins {
			if x >= lo {
				j = k
			}
		}
		members[j] = append(members[j], i)
	}
	for j, idx := range members {
		levels[j].Shift = fitShift(fits, raw, idx)
	}
	return levels
}

// fitShift is the log-odds shift of the posteriors raw[i] of the picks
// fits[i], i in idx, that minimises their weighted log-loss plus a
// Gaussian prior at 0 worth stallShiftPrior store-products.
func fitShift(fits []fitPick, raw []float64, idx []int) float64 {
	s := 0.0
	// Newton's method on a convex loss: a few steps converge.
	for range 20 {
		g, h := stallShiftPrior*s, float64(stallShiftPrior)
		for _, i := range idx {
			q := logistic(logit(raw[i]) + s)
			g += fits[i].weight * (q - boolFloat(fits[i].Found))
			h += fits[i].weight * q * (1 - q)
		}
		s -= g / h
	}
	return s
}

// fitHourShifts fits, hour of the day by hour, the log-odds shift of the
// posteriors raw (of picks) that their weighted log-loss asks for: what
// the posterior leaves unexplained about the hour, 24 of them.
func fitHourShifts(fits []fitPick, raw []float64) []float64 {
	members := make([][]int, 24)
	for i, f := range fits {
		h := f.At.UTC().Hour()
		members[h] = append(members[h], i)
	}
	shifts := make([]float64, 24)
	for h, idx := range members {
		shifts[h] = fitShift(fits, raw, idx)
	}
	return shifts
}

// pickShiftLevel is the index into PickShifts of evidence e at now, -1
// for none: the found levels first, then the not-found ones, each by the
// expected picks since the latest pick (stallMins); then the same again
// for a latest pick from before the shopping day's opening (the
// overnight restock came since).
func (p AvailabilityPriors) pickShiftLevel(e AvailabilityEvidence, productID string, now time.Time) int {
	if e.At.IsZero() {
		return -1
	}
	x := p.expectedPicks(productID, e.At, now)
	j := 0
	for k, lo := range stallMins {
		if x >= lo {
			j = k
		}
	}
	if !e.LastFound {
		j += len(stallMins)
	}
	if p.openedBetween(e.At, now) {
		j += 2 * len(stallMins)
	}
	return j
}

// quietPickShare is the share of a day's picks up to which an hour (above
// the quietest hour's share) counts as closed: an average hour holds 1/24.
const quietPickShare = 0.005

// dayStartHour is the hour of the day (UTC) at which the shopping day
// opens: the hour after the longest run of quiet hours in PickHours (the
// night, when shelves are restocked); false without PickHours or without
// a quiet hour.
func (p AvailabilityPriors) dayStartHour() (int, bool) {
	if len(p.PickHours) != 24 {
		return 0, false
	}
	quiet := slices.Min(p.PickHours) + quietPickShare
	bestEnd, bestLen := 0, 0
	for start := range 24 {
		if p.PickHours[(start+23)%24] <= quiet {
			continue // not the start of a run
		}
		n := 0
		for n < 24 && p.PickHours[(start+n)%24] <= quiet {
			n++
		}
		if n > bestLen && n < 24 {
			bestEnd, bestLen = (start+n)%24, n
		}
	}
	return bestEnd, bestLen > 0
}

// openedBetween reports whether the shopping day opened in (from, to].
func (p AvailabilityPriors) openedBetween(from, to time.Time) bool {
	start, ok := p.dayStartHour()
	if !ok || !to.After(from) {
		return false
	}
	from = from.UTC()
	next := time.Date(from.Year(), from.Month(), from.Day(), start, 0, 0, 0, time.UTC)
	if !next.After(from) {
		next = next.Add(24 * time.Hour)
	}
	return !next.After(to)
}

// fitPickShifts fits the log-odds shifts of PickShifts, level by level,
// as what the posteriors raw (of picks) leave unexplained.
func (p AvailabilityPriors) fitPickShifts(fits []fitPick, raw []float64) []float64 {
	members := make([][]int, 4*len(stallMins))
	for i, f := range fits {
		if j := p.pickShiftLevel(f.Evidence, f.ProductID, f.At); j >= 0 {
			members[j] = append(members[j], i)
		}
	}
	shifts := make([]float64, len(members))
	for j, idx := range members {
		shifts[j] = fitShift(fits, raw, idx)
	}
	return shifts
}

// pickShift is the log-odds shift of PickShifts for evidence e at now, 0
// when there is none.
func (p AvailabilityPriors) pickShift(e AvailabilityEvidence, productID string, now time.Time) float64 {
	j := p.pickShiftLevel(e, productID, now)
	if j < 0 || j >= len(p.PickShifts) {
		return 0
	}
	s := p.PickShifts[j]
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0
	}
	return s
}

// hourShift is the log-odds shift of HourShifts at now's hour, 0 when
// there are none.
func (p AvailabilityPriors) hourShift(now time.Time) float64 {
	if len(p.HourShifts) != 24 {
		return 0
	}
	s := p.HourShifts[now.UTC().Hour()]
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0
	}
	return s
}

// itemWeights weighs each pick 1/n, n the picks of its store-product, so
// that every store-product counts alike.
func itemWeights(obs []PickObservation) []float64 {
	type storeProduct struct{ store, product string }
	n := make(map[storeProduct]float64)
	for _, o := range obs {
		n[storeProduct{o.StoreID, o.ProductID}]++
	}
	w := make([]float64, len(obs))
	for i, o := range obs {
		w[i] = 1 / n[storeProduct{o.StoreID, o.ProductID}]
	}
	return w
}

// shopperMisses counts the picks between two found picks of the same
// store-product less than confirmWindow apart (so the item was on the
// shelf before and after it), and the ones of them that were not found:
// the shopper missed it. Both sides are needed: a not-found followed by a
// found can be an empty shelf that a midday delivery refilled. obs must be
// in event-time order.
func shopperMisses(obs []PickObservation) MissRate {
	type storeProduct struct{ store, product string }
	type lastTwo struct{ before, middle PickObservation }
	previous := make(map[storeProduct]lastTwo)
	seen := make(map[storeProduct]int)
	var r MissRate
	for _, o := range obs {
		k := storeProduct{o.StoreID, o.ProductID}
		prev := previous[k]
		if seen[k] >= 2 && o.Found && prev.before.Found && o.At.Sub(prev.before.At) <= confirmWindow {
			r.Confirmed++
			r.Missed += boolFloat(!prev.middle.Found)
		}
		previous[k] = lastTwo{before: prev.middle, middle: o}
		seen[k]++
	}
	return r
}

// groupsTo lists rates (sorted by key) with the mean each is shrunk to.
func groupsTo(rates map[string]FoundRate, mean func(key string) float64) []shrinkGroup {
	keys := sortedKeys(rates)
	groups := make([]shrinkGroup, len(keys))
	for i, k := range keys {
		groups[i] = shrinkGroup{rate: rates[k], mean: mean(k)}
	}
	return groups
}

// fitPick is an observation prepared for the strength and calibration
// fits: its item weight and its leave-one-out prior mean.
type fitPick struct {
	PickObservation
	weight, mean, picksPerDay float64
}

// plus adds an outcome y (1 found, 0 not) of weight w.
func (r FoundRate) plus(y, w float64) FoundRate {
	r.Found += w * y
	r.Total += w
	return r
}

// minus removes an outcome y of weight w.
func (r FoundRate) minus(y, w float64) FoundRate {
	r.Found = max(r.Found-w*y, 0)
	r.Total = max(r.Total-w, 0)
	return r
}

// looMean is the prior mean for o, of item weight w, with o itself removed
// from its product, category, velocity and store counts (the global count is
// large enough not to matter).
func (p AvailabilityPriors) looMean(o PickObservation, w float64) float64 {
	y := boolFloat(o.Found)
	product := p.Products[o.ProductID]
	velocity := p.velocityRate(product).minus(y, w)
	return p.mean(p.Categories[o.Category].minus(y, w), velocity, product.minus(y, 1), p.Stores[o.StoreID].minus(y, w), p.hourRate(o.At).minus(y, w))
}

// shrinkGroup is one group's counts and the mean it is shrunk to.
type shrinkGroup struct {
	rate FoundRate
	mean float64
}

// shrinkGrid are the candidate pseudo-counts: powers of √2 from 1 to 4096.
var shrinkGrid = func() []float64 {
	grid := make([]float64, 25)
	for i := range grid {
		grid[i] = math.Exp2(float64(i) / 2)
	}
	return grid
}()

// fitShrink picks the pseudo-count k maximising the leave-one-out likelihood
// of every pick in its group: a found pick of a group with f found of n is
// predicted (f-1 + k·mean) / (n-1 + k).
func fitShrink(groups []shrinkGroup) float64 {
	best, bestLL := shrinkGrid[0], math.Inf(-1)
	for _, k := range shrinkGrid {
		ll := 0.0
		for _, g := range groups {
			f, n := g.rate.Found, g.rate.Total
			if n < 1 {
				continue
			}
			if f > 0 {
				ll += f * math.Log(clampProbability((f-1+k*g.mean)/(n-1+k)))
			}
			if n-f > 0 {
				ll += (n - f) * math.Log(clampProbability((n-f-1+k*(1-g.mean))/(n-1+k)))
			}
		}
		if ll > bestLL {
			best, bestLL = k, ll
		}
	}
	return best
}

// Candidate strengths (in picks) for the prior and a fresh feed level.
var (
	priorStrengthGrid = []float64{0.125, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32}
	feedStrengthGrid  = []float64{0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32}
)

// fitStrengths picks the prior and feed strengths with the lowest weighted
// log-loss of the uncalibrated posterior over the picks.
func (m AvailabilityModel) fitStrengths(p AvailabilityPriors, picks []fitPick) (priorStrength, feedStrength float64) {
	bestLoss := math.Inf(1)
	for _, s := range priorStrengthGrid {
		for _, w := range feedStrengthGrid {
			if loss := m.logLoss(p, picks, s, func(string) float64 { return w }); loss < bestLoss {
				priorStrength, feedStrength, bestLoss = s, w, loss
			}
		}
	}
	return priorStrength, feedStrength
}

// feedReliabilityGrid are the candidate factors of a store's feed strength.
var feedReliabilityGrid = []float64{0, 0.125, 0.25, 0.5, 1, 1.5, 2, 3}

// minReliabilityPicks is the fewest picks with a feed behind them a store
// needs for its own feed reliability; below it, its feed is worth the
// fitted FeedStrength.
const minReliabilityPicks = 200

// minZeroReliabilityPicks is the fewest picks behind a zero a store needs
// for its own zero reliability.
const minZeroReliabilityPicks = 50

// fitFeedReliability picks, store by store, the factor of the feed strength
// with the lowest weighted log-loss over the store's picks that had a feed
// level behind them and that keep says to (with at least minPicks of them):
// a feed whose levels the picks often contradict (a frozen export, phantom
// stock, a noisy count) is worth less. Only factors other than 1 are kept.
func (m AvailabilityModel) fitFeedReliability(p AvailabilityPriors, picks []fitPick, keep func(fitPick) bool, minPicks int) map[string]float64 {
	byStore := make(map[string][]fitPick)
	for _, f := range picks {
		if m.feedFreshness(f.Evidence, f.At, p.ConfirmedCountsFadeFromFound) > 0 && keep(f) {
			byStore[f.StoreID] = append(byStore[f.StoreID], f)
		}
	}
	var out map[string]float64 // nil when no store has its own, as a stored document reads back
	for _, store := range sortedKeys(byStore) {
		if len(byStore[store]) < minPicks {
			continue
		}
		best, bestLoss := 1.0, math.Inf(1)
		for _, r := range feedReliabilityGrid {
			w := p.FeedStrength * r
			if loss := m.logLoss(p, byStore[store], p.PriorStrength, func(string) float64 { return w }); loss < bestLoss {
				best, bestLoss = r, loss
			}
		}
		if best != 1 {
			if out == nil {
				out = make(map[string]float64)
			}
			out[store] = best
		}
	}
	return out
}

// logLoss is the weighted log-loss of the uncalibrated posterior over picks
// with the given prior strength and per-store feed strength.
func (m AvailabilityModel) logLoss(p AvailabilityPriors, picks []fitPick, priorStrength float64, feedStrength func(store string) float64) float64 {
	loss := 0.0
	for _, f := range picks {
		q := clampProbability(m.posterior(f.Evidence, p, f.mean, priorStrength, feedStrength(f.StoreID), f.picksPerDay, f.At))
		if f.Found {
			loss -= f.weight * math.Log(q)
		} else {
			loss -= f.weight * math.Log(1-q)
		}
	}
	return loss
}

// minCalibrationBlock is the fewest picks behind one calibration step, so
// that a handful of lucky picks cannot bend the mapping.
const minCalibrationBlock = 50

// FitCalibration fits an isotonic (monotone non-decreasing) mapping from
// probabilities p to outcomes of the given weights (nil: all 1) by
// pool-adjacent-violators, merges steps of fewer than minCalibrationBlock
// picks into their neighbours, and gives each step its weighted found rate
// nudged by one pseudo-pick (of the step's mean weight) at its mean
// probability, so that no step says 0 or 1. Each step becomes one point,
// at its weighted mean probability: interpolating between the steps'
// centroids keeps the order of the posteriors within a step, where flat
// steps tied every item of a step (and cost AUC and log-loss).
func FitCalibration(p []float64, outcomes []bool, weights []float64) Calibration {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p[a], p[b]) })
	// Equal probabilities share a step from the start.
	var ties []calibrationStep
	for _, i := range order {
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		s := calibrationStep{n: 1, sumW: w, sumP: w * p[i], sumY: w * boolFloat(outcomes[i]), minP: p[i], maxP: p[i]}
		if k := len(ties) - 1; k >= 0 && ties[k].maxP == p[i] {
			ties[k] = ties[k].pool(s)
		} else {
			ties = append(ties, s)
		}
	}
	var steps []calibrationStep
	for _, s := range ties {
		steps = append(steps, s)
		// Pool while the newest step's rate is below its predecessor's.
		for k := len(steps) - 1; k > 0 && steps[k].sumY*steps[k-1].sumW < steps[k-1].sumY*steps[k].sumW; k-- {
			steps[k-1] = steps[k-1].pool(steps[k])
			steps = steps[:k]
		}
	}
	// Merging neighbours keeps the rates non-decreasing.
	var merged []calibrationStep
	for _, s := range steps {
		if k := len(merged) - 1; k >= 0 && merged[k].n < minCalibrationBlock {
			merged[k] = merged[k].pool(s)
		} else {
			merged = append(merged, s)
		}
	}
	if k := len(merged) - 1; k > 0 && merged[k].n < minCalibrationBlock {
		merged[k-1] = merged[k-1].pool(merged[k])
		merged = merged[:k]
	}
	if len(merged) < 2 {
		return Calibration{} // too little data to say more than the raw posterior
	}
	var c Calibration
	prev := 0.0
	for _, s := range merged {
		pseudo := s.sumW / s.n
		q := max(clampProbability((s.sumY+pseudo*s.sumP/s.sumW)/(s.sumW+pseudo)), prev)
		c.Points = append(c.Points, CalibrationPoint{Raw: s.sumP / s.sumW, Calibrated: q})
		prev = q
	}
	return c
}

// calibrationStep is a run of picks sorted by probability: n picks of
// total weight sumW, weighted sums of probabilities and outcomes.
type calibrationStep struct {
	n, sumW, sumP, sumY, minP, maxP float64
}

func (s calibrationStep) pool(t calibrationStep) calibrationStep {
	return calibrationStep{n: s.n + t.n, sumW: s.sumW + t.sumW, sumP: s.sumP + t.sumP, sumY: s.sumY + t.sumY, minP: min(s.minP, t.minP), maxP: max(s.maxP, t.maxP)}
}

// strided returns at most n indices spread evenly over [0, length), in order.
func strided(length, n int) []int {
	n = min(n, length)
	out := make([]int, n)
	for i := range out {
		out[i] = i * length / n
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
