package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// storeProductKey is the lastGood key of a store-product; IDs carry no
// control characters (aisle.ValidateID), so NUL cannot be part of either.
func storeProductKey(sp aisle.StoreProduct) string {
	return sp.StoreID + "\x00" + sp.ProductID
}

// Carried reports, for each store-product, whether the store carries the
// product now (its assortment lists it). While this process follows the
// change feed, whole store assortments are answered from memory
// (assortmentCache), read from PostgreSQL on first use and again after a
// change to them is committed and announced; otherwise it reads PostgreSQL
// every time, in one round trip. While PostgreSQL is unreachable the last
// answer for each store-product is served again (see lastGood), all or none.
func (db *DB) Carried(ctx context.Context, sps []aisle.StoreProduct) ([]bool, error) {
	if len(sps) == 0 {
		return nil, nil
	}
	storeIDs := make([]string, len(sps))
	productIDs := make([]string, len(sps))
	for i, sp := range sps {
		storeIDs[i], productIDs[i] = sp.StoreID, sp.ProductID
	}
	if carried, ok, err := db.carriedFromMemory(ctx, storeIDs, productIDs); ok {
		return carried, nil
	} else if err != nil {
		return db.carriedWhileDown(ctx, sps, err)
	}

	keys := make([]string, len(sps))
	for i, sp := range sps {
		keys[i] = storeProductKey(sp)
	}
	if old, ok := recallWhileDown(db.lastGood, db.lastGood.carried, keys); ok {
		staleReads.Inc()
		return old, nil
	}
	carried, err := db.carried(ctx, storeIDs, productIDs)
	if err == nil {
		db.lastGood.reachable()
		db.lastGood.carried.remember(keys, carried)
		return carried, nil
	}
	return db.carriedWhileDown(ctx, sps, err)
}

// carriedWhileDown answers a Carried whose read failed with err: from the
// last good answers when PostgreSQL is unreachable, the assortments held in
// memory first.
func (db *DB) carriedWhileDown(ctx context.Context, sps []aisle.StoreProduct, err error) ([]bool, error) {
	if !unreachable(ctx, err) {
		return nil, err
	}
	db.lastGood.unreachable()
	old, ok := db.assortments.recall(sps)
	if !ok {
		keys := make([]string, len(sps))
		for i, sp := range sps {
			keys[i] = storeProductKey(sp)
		}
		old, ok = db.lastGood.carried.recall(keys)
	}
	if !ok {
		return nil, err
	}
	staleReads.Inc()
	db.log.WarnContext(ctx, "catalog: PostgreSQL unreachable; serving remembered assortments", "store_products", len(sps), "err", err)
	return old, nil
}

func (db *DB) carried(ctx context.Context, storeIDs, productIDs []string) ([]bool, error) {
	rows, err := db.pool.Query(ctx, `SELECT sp.store_id, sp.product_id
		FROM unnest($1::text[], $2::text[]) AS q(store_id, product_id)
		JOIN store_products sp USING (store_id, product_id)`, storeIDs, productIDs)
	if err != nil {
		return nil, fmt.Errorf("read assortments: %w", err)
	}
	carried := make(map[aisle.StoreProduct]bool)
	var sp aisle.StoreProduct
	if _, err := pgx.ForEachRow(rows, []any{&sp.StoreID, &sp.ProductID}, func() error {
		carried[sp] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read assortments: %w", err)
	}
	out := make([]bool, len(storeIDs))
	for i := range storeIDs {
		out[i] = carried[aisle.StoreProduct{StoreID: storeIDs[i], ProductID: productIDs[i]}]
	}
	return out, nil
}

// CarriedProducts lists the products a store carries now, in id order: what
// a complete feed snapshot of the store implies a zero for when it leaves
// them out. It reads PostgreSQL every time; the stream applier that calls it
// retries on an error.
func (db *DB) CarriedProducts(ctx context.Context, storeID string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT product_id FROM store_products WHERE store_id = $1 ORDER BY product_id`, storeID)
	if err != nil {
		return nil, fmt.Errorf("read the assortment of store %s: %w", storeID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the assortment of store %s: %w", storeID, err)
	}
	return ids, nil
}
