package simulate

import (
	"fmt"
	"math/rand/v2"

	"github.com/aisle/aisle/aisle"
)

// Catalog is what the simulator stocks: stores with their assortments, and
// each product's category (which shapes its availability).
type Catalog struct {
	Stores     []Store
	Categories map[string]string // product id → category
}

// Sample returns the catalog with at most perStore products per store (the
// first ones of each assortment; all of them when perStore ≤ 0). A live
// demo over the whole catalog would spend its event budget on feed
// snapshots of thousands of items per store; a sample keeps every store's
// picks and feeds coming at a pace a viewer can follow.
func (c Catalog) Sample(perStore int) Catalog {
	if perStore <= 0 {
		return c
	}
	out := Catalog{Categories: c.Categories, Stores: make([]Store, len(c.Stores))}
	for i, st := range c.Stores {
		out.Stores[i] = Store{ID: st.ID, Products: st.Products[:min(perStore, len(st.Products))]}
	}
	return out
}

// Store is one store and the products it carries.
type Store struct {
	ID       string
	Products []string
}

// validate checks that every identifier would pass event validation and that
// the catalog is not empty, so the simulator never emits a rejected event.
func (c Catalog) validate() error {
	stores := make(map[string]bool, len(c.Stores))
	items := 0
	for _, s := range c.Stores {
		if err := aisle.ValidateID("store id", s.ID); err != nil {
			return err
		}
		if stores[s.ID] {
			return aisle.Errorf(aisle.EINVALID, "store %s appears twice in the catalog", s.ID)
		}
		stores[s.ID] = true
		products := make(map[string]bool, len(s.Products))
		for _, p := range s.Products {
			if err := aisle.ValidateID("product id", p); err != nil {
				return err
			}
			if products[p] {
				return aisle.Errorf(aisle.EINVALID, "product %s appears twice in store %s", p, s.ID)
			}
			products[p] = true
		}
		items += len(s.Products)
	}
	if items == 0 {
		return aisle.Errorf(aisle.EINVALID, "the catalog has no store with products")
	}
	return nil
}

// CatalogSize shapes a synthetic catalog.
type CatalogSize struct {
	Stores           int
	Products         int // distinct products
	Categories       int
	ProductsPerStore int // each store carries this many of the products (all if larger)
}

// categoryNames name the first synthetic categories; later ones are numbered.
var categoryNames = []string{
	"produce", "dairy", "bakery", "meat", "frozen", "pantry",
	"beverages", "snacks", "household", "personal-care", "baby", "deli",
}

// SyntheticCatalog returns a deterministic catalog for evaluation: products
// spread over categories round-robin, each store carrying a random subset.
func SyntheticCatalog(seed int64, size CatalogSize) Catalog {
	rng := rand.New(rand.NewPCG(uint64(seed), hashString("catalog")))
	cat := Catalog{Categories: make(map[string]string, size.Products)}
	products := make([]string, size.Products)
	for i := range products {
		products[i] = fmt.Sprintf("p-%05d", i+1)
		cat.Categories[products[i]] = categoryName(i % max(size.Categories, 1))
	}
	perStore := min(size.ProductsPerStore, len(products))
	for i := range size.Stores {
		assortment := make([]string, perStore)
		for j, k := range rng.Perm(len(products))[:perStore] {
			assortment[j] = products[k]
		}
		cat.Stores = append(cat.Stores, Store{ID: fmt.Sprintf("s-%03d", i+1), Products: assortment})
	}
	return cat
}

func categoryName(i int) string {
	if i < len(categoryNames) {
		return categoryNames[i]
	}
	return fmt.Sprintf("category-%02d", i+1)
}
