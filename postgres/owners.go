package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ClaimProducts makes retailerID the owner of those of the products that do
// not exist yet and have no owner, and returns the ids among productIDs the
// retailer does not own (existing products created otherwise, or claimed by
// another retailer), in the order given. Claims are kept even when the
// caller then fails to publish: the ids are the retailer's to retry.
func (db *DB) ClaimProducts(ctx context.Context, retailerID string, productIDs []string) ([]string, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim products: %w", err)
	}
	defer tx.Rollback(ctx) // no-op after Commit
	_, err = tx.Exec(ctx, `
		INSERT INTO product_owners (product_id, retailer_id)
		SELECT id, $2 FROM unnest($1::text[]) AS u(id)
		WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = u.id)
		ON CONFLICT (product_id) DO NOTHING`, productIDs, retailerID)
	if err != nil {
		return nil, fmt.Errorf("claim products: %w", err)
	}
	rows, _ := tx.Query(ctx, `
		SELECT u.id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)
		LEFT JOIN product_owners o ON o.product_id = u.id
		WHERE o.retailer_id IS DISTINCT FROM $2
		ORDER BY u.n`, productIDs, retailerID)
	var notOwned []string
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		notOwned = append(notOwned, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim products: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("claim products: commit: %w", err)
	}
	return notOwned, nil
}
