package main

import (
	"fmt"
	"testing"

	"github.com/aisle/aisle/aisle"
)

// storefrontPage is the README's example: a store's page, its products of
// one category with details, price and availability, and the category menu,
// in one query.
const storefrontPage = `query StorefrontPage($store: ID!, $category: ID, $first: Int = 20, $after: String) {
  store(id: $store) {
    id name address timezone location { lat lon } retailer { name }
    products(first: $first, after: $after, category: $category) {
      edges { cursor node {
        id name category brand size gtin imageUrl priceCents
        availability { storeId productId carried status probability updatedAt }
      } }
      pageInfo { hasNextPage endCursor }
    }
  }
  categories { id name productCount }
}`

type storefrontProduct struct {
	ID           string           `json:"id"`
	Name         string           `json:"name"`
	Category     string           `json:"category"`
	Brand        *string          `json:"brand"`
	Size         *string          `json:"size"`
	GTIN         *string          `json:"gtin"`
	ImageURL     *string          `json:"imageUrl"`
	PriceCents   *int             `json:"priceCents"`
	Availability *storefrontAvail `json:"availability"`
}

type storefrontAvail struct {
	StoreID     string  `json:"storeId"`
	ProductID   string  `json:"productId"`
	Carried     bool    `json:"carried"`
	Status      string  `json:"status"`
	Probability float64 `json:"probability"`
}

type storefrontData struct {
	Store struct {
		ID       string  `json:"id"`
		Address  *string `json:"address"`
		Timezone *string `json:"timezone"`
		Location *struct {
			Lat float64 `json:"lat"`
			Lon float64 `json:"lon"`
		} `json:"location"`
		Products struct {
			Edges []struct {
				Node storefrontProduct `json:"node"`
			} `json:"edges"`
		} `json:"products"`
	} `json:"store"`
	Categories []struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		ProductCount int    `json:"productCount"`
	} `json:"categories"`
}

func TestStorefrontPageInOneQuery(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, _ := ts.store(1)
	// The catalog topic fills these columns; the demo seed may not.
	ts.sql(`UPDATE stores SET address = '1 Main St', lat = 40.7, lon = -74.0, timezone = 'America/New_York' WHERE id = $1`, store.ID)
	ts.sql(`UPDATE products SET brand = 'Acme', size = '1 gal', gtin = '00012345678905', image_url = 'https://img.example/' || id || '.jpg'
		WHERE category_id = 'fresh-fruit'`)
	ts.sql(`UPDATE store_products SET price_cents = 199 WHERE store_id = $1`, store.ID)

	var page storefrontData
	ts.mustData("", storefrontPage, map[string]any{"store": store.ID, "category": "fresh-fruit", "first": 5}, &page)
	s := page.Store
	if s.ID != store.ID || s.Address == nil || *s.Address != "1 Main St" || s.Timezone == nil || *s.Timezone != "America/New_York" ||
		s.Location == nil || s.Location.Lat != 40.7 || s.Location.Lon != -74.0 {
		t.Errorf("store details = %+v", s)
	}
	var fruit string
	for _, c := range page.Categories {
		if c.ID == "fresh-fruit" {
			fruit = c.Name
			if c.ProductCount == 0 {
				t.Errorf("category %+v counts no products", c)
			}
		}
	}
	if fruit == "" || len(page.Categories) < 2 {
		t.Fatalf("categories = %+v; want every category, fruit among them", page.Categories)
	}
	if len(s.Products.Edges) != 5 {
		t.Fatalf("got %d products of the fruit category, want 5", len(s.Products.Edges))
	}
	for _, e := range s.Products.Edges {
		p := e.Node
		if p.Category != fruit {
			t.Errorf("%s is in %q; the page asked for %q", p.ID, p.Category, fruit)
		}
		if p.Brand == nil || *p.Brand != "Acme" || p.Size == nil || *p.Size != "1 gal" || p.GTIN == nil || *p.GTIN != "00012345678905" ||
			p.ImageURL == nil || *p.ImageURL != "https://img.example/"+p.ID+".jpg" || p.PriceCents == nil || *p.PriceCents != 199 {
			t.Errorf("product details of %s = %+v", p.ID, p)
		}
		a := p.Availability
		if a == nil || a.StoreID != store.ID || a.ProductID != p.ID || !a.Carried || a.Probability <= 0 || a.Status == "" {
			t.Errorf("availability of %s in the listing = %+v", p.ID, a)
		}
	}
}

func TestProductReads(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	_, products := ts.store(2)
	ts.sql(`UPDATE products SET brand = 'Acme' WHERE id = $1`, products[0])
	const doc = `query($id: ID!, $ids: [ID!]!) {
	  product(id: $id) { id name category brand priceCents availability { status } }
	  missing: product(id: "p-nope") { id }
	  products(ids: $ids) { id brand }
	}`
	var data struct {
		Product  *storefrontProduct `json:"product"`
		Missing  *storefrontProduct `json:"missing"`
		Products []*storefrontProduct
	}
	ts.mustData("", doc, map[string]any{"id": products[0], "ids": []string{products[1], "p-nope", products[0]}}, &data)
	if p := data.Product; p == nil || p.ID != products[0] || p.Name == "" || p.Category == "" || p.Brand == nil || *p.Brand != "Acme" ||
		p.PriceCents != nil || p.Availability != nil {
		t.Errorf("product = %+v; want its details, and no price or availability outside a store", p)
	}
	if data.Missing != nil {
		t.Errorf("an unknown product = %+v; want null", data.Missing)
	}
	if got := data.Products; len(got) != 3 || got[0] == nil || got[0].ID != products[1] || got[1] != nil || got[2] == nil || got[2].ID != products[0] {
		t.Errorf("products(ids:) = %+v; want the asked order with null for the unknown id", got)
	}

	ids := make([]string, 101)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i+1)
	}
	resp := ts.query("", `query($ids: [ID!]!) { products(ids: $ids) { id } }`, map[string]any{"ids": ids})
	if code := resp.code(t); code != aisle.EINVALID {
		t.Errorf("101 ids: code %s, want %s", code, aisle.EINVALID)
	}
}

// The availability nested in a store's listing is one batched read per
// page, whatever its size. Not parallel: it counts a process-wide metric.
func TestListingAvailabilityIsOneReadPerPage(t *testing.T) {
	ts := startServer(t)
	store, _ := ts.store(1)
	reads := func() float64 { return ts.scrape().Total("aisle_availability_reads_total", nil) }
	page := func(fields string) int {
		var data storefrontData
		ts.mustData("", `query($s: ID!) { store(id: $s) { products(first: 50) { edges { node { `+fields+` } } } } }`,
			map[string]any{"s": store.ID}, &data)
		n := 0
		for _, e := range data.Store.Products.Edges {
			if e.Node.Availability != nil && e.Node.Availability.ProductID == e.Node.ID {
				n++
			}
		}
		return n
	}

	before := reads()
	if n := page("id"); n != 0 {
		t.Fatalf("%d availabilities without asking", n)
	}
	if got := reads() - before; got != 0 {
		t.Errorf("a listing without availability made %v availability reads", got)
	}
	before = reads()
	if n := page("id availability { productId status probability }"); n != 50 {
		t.Fatalf("got the availability of %d products of 50", n)
	}
	if got := reads() - before; got != 1 {
		t.Errorf("a page of 50 products with availability made %v availability reads; want 1", got)
	}
}
