package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Assortment is one store and the IDs of the products it carries, sorted.
type Assortment struct {
	StoreID    string
	RetailerID string
	ProductIDs []string
}

// SimulationCatalog is what `aisle simulate` needs to generate events about
// the real catalog: every store's assortment and every product's category.
type SimulationCatalog struct {
	Stores     []Assortment      // sorted by store ID
	Categories map[string]string // product ID → category name, for every product
}

// SimulationCatalog reads all stores with their assortments and all product
// categories. It reads the whole catalog; it is meant for the simulator and
// batch jobs, not for request paths.
func (db *DB) SimulationCatalog(ctx context.Context) (*SimulationCatalog, error) {
	sc := &SimulationCatalog{Categories: map[string]string{}}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT s.id, s.retailer_id,
			coalesce(array_agg(sp.product_id ORDER BY sp.product_id) FILTER (WHERE sp.product_id IS NOT NULL), '{}')
		FROM stores s LEFT JOIN store_products sp ON sp.store_id = s.id
		GROUP BY s.id ORDER BY s.id`).Query(func(rows pgx.Rows) error {
		var err error
		sc.Stores, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Assortment])
		return err
	})
	batch.Queue(`SELECT p.id, c.name FROM products p JOIN categories c ON c.id = p.category_id`).Query(func(rows pgx.Rows) error {
		var id, category string
		_, err := pgx.ForEachRow(rows, []any{&id, &category}, func() error {
			sc.Categories[id] = category
			return nil
		})
		return err
	})
	if err := db.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("read simulation catalog: %w", err)
	}
	return sc, nil
}
