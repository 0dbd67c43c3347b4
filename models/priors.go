package models

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// AvailabilityPriors is everything the availability model learns from pick
// history in batch: found rates at three levels, how strongly to shrink one
// level to the next, what a feed level says, how much the prior and a feed
// are worth against live picks, and a calibration. It is a plain value that
// round-trips through JSON, so it can be stored and loaded as a document.
// The zero value is usable: an uninformative 0.5 prior, no feed signal.
type AvailabilityPriors struct {
	Global     FoundRate            `json:"global"`
	Categories map[string]FoundRate `json:"categories,omitempty"`
	Products   map[string]FoundRate `json:"products,omitempty"`

	// CategoryShrink and ProductShrink are pseudo-picks pulling a category's
	// rate to the global one and a product's rate to its category's.
	CategoryShrink float64 `json:"category_shrink,omitempty"`
	ProductShrink  float64 `json:"product_shrink,omitempty"`

	// FeedLevels are found rates by the latest feed quantity, ascending by
	// Min; a quantity falls in the last level whose Min it reaches.
	FeedLevels []FeedLevelRate `json:"feed_levels,omitempty"`

	// PriorStrength is what the prior mean is worth in picks; FeedStrength is
	// what a fresh feed level is worth in picks.
	PriorStrength float64 `json:"prior_strength,omitempty"`
	FeedStrength  float64 `json:"feed_strength,omitempty"`

	Calibration Calibration `json:"calibration"`

	Observations int       `json:"observations"`       // picks the fit saw
	FittedAt     time.Time `json:"fitted_at,omitzero"` // latest pick time in the fit
}

// FoundRate counts picks: Found of Total were found. Counts may be weighted.
type FoundRate struct {
	Found float64 `json:"found"`
	Total float64 `json:"total"`
}

// FeedLevelRate is the found rate of picks made while the latest feed level
// was at least Min (and below the next level's Min). Counts are weighted by
// the feed's freshness at the pick, so the rate is that of a fresh feed.
type FeedLevelRate struct {
	Min int64 `json:"min"`
	FoundRate
}

// Calibration maps a posterior mean to a calibrated probability (isotonic
// regression): a step function whose steps are joined by straight lines, as
// points sorted by Raw with linear interpolation between them; below the first
// and above the last point the mapping is flat. The zero value (no points) is
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
)

// feedLevelMins are the lower bounds of the feed levels FitAvailabilityPriors
// uses: empty, one, two, a few, some, many. Low levels are fine-grained
// because that is where phantom stock turns "2 left" into "none".
var feedLevelMins = []int64{0, 1, 2, 3, 5, 8, 13, 21}

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

// Mean is the prior found rate of productID in category: the product's rate
// shrunk to the category's, itself shrunk to the global rate.
func (p AvailabilityPriors) Mean(productID, category string) float64 {
	return p.mean(p.Categories[category], p.Products[productID])
}

