package models

import (
	"cmp"
	"math"
	"slices"
)

// RecommendModel recommends what a customer will want next from the live
// session: session nearest neighbours (V-SKNN) over recent sessions, blended
// with co-purchase neighbours from order history and the session items'
// categories, with store popularity as the fallback for cold sessions. Availability at the store then drops items
// that are likely gone and demotes uncertain ones.
type RecommendModel struct {
	// QueryItems is how many of the session's most recent distinct items
	// describe it; older ones no longer say what the customer wants now.
	QueryItems int
	// SessionsPerItem and SampleSessions choose the neighbour candidates:
	// the most recent SessionsPerItem sessions of each query item, of which
	// the SampleSessions most recent are compared (V-SKNN's recent sample).
	SessionsPerItem, SampleSessions int
	// Neighbours is how many of the most similar sessions vote (k).
	Neighbours int
	// Blend weights of the signals, each first scaled to [0, 1].
	SessionWeight    float64
	CoPurchaseWeight float64
	CategoryWeight   float64
	PopularityWeight float64
	// CartWeight and ViewWeight weigh a session item by what the customer
	// did with it: a cart add says more than a look.
	CartWeight, ViewWeight float64
	// DropBelow and DemoteBelow are availability probabilities: an item
	// below DropBelow is not recommended (it is OUT_OF_STOCK), one below
	// DemoteBelow has its score multiplied by DemoteFactor.
	DropBelow, DemoteBelow, DemoteFactor float64
}

// DefaultRecommendModel returns the parameters used in serving and evaluation.
// The availability thresholds match DefaultAvailabilityModel's statuses:
// OUT_OF_STOCK is dropped, LOW_STOCK demoted.
func DefaultRecommendModel() RecommendModel {
	a := DefaultAvailabilityModel()
	return RecommendModel{
		QueryItems:       10,
		SessionsPerItem:  50,
		SampleSessions:   150,
		Neighbours:       100,
		SessionWeight:    1,
		CoPurchaseWeight: 0.6,
		CategoryWeight:   0.2,
		PopularityWeight: 0.05,
		CartWeight:       1,
		ViewWeight:       0.6,
		DropBelow:        a.LowStockAbove,
		DemoteBelow:      a.InStockAbove,
		DemoteFactor:     0.5,
	}
}

// SessionAction is what a customer did with an item in a session.
type SessionAction uint8

// Session actions. Searches carry no item and are not session items.
const (
	ActionView SessionAction = iota + 1
	ActionAddToCart
	ActionRemoveFromCart
)

// SessionItem is one item event of a session.
type SessionItem struct {
	ProductID string
	Action    SessionAction
	AtMillis  int64 // event time, unix milliseconds
}

// Session is the live state of a shopping session.
type Session struct {
	Items []SessionItem // in event-time order, oldest first; bounded by the store
	Cart  []string      // products in the cart now
}

// NeighbourSession is another recent session: the distinct items it touched.
type NeighbourSession struct {
	ID    string
	Items []string
}

// ItemScore is a product with a score: a co-purchase neighbour's strength or
// a product's popularity.
type ItemScore struct {
	ProductID string
	Score     float64
}

// ReasonKind says which signal put an item on the list.
type ReasonKind uint8

// Reasons, from the strongest contribution to an item's score.
const (
	ReasonSession    ReasonKind = iota + 1 // sessions like this one touched it (Anchor: the shared item)
	ReasonCoPurchase                       // often bought with Anchor
	ReasonCategory                         // in the same category as Anchor
	ReasonPopular                          // popular at this store
)

// Recommendation is one recommended product, best first in a list.
type Recommendation struct {
	ProductID string
	Score     float64
	Reason    ReasonKind
	Anchor    string // the session item that explains it; empty for ReasonPopular
	Uncertain bool   // demoted: it may be out of stock
}

