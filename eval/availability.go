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
	Seed      int64              `json:"seed"`
	Model     Metrics            `json:"model"`
	Baselines map[string]Metrics `json:"baselines"`
	Data      AvailabilityData   `json:"data"`
	Fit       AvailabilityFit    `json:"fit"`
}

// AvailabilityData describes the simulated data set.
type AvailabilityData struct {
	Stores        int     `json:"stores"`
	StoreProducts int     `json:"store_products"`
	Days          int     `json:"days"`
	TrainDays     int     `json:"train_days"`
	Events        int     `json:"events"`
	TrainPicks    int     `json:"train_picks"`
	EvalPicks     int     `json:"eval_picks"`
	EvalFoundRate float64 `json:"eval_found_rate"`
}

// AvailabilityFit is what the priors fit chose, for the curious.
type AvailabilityFit struct {
	CategoryShrink    float64 `json:"category_shrink"`
	ProductShrink     float64 `json:"product_shrink"`
	PriorStrength     float64 `json:"prior_strength"`
	FeedStrength      float64 `json:"feed_strength"`
	CalibrationPoints int     `json:"calibration_points"`
}

// Availability simulates a week of a synthetic marketplace for seed, fits the
// availability priors on the first days' picks, then replays the remaining
// events in event-time order, predicting every pick before applying it. The
// target is the pick's outcome (found, or not found/replaced). Same seed, same
// report.
func Availability(seed int64) (Report, error) {
	cat := simulate.SyntheticCatalog(seed, availabilityCatalog)
	cfg := simulate.Config{Seed: seed, Start: availabilityStart}
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
		fitted        bool
		priors        models.AvailabilityPriors
		global        float64
		storeProducts int
		// Predictions of the scored picks, by the model and the baselines.
		modelPreds, globalPreds, lastPreds []prediction
	)
	for _, s := range cat.Stores {
		storeProducts += len(s.Products)
	}
	for _, r := range records {
		d, err := decode(r.Event)
		if err != nil {
			return Report{}, err
		}
		sp := d.StoreProduct()
		if d.Inventory != nil {
			history.Feed(sp.String(), *d.Inventory.Quantity, d.Time)
			last[sp] = feedEvent(*d.Inventory.Quantity)
			continue
		}
		found := d.Type == aisle.TypePickFound
		category := cat.Categories[sp.ProductID]
		// obs.Evidence is the evidence before this pick: the model predicts
		// the pick from it, as serving would have.
		obs := history.Pick(sp.String(), sp.ProductID, category, found, d.Time)
		if d.Time.Before(split) {
			train = append(train, obs)
			lastTrain.add(last[sp], found)
		} else {
			if !fitted {
				priors = model.FitAvailabilityPriors(train)
				global = priors.GlobalRate()
				fitted = true
			}
			truth := prediction{found: found, onShelf: r.Truth.OnShelf > 0}
			modelPreds = append(modelPreds, truth.with(model.Probability(obs.Evidence, priors, sp.ProductID, category, d.Time)))
			globalPreds = append(globalPreds, truth.with(global))
			lastPreds = append(lastPreds, truth.with(lastTrain.rate(last[sp])))
		}
		last[sp] = pickEvent(found)
	}
	if len(modelPreds) == 0 || len(train) == 0 {
		return Report{}, fmt.Errorf("availability evaluation of seed %d: no picks to fit or score", seed)
	}

	report := Report{
		Seed:  seed,
		Model: score(modelPreds),
		Baselines: map[string]Metrics{
			BaselineGlobalRate: score(globalPreds),
			BaselineLastEvent:  score(lastPreds),
		},
		Data: AvailabilityData{
			Stores:        len(cat.Stores),
			StoreProducts: storeProducts,
			Days:          availabilityDays,
			TrainDays:     availabilityTrainDays,
			Events:        len(records),
			TrainPicks:    len(train),
			EvalPicks:     len(modelPreds),
			EvalFoundRate: foundRate(modelPreds),
		},
		Fit: AvailabilityFit{
			CategoryShrink:    priors.CategoryShrink,
			ProductShrink:     priors.ProductShrink,
			PriorStrength:     priors.PriorStrength,
			FeedStrength:      priors.FeedStrength,
			CalibrationPoints: len(priors.Calibration.Points),
		},
	}
	return report.rounded(), nil
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
	baselines := make(map[string]Metrics, len(r.Baselines))
	for name, m := range r.Baselines {
		baselines[name] = m.rounded()
	}
	r.Baselines = baselines
	r.Data.EvalFoundRate = round6(r.Data.EvalFoundRate)
	r.Fit.CategoryShrink = round6(r.Fit.CategoryShrink)
	r.Fit.ProductShrink = round6(r.Fit.ProductShrink)
	return r
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
	fmt.Fprintf(&b, "%d stores, %d store-products, %d days simulated (%d events): %d days fit the priors, %d are scored.\n",
		r.Data.Stores, r.Data.StoreProducts, r.Data.Days, r.Data.Events, r.Data.TrainDays, r.Data.Days-r.Data.TrainDays)
	fmt.Fprintf(&b, "Picks: %d to fit, %d scored (%.1f%% found). Target: the pick was found.\n\n",
		r.Data.TrainPicks, r.Data.EvalPicks, 100*r.Data.EvalFoundRate)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "predictor\tlog_loss\tbrier\tece\tauc\t")
	for _, s := range selectionShares {
		fmt.Fprintf(tw, "found@top%.0f%%\t", 100*s)
	}
	fmt.Fprintln(tw)
	row := func(name string, m Metrics) {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t", name, m.LogLoss, m.Brier, m.ECE, m.AUC)
		for _, s := range m.Selection {
			fmt.Fprintf(tw, "%.1f%%\t", 100*s.FoundRate)
		}
		fmt.Fprintln(tw)
	}
	row("model", r.Model)
	row(BaselineGlobalRate, r.Baselines[BaselineGlobalRate])
	row(BaselineLastEvent, r.Baselines[BaselineLastEvent])
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	fmt.Fprintf(&b, "\nfound@topN%%: found rate of the N%% of picks the predictor rated most likely, i.e. of the items a storefront would show as available.\n")
	fmt.Fprintf(&b, "Fit: prior worth %.3g picks, fresh feed worth %.3g picks, shrink product→category %.3g, category→global %.3g, isotonic calibration with %d points.\n",
		r.Fit.PriorStrength, r.Fit.FeedStrength, r.Fit.ProductShrink, r.Fit.CategoryShrink, r.Fit.CalibrationPoints)
	return b.String()
}
