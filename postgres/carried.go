package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
)

// maxCachedAssortmentRows bounds the store-products the assortment cache
// holds (some tens of bytes each): a store whose assortment alone is larger
// is answered from PostgreSQL on every read, and the least recently read
// stores are dropped to make room for others.
const maxCachedAssortmentRows = 1_000_000

var assortmentReads = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "aisle_catalog_assortment_reads_total",
	Help: "Assortment checks (Carried calls), by where they were answered: memory, or postgres (cache filled or bypassed).",
}, []string{"from"})

// assortmentCache holds whole store assortments (the products each store
// carries) in memory, so that the assortment check of an availability read
// costs no database round trip. It is used only while this process follows
// the change feed (FollowChanges): ApplyEvents announces, in its
// transaction, the stores whose assortment it changed, and every process
// drops them when the notification arrives (this process at once, as it
// commits). So a change is seen by the next read once it is committed and
// announced, the promise the other catalog caches make, and a stale store
// cannot outlive a missed notification:
//
//   - while the feed is not listening (before the first LISTEN, after a lost
//     connection until LISTEN is in place again), nothing is served fresh or
//     kept from memory, and everything is dropped when LISTEN is in place
//     again;
//   - every drop raises generation, and an assortment read from PostgreSQL
//     is kept only if no drop happened since the read began: a read that
//     started before a change and returns after its notification would
//     otherwise keep the old assortment.
type assortmentCache struct {
	mu         sync.RWMutex
	listening  bool
	generation uint64
	stores     map[string]*storeAssortment
	rows       int             // store-products held, at most maxCachedAssortmentRows
	clock      atomic.Uint64   // last use stamp handed out
	tooLarge   map[string]bool // stores answered from PostgreSQL every time
}

// storeAssortment is one store's carried products.
type storeAssortment struct {
	products map[string]struct{}
	lastUse  atomic.Uint64
}

func newAssortmentCache() *assortmentCache {
	return &assortmentCache{stores: map[string]*storeAssortment{}, tooLarge: map[string]bool{}}
}

// listen records that LISTEN is in place: what is held was read before
// it, when changes may have gone unannounced to this process, so it is
// dropped.
func (c *assortmentCache) listen() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = true
	c.dropLocked(nil, true)
}

// deaf records that the change feed lost its connection: from now on no
// answer is fresh from memory. What is held stays, for stale reads while
// PostgreSQL is unreachable (see recall); listen drops it.
func (c *assortmentCache) deaf() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = false
	c.generation++
}

// forget drops the assortments of a change's stores, or all of them.
func (c *assortmentCache) forget(ch change) {
	if !ch.All && len(ch.Assortments) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(ch.Assortments, ch.All)
}

func (c *assortmentCache) dropLocked(storeIDs []string, all bool) {
	c.generation++
	if all {
		c.stores, c.tooLarge, c.rows = map[string]*storeAssortment{}, map[string]bool{}, 0
		return
	}
	for _, id := range storeIDs {
		if s, ok := c.stores[id]; ok {
			c.rows -= len(s.products)
			delete(c.stores, id)
		}
		delete(c.tooLarge, id)
	}
}

// lookup answers carried[i] for each store-product whose store is held and
// returns the stores it could not answer (nil when it answered all), the
// generation to pass to keep, and whether the cache may be used at all.
func (c *assortmentCache) lookup(storeIDs, productIDs []string, carried []bool) (missing []string, generation uint64, usable bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.listening {
		return nil, 0, false
	}
	for i, storeID := range storeIDs {
		s, ok := c.stores[storeID]
		if !ok {
			if c.tooLarge[storeID] {
				return nil, 0, false
			}
			if !slices.Contains(missing, storeID) {
				missing = append(missing, storeID)
			}
			continue
		}
		_, carried[i] = s.products[productIDs[i]]
		s.lastUse.Store(c.clock.Add(1))
	}
	return missing, c.generation, true
}