// Query returns the session's most recent distinct items that describe
// it, most recent first, with their weights: linear in recency (V-SKNN's
// position weights) times the action's weight. Items removed from the cart
// are left out: the customer changed their mind.
func (m RecommendModel) Query(s Session) []ItemScore {
	removed := make(map[string]bool)
	seen := make(map[string]int) // product → index in out
	var out []ItemScore
	for i := len(s.Items) - 1; i >= 0 && len(out) < m.QueryItems; i-- {
		it := s.Items[i]
		if it.Action == ActionRemoveFromCart {
			removed[it.ProductID] = true
			continue
		}
		if removed[it.ProductID] {
			continue
		}
		w := m.ViewWeight
		if it.Action == ActionAddToCart {
			w = m.CartWeight
		}
		if j, ok := seen[it.ProductID]; ok {
			out[j].Score = max(out[j].Score, w) // the strongest action counts
			continue
		}
		seen[it.ProductID] = len(out)
		out = append(out, ItemScore{ProductID: it.ProductID, Score: w})
	}
	for j := range out {
		out[j].Score *= float64(len(out)-j) / float64(len(out))
	}
	return out
}

// Excluded returns the products never to recommend for the session: what
// is in the cart, and what the session put in or took out of it before (the
// cart of a checked-out session is empty, but what it bought is no news).
func (s Session) Excluded() map[string]bool {
	ex := make(map[string]bool, len(s.Cart))
	for _, p := range s.Cart {
		ex[p] = true
	}
	for _, it := range s.Items {
		if it.Action != ActionView {
			ex[it.ProductID] = true
		}
	}
	return ex
}

// RecommendInput is everything Candidates scores from.
type RecommendInput struct {
	Session    Session
	Neighbours []NeighbourSession       // recent sessions sharing an item with the query; never the session itself
	CoPurchase func(string) []ItemScore // a product's co-purchase neighbours
	// SameCategory returns the other products of a product's category;
	// nil leaves the category signal out.
	SameCategory func(string) []string
	Popular      []ItemScore       // popular products at the store, best first
	Allowed      func(string) bool // whether the store carries a product
}

// Candidates scores products for the session and returns the best n, best
// first (ties by product id), before availability is known.
func (m RecommendModel) Candidates(in RecommendInput, n int) []Recommendation {
	query := m.Query(in.Session)
	excluded := in.Session.Excluded()
	const (
		session = iota
		copurchase
		category
		popular
		signals
	)
	// candidate is a product's evidence from each signal: the summed votes
	// and the anchor behind the largest vote. Candidates live in one slice
	// (a request scores hundreds to thousands) indexed by product; index -1
	// is a product never to recommend (in the cart, or not carried).
	type candidate struct {
		product string
		score   [signals]float64
		best    [signals]float64
		anchor  [signals]string
	}
	var pool []candidate
	index := make(map[string]int, 1024)
	add := func(k int, product, anchor string, v float64) {
		i, seen := index[product]
		if !seen {
			i = -1
			if !excluded[product] && in.Allowed(product) {
				i = len(pool)
				pool = append(pool, candidate{product: product})
			}
			index[product] = i
		}
		if i < 0 || v <= 0 {
			return
		}
		c := &pool[i]
		c.score[k] += v
		if v > c.best[k] || (v == c.best[k] && anchor < c.anchor[k]) {
			c.best[k], c.anchor[k] = v, anchor
		}
	}

	// V-SKNN: similarity of a neighbour is the weighted overlap with the
	// query, normalised like a cosine by the neighbour's length; the k most
	// similar neighbours vote for their items with their similarity.
	type neighbour struct {
		sim    float64
		anchor string
		items  []string
	}
	var near []neighbour
	for _, ns := range in.Neighbours {
		var overlap, best float64
		anchor := ""
		for _, it := range ns.Items {
			for _, q := range query {
				if q.ProductID == it {
					overlap += q.Score
					if q.Score > best {
						best, anchor = q.Score, it
					}
					break
				}
			}
		}
		if overlap > 0 {
			near = append(near, neighbour{overlap / math.Sqrt(float64(len(ns.Items))), anchor, ns.Items})
		}
	}
	slices.SortStableFunc(near, func(a, b neighbour) int { return cmp.Compare(b.sim, a.sim) })
	for _, nb := range near[:min(len(near), m.Neighbours)] {
		for _, it := range nb.items {
			add(session, it, nb.anchor, nb.sim)
		}
	}
	if in.CoPurchase != nil {
		for _, q := range query {
			for _, nb := range in.CoPurchase(q.ProductID) {
				add(copurchase, nb.ProductID, q.ProductID, q.Score*nb.Score)
			}
		}
	}
	// A product of a query item's category gets the item's weight: among
	// them, popularity and the other signals decide.
	if in.SameCategory != nil {
		for _, q := range query {
			for _, p := range in.SameCategory(q.ProductID) {
				add(category, p, q.ProductID, q.Score)
			}
		}
	}
	for _, p := range in.Popular {
		add(popular, p.ProductID, "", p.Score)
	}

	// Scale each signal to [0, 1] by its best item so the weights compare
	// like with like, then blend; the largest weighted part is the reason.
	weights := [signals]float64{m.SessionWeight, m.CoPurchaseWeight, m.CategoryWeight, m.PopularityWeight}
	kinds := [signals]ReasonKind{ReasonSession, ReasonCoPurchase, ReasonCategory, ReasonPopular}
	var top [signals]float64
	for i := range pool {
		for k := range signals {
			top[k] = max(top[k], pool[i].score[k])
		}
	}
	out := make([]Recommendation, 0, n)
	for i := range pool {
		c := &pool[i]
		r := Recommendation{ProductID: c.product}
		reasonPart := 0.0
		for k := range signals {
			if top[k] == 0 {
				continue
			}
			part := weights[k] * c.score[k] / top[k]
			r.Score += part
			if part > reasonPart {
				reasonPart, r.Reason, r.Anchor = part, kinds[k], c.anchor[k]
			}
		}
		if r.Score > 0 {
			out = keepBest(out, r, n)
		}
	}
	return out
}

