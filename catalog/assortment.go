package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// carriedRow says whether a store carries a product; Key is storeProductKey.
type carriedRow struct {
	Key     string
	Carried bool
}

// storeProductKey joins a store-product into one string; IDs carry no
// control characters (aisle.ValidateID), so NUL cannot be part of either.
func storeProductKey(sp aisle.StoreProduct) string { return sp.StoreID + "\x00" + sp.ProductID }

// Carried reports, for each store-product, whether the store carries the
// product now (its assortment lists it), in one round trip. It reads
// PostgreSQL every time, so an assortment change is seen by the next read;
// while PostgreSQL is unreachable the last answer for each store-product is
// served again (see lastGood), all or none.
func (db *DB) Carried(ctx context.Context, sps []aisle.StoreProduct) ([]bool, error) {
	if len(sps) == 0 {
		return nil, nil
	}
	keys := make([]string, len(sps))
	for i, sp := range sps {
		keys[i] = storeProductKey(sp)
	}
	rows, errs := byIDsOrLastGood(ctx, db, "carried", keys, func() ([]*carriedRow, []error) { return db.carried(ctx, sps) },
		func(r *carriedRow) string { return r.Key })
	if errs != nil {
		return nil, errs[0]
	}
	out := make([]bool, len(rows))
	for i, r := range rows {
		out[i] = r.Carried
	}
	return out, nil
}

func (db *DB) carried(ctx context.Context, sps []aisle.StoreProduct) ([]*carriedRow, []error) {
	storeIDs := make([]string, len(sps))
	productIDs := make([]string, len(sps))
	for i, sp := range sps {
		storeIDs[i], productIDs[i] = sp.StoreID, sp.ProductID
	}
	rows, err := db.pool.Query(ctx, `SELECT sp.store_id, sp.product_id
		FROM unnest($1::text[], $2::text[]) AS q(store_id, product_id)
		JOIN store_products sp USING (store_id, product_id)`, storeIDs, productIDs)
	if err != nil {
		return nil, []error{fmt.Errorf("read assortments: %w", err)}
	}
	carried := make(map[aisle.StoreProduct]bool)
	var sp aisle.StoreProduct
	if _, err := pgx.ForEachRow(rows, []any{&sp.StoreID, &sp.ProductID}, func() error {
		carried[sp] = true
		return nil
	}); err != nil {
		return nil, []error{fmt.Errorf("read assortments: %w", err)}
	}
	out := make([]*carriedRow, len(sps))
	for i, sp := range sps {
		out[i] = &carriedRow{Key: storeProductKey(sp), Carried: carried[sp]}
	}
	return out, nil
}
