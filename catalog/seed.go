package catalog

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// productsPerCategory is how many products the demo catalog draws from each
// category's brand × item × size combinations (30 categories → 2,100).
const productsPerCategory = 70

// seedLockID is the transaction advisory lock that serializes SeedDemo
// across processes ("aisle-seed" as a number; any constant works).
const seedLockID int64 = 0x616973_6c65_7364

// SeedDemo fills an empty catalog with the deterministic demo catalog:
// 4 retailers, 24 stores, 30 categories, 2,100 products and per-store
// assortments (each store carries its retailer's share of the catalog,
// between 65% and 90%). It does nothing and returns false when the catalog
// already has retailers or products. Everything is written in one
// transaction under an advisory lock, so processes starting together seed
// exactly once.
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

	demo := newDemoCatalog()
	for _, t := range demo.tables() {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return false, fmt.Errorf("seed demo catalog: copy %s: %w", t.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("seed demo catalog: commit: %w", err)
	}
	db.log.InfoContext(ctx, "seeded demo catalog", "retailers", len(demo.retailers), "stores", len(demo.stores),
		"categories", len(demo.categories), "products", len(demo.products), "store_products", len(demo.storeProducts))
	return true, nil
}

// demoCatalog holds the demo rows in the column order of their tables.
type demoCatalog struct {
	retailers, stores, categories, products, storeProducts [][]any
}

type demoTable struct {
	name    string
	columns []string
	rows    [][]any
}

// tables lists the demo rows in foreign-key order.
func (d *demoCatalog) tables() []demoTable {
	return []demoTable{
		{"retailers", []string{"id", "name"}, d.retailers},
		{"stores", []string{"id", "retailer_id", "name"}, d.stores},
		{"categories", []string{"id", "name"}, d.categories},
		{"products", []string{"id", "category_id", "name"}, d.products},
		{"store_products", []string{"store_id", "product_id"}, d.storeProducts},
	}
}

// newDemoCatalog generates the demo catalog from the word lists. Choices are
// made with a fixed hash of names, not a random generator, so the catalog is
// the same on every machine and Go version.
func newDemoCatalog() *demoCatalog {
	d := &demoCatalog{}

	var productIDs []string
	for _, c := range demoCategories {
		d.categories = append(d.categories, []any{c.id, c.name})
		for _, name := range demoProductNames(c) {
			id := "p-" + strconv.Itoa(len(d.products)+1)
			d.products = append(d.products, []any{id, c.id, name})
			productIDs = append(productIDs, id)
		}
	}

	for ri, r := range demoRetailers {
		retailerID := "r-" + strconv.Itoa(ri+1)
		d.retailers = append(d.retailers, []any{retailerID, r.name})
		for _, neighbourhood := range r.stores {
			storeID := "s-" + strconv.Itoa(len(d.stores)+1)
			d.stores = append(d.stores, []any{storeID, retailerID, r.name + " " + neighbourhood})
			for _, productID := range productIDs {
				if unitInterval(stableHash(storeID+"/"+productID)) < r.coverage {
					d.storeProducts = append(d.storeProducts, []any{storeID, productID})
				}
			}
		}
	}
	return d
}

// demoProductNames draws productsPerCategory distinct "brand item size"
// names from a category, sorted by name so IDs follow the alphabet within a
// category.
func demoProductNames(c demoCategory) []string {
	type candidate struct {
		name string
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
				all = append(all, candidate{name, stableHash(c.id + "/" + name)})
			}
		}
	}
	if len(all) < productsPerCategory {
		panic(fmt.Sprintf("catalog: demo category %s has %d combinations, want at least %d", c.id, len(all), productsPerCategory))
	}
	slices.SortFunc(all, func(a, b candidate) int { return cmp.Compare(a.rank, b.rank) })
	names := make([]string, productsPerCategory)
	for i := range names {
		names[i] = all[i].name
	}
	slices.Sort(names)
	return names
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
