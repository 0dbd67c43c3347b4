package eval

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
)

// Baselines of the replacements evaluation.
const (
	BaselineMostAvailable = "most_available"
	BaselineMostPopular   = "most_popular"
)

// replacementsTop is the list length scored: a picking app shows a few.
const replacementsTop = 5

// Availability estimate of a candidate from its history picks: the Beta
// posterior mean, shrunk to the default prior as serving shrinks it.
const (
	replacementPriorRate   = 0.86
	replacementPriorWeight = 3.0
)

// ReplacementMetrics score top-5 lists against the product the customer
// accepted.
type ReplacementMetrics struct {
	HR  float64 `json:"hr_at_5"`  // share of cases whose accepted product is in the list
	MRR float64 `json:"mrr_at_5"` // mean reciprocal rank of the accepted product (0 when absent)
}

// ReplacementsReport is the outcome of `aisle eval replacements`: the JSON
// contract {"seed", "model", "baselines"} plus a description of the data.
type ReplacementsReport struct {
	Seed      int64                         `json:"seed"`
	Model     ReplacementMetrics            `json:"model"`
	Baselines map[string]ReplacementMetrics `json:"baselines"`
	Data      ReplacementsData              `json:"data"`
}

// ReplacementsData describes the simulated data set.
type ReplacementsData struct {
	Stores   int `json:"stores"`
	Products int `json:"products"`
	History  int `json:"history_replacements"`
	Cases    int `json:"cases"`
	Refused  int `json:"refused"`
}

// Replacements simulates a world of substitutes for seed (simulate.
// NewReplacementWorld), learns what serving learns from its history (the
// accepted replacements of pick.replaced events, decoded as the stream
// decodes them; order counts; picks), and for each held-out case ranks the
// store's other products of the category: the model, the most available
// (by the picks' Beta posterior) and the most popular (by the share of
// orders). A hit is the customer's accepted product in the top 5. Same
// seed, same report.
func Replacements(seed int64) (ReplacementsReport, error) {
	w := simulate.NewReplacementWorld(seed)
	accepted := make(map[[2]string]int) // (original, replacement) → times accepted
	for _, ev := range w.History {
		d, err := decode(ev)
		if err != nil {
			return ReplacementsReport{}, err
		}
		if d.Type == aisle.TypePickReplaced {
			accepted[[2]string{d.Pick.ProductID, d.Pick.ReplacementProductID}]++
		}
	}
	products := make(map[string]simulate.ReplacementProduct, len(w.Products))
	for _, p := range w.Products {
		products[p.ID] = p
	}

	model := models.DefaultReplacementModel()
	var scores = map[string]*rankingScore{"model": {}, BaselineMostAvailable: {}, BaselineMostPopular: {}}
	for _, c := range w.Cases {
		st := w.Stores[c.Store]
		original := products[c.Product]
		var candidates []models.ReplacementCandidate
		for _, id := range st.Products {
			p := products[id]
			if id == original.ID || p.Category != original.Category {
				continue
			}
			candidates = append(candidates, models.ReplacementCandidate{
				ReplacementItem: models.ReplacementItem{ID: id, Name: p.Name, Brand: p.Brand, Size: p.Size},
				Available:       (float64(st.Found[id]) + replacementPriorRate*replacementPriorWeight) / (float64(st.Picks[id]) + replacementPriorWeight),
				Accepted:        accepted[[2]string{original.ID, id}],
				Popularity:      float64(st.Orders[id]) / float64(max(st.TotalOrders, 1)),
			})
		}
		ranked := model.Rank(models.ReplacementItem{ID: original.ID, Name: original.Name, Brand: original.Brand, Size: original.Size},
			candidates, replacementsTop)
		ids := make([]string, len(ranked))
		for i, r := range ranked {
			ids[i] = r.ID
		}
		scores["model"].add(slices.Index(ids, c.Accepted))
		scores[BaselineMostAvailable].add(slices.Index(topBy(candidates, func(x models.ReplacementCandidate) float64 { return x.Available }), c.Accepted))
		scores[BaselineMostPopular].add(slices.Index(topBy(candidates, func(x models.ReplacementCandidate) float64 { return x.Popularity }), c.Accepted))
	}

	report := ReplacementsReport{
		Seed: seed, Model: replacementMetrics(*scores["model"]),
		Baselines: map[string]ReplacementMetrics{
			BaselineMostAvailable: replacementMetrics(*scores[BaselineMostAvailable]),
			BaselineMostPopular:   replacementMetrics(*scores[BaselineMostPopular]),
		},
		Data: ReplacementsData{Stores: len(w.Stores), Products: len(w.Products), History: len(w.History), Cases: len(w.Cases), Refused: w.Refused},
	}
	return report, nil
}

// topBy returns the ids of the replacementsTop candidates with the highest
// key, ties by id.
func topBy(candidates []models.ReplacementCandidate, key func(models.ReplacementCandidate) float64) []string {
	sorted := slices.Clone(candidates)
	slices.SortFunc(sorted, func(x, y models.ReplacementCandidate) int {
		if c := cmp.Compare(key(y), key(x)); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	ids := make([]string, 0, replacementsTop)
	for _, c := range sorted[:min(replacementsTop, len(sorted))] {
		ids = append(ids, c.ID)
	}
	return ids
}

func replacementMetrics(s rankingScore) ReplacementMetrics {
	m := s.metrics()
	return ReplacementMetrics{HR: m.HR, MRR: m.MRR}
}

// String renders the report for people.
func (r ReplacementsReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Replacements evaluation, seed %d\n", r.Seed)
	fmt.Fprintf(&b, "%d stores, %d products; %d replacements accepted in the history; %d held-out cases (%d more where the customer refused every product on the shelf).\n",
		r.Data.Stores, r.Data.Products, r.Data.History, r.Data.Cases, r.Data.Refused)
	fmt.Fprintf(&b, "Each case ranks the store's other products of the category; a hit is the customer's choice in the top %d.\n\n", replacementsTop)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "predictor\thr@5\tmrr@5\t")
	row := func(name string, m ReplacementMetrics) { fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t\n", name, m.HR, m.MRR) }
	row("model", r.Model)
	row(BaselineMostAvailable, r.Baselines[BaselineMostAvailable])
	row(BaselineMostPopular, r.Baselines[BaselineMostPopular])
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	return b.String()
}