// recall answers every store-product from the assortments held, fresh or
// not, all or none: the last good answers while PostgreSQL is unreachable.
func (c *assortmentCache) recall(sps []aisle.StoreProduct) ([]bool, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	carried := make([]bool, len(sps))
	for i, sp := range sps {
		s, ok := c.stores[sp.StoreID]
		if !ok {
			return nil, false
		}
		_, carried[i] = s.products[sp.ProductID]
	}
	return carried, true
}

// keep holds the assortments read from PostgreSQL at generation, unless a
// drop happened since or the feed stopped listening.
func (c *assortmentCache) keep(generation uint64, loaded map[string]map[string]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening || c.generation != generation {
		return
	}
	for storeID, products := range loaded {
		if _, ok := c.stores[storeID]; ok {
			continue
		}
		if len(products) > maxCachedAssortmentRows/2 {
			c.tooLarge[storeID] = true
			continue
		}
		for c.rows+len(products) > maxCachedAssortmentRows {
			c.evictLeastRecentlyUsedLocked()
		}
		s := &storeAssortment{products: products}
		s.lastUse.Store(c.clock.Add(1))
		c.stores[storeID] = s
		c.rows += len(products)
	}
}

// evictLeastRecentlyUsedLocked drops the store read longest ago. It scans
// every store held: it runs only when an assortment is loaded into a full
// cache, which changes to the catalog make rare.
func (c *assortmentCache) evictLeastRecentlyUsedLocked() {
	var oldest string
	var oldestUse uint64
	for id, s := range c.stores {
		if use := s.lastUse.Load(); oldest == "" || use < oldestUse {
			oldest, oldestUse = id, use
		}
	}
	c.rows -= len(c.stores[oldest].products)
	delete(c.stores, oldest)
}

// carriedFromMemory answers Carried from the assortment cache, reading the
// assortments it does not hold from PostgreSQL in one round trip and keeping
// them. ok is false when the cache may not be used (the change feed is not
// listening, or a store is too large to hold): the caller reads PostgreSQL.
func (db *DB) carriedFromMemory(ctx context.Context, storeIDs, productIDs []string) (carried []bool, ok bool, err error) {
	carried = make([]bool, len(storeIDs))
	missing, generation, usable := db.assortments.lookup(storeIDs, productIDs, carried)
	if !usable {
		return nil, false, nil
	}
	if missing == nil {
		assortmentReads.WithLabelValues("memory").Inc()
		return carried, true, nil
	}
	if db.lastGood.skipping() {
		return nil, false, nil // PostgreSQL was found unreachable: Carried serves the last good answers
	}
	loaded, err := db.storeAssortments(ctx, missing)
	if err != nil {
		return nil, false, err
	}
	db.lastGood.reachable()
	db.assortments.keep(generation, loaded)
	for i, storeID := range storeIDs {
		if products, ok := loaded[storeID]; ok {
			_, carried[i] = products[productIDs[i]]
		}
	}
	assortmentReads.WithLabelValues("postgres").Inc()
	return carried, true, nil
}

// storeAssortments reads the whole assortment of each store, in one round
// trip; stores that carry nothing are present with no products.
func (db *DB) storeAssortments(ctx context.Context, storeIDs []string) (map[string]map[string]struct{}, error) {
	loaded := make(map[string]map[string]struct{}, len(storeIDs))
	for _, id := range storeIDs {
		loaded[id] = map[string]struct{}{}
	}
	rows, err := db.pool.Query(ctx, `SELECT store_id, product_id FROM store_products WHERE store_id = ANY($1)`, storeIDs)
	if err != nil {
		return nil, fmt.Errorf("read assortments: %w", err)
	}
	var storeID, productID string
	if _, err := pgx.ForEachRow(rows, []any{&storeID, &productID}, func() error {
		loaded[storeID][productID] = struct{}{}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read assortments: %w", err)
	}
	return loaded, nil
}
