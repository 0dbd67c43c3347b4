package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
)

// idCache remembers which store and product IDs exist, and each product's
// category, so that validating the IDs of an availability query or of a
// stream of events costs no database round trip once they have been seen.
//
// Only positive answers are cached: an ID unknown today may be added
// tomorrow, so misses always ask the database. Stores and products are
// never deleted, but a catalog event may move a store to another retailer
// or a product to another category: ApplyEvents announces what it changed
// and every process drops those entries (FollowChanges), so the next use
// asks the database. The cache grows to at most the number of IDs in the
// catalog.
type idCache struct {
	mu         sync.RWMutex
	stores     map[string]string // store ID → its retailer's ID; presence means the store exists
	categories map[string]string // product ID → category name; presence means the product exists
	retailers  map[string]bool   // retailers that exist
	// zones are the time zones of the stores in stores that have one.
	zones map[string]*time.Location
}

func newIDCache() *idCache {
	return &idCache{stores: map[string]string{}, categories: map[string]string{}, retailers: map[string]bool{}, zones: map[string]*time.Location{}}
}

// forget drops the entries of what a change names, or all of them.
func (c *idCache) forget(ch change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.All {
		c.stores, c.categories, c.zones = map[string]string{}, map[string]string{}, map[string]*time.Location{}
		return
	}
	for _, id := range ch.Stores {
		delete(c.stores, id)
		delete(c.zones, id)
	}
	for _, id := range ch.Products {
		delete(c.categories, id)
	}
}

