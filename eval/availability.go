// Package eval measures Aisle's models on simulated data with known ground
// truth, against simple baselines, with proper scoring rules.
package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
)

// The availability experiment: a synthetic catalog simulated for a week; the
// first days fit the priors and the baselines, the rest is scored.
var availabilityCatalog = simulate.CatalogSize{Stores: 8, Products: 400, Categories: 12, ProductsPerStore: 150}

const (
	availabilityDays      = 7
	availabilityTrainDays = 3
)

// availabilityStart is the simulated week's first midnight.
var availabilityStart = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// Baseline names in the report.
const (
	BaselineGlobalRate = "global_rate" // the training found rate, for every pick
	BaselineLastEvent  = "last_event"  // the training found rate after the store-product's last event kind
)

// Report is the outcome of an evaluation. It marshals to the JSON contract
// {"seed", "model", "baselines"} plus descriptive extras.
type Report struct {
	Seed      int64                          `json:"seed"`
	Model     AvailabilityMetrics            `json:"model"`
	Baselines map[string]AvailabilityMetrics `json:"baselines"`
	Data      AvailabilityData               `json:"data"`
	Fit       AvailabilityFit                `json:"fit"`
}

// AvailabilityMetrics score a predictor of "on the shelf". The proper
// scores are over the probes (a store-product looked at a random open-hour
// moment, the truth its hidden shelf), so that every item counts alike, fast
// mover or slow; the found rate is over the scored picks.
type AvailabilityMetrics struct {
	Metrics
	// EmptyShownInStock is the share of probes of an empty shelf that the
	// predictor shows IN_STOCK; PhantomShownInStock is that share among the
	// empty shelves whose latest feed level was positive.
	EmptyShownInStock   float64 `json:"empty_shown_in_stock"`
	PhantomShownInStock float64 `json:"phantom_shown_in_stock"`
	// OnShelfShownInStock is the share of probes of an item on the shelf
	// that the predictor shows IN_STOCK: the coverage that
	// InStockFoundRate is bought at.
	OnShelfShownInStock float64 `json:"on_shelf_shown_in_stock"`
	// InStockFoundRate is the found rate of the picks of items the
	// predictor showed IN_STOCK just before the pick.
	InStockFoundRate float64                   `json:"in_stock_found_rate"`
	Segments         map[string]SegmentMetrics `json:"segments"`
}

// SegmentMetrics score the probes of one segment.
type SegmentMetrics struct {
	Probes      int     `json:"probes"`
	OnShelfRate float64 `json:"on_shelf_rate"`
	LogLoss     float64 `json:"log_loss"`
	ECE         float64 `json:"ece"`
}

// Segments of the probes, named in the report.
const (
	// SegmentPhantomStock: the system counts more units than the shelf
	// holds (theft, spoilage, mis-scans, units in the backroom).
	SegmentPhantomStock = "phantom_stock"
	SegmentFeedSaysZero = "feed_says_zero" // the latest feed level seen is zero or below
	SegmentNoFeed       = "no_feed"        // no feed level seen for the store-product
	SegmentSlowMovers   = "slow_movers"    // fewer than slowMoverPicksPerDay expected picks a day
)

var segmentNames = []string{SegmentPhantomStock, SegmentFeedSaysZero, SegmentNoFeed, SegmentSlowMovers}

// minRefitEvery is the shortest refit interval the evaluation takes: each
// fit replays every pick so far, and a refit more often than hourly says
// nothing a scheduled job would.
const minRefitEvery = time.Hour

// slowMoverPicksPerDay is the expected daily picks below which a
// store-product is a slow mover.
const slowMoverPicksPerDay = 0.5

// probesPerDay is how often each store-product is probed a day.
const probesPerDay = 4

// AvailabilityData describes the simulated data set.
type AvailabilityData struct {
	Stores        int `json:"stores"`
	StoreProducts int `json:"store_products"`
	Days          int `json:"days"`
	TrainDays     int `json:"train_days"`
	Events        int `json:"events"`
	TrainPicks    int `json:"train_picks"`
	// RefitEveryHours is how often the priors were refitted during the
	// scored days on every pick so far (0: fitted once, on the first
	// TrainDays); Fits counts the fits.
	RefitEveryHours float64 `json:"refit_every_hours,omitempty"`
	Fits            int     `json:"fits"`
	EvalPicks       int     `json:"eval_picks"`
	EvalFoundRate   float64 `json:"eval_found_rate"`
	EvalProbes      int     `json:"eval_probes"`
	OnShelfRate     float64 `json:"on_shelf_rate"` // of the scored probes
}

