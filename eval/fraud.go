package eval

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
)

// The fraud experiment (the handbook's prequential validation): simulate
// five weeks; for each of the last seven days, train on the fourteen days
// that ended a week before it (the feedback delay) with the labels known by
// that day, and score that day. The first week warms the velocity features.
var fraudCatalog = simulate.CatalogSize{Stores: 300, Products: 300, Categories: 12, ProductsPerStore: 60}

const (
	fraudTrainDays = 14
	fraudDelayDays = 7
	fraudTestDays  = 7
)

// Fraud baselines in the report.
const (
	BaselineRandom = "random" // a uniform random score
	BaselineRules  = "rules"  // the hand-written rules of rulesScore
	BaselineAmount = "amount" // the order amount alone: the riskier the dearer
)

// fraudBaselines are the baselines of the report, in its order.
var fraudBaselines = []string{BaselineRules, BaselineAmount, BaselineRandom}

// FraudReport is the outcome of `aisle eval fraud`: the contract's
// {"seed", "model", "baselines"} (means over the test days) plus the days.
type FraudReport struct {
	Seed      int64                   `json:"seed"`
	Model     FraudMetrics            `json:"model"`
	Baselines map[string]FraudMetrics `json:"baselines"`
	Days      []FraudDay              `json:"days"`
	Data      FraudData               `json:"data"`
	// Scenarios ranks each scenario's frauds among the legitimate orders
	// of the test week (the other scenarios' frauds left out), for the
	// model and each baseline; CardPrecisionAt100 is not computed there.
	Scenarios map[string]map[string]FraudMetrics `json:"scenarios"`
	// StoreCompromiseCeiling is the average precision on compromised_store
	// of a score that knows which stores are compromised on each day. Every
	// order at a compromised store is fraud (as in the handbook), so it is
	// 1, or close to it where one store's compromises follow each other: the
	// scenario caps no model, and what limits one is the label delay.
	StoreCompromiseCeiling float64 `json:"compromised_store_ceiling"`
	// StoreLabelsReference is the average precision on compromised_store
	// of ranking orders by their store's fraud labels of yesterday alone
	// (store_frauds_1d): what the delayed labels show, for the model to
	// reach with every other feature in the way.
	StoreLabelsReference float64 `json:"compromised_store_yesterdays_labels"`
}

// FraudDay is one prequential test day.
type FraudDay struct {
	Date      string                  `json:"date"`
	Orders    int                     `json:"orders"`
	Frauds    int                     `json:"frauds"`
	TrainRows int                     `json:"train_rows"`
	Model     FraudMetrics            `json:"model"`
	Baselines map[string]FraudMetrics `json:"baselines"`
	// LeftOut are the features the day's fit learned the wrong way round
	// and left out (models.FitFraudModel), such as the account's age on
	// a young marketplace.
	LeftOut []string `json:"left_out"`
}

// FraudData describes the simulated data.
type FraudData struct {
	Days      int            `json:"days"`
	Orders    int            `json:"orders"`
	Frauds    int            `json:"frauds"`
	FraudRate float64        `json:"fraud_rate"`
	Declines  int            `json:"declined_payments"`
	Scenarios map[string]int `json:"scenarios"`
}

