package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/models"
)

// Order is a placed order as order history keeps it.
type Order struct {
	ID       string
	UserID   string
	StoreID  string
	PlacedAt time.Time
	Lines    map[string]int64 // product id → quantity
}

// RecordOrders stores orders that are not stored yet and reports which were
// new, in one statement (one round trip, atomic) however many orders a
// stream batch holds. An order id seen before, in an earlier call or earlier
// in orders, is left as it was, so a redelivered order.placed changes
// nothing.
func (db *DB) RecordOrders(ctx context.Context, orders []Order) (recorded []bool, err error) {
	var ids, users, stores, lineOrders, lineProducts []string
	var placed []time.Time
	var lineQuantities []int64
	first := make(map[string]int, len(orders)) // order id → its first index in orders
	for i, o := range orders {
		if _, dup := first[o.ID]; dup {
			continue
		}
		first[o.ID] = i
		ids, users, stores, placed = append(ids, o.ID), append(users, o.UserID), append(stores, o.StoreID), append(placed, o.PlacedAt)
		for p, q := range o.Lines {
			lineOrders, lineProducts, lineQuantities = append(lineOrders, o.ID), append(lineProducts, p), append(lineQuantities, q)
		}
	}
	rows, err := db.pool.Query(ctx, `
		WITH new_orders AS (
			INSERT INTO orders (id, user_id, store_id, placed_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
			ON CONFLICT (id) DO NOTHING
			RETURNING id
		), new_lines AS (
			INSERT INTO order_lines (order_id, product_id, quantity)
			SELECT l.order_id, l.product_id, l.quantity
			FROM unnest($5::text[], $6::text[], $7::bigint[]) AS l (order_id, product_id, quantity)
			JOIN new_orders n ON n.id = l.order_id
		)
		SELECT id FROM new_orders`,
		ids, users, stores, placed, lineOrders, lineProducts, lineQuantities)
	if err != nil {
		return nil, fmt.Errorf("record orders: %w", err)
	}
	newIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record orders: %w", err)
	}
	recorded = make([]bool, len(orders))
	for _, id := range newIDs {
		recorded[first[id]] = true
	}
	return recorded, nil
}

// Baskets returns the distinct products of every order placed since since,
// each basket's products sorted, baskets in order id order.
func (db *DB) Baskets(ctx context.Context, since time.Time) ([]models.Basket, error) {
	rows, err := db.pool.Query(ctx, `SELECT o.store_id, array_agg(l.product_id ORDER BY l.product_id)
		FROM orders o JOIN order_lines l ON l.order_id = o.id
		WHERE o.placed_at >= $1 GROUP BY o.id ORDER BY o.id`, since)
	if err != nil {
		return nil, fmt.Errorf("read baskets: %w", err)
	}
	baskets, err := pgx.CollectRows(rows, pgx.RowToStructByPos[models.Basket])
	if err != nil {
		return nil, fmt.Errorf("read baskets: %w", err)
	}
	return baskets, nil
}

// SaveCoPurchase stores a fit as the newest one, in one transaction, and
// deletes fits older than the one it replaces (kept for readers that loaded
// it a moment ago).
func (db *DB) SaveCoPurchase(ctx context.Context, fit models.CoPurchase, since time.Time) (fitID int64, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("save co-purchase fit: %w", err)
	}
	defer tx.Rollback(ctx) // no-op after Commit
	if err := tx.QueryRow(ctx, `INSERT INTO copurchase_fits (fitted_at, since, orders) VALUES ($1, $2, $3) RETURNING id`,
		db.Now(), since, fit.Orders).Scan(&fitID); err != nil {
		return 0, fmt.Errorf("save co-purchase fit: %w", err)
	}
	var neighbours, popularity [][]any
	for p, nbs := range fit.Neighbours {
		for _, nb := range nbs {
			neighbours = append(neighbours, []any{fitID, p, nb.ProductID, nb.Score})
		}
	}
	for store, items := range fit.Popular {
		for _, it := range items {
			popularity = append(popularity, []any{fitID, store, it.ProductID, it.Score})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"copurchase_neighbours"}, []string{"fit_id", "product_id", "neighbour_id", "score"},
		pgx.CopyFromRows(neighbours)); err != nil {
		return 0, fmt.Errorf("save co-purchase neighbours: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"product_popularity"}, []string{"fit_id", "store_id", "product_id", "score"},
		pgx.CopyFromRows(popularity)); err != nil {
		return 0, fmt.Errorf("save product popularity: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM copurchase_fits WHERE id < (SELECT max(id) FROM copurchase_fits WHERE id < $1)`, fitID); err != nil {
		return 0, fmt.Errorf("delete old co-purchase fits: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("save co-purchase fit: %w", err)
	}
	return fitID, nil
}

// LatestCoPurchaseFit returns the id of the newest fit, 0 when there is none.
func (db *DB) LatestCoPurchaseFit(ctx context.Context) (int64, error) {
	var id int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM copurchase_fits`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("read latest co-purchase fit: %w", err)
	}
	return id, nil
}

// LoadCoPurchase returns fit fitID, lists best first (ties by product id),
// or an empty fit when fitID is 0 (nothing fitted yet).
func (db *DB) LoadCoPurchase(ctx context.Context, fitID int64) (models.CoPurchase, error) {
	fit := models.CoPurchase{Neighbours: map[string][]models.ItemScore{}, Popular: map[string][]models.ItemScore{}}
	if fitID == 0 {
		return fit, nil
	}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT orders FROM copurchase_fits WHERE id = $1`, fitID).QueryRow(func(row pgx.Row) error {
		return row.Scan(&fit.Orders)
	})
	collect := func(into map[string][]models.ItemScore) func(pgx.Rows) error {
		return func(rows pgx.Rows) error {
			var key string
			var it models.ItemScore
			_, err := pgx.ForEachRow(rows, []any{&key, &it.ProductID, &it.Score}, func() error {
				into[key] = append(into[key], it)
				return nil
			})
			return err
		}
	}
	batch.Queue(`SELECT product_id, neighbour_id, score FROM copurchase_neighbours WHERE fit_id = $1
		ORDER BY product_id, score DESC, neighbour_id`, fitID).Query(collect(fit.Neighbours))
	batch.Queue(`SELECT store_id, product_id, score FROM product_popularity WHERE fit_id = $1
		ORDER BY store_id, score DESC, product_id`, fitID).Query(collect(fit.Popular))
	err := db.pool.SendBatch(ctx, batch).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return models.CoPurchase{}, fmt.Errorf("co-purchase fit %d is gone (a newer batch replaced it)", fitID)
	}
	if err != nil {
		return models.CoPurchase{}, fmt.Errorf("load co-purchase fit %d: %w", fitID, err)
	}
	return fit, nil
}

// AllProducts returns every product, for serving's in-memory catalog.
func (db *DB) AllProducts(ctx context.Context) ([]Product, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+productColumns+` FROM products p JOIN categories c ON c.id = p.category_id ORDER BY p.id`)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	products, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Product])
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return products, nil
}
