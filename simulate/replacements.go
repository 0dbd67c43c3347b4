package simulate

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aisle/aisle/aisle"
)

// ReplacementWorld is a seeded marketplace of substitutes, for evaluating
// replacement suggestions. Each category holds product lines ("Greek
// Yogurt", "Oat Yogurt") sold by several brands in several sizes; a
// product's name is its brand, line and size. Behind every store-product
// runs a hidden shelf rate, the chance it is on the shelf at a given
// moment, which shoppers' picks reveal with noise.
//
// When a product is not on the shelf, the simulated customer takes the
// on-shelf product of the same category they like best, if they like it
// enough: they like the same line most, then the same brand and the same
// size, and popular products a little, with a taste of their own on top
// (Gumbel noise); below a threshold they refuse every replacement. The
// world shows this only through what the model can see: product names,
// brands and sizes, order counts, picks, and the pick.replaced events of
// the history days.
type ReplacementWorld struct {
	Products []ReplacementProduct
	Stores   []ReplacementStore
	// History is the pick.replaced events of the days before the cases,
	// in time order: the replacements customers accepted then.
	History []aisle.Event
	// Cases are the held-out moments when a store's product is not on the
	// shelf and the customer accepts a replacement.
	Cases []ReplacementCase
	// Refused counts held-out moments when the customer accepted nothing
	// on the shelf; they are not cases (no replacement can be right).
	Refused int
}

// ReplacementProduct is one product; Line is hidden from the model.
type ReplacementProduct struct {
	ID, Name, Brand, Size, Category string
	Line                            string
	appeal                          float64 // how much customers like it beyond line, brand and size; drives popularity
}

// ReplacementStore is one store: what it carries and what shows of it.
type ReplacementStore struct {
	ID       string
	Products []string // carried
	// Found and Picks are the history days' picks of each carried product:
	// how often it was found, of how many picks.
	Found, Picks map[string]int
	// Orders counts the history days' orders containing each product.
	Orders      map[string]int
	TotalOrders int
	shelfRate   map[string]float64
}

// ReplacementCase is one held-out replacement: at Store, Product was not on
// the shelf, and the customer accepted Accepted among the products on the
// shelf then.
type ReplacementCase struct {
	Store    int // index in Stores
	Product  string
	Accepted string
}

// Sizes of the replacement world.
const (
	replacementCategories   = 6
	replacementLines        = 8 // per category: 4 adjectives × 2 nouns
	replacementBrands       = 5 // per category
	replacementSizes        = 3 // per category
	replacementPerCategory  = 36
	replacementStores       = 8
	replacementCarried      = 0.75 // share of the products each store carries
	replacementHistoryCases = 3000
	replacementHeldOut      = 2000
	replacementOrders       = 4000 // per store, over the history days
)

// The customer's hidden taste (see ReplacementWorld).
const (
	tasteLine      = 2.5
	tasteBrand     = 1.0
	tasteSize      = 0.8
	tasteAppeal    = 0.6
	tasteThreshold = 2.5
)

var (
	replacementAdjectives = []string{"Classic", "Organic", "Light", "Spicy", "Sweet", "Smoked", "Whole", "Fresh"}
	replacementNouns      = []string{"Yogurt", "Crackers", "Sauce", "Cheese", "Juice", "Soup", "Beans", "Bread", "Chips", "Tea", "Pasta", "Rice"}
	replacementBrandWords = []string{"Acme", "Birchwood", "Clover", "Dunmore", "Evergreen", "Fairfield", "Greystone", "Harbor", "Ironside", "Juniper"}
	replacementSizeWords  = []string{"8 oz", "12 oz", "16 oz", "24 oz", "32 oz", "6 ct", "12 ct"}
)

