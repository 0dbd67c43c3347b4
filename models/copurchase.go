package models

import (
	"cmp"
	"slices"
)

// Basket is the distinct products of one order, at one store.
type Basket struct {
	StoreID  string
	Products []string
}

// CoPurchaseConfig shapes FitCoPurchase.
type CoPurchaseConfig struct {
	K          int // neighbours kept per product
	MinSupport int // orders a pair must share to count: fewer is noise
	Popular    int // most popular products kept per store: the cold-start list
}

// DefaultCoPurchaseConfig is what `aisle batch copurchase` and the evaluation use.
func DefaultCoPurchaseConfig() CoPurchaseConfig {
	return CoPurchaseConfig{K: 30, MinSupport: 3, Popular: 200}
}

// CoPurchase is the fitted batch model: co-purchase neighbours and popularity.
type CoPurchase struct {
	// Neighbours maps a product to its top-K co-purchase neighbours by
	// Jaccard similarity of the sets of orders containing them, best first.
	Neighbours map[string][]ItemScore
	// Popular maps a store to its most popular products by the share of its
	// orders that contain them, best first; the store "" is every store together, the
	// fallback for a store without orders.
	Popular map[string][]ItemScore
	Orders  int // baskets fitted
}

// FitCoPurchase counts how often products are bought together and keeps,
// for each product, the K neighbours with the highest Jaccard similarity
// among pairs with at least MinSupport orders. Jaccard (rather than lift)
// keeps a pair of rare products from outranking a pair that is bought
// together all the time. Products repeated in a basket count once. The
// result depends only on the baskets, not on their order.
func FitCoPurchase(baskets []Basket, cfg CoPurchaseConfig) CoPurchase {
	index := make(map[string]int32)
	var names []string
	itemOrders := []int32{}
	pairs := make(map[uint64]int32)
	storeCounts := make(map[string]map[string]int)
	storeOrders := make(map[string]int)
	var ids []int32
	for _, b := range baskets {
		ids = ids[:0]
		for _, p := range b.Products {
			i, ok := index[p]
			if !ok {
				i = int32(len(names))
				index[p] = i
				names = append(names, p)
				itemOrders = append(itemOrders, 0)
			}
			ids = append(ids, i)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(ids) == 0 {
			continue
		}
		counts := storeCounts[b.StoreID]
		if counts == nil {
			counts = make(map[string]int)
			storeCounts[b.StoreID] = counts
		}
		storeOrders[b.StoreID]++
		for x, i := range ids {
			itemOrders[i]++
			counts[names[i]]++
			for _, j := range ids[x+1:] {
				pairs[uint64(i)<<32|uint64(j)]++
			}
		}
	}

	neighbours := make(map[string][]ItemScore)
	for key, c := range pairs {
		if int(c) < cfg.MinSupport {
			continue
		}
		i, j := int32(key>>32), int32(key&0xffffffff)
		jaccard := float64(c) / float64(itemOrders[i]+itemOrders[j]-c)
		neighbours[names[i]] = append(neighbours[names[i]], ItemScore{names[j], jaccard})
		neighbours[names[j]] = append(neighbours[names[j]], ItemScore{names[i], jaccard})
	}
	for p, nbs := range neighbours {
		SortItemScores(nbs)
		neighbours[p] = slices.Clip(nbs[:min(len(nbs), cfg.K)])
	}

	popular := make(map[string][]ItemScore, len(storeCounts)+1)
	all := make(map[string]int)
	orders := 0
	for store, counts := range storeCounts {
		popular[store] = shares(counts, storeOrders[store], cfg.Popular)
		for p, c := range counts {
			all[p] += c
		}
		orders += storeOrders[store]
	}
	popular[""] = shares(all, orders, cfg.Popular)
	return CoPurchase{Neighbours: neighbours, Popular: popular, Orders: orders}
}

// PopularAt returns the store's popular products, or every store's when the
// store has no orders yet.
func (c CoPurchase) PopularAt(storeID string) []ItemScore {
	if p, ok := c.Popular[storeID]; ok {
		return p
	}
	return c.Popular[""]
}

// shares returns the top n products by the share of orders containing them.
func shares(counts map[string]int, orders, n int) []ItemScore {
	out := make([]ItemScore, 0, len(counts))
	for p, c := range counts {
		out = append(out, ItemScore{p, float64(c) / float64(orders)})
	}
	SortItemScores(out)
	return slices.Clip(out[:min(len(out), n)])
}

// SortItemScores orders best first, ties by product id, so fits are reproducible.
func SortItemScores(s []ItemScore) {
	slices.SortFunc(s, func(a, b ItemScore) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ProductID, b.ProductID)
	})
}
