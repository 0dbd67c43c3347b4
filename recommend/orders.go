package recommend

import (
	"context"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

// OrderHistory returns the stream applier of aisle.orders that records
// order.placed events in Postgres for `aisle batch copurchase`. It is
// idempotent by order id, so it needs no Redis dedup and can share the topic
// with a Redis applier; other events of the topic are not its business
// (applied false).
func OrderHistory(db *postgres.DB) func(context.Context, []aisle.Update) ([]bool, error) {
	return func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		return applySome(ctx, updates, func(u aisle.Update) (postgres.Order, bool) {
			o := u.Event.Order
			if o == nil {
				return postgres.Order{}, false
			}
			lines := make(map[string]int64, len(o.Items))
			for _, it := range o.Items {
				lines[it.ProductID] += it.Quantity
			}
			return postgres.Order{ID: o.OrderID, UserID: o.UserID, StoreID: o.StoreID, PlacedAt: u.Event.Time, Lines: lines}, true
		}, db.RecordOrders)
	}
}

// applySome runs record on what pick makes of the updates it selects, in
// one call, and reports in updates' order which of them record applied;
// the updates pick leaves out are not the applier's business (applied
// false).
func applySome[T any](ctx context.Context, updates []aisle.Update, pick func(aisle.Update) (T, bool),
	record func(context.Context, []T) ([]bool, error)) ([]bool, error) {
	var values []T
	var at []int // index in updates of each value
	for i, u := range updates {
		if v, ok := pick(u); ok {
			values = append(values, v)
			at = append(at, i)
		}
	}
	applied := make([]bool, len(updates))
	if len(values) == 0 {
		return applied, nil
	}
	recorded, err := record(ctx, values)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		applied[i] = recorded[j]
	}
	return applied, nil
}
