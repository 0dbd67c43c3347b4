package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func everything(string) bool { return true }

func ids(rs []Recommendation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ProductID
	}
	return out
}

func TestQueryWeighsRecencyAndActions(t *testing.T) {
	m := DefaultRecommendModel()
	s := Session{Items: []SessionItem{
		{"milk", ActionAddToCart, 1},
		{"eggs", ActionView, 2},
		{"jam", ActionAddToCart, 3},
		{"jam", ActionRemoveFromCart, 4},
		{"flour", ActionView, 5},
		{"eggs", ActionAddToCart, 6},
	}}
	got := m.Query(s)
	// Most recent first: eggs (cart), flour (view), milk (cart); jam was removed.
	want := []ItemScore{{"eggs", 1}, {"flour", 0.6 * 2 / 3}, {"milk", 1.0 / 3}}
	if len(got) != len(want) {
		t.Fatalf("Query = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].ProductID != want[i].ProductID || math.Abs(got[i].Score-want[i].Score) > 1e-12 {
			t.Fatalf("Query = %v, want %v", got, want)
		}
	}
	s.Cart = []string{"butter"}
	if ex := s.Excluded(); !reflect.DeepEqual(ex, map[string]bool{"butter": true, "milk": true, "jam": true, "eggs": true}) {
		t.Errorf("Excluded = %v, want the cart and everything added or removed, not the views", ex)
	}
}

func TestCandidates(t *testing.T) {
	m := DefaultRecommendModel()
	breakfast := Session{
		Items: []SessionItem{{"eggs", ActionView, 1}, {"pancake-mix", ActionAddToCart, 2}},
		Cart:  []string{"pancake-mix"},
	}
	neighbours := []NeighbourSession{
		{"a", []string{"pancake-mix", "eggs", "syrup"}},
		{"b", []string{"pancake-mix", "syrup", "butter"}},
		{"c", []string{"eggs", "bacon"}},
		{"d", []string{"charcoal", "burgers"}}, // shares nothing: never votes
	}
	co := map[string][]ItemScore{"eggs": {{"bacon", 0.5}, {"pancake-mix", 0.4}}}
	popular := []ItemScore{{"milk", 0.3}, {"pancake-mix", 0.2}, {"bread", 0.1}}
	in := RecommendInput{
		Session:    breakfast,
		Neighbours: neighbours,
		CoPurchase: func(p string) []ItemScore { return co[p] },
		Popular:    popular,
		Allowed:    func(p string) bool { return p != "butter" }, // not sold at this store
	}
	got := m.Candidates(in, 10)
	if want := []string{"syrup", "bacon", "eggs", "milk", "bread"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("Candidates = %+v, want %v", got, want)
	}
	if got[0].Reason != ReasonSession || got[0].Anchor != "pancake-mix" {
		t.Errorf("syrup's reason = %v %q, want the session neighbours via pancake-mix", got[0].Reason, got[0].Anchor)
	}
	if got[1].Reason != ReasonCoPurchase || got[1].Anchor != "eggs" {
		t.Errorf("bacon's reason = %v %q, want co-purchase with eggs", got[1].Reason, got[1].Anchor)
	}
	if got[3].Reason != ReasonPopular || got[3].Anchor != "" {
		t.Errorf("milk's reason = %v %q, want popular", got[3].Reason, got[3].Anchor)
	}

	// A cold session gets the store's popular items, cart aside.
	cold := m.Candidates(RecommendInput{Session: Session{Cart: []string{"milk"}}, Popular: popular, Allowed: everything}, 2)
	if want := []string{"pancake-mix", "bread"}; !reflect.DeepEqual(ids(cold), want) || cold[0].Reason != ReasonPopular {
		t.Errorf("cold session = %+v, want %v, popular", cold, want)
	}
}

func TestRankDropsAndDemotesByAvailability(t *testing.T) {
	m := DefaultRecommendModel()
	cands := []Recommendation{{ProductID: "a", Score: 1}, {ProductID: "b", Score: 0.9}, {ProductID: "c", Score: 0.8}, {ProductID: "d", Score: 0.3}}
	got := m.Rank(cands, []float64{0.9, 0.2, 0.5, 0.95}, 3)
	// b is OUT_OF_STOCK (dropped), c LOW_STOCK (0.8 → 0.4, flagged).
	if want := []string{"a", "c", "d"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("Rank = %+v, want %v", got, want)
	}
	if !got[1].Uncertain || got[1].Score != 0.4 || got[0].Uncertain {
		t.Errorf("Rank = %+v, want only c demoted to 0.4", got)
	}
}

func TestFitCoPurchase(t *testing.T) {
	var baskets []Basket
	for range 4 {
		baskets = append(baskets, Basket{"s-1", []string{"pasta", "sauce", "pasta"}}) // repeated lines count once
	}
	baskets = append(baskets,
		Basket{"s-1", []string{"pasta", "parmesan"}},
		Basket{"s-2", []string{"pasta", "parmesan"}},
		Basket{"s-2", []string{"sauce"}},
	)
	fit := FitCoPurchase(baskets, CoPurchaseConfig{K: 5, MinSupport: 3, Popular: 2})
	// pasta: 6 orders, sauce 5, parmesan 2; pasta+sauce 4 → 4/(6+5-4);
	// pasta+parmesan has support 2 < 3.
	want := map[string][]ItemScore{"pasta": {{"sauce", 4.0 / 7}}, "sauce": {{"pasta", 4.0 / 7}}}
	if !reflect.DeepEqual(fit.Neighbours, want) {
		t.Errorf("Neighbours = %v, want %v", fit.Neighbours, want)
	}
	if want := []ItemScore{{"pasta", 5.0 / 5}, {"sauce", 4.0 / 5}}; !reflect.DeepEqual(fit.PopularAt("s-1"), want) {
		t.Errorf("Popular s-1 = %v, want %v", fit.PopularAt("s-1"), want)
	}
	if want := []ItemScore{{"pasta", 6.0 / 7}, {"sauce", 5.0 / 7}}; !reflect.DeepEqual(fit.PopularAt("s-9"), want) {
		t.Errorf("Popular of a store without orders = %v, want every store's %v", fit.PopularAt("s-9"), want)
	}
	if fit.Orders != 7 {
		t.Errorf("Orders = %d, want 7", fit.Orders)
	}
}

// keepBest is a partial sort: it keeps what a full sort would put first.
func TestKeepBestMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 20} {
		var all, best []Recommendation
		for i := range 200 {
			r := Recommendation{ProductID: fmt.Sprintf("p-%03d", i), Score: float64(rng.IntN(30))} // many ties
			all = append(all, r)
			best = keepBest(best, r, n)
		}
		sortRecommendations(all)
		if want := all[:n]; !reflect.DeepEqual(best, want) && !(n == 0 && len(best) == 0) {
			t.Errorf("n=%d: keepBest = %v, want %v", n, ids(best), ids(want))
		}
	}
}