// AvailabilityFit is what the priors fit chose (the last fit when the
// priors were refitted), for the curious.
type AvailabilityFit struct {
	CategoryShrink    float64 `json:"category_shrink"`
	ProductShrink     float64 `json:"product_shrink"`
	PriorStrength     float64 `json:"prior_strength"`
	FeedStrength      float64 `json:"feed_strength"`
	CalibrationPoints int     `json:"calibration_points"`
	// ShopperMiss is the learned share of items on the shelf that shoppers
	// miss (the simulator's is about 3%); FeedReliability the stores whose
	// feed got a factor of its own, by factor; FeedZeroReliability those
	// whose zeros did.
	ShopperMiss         float64            `json:"shopper_miss"`
	FeedReliability     map[string]float64 `json:"feed_reliability,omitempty"`
	FeedZeroReliability map[string]float64 `json:"feed_zero_reliability,omitempty"`
}

// predictors are the model and the baselines, in report order.
var predictors = []string{"model", BaselineGlobalRate, BaselineLastEvent}

// scored collects one predictor's predictions.
type scored struct {
	probes   []prediction
	segments map[string][]prediction
	// emptyProbes and phantomProbes count the probes of empty shelves (with
	// a positive latest feed level), and how many were shown IN_STOCK.
	emptyProbes, emptyInStock, phantomProbes, phantomInStock float64
	onShelfProbes, onShelfInStock                            float64
	inStockPicks, inStockFound                               float64
}

