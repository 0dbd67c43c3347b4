package recommend

import (
	"context"

	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/features"
)

// OrderHistory returns the stream applier of aisle.orders that records
// order.placed events in Postgres for `aisle batch copurchase`. It is
// idempotent by order id, so it needs no Redis dedup and can share the topic
// with a Redis applier; other events of the topic are not its business
// (applied false).
func OrderHistory(db *catalog.DB) func(context.Context, []features.Update) ([]bool, error) {
	return func(ctx context.Context, updates []features.Update) ([]bool, error) {
		var orders []catalog.Order
		var at []int // index in updates of each order
		for i, u := range updates {
			o := u.Event.Order
			if o == nil {
				continue
			}
			lines := make(map[string]int64, len(o.Items))
			for _, it := range o.Items {
				lines[it.ProductID] += it.Quantity
			}
			orders = append(orders, catalog.Order{ID: o.OrderID, UserID: o.UserID, StoreID: o.StoreID, PlacedAt: u.Event.Time, Lines: lines})
			at = append(at, i)
		}
		applied := make([]bool, len(updates))
		if len(orders) == 0 {
			return applied, nil
		}
		recorded, err := db.RecordOrders(ctx, orders)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			applied[i] = recorded[j]
		}
		return applied, nil
	}
}