// UnknownRetailers returns the retailer IDs that do not exist (nil when all
// do). Retailers are never deleted, so those found are remembered.
func (db *DB) UnknownRetailers(ctx context.Context, ids []string) (map[string]bool, error) {
	var unknown []string
	db.ids.mu.RLock()
	for _, id := range ids {
		if !db.ids.retailers[id] {
			unknown = append(unknown, id)
		}
	}
	db.ids.mu.RUnlock()
	if unknown == nil {
		return nil, nil
	}
	rows, _ := db.pool.Query(ctx, `SELECT id FROM retailers WHERE id = ANY($1)`, unknown)
	found := map[string]bool{}
	if err := returnedKeys(rows, found, nil); err != nil {
		return nil, fmt.Errorf("look up retailer IDs: %w", err)
	}
	db.ids.mu.Lock()
	for id := range found {
		db.ids.retailers[id] = true
	}
	db.ids.mu.Unlock()
	missing := map[string]bool{}
	for _, id := range unknown {
		if !found[id] {
			missing[id] = true
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return missing, nil
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
// for an unknown store. Served from memory once seen (a store.upserted that
// moves it to another retailer drops the entry in every process, see
// FollowChanges), so authorizing a retailer's inventory push costs no
// database round trip.
func (db *DB) StoreRetailer(ctx context.Context, id string) (string, error) {
	if retailerID, ok := db.ids.storeRetailer(id); ok {
		return retailerID, nil
	}
	if err := db.loadIDs(ctx, []string{id}, nil); err != nil {
		return "", err
	}
	retailerID, ok := db.ids.storeRetailer(id)
	if !ok {
		return "", aisle.Errorf(aisle.ENOTFOUND, "unknown store %s", id) // worded as aisle.UnknownReference
	}
	return retailerID, nil
}

// StoreLocations returns the time zone of each given store that has one
// in the catalog; stores without one, and unknown stores, are absent.
// Served from memory once seen, as StoreRetailer is.
func (db *DB) StoreLocations(ctx context.Context, storeIDs []string) (map[string]*time.Location, error) {
	if unknown, _ := db.ids.unknown(storeIDs, nil); unknown != nil {
		if err := db.loadIDs(ctx, unknown, nil); err != nil {
			return nil, err
		}
	}
	db.ids.mu.RLock()
	defer db.ids.mu.RUnlock()
	out := make(map[string]*time.Location, len(storeIDs))
	for _, id := range storeIDs {
		if loc, ok := db.ids.zones[id]; ok {
			out[id] = loc
		}
	}
	return out, nil
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
	zones := map[string]*time.Location{}
	categories := map[string]string{}
	batch := &pgx.Batch{}
	if len(storeIDs) > 0 {
		batch.Queue(`SELECT id, retailer_id, timezone FROM stores WHERE id = ANY($1)`, storeIDs).Query(func(rows pgx.Rows) error {
			var id, retailerID string
			var zone *string
			_, err := pgx.ForEachRow(rows, []any{&id, &retailerID, &zone}, func() error {
				stores[id] = retailerID
				if zone != nil {
					// Catalog events are checked for IANA names before they
					// are written, so a name that does not load here is one
					// this machine's zone database lacks: its hours are UTC.
					if loc, err := time.LoadLocation(*zone); err == nil {
						zones[id] = loc
					}
				}
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
		if loc, ok := zones[id]; ok {
			db.ids.zones[id] = loc
		} else {
			delete(db.ids.zones, id)
		}
	}
	for id, c := range categories {
		db.ids.categories[id] = c
	}
	return nil
}

// Bounds of lastGood's memos, by the size of their answers: a page holds up
// to 100 rows, so a full memo of pages takes some tens of MB; a store,
// retailer or product is a few hundred bytes, a carried flag less; far more
// than the catalog API's distinct reads in practice.
const (
	maxLastGoodPages   = 1000
	maxLastGoodRows    = 20_000
	maxLastGoodCarried = 100_000
)

var staleReads = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_catalog_stale_reads_total",
	Help: "Catalog reads answered from memory because PostgreSQL was unreachable.",
})

// retryUnreachableAfter is how long reads with a remembered answer serve it
// without trying PostgreSQL once it was found unreachable: behind a network
// partition every try costs a connection timeout, and one query may make
// several catalog reads one after the other.
const retryUnreachableAfter = 5 * time.Second

// lastGood remembers the last answer of each catalog read by its arguments,
// so that storefront reads keep working while PostgreSQL is unreachable
// (stale-if-error). The catalog changes rarely and never loses stores or
// products, so a remembered answer is at worst missing what was added
// since. Only reads that already succeeded once in this process can be
// served; others fail with the outage. Each read has a memo of its own,
// typed by its answer and bounded apart, so that a flood of one read (pages
// of search results) cannot evict the answers of another; a full memo
// drops its least recently used answer.
type lastGood struct {
	categories    *memo[[]Category]
	stores        *memo[Page[Store]]
	store         *memo[*Store]
	storeProducts *memo[Page[Product]]
	retailers     *memo[*Retailer]
	products      *memo[*Product]
	carried       *memo[bool] // whether a store carries a product

	mu sync.Mutex
	// skipUntil is set when PostgreSQL was found unreachable: until then,
	// reads with a remembered answer do not try it.
	skipUntil time.Time
}

// memo is one read's remembered answers by key.
type memo[V any] struct {
	name    string // of the read, for logs
	answers *lru.Cache[string, V]
}

func newMemo[V any](name string, size int) *memo[V] {
	answers, _ := lru.New[string, V](size) // errs only on a size below 1
	return &memo[V]{name: name, answers: answers}
}

func newLastGood() *lastGood {
	return &lastGood{
		categories:    newMemo[[]Category]("categories", 16),
		stores:        newMemo[Page[Store]]("stores", maxLastGoodPages),
		store:         newMemo[*Store]("store", maxLastGoodRows),
		storeProducts: newMemo[Page[Product]]("store products", maxLastGoodPages),
		retailers:     newMemo[*Retailer]("retailer", maxLastGoodRows),
		products:      newMemo[*Product]("product", maxLastGoodRows),
		carried:       newMemo[bool]("carried", maxLastGoodCarried),
	}
}

// remember keeps values[i] as the answer for keys[i].
func (m *memo[V]) remember(keys []string, values []V) {
	for i, key := range keys {
		m.answers.Add(key, values[i])
	}
}

// recall returns the answers of keys, all or none.
func (m *memo[V]) recall(keys []string) ([]V, bool) {
	answers := make([]V, len(keys))
	for i, key := range keys {
		v, ok := m.answers.Get(key)
		if !ok {
			return nil, false
		}
		answers[i] = v
	}
	return answers, true
}

// reachable records that a read succeeded: PostgreSQL is reachable.
func (c *lastGood) reachable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipUntil = time.Time{}
}

// unreachable records that a read found PostgreSQL unreachable.
func (c *lastGood) unreachable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipUntil = time.Now().Add(retryUnreachableAfter)
}

// skipping reports whether reads with a remembered answer skip PostgreSQL
// now.
func (c *lastGood) skipping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.skipUntil)
}

// recallWhileDown is m.recall while reads skip PostgreSQL.
func recallWhileDown[V any](c *lastGood, m *memo[V], keys []string) ([]V, bool) {
	if !c.skipping() {
		return nil, false
	}
	return m.recall(keys)
}

// orLastGood runs read and remembers its answer in m under key. When read
// fails because PostgreSQL is unreachable (see unreachable) and an earlier
// answer is remembered, it returns that instead, and so it does without
// trying for retryUnreachableAfter; the outage itself is visible in
// /readyz and the logs.
func orLastGood[T any](ctx context.Context, db *DB, m *memo[T], key string, read func() (T, error)) (T, error) {
	keys := []string{key}
	if old, ok := recallWhileDown(db.lastGood, m, keys); ok {
		staleReads.Inc()
		return old[0], nil
	}
	v, err := read()
	if err == nil {
		db.lastGood.reachable()
		m.remember(keys, []T{v})
		return v, nil
	}
	if unreachable(ctx, err) {
		db.lastGood.unreachable()
		if old, ok := m.recall(keys); ok {
			staleReads.Inc()
			db.log.WarnContext(ctx, "catalog: PostgreSQL unreachable; serving a remembered answer", "read", m.name, "key", key, "err", err)
			return old[0], nil
		}
	}
	return v, err
}

// byIDsOrLastGood is orLastGood for the dataloader reads, whose batches of
// IDs vary: it remembers each value found by its ID, and serves a batch
// from memory when every ID's value is remembered.
func byIDsOrLastGood[T any](ctx context.Context, db *DB, m *memo[*T], ids []string, load func() ([]*T, []error), id func(*T) string) ([]*T, []error) {
	if old, ok := recallWhileDown(db.lastGood, m, ids); ok {
		staleReads.Inc()
		return old, nil
	}
	values, errs := load()
	if values != nil { // the read worked; errs name unknown IDs only
		db.lastGood.reachable()
		for _, v := range values {
			if v != nil {
				m.remember([]string{id(v)}, []*T{v})
			}
		}
		return values, errs
	}
	// The read failed as a whole, with errs[0].
	if !unreachable(ctx, errs[0]) {
		return values, errs
	}
	db.lastGood.unreachable()
	old, ok := m.recall(ids)
	if !ok {
		return values, errs
	}
	staleReads.Inc()
	db.log.WarnContext(ctx, "catalog: PostgreSQL unreachable; serving remembered values", "read", m.name, "ids", len(ids), "err", errs[0])
	return old, nil
}

// unreachable reports whether err says PostgreSQL could not be reached:
// refused or dropped connections, and timeouts (a connection attempt that
// ran out of DefaultConnectTimeout) while the caller still waits.
func unreachable(ctx context.Context, err error) bool {
	return aisle.IsUnavailable(err) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
}

// lastGoodKey joins a read's arguments into the key of its memo.
func lastGoodKey(args ...any) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte('|')
		}
		switch a := a.(type) {
		case *int:
			if a != nil {
				b.WriteString(strconv.Itoa(*a))
			}
		case *string:
			if a != nil {
				b.WriteString(strconv.Quote(*a))
			}
		case string:
			b.WriteString(strconv.Quote(a))
		default:
			fmt.Fprint(&b, a)
		}
	}
	return b.String()
}