// Availability simulates a week of a synthetic marketplace for seed, fits the
// availability priors on the first days' picks, then replays the remaining
// events in event-time order. Every probe of the hidden state is predicted
// from the evidence so far, the target being that the item is on the shelf;
// every pick is predicted before it is applied, for the found rate of the
// items shown IN_STOCK. With refitEvery > 0 the priors (and the baselines'
// rates) are refitted that often on every pick so far, as a scheduled
// `aisle batch priors` would; 0 fits them once. Same seed, same report.
func Availability(seed int64, refitEvery time.Duration) (Report, error) {
	if refitEvery != 0 && refitEvery < minRefitEvery {
		return Report{}, fmt.Errorf("refit every %s: want 0 (fit once) or at least %gh", refitEvery, minRefitEvery.Hours())
	}
	cat := simulate.SyntheticCatalog(seed, availabilityCatalog)
	cfg := simulate.Config{Seed: seed, Start: availabilityStart, ProbesPerDay: probesPerDay}
	records, err := simulate.Generate(cat, cfg, availabilityDays*24*time.Hour)
	if err != nil {
		return Report{}, fmt.Errorf("simulate availability: %w", err)
	}
	split := cfg.Start.Add(availabilityTrainDays * 24 * time.Hour)

	model := models.DefaultAvailabilityModel()
	history := model.NewHistory()
	last := make(map[aisle.StoreProduct]lastEvent)
	var (
		train         []models.PickObservation
		lastTrain     lastEventRates
		lastSoFar     lastEventRates // lastTrain, and the scored days' picks so far
		fits          int
		trainPicks    int
		nextFit       time.Time
		fitted        bool
		priors        models.AvailabilityPriors
		global        float64
		storeProducts int
		events        int
		evalPicks     []prediction
		results       = make(map[string]*scored, len(predictors))
	)
	for _, name := range predictors {
		results[name] = &scored{segments: make(map[string][]prediction)}
	}
	for _, s := range cat.Stores {
		storeProducts += len(s.Products)
	}
	// refit fits on every pick so far at now and schedules the next fit
	// for the first refitEvery boundary after now.
	refit := func(now time.Time) {
		priors = model.FitAvailabilityPriors(train)
		global = priors.GlobalRate()
		lastTrain = lastSoFar
		fits++
		for refitEvery > 0 && !nextFit.After(now) {
			nextFit = nextFit.Add(refitEvery)
		}
	}
	fit := func() {
		if !fitted {
			nextFit = split
			refit(split)
			fitted = true
		}
	}
	predict := func(sp aisle.StoreProduct, category string, e models.AvailabilityEvidence, at time.Time) map[string]float64 {
		return map[string]float64{
			"model":            model.ProbabilityOf(e, priors, models.ShelfItem{StoreID: sp.StoreID, ProductID: sp.ProductID, Category: category}, at),
			BaselineGlobalRate: global,
			BaselineLastEvent:  lastTrain.rate(last[sp]),
		}
	}
	for _, r := range records {
		if fitted && refitEvery > 0 && !r.Event.Time.Before(nextFit) {
			refit(r.Event.Time)
		}
		if r.Probe {
			if r.Event.Time.Before(split) {
				continue
			}
			fit()
			sp := aisle.StoreProduct{StoreID: r.Truth.StoreID, ProductID: r.Truth.ProductID}
			e := history.Evidence(sp.String())
			for name, p := range predict(sp, cat.Categories[sp.ProductID], e, r.Event.Time) {
				results[name].addProbe(model, r.Truth, e, p)
			}
			continue
		}
		events++
		d, err := decode(r.Event)
		if err != nil {
			return Report{}, err
		}
		sp := d.StoreProduct()
		if d.Inventory != nil {
			history.Count(sp.String(), *d.Inventory.Quantity, d.Inventory.CountedTime(d.Time), d.Time)
			last[sp] = feedEvent(*d.Inventory.Quantity)
			continue
		}
		found := d.Type == aisle.TypePickFound
		category := cat.Categories[sp.ProductID]
		before := history.Evidence(sp.String())
		if !d.Time.Before(split) {
			fit()
			truth := prediction{found: found, onShelf: r.Truth.OnShelf > 0}
			evalPicks = append(evalPicks, truth)
			for name, p := range predict(sp, category, before, d.Time) {
				results[name].addPick(model, found, p)
			}
		}
		// obs.Evidence is the evidence before this pick: the fit weighs it
		// as serving would have.
		obs := history.Pick(sp.String(), models.ShelfItem{StoreID: sp.StoreID, ProductID: sp.ProductID, Category: category}, found, d.Time)
		if d.Time.Before(split) {
			trainPicks++
		}
		if d.Time.Before(split) || refitEvery > 0 {
			train = append(train, obs)
			lastSoFar.add(last[sp], found)
		}
		last[sp] = pickEvent(found)
	}
	if len(results["model"].probes) == 0 || len(evalPicks) == 0 || len(train) == 0 {
		return Report{}, fmt.Errorf("availability evaluation of seed %d: no picks to fit or score", seed)
	}

	report := Report{
		Seed:      seed,
		Model:     results["model"].metrics(),
		Baselines: map[string]AvailabilityMetrics{},
		Data: AvailabilityData{
			Stores:          len(cat.Stores),
			StoreProducts:   storeProducts,
			Days:            availabilityDays,
			TrainDays:       availabilityTrainDays,
			Events:          events,
			TrainPicks:      trainPicks,
			Fits:            fits,
			RefitEveryHours: refitEvery.Hours(),
			EvalPicks:       len(evalPicks),
			EvalFoundRate:   foundRate(evalPicks),
			EvalProbes:      len(results["model"].probes),
			OnShelfRate:     foundRate(results["model"].probes),
		},
		Fit: AvailabilityFit{
			CategoryShrink:      priors.CategoryShrink,
			ProductShrink:       priors.ProductShrink,
			PriorStrength:       priors.PriorStrength,
			FeedStrength:        priors.FeedStrength,
			CalibrationPoints:   len(priors.Calibration.Points),
			ShopperMiss:         priors.ShopperMiss.Rate(),
			FeedReliability:     priors.FeedReliability,
			FeedZeroReliability: priors.FeedZeroReliability,
		},
	}
	for _, name := range predictors[1:] {
		report.Baselines[name] = results[name].metrics()
	}
	return report.rounded(), nil
}

// addProbe scores p for a probe of truth, whose evidence so far is e.
func (s *scored) addProbe(model models.AvailabilityModel, truth simulate.Truth, e models.AvailabilityEvidence, p float64) {
	onShelf := truth.OnShelf > 0
	x := prediction{p: p, found: onShelf, onShelf: onShelf}
	s.probes = append(s.probes, x)
	inStock := boolFloat(model.Status(p) == models.AvailabilityInStock)
	feedPositive := !e.FeedAt.IsZero() && e.FeedQuantity > 0
	if onShelf {
		s.onShelfProbes++
		s.onShelfInStock += inStock
	} else {
		s.emptyProbes++
		s.emptyInStock += inStock
		if feedPositive {
			s.phantomProbes++
			s.phantomInStock += inStock
		}
	}
	for _, seg := range segmentNames {
		var in bool
		switch seg {
		case SegmentPhantomStock:
			in = truth.SystemCount > truth.OnShelf
		case SegmentFeedSaysZero:
			in = !e.FeedAt.IsZero() && e.FeedQuantity <= 0
		case SegmentNoFeed:
			in = e.FeedAt.IsZero()
		case SegmentSlowMovers:
			in = truth.PicksPerDay < slowMoverPicksPerDay
		}
		if in {
			s.segments[seg] = append(s.segments[seg], x)
		}
	}
}