// keepBest inserts r into best, sorted best first, if it is among the n
// best: a partial sort, since a request scores far more candidates than it
// keeps.
func keepBest(best []Recommendation, r Recommendation, n int) []Recommendation {
	if n <= 0 || (len(best) == n && compareRecommendations(r, best[n-1]) >= 0) {
		return best
	}
	i, _ := slices.BinarySearchFunc(best, r, compareRecommendations)
	if len(best) == n {
		best = best[:n-1]
	}
	return slices.Insert(best, i, r)
}

// Rank applies availability to candidates: probability[i] is candidates[i]'s
// chance of being on the shelf. Items below DropBelow go, items below
// DemoteBelow are demoted and flagged, and the best first remain.
func (m RecommendModel) Rank(candidates []Recommendation, probability []float64, first int) []Recommendation {
	out := make([]Recommendation, 0, len(candidates))
	for i, r := range candidates {
		p := probability[i]
		if p < m.DropBelow {
			continue
		}
		if p < m.DemoteBelow {
			r.Score *= m.DemoteFactor
			r.Uncertain = true
		}
		out = append(out, r)
	}
	sortRecommendations(out)
	return out[:min(len(out), first)]
}

// compareRecommendations orders best first: higher score, then product id.
func compareRecommendations(a, b Recommendation) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	return cmp.Compare(a.ProductID, b.ProductID)
}

func sortRecommendations(rs []Recommendation) { slices.SortFunc(rs, compareRecommendations) }

// SessionTime is a session in a product's index of recent sessions, with the
// time it last touched the product.
type SessionTime struct {
	ID       string
	AtMillis int64
}

// SampleNeighbours picks V-SKNN's sample of candidate neighbours from the
// recent-session lists of the query items: the n sessions that touched any of
// them most recently (ties by id), never self.
func SampleNeighbours(lists [][]SessionTime, self string, n int) []string {
	at := make(map[string]int) // session → index in latest
	var latest []SessionTime
	for _, l := range lists {
		for _, st := range l {
			if st.ID == self {
				continue
			}
			if i, ok := at[st.ID]; ok {
				latest[i].AtMillis = max(latest[i].AtMillis, st.AtMillis)
				continue
			}
			at[st.ID] = len(latest)
			latest = append(latest, st)
		}
	}
	slices.SortFunc(latest, func(a, b SessionTime) int {
		if c := cmp.Compare(b.AtMillis, a.AtMillis); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	ids := make([]string, min(len(latest), n))
	for i := range ids {
		ids[i] = latest[i].ID
	}
	return ids
}

// NeighbourItems is what a session offers as a neighbour: its products once
// each, in first-seen order, leaving out those last taken out of the cart.
func NeighbourItems(items []SessionItem) []string {
	// Sessions hold a few dozen items: scanning beats maps here.
	out := make([]string, 0, len(items))
	for i, it := range items {
		if slices.Contains(out, it.ProductID) {
			continue
		}
		last := it.Action
		for _, later := range items[i+1:] {
			if later.ProductID == it.ProductID {
				last = later.Action
			}
		}
		if last != ActionRemoveFromCart {
			out = append(out, it.ProductID)
		}
	}
	return out
}