// NewReplacementWorld generates the world for seed; the same seed gives
// the same world.
func NewReplacementWorld(seed int64) ReplacementWorld {
	rng := rand.New(rand.NewPCG(uint64(seed), hashString("replacements")))
	var w ReplacementWorld
	byCategory := make(map[string][]int) // category → indexes in w.Products
	for c := range replacementCategories {
		category := fmt.Sprintf("category-%d", c+1)
		nouns := []string{replacementNouns[(2*c)%len(replacementNouns)], replacementNouns[(2*c+1)%len(replacementNouns)]}
		adjectives := rng.Perm(len(replacementAdjectives))[:replacementLines/2]
		brands := rng.Perm(len(replacementBrandWords))[:replacementBrands]
		sizes := rng.Perm(len(replacementSizeWords))[:replacementSizes]
		seen := map[[3]int]bool{}
		for len(byCategory[category]) < replacementPerCategory {
			key := [3]int{rng.IntN(replacementLines), rng.IntN(replacementBrands), rng.IntN(replacementSizes)}
			if seen[key] {
				continue
			}
			seen[key] = true
			line := replacementAdjectives[adjectives[key[0]/2]] + " " + nouns[key[0]%2]
			brand := replacementBrandWords[brands[key[1]]]
			size := replacementSizeWords[sizes[key[2]]]
			byCategory[category] = append(byCategory[category], len(w.Products))
			w.Products = append(w.Products, ReplacementProduct{
				ID: fmt.Sprintf("p-%04d", len(w.Products)+1), Name: brand + " " + line + " " + size,
				Brand: brand, Size: size, Category: category, Line: line, appeal: rng.NormFloat64(),
			})
		}
	}

	for s := range replacementStores {
		st := ReplacementStore{ID: fmt.Sprintf("s-%02d", s+1), Found: map[string]int{}, Picks: map[string]int{},
			Orders: map[string]int{}, shelfRate: map[string]float64{}}
		for _, p := range w.Products {
			if rng.Float64() >= replacementCarried {
				continue
			}
			st.Products = append(st.Products, p.ID)
			// Most items are usually there; some are often missing.
			if rng.Float64() < 0.25 {
				st.shelfRate[p.ID] = 0.1 + 0.4*rng.Float64()
			} else {
				st.shelfRate[p.ID] = 0.8 + 0.19*rng.Float64()
			}
			for range 3 + rng.IntN(10) {
				st.Picks[p.ID]++
				if rng.Float64() < st.shelfRate[p.ID] {
					st.Found[p.ID]++
				}
			}
		}
		w.Stores = append(w.Stores, st)
	}
	products := make(map[string]*ReplacementProduct, len(w.Products))
	for i := range w.Products {
		products[w.Products[i].ID] = &w.Products[i]
	}
	for s := range w.Stores {
		w.Stores[s].order(rng, products)
	}

	start := defaultStart
	for i := range replacementHistoryCases + replacementHeldOut {
		s := rng.IntN(len(w.Stores))
		st := &w.Stores[s]
		original := products[st.pickByAppeal(rng, products)]
		accepted, ok := st.customerChoice(rng, original, products)
		if i >= replacementHistoryCases {
			if ok {
				w.Cases = append(w.Cases, ReplacementCase{Store: s, Product: original.ID, Accepted: accepted})
			} else {
				w.Refused++
			}
			continue
		}
		if ok {
			at := start.Add(time.Duration(i) * time.Minute)
			w.History = append(w.History, replacedEvent(seed, i, st.ID, original.ID, accepted, at))
		}
	}
	return w
}

// order draws the history days' orders: each contains a few products,
// chosen by appeal.
func (st *ReplacementStore) order(rng *rand.Rand, products map[string]*ReplacementProduct) {
	for range replacementOrders {
		st.TotalOrders++
		basket := map[string]bool{}
		for range 1 + rng.IntN(4) {
			basket[st.pickByAppeal(rng, products)] = true
		}
		for id := range basket {
			st.Orders[id]++
		}
	}
}

// pickByAppeal draws a carried product with weight exp(appeal).
func (st *ReplacementStore) pickByAppeal(rng *rand.Rand, products map[string]*ReplacementProduct) string {
	total := 0.0
	for _, id := range st.Products {
		total += math.Exp(products[id].appeal)
	}
	x := rng.Float64() * total
	for _, id := range st.Products {
		x -= math.Exp(products[id].appeal)
		if x <= 0 {
			return id
		}
	}
	return st.Products[len(st.Products)-1]
}

// customerChoice is what the customer takes instead of original among the
// products of its category on the shelf now (each is there with its shelf
// rate): the one they like best, if they like it more than the threshold.
func (st *ReplacementStore) customerChoice(rng *rand.Rand, original *ReplacementProduct, products map[string]*ReplacementProduct) (string, bool) {
	best, bestUtility := "", tasteThreshold
	for _, id := range st.Products {
		c := products[id]
		if c.ID == original.ID || c.Category != original.Category || rng.Float64() >= st.shelfRate[id] {
			continue
		}
		u := tasteAppeal*c.appeal - math.Log(-math.Log(rng.Float64())) // Gumbel taste
		if c.Line == original.Line {
			u += tasteLine
		}
		if c.Brand == original.Brand {
			u += tasteBrand
		}
		if c.Size == original.Size {
			u += tasteSize
		}
		if u > bestUtility {
			best, bestUtility = id, u
		}
	}
	return best, best != ""
}

func replacedEvent(seed int64, i int, storeID, productID, replacementID string, at time.Time) aisle.Event {
	data, err := json.Marshal(aisle.Pick{
		StoreID: storeID, ProductID: productID, ShopperID: "shopper-1",
		OrderID: fmt.Sprintf("order%d-r%d", seed, i), ReplacementProductID: replacementID,
	})
	if err != nil {
		panic(fmt.Sprintf("simulate: encode pick.replaced: %v", err)) // a plain struct always encodes
	}
	return aisle.Event{ID: fmt.Sprintf("sim%d-r%d", seed, i), Type: aisle.TypePickReplaced, Time: at, Source: SourceShopper, Data: data}
}
