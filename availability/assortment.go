package availability

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

var uncarriedEvidence = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "aisle_stream_uncarried_evidence_total",
	Help: "Picks and feed levels about a product the store's assortment does not list (the assortment may be stale), by event type.",
}, []string{"type"})

// FlagUncarried returns a stream applier of aisle.inventory and
// aisle.picking that flags evidence about products a store does not carry.
//
// Such evidence is kept: the availability applier writes it like any other,
// because a shopper who found the product, or a retailer feed that counts
// it, says the store has it, and the assortment may simply lag behind (a
// product added to the shelves before the catalog). The answer still says
// probability 0 and OUT_OF_STOCK while the assortment does not list the
// product; once it does, the evidence already collected counts. Each such
// event raises aisle_stream_uncarried_evidence_total{type} and is logged,
// so that operators can tell the retailer its assortment is stale.
//
// It writes nothing; applied says which events it checked. An event
// redelivered after a crash is counted again: the counter is a signal, not
// a ledger.
func FlagUncarried(db *postgres.DB, log *slog.Logger) func(context.Context, []aisle.Update) ([]bool, error) {
	return func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		applied := make([]bool, len(updates))
		var sps []aisle.StoreProduct
		var at []int
		for i, u := range updates {
			if u.Event.Inventory == nil && u.Event.Pick == nil {
				continue
			}
			sps = append(sps, u.Event.StoreProduct())
			at = append(at, i)
			applied[i] = true
		}
		if len(sps) == 0 {
			return applied, nil
		}
		carried, err := db.Carried(ctx, sps)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			if carried[j] {
				continue
			}
			ev := updates[i].Event
			uncarriedEvidence.WithLabelValues(ev.Type).Inc()
			log.WarnContext(ctx, "evidence about a product the store does not carry; its assortment may be stale",
				"type", ev.Type, "event_id", ev.ID, "store_id", sps[j].StoreID, "product_id", sps[j].ProductID)
		}
		return applied, nil
	}
}
