package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// Retailer owns stores.
type Retailer struct {
	ID   string
	Name string
}

// Store is one physical store of a retailer. The optional details are nil
// until the retailer sets them.
type Store struct {
	ID         string
	Name       string
	RetailerID string
	Address    *string
	Lat, Lon   *float64
	Timezone   *string // an IANA time zone name, e.g. "America/New_York"
}

// Location is where a store is, in WGS 84 degrees.
type Location struct {
	Lat, Lon float64
}

// Location returns the store's location, nil unless both coordinates are set.
func (s *Store) Location() *Location {
	if s.Lat == nil || s.Lon == nil {
		return nil
	}
	return &Location{Lat: *s.Lat, Lon: *s.Lon}
}

// storeColumns are the columns of a Store, in its fields' order.
const storeColumns = `id, name, retailer_id, address, lat, lon, timezone`

// Product is a catalog item; Category is the category's display name. The
// optional details are nil until the catalog sets them.
type Product struct {
	ID       string
	Name     string
	Category string
	Brand    *string
	Size     *string
	GTIN     *string
	ImageURL *string
	// PriceCents is the price at the store of StoreID, nil when the store
	// sets none or the product was read outside a store.
	PriceCents *int
	// StoreID is the store whose assortment the product was read from
	// (Store.products, replacements), "" when read outside a store: the
	// store its price and availability are answered for.
	StoreID string `db:"-"`
}

// productColumns are the columns of a Product read outside a store, from
// products p joined with categories c, in its fields' order;
// storeProductColumns those of a product of a store's assortment, with
// store_products sp.
const (
	productColumns      = `p.id, p.name, c.name, p.brand, p.size, p.gtin, p.image_url, NULL::bigint`
	storeProductColumns = `p.id, p.name, c.name, p.brand, p.size, p.gtin, p.image_url, sp.price_cents`
)

// Stores returns one page of all stores ordered by name. first nil means
// DefaultPageSize; after is a cursor from a previous page (nil or "" for the
// first page). While PostgreSQL is unreachable, a page served before is
// served again from memory (see lastGood). Errors: EINVALID for first
// outside 1..MaxPageSize or a bad cursor.
func (db *DB) Stores(ctx context.Context, first *int, after *string) (Page[Store], error) {
	return orLastGood(ctx, db, db.lastGood.stores, lastGoodKey(first, after), func() (Page[Store], error) {
		return db.stores(ctx, first, after)
	})
}

func (db *DB) stores(ctx context.Context, first *int, after *string) (Page[Store], error) {
	size, err := pageSize(first)
	if err != nil {
		return Page[Store]{}, err
	}
	c, err := decodeCursor(storeCursor, after)
	if err != nil {
		return Page[Store]{}, err
	}
	var q queryBuilder
	q.add(`SELECT ` + storeColumns + ` FROM stores WHERE true`)
	if c != nil {
		q.add(`AND (name, id) > (` + q.arg(c.Name) + `, ` + q.arg(c.ID) + `)`)
	}
	q.add(`ORDER BY name, id LIMIT ` + q.arg(size+1))
	rows, err := db.pool.Query(ctx, q.String(), q.args...)
	if err != nil {
		return Page[Store]{}, fmt.Errorf("list stores: %w", err)
	}
	stores, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Store])
	if err != nil {
		return Page[Store]{}, fmt.Errorf("list stores: %w", err)
	}
	return newPage(stores, size, c != nil, storeCursor, func(s Store) (string, string) { return s.Name, s.ID }), nil
}

// Store returns one store. Errors: ENOTFOUND.
func (db *DB) Store(ctx context.Context, id string) (*Store, error) {
	return orLastGood(ctx, db, db.lastGood.store, id, func() (*Store, error) { return db.store(ctx, id) })
}

func (db *DB) store(ctx context.Context, id string) (*Store, error) {
	var s Store
	err := db.pool.QueryRow(ctx, `SELECT `+storeColumns+` FROM stores WHERE id = $1`, id).
		Scan(&s.ID, &s.Name, &s.RetailerID, &s.Address, &s.Lat, &s.Lon, &s.Timezone)
	if err != nil {
		return nil, formatError(err, "store "+strconv.Quote(id))
	}
	return &s, nil
}

// StoreProducts returns one page of the products a store carries, ordered by
// name, each with StoreID set to the store. query, when not empty, keeps the
// products whose name contains it, ignoring case; category, when not nil,
// those of the category with that id. Errors: ENOTFOUND for an unknown
// store; EINVALID for first outside 1..MaxPageSize, a bad cursor, a query
// longer than MaxQueryLength or a category that is not a valid id.
func (db *DB) StoreProducts(ctx context.Context, storeID string, first *int, after, query, category *string) (Page[Product], error) {
	if query != nil && *query != "" {
		// Searches are not kept for outages: their variety would push out
		// the pages a storefront needs (the memory is bounded).
		return db.storeProducts(ctx, storeID, first, after, query, category)
	}
	return orLastGood(ctx, db, db.lastGood.storeProducts, lastGoodKey(storeID, first, after, query, category), func() (Page[Product], error) {
		return db.storeProducts(ctx, storeID, first, after, query, category)
	})
}