// Fraud runs the fraud experiment for seed. Same seed, same report.
func Fraud(seed int64) (FraudReport, error) {
	cat := simulate.SyntheticCatalog(seed, fraudCatalog)
	world := simulate.DefaultFraudWorld(seed, cat.Stores)
	records, err := simulate.GenerateFraud(world)
	if err != nil {
		return FraudReport{}, fmt.Errorf("simulate fraud: %w", err)
	}
	report := FraudReport{Seed: seed, Data: FraudData{Days: world.Days, Scenarios: map[string]int{}}}
	events := make([]*aisle.Decoded, len(records))
	truth := map[string]bool{}
	scenarioOf := map[string]string{}
	compromise := map[string]*compromiseSpan{} // by store
	for i, r := range records {
		events[i] = r.Event
		switch {
		case r.Event.Order != nil:
			truth[r.Event.Order.OrderID] = r.Fraud
			scenarioOf[r.Event.Order.OrderID] = r.Scenario
			report.Data.Orders++
			if r.Fraud {
				report.Data.Frauds++
				report.Data.Scenarios[r.Scenario]++
			}
			if r.Scenario == simulate.ScenarioCompromisedStore {
				store, at := r.Event.Order.StoreID, r.Event.Time
				if compromise[store] == nil {
					compromise[store] = &compromiseSpan{first: at}
				}
				compromise[store].last = at
			}
		case r.Event.PaymentFailed != nil:
			report.Data.Declines++
		}
	}
	report.Data.FraudRate = float64(report.Data.Frauds) / float64(report.Data.Orders)
	examples := fraud.Dataset(events)

	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	idx, err := models.FraudFeatureIndex([]string{"store_frauds_1d"})
	if err != nil {
		return FraudReport{}, err
	}
	storeFrauds1d := idx[0]
	rulesAt := rulesScorer()
	var modelDays []FraudMetrics
	baselineDays := map[string][]FraudMetrics{}
	week := map[string][]scoredOrder{} // the test week's scores, by scorer
	var weekScenarios []string         // their scenarios, in the same order
	var weekCompromised []float64      // 1 when the order's store was compromised then
	var weekStoreLabels []float64      // the order's store_frauds_1d
	for d := world.Days - fraudTestDays; d < world.Days; d++ {
		dayStart := world.Start.AddDate(0, 0, d)
		trainFrom := dayStart.AddDate(0, 0, -fraudDelayDays-fraudTrainDays)
		trainTo := dayStart.AddDate(0, 0, -fraudDelayDays)
		var X [][]float64
		var y []bool
		var test []fraud.Example
		for _, ex := range examples {
			at := ex.Order.At
			switch {
			case !at.Before(trainFrom) && at.Before(trainTo) && ex.Labeled && !ex.LabelAt.After(dayStart):
				X = append(X, ex.Features)
				y = append(y, ex.Fraud)
			case !at.Before(dayStart) && at.Before(dayStart.AddDate(0, 0, 1)):
				test = append(test, ex)
			}
		}
		model, leftOut, err := models.FitFraudModel(X, y, models.DefaultLogisticOptions())
		if err != nil {
			return FraudReport{}, fmt.Errorf("train for %s: %w", dayStart.Format(time.DateOnly), err)
		}
		scorer, err := models.NewFraudScorer(model)
		if err != nil {
			return FraudReport{}, err
		}
		scored := map[string][]scoredOrder{}
		day := FraudDay{Date: dayStart.Format(time.DateOnly), Orders: len(test), TrainRows: len(X), Baselines: map[string]FraudMetrics{}}
		for _, c := range leftOut {
			day.LeftOut = append(day.LeftOut, c.Feature)
		}
		for _, ex := range test {
			isFraud := truth[ex.Order.OrderID]
			if isFraud {
				day.Frauds++
			}
			p, _ := scorer.Score(ex.Features)

			card := ex.Order.Card
			scored["model"] = append(scored["model"], scoredOrder{p, isFraud, card})
			scored[BaselineRandom] = append(scored[BaselineRandom], scoredOrder{rng.Float64(), isFraud, card})
			scored[BaselineRules] = append(scored[BaselineRules], scoredOrder{rulesAt(ex.Features), isFraud, card})
			scored[BaselineAmount] = append(scored[BaselineAmount], scoredOrder{float64(ex.Order.AmountCents), isFraud, card})
			weekScenarios = append(weekScenarios, scenarioOf[ex.Order.OrderID])
			weekCompromised = append(weekCompromised, compromise[ex.Order.StoreID].covers(ex.Order.At))
			weekStoreLabels = append(weekStoreLabels, ex.Features[storeFrauds1d])
		}
		for name, orders := range scored {
			week[name] = append(week[name], orders...)
		}
		day.Model = fraudMetrics(scored["model"])
		modelDays = append(modelDays, day.Model)
		for _, name := range fraudBaselines {
			m := fraudMetrics(scored[name])
			day.Baselines[name] = m
			baselineDays[name] = append(baselineDays[name], m)
		}
		report.Days = append(report.Days, day)
	}
	report.Model = meanFraudMetrics(modelDays)
	report.Baselines = map[string]FraudMetrics{}
	for name, days := range baselineDays {
		report.Baselines[name] = meanFraudMetrics(days)
	}
	report.Scenarios = scenarioMetrics(week, weekScenarios)
	references := scenarioMetrics(map[string][]scoredOrder{
		"ceiling": withScores(week["model"], weekCompromised),
		"labels":  withScores(week["model"], weekStoreLabels),
	}, weekScenarios)[simulate.ScenarioCompromisedStore]
	report.StoreCompromiseCeiling = references["ceiling"].AveragePrecision
	report.StoreLabelsReference = references["labels"].AveragePrecision
	return report, nil
}

// compromiseSpan is when a store's compromise ran: from its first
// compromised_store fraud to its last.
type compromiseSpan struct{ first, last time.Time }

func (s *compromiseSpan) covers(at time.Time) float64 {
	if s != nil && !at.Before(s.first) && !at.After(s.last) {
		return 1
	}
	return 0
}

// withScores is orders with scores replaced.
func withScores(orders []scoredOrder, scores []float64) []scoredOrder {
	out := slices.Clone(orders)
	for i := range out {
		out[i].score = scores[i]
	}
	return out
}