func (p AvailabilityPriors) mean(category, product FoundRate) float64 {
	cat := shrink(category, p.GlobalRate(), orDefault(p.CategoryShrink, defaultCategoryShrink))
	return shrink(product, cat, orDefault(p.ProductShrink, defaultProductShrink))
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

// FeedRate is the found rate for a feed quantity, or false when the priors
// have no feed levels.
func (p AvailabilityPriors) FeedRate(quantity int64) (float64, bool) {
	if len(p.FeedLevels) == 0 {
		return 0, false
	}
	l := p.FeedLevels[levelIndex(p.FeedLevels, quantity)]
	return shrink(l.FoundRate, p.GlobalRate(), feedLevelShrink), true
}

// levelIndex is the index of the last level whose Min quantity reaches, or 0.
func levelIndex(levels []FeedLevelRate, quantity int64) int {
	i := 0
	for j, l := range levels {
		if quantity >= l.Min {
			i = j
		}
	}
	return i
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
	ProductID string
	Category  string
	Found     bool      // pick.found (not_found and replaced are false)
	At        time.Time // pick event time
	// Evidence is the store-product's evidence just before this pick was
	// applied (zero when unknown); it lets the fit weigh live evidence
	// against the prior and calibrate the result.
	Evidence AvailabilityEvidence
}

// maxFitObservations caps the picks used for the strength search and the
// calibration, which replay every observation per candidate; the rates use
// every pick.
const maxFitObservations = 200_000

// FitAvailabilityPriors learns priors from pick history:
//
//  1. found counts globally, per category, per product, and per feed level
//     (weighted by the feed's freshness at the pick);
//  2. the shrinkage strengths, by leave-one-out likelihood over categories,
//     then over products (empirical Bayes);
//  3. the prior and feed strengths, by leave-one-out log-loss of the
//     posterior over a grid;
//  4. an isotonic calibration of those leave-one-out posteriors.
//
// Leave-one-out removes a pick from its own product and category counts
// before predicting it, so the fit does not grade itself on what it memorised.
// The result is deterministic for a given slice.
func (m AvailabilityModel) FitAvailabilityPriors(obs []PickObservation) AvailabilityPriors {
	p := AvailabilityPriors{
		Categories:   make(map[string]FoundRate),
		Products:     make(map[string]FoundRate),
		Observations: len(obs),
	}
	productCategory := make(map[string]string)
	levels := make([]FeedLevelRate, len(feedLevelMins))
	for i, lo := range feedLevelMins {
		levels[i].Min = lo
	}
	for _, o := range obs {
		y := boolFloat(o.Found)
		p.Global = p.Global.plus(y, 1)
		p.Categories[o.Category] = p.Categories[o.Category].plus(y, 1)
		p.Products[o.ProductID] = p.Products[o.ProductID].plus(y, 1)
		if _, ok := productCategory[o.ProductID]; !ok {
			productCategory[o.ProductID] = o.Category
		}
		if w := m.feedFreshness(o.Evidence, o.At); w > 0 {
			l := &levels[levelIndex(levels, o.Evidence.FeedQuantity)]
			l.FoundRate = l.plus(y, w)
		}
		if o.At.After(p.FittedAt) {
			p.FittedAt = o.At
		}
	}
	if len(obs) == 0 {
		return p
	}
	p.FeedLevels = levels

	global := p.GlobalRate()
	categories := sortedKeys(p.Categories)
	catGroups := make([]shrinkGroup, len(categories))
	for i, c := range categories {
		catGroups[i] = shrinkGroup{rate: p.Categories[c], mean: global}
	}
	p.CategoryShrink = fitShrink(catGroups)

	products := sortedKeys(p.Products)
	prodGroups := make([]shrinkGroup, len(products))
	for i, id := range products {
		catMean := shrink(p.Categories[productCategory[id]], global, p.CategoryShrink)
		prodGroups[i] = shrinkGroup{rate: p.Products[id], mean: catMean}
	}
	p.ProductShrink = fitShrink(prodGroups)

	sample := strided(obs, maxFitObservations)
	means := make([]float64, len(sample))
	for i, o := range sample {
		means[i] = p.looMean(o)
	}
	p.PriorStrength, p.FeedStrength = m.fitStrengths(p, sample, means)

	raw := make([]float64, len(sample))
	outcomes := make([]bool, len(sample))
	for i, o := range sample {
		raw[i] = m.posterior(o.Evidence, p, means[i], p.PriorStrength, p.FeedStrength, o.At)
		outcomes[i] = o.Found
	}
	p.Calibration = FitCalibration(raw, outcomes)
	return p
}

// plus adds an outcome y (1 found, 0 not) of weight w.
func (r FoundRate) plus(y, w float64) FoundRate {
	r.Found += w * y
	r.Total += w
	return r
}

func (r FoundRate) minus(y float64) FoundRate {
	r.Found = max(r.Found-y, 0)
	r.Total = max(r.Total-1, 0)
	return r
}

// looMean is the prior mean for o with o itself removed from its product and
// category counts (the global count is large enough not to matter).
func (p AvailabilityPriors) looMean(o PickObservation) float64 {
	y := boolFloat(o.Found)
	return p.mean(p.Categories[o.Category].minus(y), p.Products[o.ProductID].minus(y))
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

// fitStrengths picks the prior and feed strengths with the lowest log-loss of
// the uncalibrated posterior over the observations.
func (m AvailabilityModel) fitStrengths(p AvailabilityPriors, obs []PickObservation, means []float64) (priorStrength, feedStrength float64) {
	bestLoss := math.Inf(1)
	for _, s := range priorStrengthGrid {
		for _, w := range feedStrengthGrid {
			loss := 0.0
			for i, o := range obs {
				q := clampProbability(m.posterior(o.Evidence, p, means[i], s, w, o.At))
				if o.Found {
					loss -= math.Log(q)
				} else {
					loss -= math.Log(1 - q)
				}
			}
			if loss < bestLoss {
				priorStrength, feedStrength, bestLoss = s, w, loss
			}
		}
	}
	return priorStrength, feedStrength
}

// minCalibrationBlock is the fewest picks behind one calibration step, so
// that a handful of lucky picks cannot bend the mapping.
const minCalibrationBlock = 50

// FitCalibration fits an isotonic (monotone non-decreasing) mapping from
// probabilities p to outcomes by pool-adjacent-violators, merges steps of
// fewer than minCalibrationBlock picks into their neighbours, and gives each
// step its found rate nudged by one pseudo-pick at its mean probability, so
// that no step says 0 or 1. Each step becomes two points, at the lowest and
// highest probability it covers.
func FitCalibration(p []float64, outcomes []bool) Calibration {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p[a], p[b]) })
	// Equal probabilities share a step from the start.
	var ties []calibrationStep
	for _, i := range order {
		s := calibrationStep{n: 1, sumP: p[i], sumY: boolFloat(outcomes[i]), minP: p[i], maxP: p[i]}
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
		for k := len(steps) - 1; k > 0 && steps[k].sumY*steps[k-1].n < steps[k-1].sumY*steps[k].n; k-- {
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
		q := max(clampProbability((s.sumY+s.sumP/s.n)/(s.n+1)), prev)
		c.Points = append(c.Points, CalibrationPoint{Raw: s.minP, Calibrated: q})
		if s.maxP > s.minP {
			c.Points = append(c.Points, CalibrationPoint{Raw: s.maxP, Calibrated: q})
		}
		prev = q
	}
	return c
}

// calibrationStep is a run of picks sorted by probability.
type calibrationStep struct {
	n, sumP, sumY, minP, maxP float64
}

func (s calibrationStep) pool(t calibrationStep) calibrationStep {
	return calibrationStep{n: s.n + t.n, sumP: s.sumP + t.sumP, sumY: s.sumY + t.sumY, minP: min(s.minP, t.minP), maxP: max(s.maxP, t.maxP)}
}

// strided returns at most n elements spread evenly over s, in order.
func strided[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n])
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