// addPick counts a pick predicted p before it was made.
func (s *scored) addPick(model models.AvailabilityModel, found bool, p float64) {
	if model.Status(p) == models.AvailabilityInStock {
		s.inStockPicks++
		s.inStockFound += boolFloat(found)
	}
}

func (s *scored) metrics() AvailabilityMetrics {
	m := AvailabilityMetrics{
		Metrics:             score(s.probes),
		EmptyShownInStock:   ratio(s.emptyInStock, s.emptyProbes),
		PhantomShownInStock: ratio(s.phantomInStock, s.phantomProbes),
		OnShelfShownInStock: ratio(s.onShelfInStock, s.onShelfProbes),
		InStockFoundRate:    ratio(s.inStockFound, s.inStockPicks),
		Segments:            make(map[string]SegmentMetrics, len(segmentNames)),
	}
	for _, seg := range segmentNames {
		preds := s.segments[seg]
		if len(preds) == 0 {
			continue
		}
		sm := score(preds)
		m.Segments[seg] = SegmentMetrics{Probes: len(preds), OnShelfRate: foundRate(preds), LogLoss: sm.LogLoss, ECE: sm.ECE}
	}
	return m
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// decode runs an event through the same validation the stream workers use.
func decode(ev aisle.Event) (*aisle.Decoded, error) {
	value, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode simulated event %s: %w", ev.ID, err)
	}
	d, err := aisle.DecodeEvent(value, "", ev.Time)
	if err != nil {
		return nil, fmt.Errorf("simulated event %s is invalid: %w", ev.ID, err)
	}
	return d, nil
}

// lastEvent is the kind of the latest event seen for a store-product: none,
// a pick outcome, or a feed level bucket.
type lastEvent int

const (
	lastNone lastEvent = iota
	lastFound
	lastNotFound
	lastFeedEmpty // 0
	lastFeedLow   // 1-2
	lastFeedSome  // 3-5
	lastFeedMany  // 6+
	lastEventKinds
)

func pickEvent(found bool) lastEvent {
	if found {
		return lastFound
	}
	return lastNotFound
}

func feedEvent(quantity int64) lastEvent {
	switch {
	case quantity <= 0:
		return lastFeedEmpty
	case quantity <= 2:
		return lastFeedLow
	case quantity <= 5:
		return lastFeedSome
	}
	return lastFeedMany
}

// lastEventRates counts training outcomes by the last event before the pick.
type lastEventRates struct {
	found, total [lastEventKinds]float64
}

func (r *lastEventRates) add(k lastEvent, found bool) {
	r.found[k] += boolFloat(found)
	r.total[k]++
}

// rate is the Laplace-smoothed found rate after an event of kind k, finite
// for log-loss even for a kind never seen in training.
func (r *lastEventRates) rate(k lastEvent) float64 {
	return (r.found[k] + 1) / (r.total[k] + 2)
}

func foundRate(preds []prediction) float64 {
	found := 0.0
	for _, p := range preds {
		found += boolFloat(p.found)
	}
	return found / float64(len(preds))
}

// rounded rounds every figure to 6 decimals: the report is for reading and
// comparing, and fewer digits keep the JSON short.
func (r Report) rounded() Report {
	r.Model = r.Model.rounded()
	baselines := make(map[string]AvailabilityMetrics, len(r.Baselines))
	for name, m := range r.Baselines {
		baselines[name] = m.rounded()
	}
	r.Baselines = baselines
	r.Data.EvalFoundRate = round6(r.Data.EvalFoundRate)
	r.Data.OnShelfRate = round6(r.Data.OnShelfRate)
	r.Fit.CategoryShrink = round6(r.Fit.CategoryShrink)
	r.Fit.ProductShrink = round6(r.Fit.ProductShrink)
	r.Fit.ShopperMiss = round6(r.Fit.ShopperMiss)
	return r
}

