package eval

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/simulate"
)

// The recommendations experiment: a synthetic catalog and its customers
// simulated for four weeks; the first three train the batch parts, the last
// is scored, next item by next item.
var recommendationsCatalog = simulate.CatalogSize{Stores: 4, Products: 1200, Categories: 12, ProductsPerStore: 1000}

// shoppingExperiment sizes the recommendations experiment.
type shoppingExperiment struct {
	customers       int
	days, trainDays int
}

var recommendationsExperiment = shoppingExperiment{customers: 2000, days: 28, trainDays: 21}

const (
	listLength = 20 // HR@20, MRR@20
	// rulesWindow is how far ahead in a session sequential rules look.
	rulesWindow = 10
)

// Baseline names in the recommendations report.
const (
	BaselinePopularity      = "popularity"       // the store's most popular products in training orders
	BaselineSequentialRules = "sequential_rules" // rules a→b from training sessions, by the session's last item
)

// RecommendationsReport is the outcome of `aisle eval recommendations`. It
// marshals to the JSON contract {"seed", "model", "baselines"} plus a
// description of the data.
type RecommendationsReport struct {
	Seed      int64                     `json:"seed"`
	Model     RankingMetrics            `json:"model"`
	Baselines map[string]RankingMetrics `json:"baselines"`
	Data      RecommendationsData       `json:"data"`
}

// RecommendationsData describes the simulated data set.
type RecommendationsData struct {
	Stores        int `json:"stores"`
	Products      int `json:"products"`
	Customers     int `json:"customers"`
	Days          int `json:"days"`
	TrainDays     int `json:"train_days"`
	Events        int `json:"events"`
	TrainOrders   int `json:"train_orders"`
	TrainSessions int `json:"train_sessions"`
	Predictions   int `json:"predictions"`
}

// Recommendations simulates shoppers for seed and replays their events in
// time order, as the stream workers would, into an in-memory copy of the
// online session store (the same bounds and neighbour sampling as Redis).
// Co-purchase neighbours, popularity and sequential rules are fitted once,
// from the orders and sessions before the split. After the split, every time
// a session touches a product it had not touched before (and has touched
// something already), each predictor ranks 20 products from the session so
// far; the product is the target. Products already in the session are
// left out of every list: the task is what comes next. No availability is
// simulated here, so the model's availability step is not exercised. Same
// seed, same report.
func Recommendations(seed int64) (RecommendationsReport, error) {
	return recommendations(seed, recommendationsExperiment)
}

func recommendations(seed int64, x shoppingExperiment) (RecommendationsReport, error) {
	cat := simulate.SyntheticCatalog(seed, recommendationsCatalog)
	cfg := simulate.DefaultShoppingConfig(seed)
	cfg.Customers = x.customers
	start := time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)
	cfg.Start = start
	events, err := simulate.GenerateShopping(cat, cfg, time.Duration(x.days)*24*time.Hour)
	if err != nil {
		return RecommendationsReport{}, fmt.Errorf("simulate shopping: %w", err)
	}
	split := start.Add(time.Duration(x.trainDays) * 24 * time.Hour)
	carried := make(map[string]map[string]bool, len(cat.Stores))
	for _, s := range cat.Stores {
		carried[s.ID] = make(map[string]bool, len(s.Products))
		for _, p := range s.Products {
			carried[s.ID][p] = true
		}
	}

	model := models.DefaultRecommendModel()
	index := newSessionIndex()
	sequences := make(map[string][]string) // training sessions' new items, in order
	var (
		baskets                       []models.Basket
		fit                           models.CoPurchase
		rules                         sequentialRules
		fitted                        bool
		modelScore, popScore, srScore rankingScore
	)
	for _, ev := range events {
		d, err := decode(ev)
		if err != nil {
			return RecommendationsReport{}, err
		}
		train := d.Time.Before(split)
		if !train && !fitted {
			fit = models.FitCoPurchase(baskets, models.DefaultCoPurchaseConfig())
			rules = fitSequentialRules(sequences)
			fitted = true
		}
		if d.Order != nil {
			if train {
				b := models.Basket{StoreID: d.Order.StoreID}
				for _, it := range d.Order.Items {
					b.Products = append(b.Products, it.ProductID)
				}
				baskets = append(baskets, b)
			}
			continue
		}
		se := d.Session
		s := index.sessions[se.SessionID]
		if se.ProductID != "" && s != nil && len(s.touched) > 0 && !slices.Contains(s.touched, se.ProductID) {
			if train {
				sequences[se.SessionID] = append(sequences[se.SessionID], se.ProductID)
			} else {
				exclude := s.touched
				allowed := func(p string) bool { return carried[se.StoreID][p] && !slices.Contains(exclude, p) }
				query := model.Query(s.state)
				queryIDs := make([]string, len(query))
				for i, q := range query {
					queryIDs[i] = q.ProductID
				}
				recs := model.Candidates(models.RecommendInput{
					Session:    s.state,
					Neighbours: index.neighbours(se.SessionID, queryIDs, model, d.Time),
					CoPurchase: func(p string) []models.ItemScore { return fit.Neighbours[p] },
					Popular:    fit.PopularAt(se.StoreID),
					Allowed:    allowed,
				}, listLength)
				modelScore.add(slices.IndexFunc(recs, func(r models.Recommendation) bool { return r.ProductID == se.ProductID }))
				popular := topScores(nil, fit.PopularAt(se.StoreID), allowed)
				popScore.add(slices.Index(popular, se.ProductID))
				last := s.state.Items[len(s.state.Items)-1].ProductID
				srScore.add(slices.Index(topScores(rules[last], fit.PopularAt(se.StoreID), allowed), se.ProductID))
			}
		}
		index.apply(d)
	}
	if modelScore.n == 0 || len(baskets) == 0 {
		return RecommendationsReport{}, fmt.Errorf("recommendations evaluation of seed %d: nothing to fit or score", seed)
	}
	return RecommendationsReport{
		Seed:  seed,
		Model: modelScore.metrics(),
		Baselines: map[string]RankingMetrics{
			BaselinePopularity:      popScore.metrics(),
			BaselineSequentialRules: srScore.metrics(),
		},
		Data: RecommendationsData{
			Stores:        len(cat.Stores),
			Products:      len(cat.Categories),
			Customers:     cfg.Customers,
			Days:          x.days,
			TrainDays:     x.trainDays,
			Events:        len(events),
			TrainOrders:   len(baskets),
			TrainSessions: len(sequences),
			Predictions:   modelScore.n,
		},
	}, nil
}

