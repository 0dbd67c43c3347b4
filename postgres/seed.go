package postgres

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aisle/aisle/aisle"
)

// productsPerCategory is how many products the demo catalog draws from each
// category's brand × item × size combinations (30 categories → 2,100).
const productsPerCategory = 70

// seedLockID is the transaction advisory lock that serializes SeedDemo
// across processes ("aisle-seed" as a number; any constant works).
const seedLockID int64 = 0x616973_6c65_7364

// DemoEventTime is the event time of every demo catalog event: older than
// any real change, so that a marketplace's own events override the demo.
var DemoEventTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// SeedDemo fills an empty catalog with the deterministic demo catalog
// (DemoEvents): 4 retailers, 24 stores, 30 categories, 2,100 products and
// per-store assortments (each store carries its retailer's share of the
// catalog, between 65% and 90%). It applies the demo's catalog events as
// the stream applies aisle.catalog (ApplyEvents), so the demo exercises the
// path a marketplace's own catalog takes. It does nothing and returns false
// when the catalog already has retailers or products. Everything is written
// in one transaction under an advisory lock, so processes starting together
// seed exactly once.
func (db *DB) SeedDemo(ctx context.Context) (seeded bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("seed demo catalog: %w", err)
	}
	defer tx.Rollback(ctx) // no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, seedLockID); err != nil {
		return false, fmt.Errorf("seed demo catalog: lock: %w", err)
	}
	var populated bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM retailers) OR EXISTS (SELECT 1 FROM products)`).Scan(&populated)
	if err != nil {
		return false, fmt.Errorf("seed demo catalog: check for existing data: %w", err)
	}
	if populated {
		return false, nil
	}
	events, err := DemoEvents()
	if err != nil {
		return false, fmt.Errorf("seed demo catalog: %w", err)
	}
	w := newCatalogWrite(events)
	if err := w.apply(ctx, tx, make([]bool, len(events))); err != nil {
		return false, fmt.Errorf("seed demo catalog: %w", err)
	}
	if err := w.notify(ctx, tx); err != nil {
		return false, fmt.Errorf("seed demo catalog: notify: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("seed demo catalog: commit: %w", err)
	}
	db.ids.forget(change{All: true})
	db.log.InfoContext(ctx, "seeded demo catalog", "retailers", len(w.retailers), "stores", len(w.stores),
		"products", len(w.products), "store_products", len(w.assortments))
	return true, nil
}

// DemoEvents returns the demo catalog as catalog events, in dependency order
// (retailers, stores, products, assortments), with stable ids and
// DemoEventTime, so publishing them twice changes nothing.
func DemoEvents() ([]*aisle.Decoded, error) {
	d := newDemoCatalog()
	events := make([]*aisle.Decoded, 0, len(d.retailers)+len(d.stores)+len(d.products)+len(d.assortments))
	add := func(id, eventType string, data any) error {
		ev, err := aisle.BuildEvent("demo-"+id, eventType, DemoEventTime, DemoEventTime, data)
		if err != nil {
			return fmt.Errorf("demo event %s: %w", id, err)
		}
		events = append(events, ev)
		return nil
	}
	for _, r := range d.retailers {
		if err := add(r.RetailerID, aisle.TypeRetailerUpserted, r); err != nil {
			return nil, err
		}
	}
	for _, s := range d.stores {
		if err := add(s.StoreID, aisle.TypeStoreUpserted, s); err != nil {
			return nil, err
		}
	}
	for _, p := range d.products {
		if err := add(p.ProductID, aisle.TypeProductUpserted, p); err != nil {
			return nil, err
		}
	}
	for _, a := range d.assortments {
		if err := add(a.StoreID+"-"+a.ProductID, aisle.TypeAssortmentUpserted, a); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// demoCatalog holds the demo catalog's event data.
type demoCatalog struct {
	retailers   []aisle.RetailerUpserted
	stores      []aisle.StoreUpserted
	products    []aisle.ProductUpserted
	assortments []aisle.Assortment
}

// demoTimezone is the demo stores' time zone: one metropolitan area.
const demoTimezone = "America/Chicago"

// newDemoCatalog generates the demo catalog from the word lists. Choices are
// made with a fixed hash of names, not a random generator, so the catalog is
// the same on every machine and Go version.
func newDemoCatalog() *demoCatalog {
	d := &demoCatalog{}

	var productIDs []string
	for _, c := range demoCategories {
		for _, p := range demoProducts(c) {
			p.ProductID = "p-" + strconv.Itoa(len(d.products)+1)
			d.products = append(d.products, p)
			productIDs = append(productIDs, p.ProductID)
		}
	}

	for ri, r := range demoRetailers {
		retailerID := "r-" + strconv.Itoa(ri+1)
		d.retailers = append(d.retailers, aisle.RetailerUpserted{RetailerID: retailerID, Name: r.name})
		for _, neighbourhood := range r.stores {
			storeID := "s-" + strconv.Itoa(len(d.stores)+1)
			h := stableHash(storeID)
			// Stores spread over about 40 × 40 km around Chicago's centre.
			lat := math.Round((41.88+0.36*(unitInterval(h)-0.5))*1e5) / 1e5
			lon := math.Round((-87.63+0.48*(unitInterval(stableHash(storeID+"/lon"))-0.5))*1e5) / 1e5
			address := strconv.Itoa(100+int(h%9900)) + " " + neighbourhood + " Avenue"
			zone := demoTimezone
			d.stores = append(d.stores, aisle.StoreUpserted{StoreID: storeID, RetailerID: retailerID, Name: r.name + " " + neighbourhood,
				Address: &address, Lat: &lat, Lon: &lon, Timezone: &zone})
			for _, productID := range productIDs {
				ph := stableHash(storeID + "/" + productID)
				if unitInterval(ph) < r.coverage {
					price := int64(99 + 50*(stableHash(productID+"/price")%38)) // 0.99 to 19.49, the same in every store
					aisleName := strconv.Itoa(1 + int(stableHash(storeID+"/"+productID+"/aisle")%24))
					d.assortments = append(d.assortments, aisle.Assortment{StoreID: storeID, ProductID: productID, PriceCents: &price, Aisle: &aisleName})
				}
			}
		}
	}
	return d
}

// demoProducts draws productsPerCategory distinct "brand item size"
// products from a category, sorted by name so IDs follow the alphabet within
// a category. Their ids are left for the caller to number.
func demoProducts(c demoCategory) []aisle.ProductUpserted {
	type candidate struct {
		p    aisle.ProductUpserted
		rank uint64
	}
	var all []candidate
	for _, brand := range c.brands {
		for _, item := range c.items {
			itemName, sizes, ok := strings.Cut(item, "|")
			if !ok {
				panic("catalog: demo item without sizes: " + item)
			}
			for size := range strings.SplitSeq(sizes, ",") {
				name := brand + " " + itemName + " " + size
				p := aisle.ProductUpserted{Name: name, Category: c.name, Brand: &brand, Size: &size}
				all = append(all, candidate{p, stableHash(c.id + "/" + name)})
			}
		}
	}
	if len(all) < productsPerCategory {
		panic(fmt.Sprintf("catalog: demo category %s has %d combinations, want at least %d", c.id, len(all), productsPerCategory))
	}
	slices.SortFunc(all, func(a, b candidate) int { return cmp.Compare(a.rank, b.rank) })
	products := make([]aisle.ProductUpserted, productsPerCategory)
	for i := range products {
		products[i] = all[i].p
	}
	slices.SortFunc(products, func(a, b aisle.ProductUpserted) int { return cmp.Compare(a.Name, b.Name) })
	return products
}

// stableHash is FNV-1a followed by the splitmix64 finalizer, which spreads
// FNV's weak high bits so that similar strings land far apart.
func stableHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// unitInterval maps a hash to [0, 1).
func unitInterval(h uint64) float64 {
	return float64(h>>11) / (1 << 53)
}
