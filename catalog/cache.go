package catalog

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// idCache remembers which store and product IDs exist, and each product's
// category, so that validating the IDs of an availability query or of a
// stream of events costs no database round trip once they have been seen.
//
// Only positive answers are cached: an ID unknown today may be added
// tomorrow, so misses always ask the database. The catalog API never deletes
// stores or products nor moves a product to another category, so entries
// never go stale; the cache grows to at most the number of IDs in the
// catalog.
type idCache struct {
	mu         sync.RWMutex
	stores     map[string]string // store ID → its retailer's ID; presence means the store exists
	categories map[string]string // product ID → category name; presence means the product exists
}

func newIDCache() *idCache {
	return &idCache{stores: map[string]string{}, categories: map[string]string{}}
}

// unknown returns the store and product IDs that the cache does not know
// (possibly repeated). Both are nil when everything is known.
func (c *idCache) unknown(storeIDs, productIDs []string) (stores, products []string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, id := range storeIDs {
		if _, ok := c.stores[id]; !ok {
			stores = append(stores, id)
		}
	}
	for _, id := range productIDs {
		if _, ok := c.categories[id]; !ok {
			products = append(products, id)
		}
	}
	return stores, products
}

// UnknownIDs returns the store and product IDs that do not exist (nil maps
// when all do). Known IDs are served from memory, so a batch of known IDs
// costs no database round trip; unknown ones are looked up in one round
// trip. IDs are unquoted in callers' messages: validate them with
// aisle.ValidateID first.
func (db *DB) UnknownIDs(ctx context.Context, storeIDs, productIDs []string) (stores, products map[string]bool, err error) {
	storeIDs, productIDs = db.ids.unknown(storeIDs, productIDs)
	if storeIDs == nil && productIDs == nil {
		return nil, nil, nil
	}
	if err := db.loadIDs(ctx, storeIDs, productIDs); err != nil {
		return nil, nil, err
	}
	// What is still unknown after the lookup does not exist.
	storeIDs, productIDs = db.ids.unknown(storeIDs, productIDs)
	return setOf(storeIDs), setOf(productIDs), nil
}

func setOf(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// RequireReferences checks that every store and product the event names
// exists: ENOTFOUND ("unknown store s-9") otherwise.
func (db *DB) RequireReferences(ctx context.Context, d *aisle.Decoded) error {
	storeIDs, productIDs := d.References()
	stores, products, err := db.UnknownIDs(ctx, storeIDs, productIDs)
	if err != nil {
		return fmt.Errorf("check %s references: %w", d.Type, err)
	}
	if reason := d.UnknownReference(stores, products); reason != "" {
		return aisle.Errorf(aisle.ENOTFOUND, "%s", reason)
	}
	return nil
}

// MissingStoreProducts returns, for each store-product whose store or product
// does not exist, why: "unknown store s-x" or "unknown product p-y". The map
// is empty when all exist. It does not check that the store carries the
// product: events and queries about products outside a store's assortment
// are allowed (a retailer feed may list them before the catalog does).
func (db *DB) MissingStoreProducts(ctx context.Context, sps []aisle.StoreProduct) (map[aisle.StoreProduct]string, error) {
	storeIDs := make([]string, len(sps))
	productIDs := make([]string, len(sps))
	for i, sp := range sps {
		storeIDs[i], productIDs[i] = sp.StoreID, sp.ProductID
	}
	stores, products, err := db.UnknownIDs(ctx, storeIDs, productIDs)
	if err != nil || (stores == nil && products == nil) {
		return nil, err
	}
	missing := map[aisle.StoreProduct]string{}
	for _, sp := range sps {
		if stores[sp.StoreID] {
			missing[sp] = "unknown store " + sp.StoreID
		} else if products[sp.ProductID] {
			missing[sp] = "unknown product " + sp.ProductID
		}
	}
	return missing, nil
}

// ProductCategories returns the category name of each product ID that
// exists; unknown IDs are absent from the map. Served from memory once seen.
func (db *DB) ProductCategories(ctx context.Context, productIDs []string) (map[string]string, error) {
	var unknown []string
	db.ids.mu.RLock()
	for _, id := range productIDs {
		if _, ok := db.ids.categories[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	db.ids.mu.RUnlock()
	if unknown != nil {
		if err := db.loadIDs(ctx, nil, unknown); err != nil {
			return nil, err
		}
	}

	categories := make(map[string]string, len(productIDs))
	db.ids.mu.RLock()
	defer db.ids.mu.RUnlock()
	for _, id := range productIDs {
		if c, ok := db.ids.categories[id]; ok {
			categories[id] = c
		}
	}
	return categories, nil
}

// StoreRetailer returns the ID of the retailer that owns a store, ENOTFOUND
// for an unknown store. Served from memory once seen (a store never changes
// owner through this API), so authorizing a retailer's inventory push costs
// no database round trip.
func (db *DB) StoreRetailer(ctx context.Context, id string) (string, error) {
	if retailerID, ok := db.ids.storeRetailer(id); ok {
		return retailerID, nil
	}
	if err := db.loadIDs(ctx, []string{id}, nil); err != nil {
		return "", err
	}
	retailerID, ok := db.ids.storeRetailer(id)
	if !ok {
		return "", aisle.Errorf(aisle.ENOTFOUND, "store %q not found", id)
	}
	return retailerID, nil
}

func (c *idCache) storeRetailer(id string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	retailerID, ok := c.stores[id]
	return retailerID, ok
}

// loadIDs looks the given store and product IDs up in one round trip and
// caches those that exist.
func (db *DB) loadIDs(ctx context.Context, storeIDs, productIDs []string) error {
	stores := map[string]string{}
	categories := map[string]string{}
	batch := &pgx.Batch{}
	if len(storeIDs) > 0 {
		batch.Queue(`SELECT id, retailer_id FROM stores WHERE id = ANY($1)`, storeIDs).Query(func(rows pgx.Rows) error {
			var id, retailerID string
			_, err := pgx.ForEachRow(rows, []any{&id, &retailerID}, func() error {
				stores[id] = retailerID
				return nil
			})
			return err
		})
	}
	if len(productIDs) > 0 {
		batch.Queue(`SELECT p.id, c.name FROM products p JOIN categories c ON c.id = p.category_id
			WHERE p.id = ANY($1)`, productIDs).Query(func(rows pgx.Rows) error {
			var id, category string
			_, err := pgx.ForEachRow(rows, []any{&id, &category}, func() error {
				categories[id] = category
				return nil
			})
			return err
		})
	}
	if err := db.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("look up store and product IDs: %w", err)
	}

	db.ids.mu.Lock()
	defer db.ids.mu.Unlock()
	for id, retailerID := range stores {
		db.ids.stores[id] = retailerID
	}
	for id, c := range categories {
		db.ids.categories[id] = c
	}
	return nil
}