// topScores lists the best allowed products of first, then of fill, up to
// listLength, without repeats.
func topScores(first, fill []models.ItemScore, allowed func(string) bool) []string {
	out := make([]string, 0, listLength)
	for _, list := range [][]models.ItemScore{first, fill} {
		for _, it := range list {
			if len(out) == listLength {
				return out
			}
			if allowed(it.ProductID) && !slices.Contains(out, it.ProductID) {
				out = append(out, it.ProductID)
			}
		}
	}
	return out
}

// sequentialRules maps an item to the items that followed it in training
// sessions, weighted by 1/distance, best first (Ludewig & Jannach's SR).
type sequentialRules map[string][]models.ItemScore

func fitSequentialRules(sequences map[string][]string) sequentialRules {
	// Sessions in id order: float sums depend on the order of addition,
	// and the report must not depend on map iteration.
	ids := make([]string, 0, len(sequences))
	for id := range sequences {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	weights := make(map[string]map[string]float64)
	for _, id := range ids {
		seq := sequences[id]
		for i, a := range seq {
			for j := i + 1; j < len(seq) && j-i <= rulesWindow; j++ {
				if weights[a] == nil {
					weights[a] = make(map[string]float64)
				}
				weights[a][seq[j]] += 1 / float64(j-i)
			}
		}
	}
	rules := make(sequentialRules, len(weights))
	for a, next := range weights {
		list := make([]models.ItemScore, 0, len(next))
		for b, w := range next {
			list = append(list, models.ItemScore{ProductID: b, Score: w})
		}
		slices.SortFunc(list, func(x, y models.ItemScore) int {
			if c := cmp.Compare(y.Score, x.Score); c != 0 {
				return c
			}
			return cmp.Compare(x.ProductID, y.ProductID)
		})
		rules[a] = list
	}
	return rules
}

// sessionIndex is the online session store in memory: what
// features.ApplySessions keeps in Redis, with the same bounds, so the
// evaluation scores what serving would see.
type sessionIndex struct {
	sessions map[string]*indexedSession
	items    map[string][]models.SessionTime // product → recent sessions, at most features.ItemSessions
}

type indexedSession struct {
	state      models.Session
	touched    []string // every product of the session, for the evaluation's targets
	neighbours []string // models.NeighbourItems of state, kept up to date
	at         time.Time
}

func newSessionIndex() *sessionIndex {
	return &sessionIndex{sessions: make(map[string]*indexedSession), items: make(map[string][]models.SessionTime)}
}

var sessionActions = map[string]models.SessionAction{
	aisle.TypeSessionView:           models.ActionView,
	aisle.TypeSessionAddToCart:      models.ActionAddToCart,
	aisle.TypeSessionRemoveFromCart: models.ActionRemoveFromCart,
}

// apply mirrors session.lua for events in time order.
func (x *sessionIndex) apply(d *aisle.Decoded) {
	se := d.Session
	s := x.sessions[se.SessionID]
	if s == nil {
		s = &indexedSession{}
		x.sessions[se.SessionID] = s
	}
	s.at = d.Time
	if d.Type == aisle.TypeSessionCheckout {
		s.state.Cart = nil
	}
	if se.ProductID == "" {
		return
	}
	action := sessionActions[d.Type]
	ms := d.Time.UnixMilli()
	s.state.Items = append(s.state.Items, models.SessionItem{ProductID: se.ProductID, Action: action, AtMillis: ms})
	if n := len(s.state.Items); n > features.SessionItems {
		s.state.Items = slices.Delete(s.state.Items, 0, n-features.SessionItems)
	}
	if !slices.Contains(s.touched, se.ProductID) {
		s.touched = append(s.touched, se.ProductID)
	}
	s.neighbours = models.NeighbourItems(s.state.Items)
	switch action {
	case models.ActionAddToCart:
		s.state.Cart = append(slices.DeleteFunc(s.state.Cart, func(p string) bool { return p == se.ProductID }), se.ProductID)
	case models.ActionRemoveFromCart:
		s.state.Cart = slices.DeleteFunc(s.state.Cart, func(p string) bool { return p == se.ProductID })
	}

	list := x.items[se.ProductID]
	if i := slices.IndexFunc(list, func(st models.SessionTime) bool { return st.ID == se.SessionID }); i >= 0 {
		list[i].AtMillis = max(list[i].AtMillis, ms)
	} else {
		list = append(list, models.SessionTime{ID: se.SessionID, AtMillis: ms})
	}
	if len(list) > features.ItemSessions {
		// Like ZREMRANGEBYRANK: drop the lowest score, the greatest id among equals.
		oldest := 0
		for i, st := range list {
			if st.AtMillis < list[oldest].AtMillis || (st.AtMillis == list[oldest].AtMillis && st.ID > list[oldest].ID) {
				oldest = i
			}
		}
		list = slices.Delete(list, oldest, oldest+1)
	}
	x.items[se.ProductID] = list
}

// neighbours mirrors features.Store.NeighbourSessions at now: sessions
// untouched for longer than the session TTL have expired.
func (x *sessionIndex) neighbours(self string, productIDs []string, m models.RecommendModel, now time.Time) []models.NeighbourSession {
	expired := now.Add(-features.SessionTTL).UnixMilli()
	lists := make([][]models.SessionTime, len(productIDs))
	for i, p := range productIDs {
		l := slices.Clone(x.items[p])
		slices.SortFunc(l, func(a, b models.SessionTime) int { // ZREVRANGE order
			if c := cmp.Compare(b.AtMillis, a.AtMillis); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
		lists[i] = l[:min(len(l), m.SessionsPerItem)]
	}
	var out []models.NeighbourSession
	for _, id := range models.SampleNeighbours(lists, self, m.SampleSessions) {
		s := x.sessions[id]
		if s.at.UnixMilli() < expired {
			continue
		}
		out = append(out, models.NeighbourSession{ID: id, Items: s.neighbours})
	}
	return out
}

// String renders the report for people.
func (r RecommendationsReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Recommendations evaluation, seed %d\n", r.Seed)
	fmt.Fprintf(&b, "%d customers of %d stores (%d products), %d days simulated (%d events): %d days train (%d orders, %d sessions), %d are scored.\n",
		r.Data.Customers, r.Data.Stores, r.Data.Products, r.Data.Days, r.Data.Events, r.Data.TrainDays, r.Data.TrainOrders, r.Data.TrainSessions, r.Data.Days-r.Data.TrainDays)
	fmt.Fprintf(&b, "%d predictions: each time a session touches a new product, 20 products are ranked from the session so far.\n\n", r.Data.Predictions)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "predictor\thr@20\tmrr@20\t")
	row := func(name string, m RankingMetrics) { fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t\n", name, m.HR, m.MRR) }
	row("model", r.Model)
	row(BaselinePopularity, r.Baselines[BaselinePopularity])
	row(BaselineSequentialRules, r.Baselines[BaselineSequentialRules])
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	return b.String()
}