// scenarioMetrics ranks each scenario's frauds among the legitimate orders
// (scenario "") of scored, for each scorer; scenarios[i] is the scenario of
// every scorer's i-th order.
func scenarioMetrics(scored map[string][]scoredOrder, scenarios []string) map[string]map[string]FraudMetrics {
	out := map[string]map[string]FraudMetrics{}
	for _, sc := range scenarios {
		if sc == "" || out[sc] != nil {
			continue
		}
		out[sc] = map[string]FraudMetrics{}
		for name, orders := range scored {
			scores, labels := []float64{}, []bool{}
			for i, o := range orders {
				if scenarios[i] == "" || scenarios[i] == sc {
					scores, labels = append(scores, o.score), append(labels, o.fraud)
				}
			}
			var m FraudMetrics
			m.AUC, m.AveragePrecision = models.FraudRanking(scores, labels)
			out[sc][name] = m
		}
	}
	return out
}

// rulesScorer returns the hand-written rules an analyst would start with,
// scoring an order by how many fire: velocity of declines and cards, an
// unusual amount on a new device, crowded devices and addresses on fresh
// accounts, and entities already known for fraud.
func rulesScorer() func(raw []float64) float64 {
	pos := map[string]int{}
	for i, f := range models.FraudFeatures {
		pos[f.Name] = i
	}
	return func(raw []float64) float64 {
		v := func(name string) float64 { return raw[pos[name]] }
		rules := []bool{
			v("card_failed_payments_10m") >= 3,
			v("device_cards_24h") >= 3,
			v("new_device") == 1 && v("amount_vs_usual") >= 2,
			v("amount_vs_usual") >= 4,
			v("amount") >= 250,
			v("first_order") == 1 && (v("device_accounts_7d") >= 3 || v("address_accounts_7d") >= 3),
			v("device_risk") >= 0.2 || v("address_risk") >= 0.2 || v("card_risk") >= 0.2,
		}
		var n float64
		for _, fired := range rules {
			if fired {
				n++
			}
		}
		return n
	}
}

// String renders the report as a table.
func (r FraudReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fraud evaluation, seed %d: %d days, %d orders, %d fraud (%.2f%%), %d declined payments\n",
		r.Seed, r.Data.Days, r.Data.Orders, r.Data.Frauds, 100*r.Data.FraudRate, r.Data.Declines)
	fmt.Fprintf(&b, "prequential: train %d days, delay %d days, test 1 day, %d test days\n\n", fraudTrainDays, fraudDelayDays, fraudTestDays)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "day\torders\tfraud\tmodel AUC\tAP\tCP@100\t")
	for _, name := range fraudBaselines {
		fmt.Fprintf(w, "%s AUC\tAP\tCP@100\t", name)
	}
	fmt.Fprintln(w)
	row := func(label string, orders, frauds string, m FraudMetrics, baselines map[string]FraudMetrics) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%.3f\t%.3f\t%.2f\t", label, orders, frauds, m.AUC, m.AveragePrecision, m.CardPrecisionAt100)
		for _, name := range fraudBaselines {
			bm := baselines[name]
			fmt.Fprintf(w, "%.3f\t%.3f\t%.2f\t", bm.AUC, bm.AveragePrecision, bm.CardPrecisionAt100)
		}
		fmt.Fprintln(w)
	}
	for _, d := range r.Days {
		row(d.Date, fmt.Sprint(d.Orders), fmt.Sprint(d.Frauds), d.Model, d.Baselines)
	}
	row("mean", "", "", r.Model, r.Baselines)
	w.Flush()

	fmt.Fprintf(&b, "\nper scenario, test week pooled (its frauds among the legitimate orders): average precision\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "scenario\tmodel\t")
	for _, name := range fraudBaselines {
		fmt.Fprintf(w, "%s\t", name)
	}
	fmt.Fprintln(w)
	for _, sc := range slices.Sorted(maps.Keys(r.Scenarios)) {
		fmt.Fprintf(w, "%s\t%.3f\t", sc, r.Scenarios[sc]["model"].AveragePrecision)
		for _, name := range fraudBaselines {
			fmt.Fprintf(w, "%.3f\t", r.Scenarios[sc][name].AveragePrecision)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	fmt.Fprintf(&b, "compromised_store ceiling (knows which stores are compromised each day): %.3f\n", r.StoreCompromiseCeiling)
	fmt.Fprintf(&b, "compromised_store by the store's fraud labels of yesterday alone: %.3f\n", r.StoreLabelsReference)
	leftOut := map[string]int{}
	for _, d := range r.Days {
		for _, f := range d.LeftOut {
			leftOut[f]++
		}
	}
	fmt.Fprintf(&b, "left out as learned the wrong way round (days of %d):", len(r.Days))
	for _, f := range slices.Sorted(maps.Keys(leftOut)) {
		fmt.Fprintf(&b, " %s %d", f, leftOut[f])
	}
	fmt.Fprintln(&b)
	return b.String()
}
