package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AcceptedReplacement is one pick.replaced event: at StoreID the shopper
// put ReplacementID in the order instead of ProductID.
type AcceptedReplacement struct {
	EventID       string
	StoreID       string
	ProductID     string
	ReplacementID string
	At            time.Time
}

// RecordReplacements stores replacements not stored yet, in one statement,
// and reports which were new: an event id seen before changes nothing.
func (db *DB) RecordReplacements(ctx context.Context, rs []AcceptedReplacement) (recorded []bool, err error) {
	ids := make([]string, len(rs))
	stores := make([]string, len(rs))
	products := make([]string, len(rs))
	replacements := make([]string, len(rs))
	at := make([]time.Time, len(rs))
	for i, r := range rs {
		ids[i], stores[i], products[i], replacements[i], at[i] = r.EventID, r.StoreID, r.ProductID, r.ReplacementID, r.At
	}
	rows, err := db.pool.Query(ctx, `INSERT INTO accepted_replacements (event_id, store_id, product_id, replacement_product_id, replaced_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
		ON CONFLICT (event_id) DO NOTHING
		RETURNING event_id`, ids, stores, products, replacements, at)
	if err != nil {
		return nil, fmt.Errorf("record replacements: %w", err)
	}
	newIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record replacements: %w", err)
	}
	fresh := make(map[string]bool, len(newIDs))
	for _, id := range newIDs {
		fresh[id] = true
	}
	recorded = make([]bool, len(rs))
	for i, r := range rs {
		// An id repeated within rs is new once, at its first place.
		recorded[i] = fresh[r.EventID]
		delete(fresh, r.EventID)
	}
	return recorded, nil
}

// AcceptedReplacements counts, for each product, how often shoppers
// replaced productID with it, at any store.
func (db *DB) AcceptedReplacements(ctx context.Context, productID string) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT replacement_product_id, count(*)::int FROM accepted_replacements
		WHERE product_id = $1 GROUP BY replacement_product_id`, productID)
	if err != nil {
		return nil, fmt.Errorf("count accepted replacements of %q: %w", productID, err)
	}
	counts := map[string]int{}
	var id string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		counts[id] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count accepted replacements of %q: %w", productID, err)
	}
	return counts, nil
}

// MaxReplacementCandidates bounds the candidates one replacement request
// scores: the products of one category a store carries, rarely more.
const MaxReplacementCandidates = 500

// ReplacementCandidates returns the products the store carries in the
// category of productID, productID itself left out, by id, with the store's
// prices and StoreID set; at most MaxReplacementCandidates.
func (db *DB) ReplacementCandidates(ctx context.Context, storeID, productID string) ([]Product, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+storeProductColumns+`
		FROM products o
		JOIN products p ON p.category_id = o.category_id AND p.id <> o.id
		JOIN store_products sp ON sp.product_id = p.id AND sp.store_id = $1
		JOIN categories c ON c.id = p.category_id
		WHERE o.id = $2
		ORDER BY p.id LIMIT $3`, storeID, productID, MaxReplacementCandidates)
	if err != nil {
		return nil, fmt.Errorf("list replacement candidates of %q at %q: %w", productID, storeID, err)
	}
	products, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Product])
	if err != nil {
		return nil, fmt.Errorf("list replacement candidates of %q at %q: %w", productID, storeID, err)
	}
	for i := range products {
		products[i].StoreID = storeID
	}
	return products, nil
}
