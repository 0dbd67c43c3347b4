package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// Category is a product category with the number of products in it.
type Category struct {
	ID           string
	Name         string
	ProductCount int
}

// MaxProductIDs bounds the ids of one products-by-ids read.
const MaxProductIDs = 100

// Categories returns every category, ordered by name. While PostgreSQL is
// unreachable the last answer is served again (see lastGood).
func (db *DB) Categories(ctx context.Context) ([]Category, error) {
	return orLastGood(ctx, db, db.lastGood.categories, "", func() ([]Category, error) {
		rows, err := db.pool.Query(ctx, `SELECT c.id, c.name, count(p.id)::int
			FROM categories c LEFT JOIN products p ON p.category_id = c.id
			GROUP BY c.id, c.name ORDER BY c.name, c.id`)
		if err != nil {
			return nil, fmt.Errorf("list categories: %w", err)
		}
		categories, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Category])
		if err != nil {
			return nil, fmt.Errorf("list categories: %w", err)
		}
		return categories, nil
	})
}

// Products returns the products with the given ids in the order asked, nil
// where an id is unknown. Errors: EINVALID for more than MaxProductIDs ids.
func (db *DB) Products(ctx context.Context, ids []string) ([]*Product, error) {
	if len(ids) > MaxProductIDs {
		return nil, aisle.Errorf(aisle.EINVALID, "ids has %d ids; at most %d are allowed", len(ids), MaxProductIDs)
	}
	for _, id := range ids {
		if err := validateID("ids", id); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return []*Product{}, nil
	}
	products, errs := db.ProductsByIDs(ctx, ids)
	if products == nil { // the read failed as a whole
		return nil, errs[0]
	}
	return products, nil // errs name unknown ids only: those are nil
}

// validateID is aisle.ValidateID for ids that reach a query as text, which
// PostgreSQL refuses when they are not UTF-8 or hold NUL.
func validateID(name, id string) error {
	if !validText(id) {
		return aisle.Errorf(aisle.EINVALID, "%s must be UTF-8 text without NUL characters", name)
	}
	return aisle.ValidateID(name, id)
}