func (db *DB) storeProducts(ctx context.Context, storeID string, first *int, after, query, category *string) (Page[Product], error) {
	size, err := pageSize(first)
	if err != nil {
		return Page[Product]{}, err
	}
	c, err := decodeCursor(productCursor, after)
	if err != nil {
		return Page[Product]{}, err
	}
	pattern, err := searchPattern(query)
	if err != nil {
		return Page[Product]{}, err
	}
	if category != nil {
		if err := validateID("category", *category); err != nil {
			return Page[Product]{}, err
		}
	}
	if _, err := db.StoreRetailer(ctx, storeID); err != nil {
		return Page[Product]{}, err
	}

	var q queryBuilder
	q.add(`SELECT ` + storeProductColumns + `
		FROM store_products sp
		JOIN products p ON p.id = sp.product_id
		JOIN categories c ON c.id = p.category_id
		WHERE sp.store_id = ` + q.arg(storeID))
	if pattern != "" {
		q.add(`AND p.name ILIKE ` + q.arg(pattern))
	}
	if category != nil {
		q.add(`AND p.category_id = ` + q.arg(*category))
	}
	if c != nil {
		q.add(`AND (p.name, p.id) > (` + q.arg(c.Name) + `, ` + q.arg(c.ID) + `)`)
	}
	q.add(`ORDER BY p.name, p.id LIMIT ` + q.arg(size+1))
	rows, err := db.pool.Query(ctx, q.String(), q.args...)
	if err != nil {
		return Page[Product]{}, fmt.Errorf("list products of store %q: %w", storeID, err)
	}
	products, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Product])
	if err != nil {
		return Page[Product]{}, fmt.Errorf("list products of store %q: %w", storeID, err)
	}
	for i := range products {
		products[i].StoreID = storeID
	}
	return newPage(products, size, c != nil, productCursor, func(p Product) (string, string) { return p.Name, p.ID }), nil
}

// RetailersByIDs returns the retailers with the given IDs in the same order,
// with a nil retailer and an ENOTFOUND error where an ID is unknown. Its
// signature is a vikstrous/dataloadgen fetch function.
func (db *DB) RetailersByIDs(ctx context.Context, ids []string) ([]*Retailer, []error) {
	return byIDsOrLastGood(ctx, db, db.lastGood.retailers, ids, func() ([]*Retailer, []error) { return db.retailersByIDs(ctx, ids) },
		func(r *Retailer) string { return r.ID })
}

func (db *DB) retailersByIDs(ctx context.Context, ids []string) ([]*Retailer, []error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name FROM retailers WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, []error{fmt.Errorf("load retailers: %w", err)}
	}
	found, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Retailer])
	if err != nil {
		return nil, []error{fmt.Errorf("load retailers: %w", err)}
	}
	return inOrder(ids, found, "retailer", func(r *Retailer) string { return r.ID })
}

// ProductsByIDs returns the products with the given IDs in the same order,
// with a nil product and an ENOTFOUND error where an ID is unknown. Its
// signature is a vikstrous/dataloadgen fetch function.
func (db *DB) ProductsByIDs(ctx context.Context, ids []string) ([]*Product, []error) {
	return byIDsOrLastGood(ctx, db, db.lastGood.products, ids, func() ([]*Product, []error) { return db.productsByIDs(ctx, ids) },
		func(p *Product) string { return p.ID })
}

func (db *DB) productsByIDs(ctx context.Context, ids []string) ([]*Product, []error) {
	rows, err := db.pool.Query(ctx, `SELECT `+productColumns+`
		FROM products p JOIN categories c ON c.id = p.category_id
		WHERE p.id = ANY($1)`, ids)
	if err != nil {
		return nil, []error{fmt.Errorf("load products: %w", err)}
	}
	found, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Product])
	if err != nil {
		return nil, []error{fmt.Errorf("load products: %w", err)}
	}
	return inOrder(ids, found, "product", func(p *Product) string { return p.ID })
}

// inOrder arranges batch-loaded values in the order of ids, as dataloaders
// expect; a single-element error slice (the DB error paths above) applies to
// every key. errs is nil when every ID was found.
func inOrder[T any](ids []string, found []*T, what string, id func(*T) string) ([]*T, []error) {
	byID := make(map[string]*T, len(found))
	for _, v := range found {
		byID[id(v)] = v
	}
	values := make([]*T, len(ids))
	var errs []error
	for i, key := range ids {
		if v, ok := byID[key]; ok {
			values[i] = v
			continue
		}
		if errs == nil {
			errs = make([]error, len(ids))
		}
		errs[i] = aisle.Errorf(aisle.ENOTFOUND, "%s %q not found", what, key)
	}
	return values, errs
}

// queryBuilder assembles a SQL statement with positional arguments so that
// optional conditions need no "$1 IS NULL OR ..." tricks that defeat indexes.
type queryBuilder struct {
	sql  strings.Builder
	args []any
}

// add appends a clause.
func (q *queryBuilder) add(clause string) {
	q.sql.WriteString(clause)
	q.sql.WriteByte('\n')
}

// arg records a value and returns its placeholder.
func (q *queryBuilder) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *queryBuilder) String() string { return q.sql.String() }