func (m AvailabilityMetrics) rounded() AvailabilityMetrics {
	m.Metrics = m.Metrics.rounded()
	m.EmptyShownInStock = round6(m.EmptyShownInStock)
	m.PhantomShownInStock = round6(m.PhantomShownInStock)
	m.OnShelfShownInStock = round6(m.OnShelfShownInStock)
	m.InStockFoundRate = round6(m.InStockFoundRate)
	segments := make(map[string]SegmentMetrics, len(m.Segments))
	for name, s := range m.Segments {
		segments[name] = SegmentMetrics{Probes: s.Probes, OnShelfRate: round6(s.OnShelfRate), LogLoss: round6(s.LogLoss), ECE: round6(s.ECE)}
	}
	m.Segments = segments
	return m
}

func (m Metrics) rounded() Metrics {
	out := Metrics{LogLoss: round6(m.LogLoss), Brier: round6(m.Brier), ECE: round6(m.ECE), AUC: round6(m.AUC)}
	for _, s := range m.Selection {
		out.Selection = append(out.Selection, Selection{Share: s.Share, FoundRate: round6(s.FoundRate), OnShelfRate: round6(s.OnShelfRate)})
	}
	return out
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// String renders the report for people.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Availability evaluation, seed %d\n", r.Seed)
	fmt.Fprintf(&b, "%d stores, %d store-products, %d days simulated (%d events): %d days fit the priors, %d are scored",
		r.Data.Stores, r.Data.StoreProducts, r.Data.Days, r.Data.Events, r.Data.TrainDays, r.Data.Days-r.Data.TrainDays)
	if r.Data.RefitEveryHours > 0 {
		fmt.Fprintf(&b, ", refitting every %gh on every pick so far (%d fits)", r.Data.RefitEveryHours, r.Data.Fits)
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "Picks: %d to fit, %d scored (%.1f%% found). Probes scored: %d (%.1f%% on the shelf). Target: the item is on the shelf.\n\n",
		r.Data.TrainPicks, r.Data.EvalPicks, 100*r.Data.EvalFoundRate, r.Data.EvalProbes, 100*r.Data.OnShelfRate)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "predictor\tlog_loss\tbrier\tece\tauc\tempty→IN_STOCK\tphantom→IN_STOCK\ton_shelf→IN_STOCK\tfound|IN_STOCK\t")
	for _, seg := range segmentNames {
		fmt.Fprintf(tw, "ll:%s\tece:%s\t", seg, seg)
	}
	fmt.Fprintln(tw)
	row := func(name string, m AvailabilityMetrics) {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t", name, m.LogLoss, m.Brier, m.ECE, m.AUC,
			100*m.EmptyShownInStock, 100*m.PhantomShownInStock, 100*m.OnShelfShownInStock, 100*m.InStockFoundRate)
		for _, seg := range segmentNames {
			s := m.Segments[seg]
			fmt.Fprintf(tw, "%.4f\t%.4f\t", s.LogLoss, s.ECE)
		}
		fmt.Fprintln(tw)
	}
	row("model", r.Model)
	row(BaselineGlobalRate, r.Baselines[BaselineGlobalRate])
	row(BaselineLastEvent, r.Baselines[BaselineLastEvent])
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	fmt.Fprintf(&b, "\nScores are over probes (each store-product at random open-hour moments). empty→IN_STOCK: share of empty shelves shown IN_STOCK; phantom→IN_STOCK: of those whose latest feed level was positive; on_shelf→IN_STOCK: share of items on the shelf shown IN_STOCK (the coverage); found|IN_STOCK: found rate of the picks of items shown IN_STOCK.\nSegments (probes, on-shelf rate):")
	for _, seg := range segmentNames {
		s := r.Model.Segments[seg]
		fmt.Fprintf(&b, " %s %d (%.1f%%);", seg, s.Probes, 100*s.OnShelfRate)
	}
	b.WriteString("\nFit")
	if r.Data.Fits > 1 {
		b.WriteString(" (the last of the fits)")
	}
	fmt.Fprintf(&b, ": prior worth %.3g picks, fresh feed worth %.3g picks, shrink product→category %.3g, category→global %.3g, isotonic calibration with %d points, shopper miss rate %.1f%%, feed reliability by store %v, of its zeros %v.\n",
		r.Fit.PriorStrength, r.Fit.FeedStrength, r.Fit.ProductShrink, r.Fit.CategoryShrink, r.Fit.CalibrationPoints, 100*r.Fit.ShopperMiss, r.Fit.FeedReliability, r.Fit.FeedZeroReliability)
	return b.String()
}
