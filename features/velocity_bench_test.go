package features_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/simulate"
)

// velocityBatch is how many events one ApplyVelocity call takes: about what
// one partition's share of a poll is under load.
const velocityBatch = 500

// BenchmarkApplyVelocity measures velocity-feature updates: order.placed and
// payment.failed events of a simulated week applied to Redis with
// ApplyVelocity in pipelined batches of 500: for an order its record, then
// one Lua call per entity hash (five, and the store's when a label waits);
// for a decline one per entity (four); against the availability script
// on as many pick events as a baseline. b.N is the number of events (use
// -benchtime Nx); the week is replayed with fresh ids when b.N is larger.
func BenchmarkApplyVelocity(b *testing.B) {
	cat := simulate.SyntheticCatalog(1, simulate.CatalogSize{Stores: 60, Products: 100, Categories: 5, ProductsPerStore: 50})
	w := simulate.DefaultFraudWorld(1, cat.Stores)
	w.Days, w.Customers, w.ScenarioScale = 7, 2000, 0.2
	records, err := simulate.GenerateFraud(w)
	if err != nil {
		b.Fatal(err)
	}
	var week []*aisle.Decoded
	for _, r := range records {
		if r.Event.Order != nil || r.Event.PaymentFailed != nil {
			week = append(week, r.Event)
		}
	}
	// n events of the week, replayed with fresh event and order ids.
	velocityUpdates := func(n int) []aisle.Update {
		updates := make([]aisle.Update, n)
		for i := range updates {
			d := *week[i%len(week)]
			round := i / len(week)
			d.ID = fmt.Sprint(d.ID, "-", round)
			if d.Order != nil {
				o := *d.Order
				o.OrderID = fmt.Sprint(o.OrderID, "-", round)
				d.Order = &o
			}
			updates[i] = aisle.Update{Event: &d, Origin: aisle.Origin{Topic: aisle.TopicOrders, Partition: 0, Offset: int64(i)}}
		}
		return updates
	}
	pickUpdates := func(n int) []aisle.Update {
		picks := make([]aisle.Update, n)
		for i := range picks {
			d := &aisle.Decoded{
				Event: aisle.Event{ID: fmt.Sprint("e-pick-", i), Type: aisle.TypePickFound, Time: w.Start.Add(time.Duration(i) * time.Second)},
				Pick:  &aisle.Pick{StoreID: fmt.Sprint("s-", i%60), ProductID: fmt.Sprint("p-", i%2000), ShopperID: "sh-1", OrderID: "o-1"},
			}
			picks[i] = aisle.Update{Event: d, Origin: aisle.Origin{Topic: aisle.TopicPicking, Partition: 0, Offset: int64(i)}}
		}
		return picks
	}
	b.Run("velocity", func(b *testing.B) {
		applyInBatches(b, featurestest.MustOpen(b).ApplyVelocity, velocityUpdates(b.N))
	})
	// Baseline: as many pick events through the availability script, in
	// the same batches.
	b.Run("availability-baseline", func(b *testing.B) {
		applyInBatches(b, featurestest.MustOpen(b).ApplyAvailability, pickUpdates(b.N))
	})
}

// applyInBatches applies updates in batches of velocityBatch, checks each
// was new, and reports events/s.
func applyInBatches(b *testing.B, apply func(context.Context, []aisle.Update) ([]bool, error), updates []aisle.Update) {
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for from := 0; from < len(updates); from += velocityBatch {
		applied, err := apply(ctx, updates[from:min(from+velocityBatch, len(updates))])
		if err != nil {
			b.Fatal(err)
		}
		for i, a := range applied {
			if !a {
				b.Fatalf("event %d not applied", from+i)
			}
		}
	}
	b.ReportMetric(float64(len(updates))/time.Since(start).Seconds(), "events/s")
}
