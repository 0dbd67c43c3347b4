package recommend_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/recommend"
)

func orderPlaced(id, user string, at time.Time, products ...string) aisle.Update {
	amount := int64(1000)
	o := &aisle.OrderPlaced{OrderID: id, UserID: user, StoreID: "s-1", AmountCents: &amount,
		CardFingerprint: "c", DeviceID: "d", IP: "192.0.2.1", AddressHash: "a"}
	for _, p := range products {
		o.Items = append(o.Items, aisle.OrderItem{ProductID: p, Quantity: 1})
	}
	return aisle.Update{Event: &aisle.Decoded{Event: aisle.Event{ID: "e-" + id, Type: aisle.TypeOrderPlaced, Time: at}, Order: o}}
}

// Order history records each order once, and the co-purchase batch gives
// the same fit when run again over the same orders.
func TestOrderHistoryAndBatchAreIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	apply := recommend.OrderHistory(db)
	t0 := time.Now().Add(-time.Hour)

	var updates []aisle.Update
	for i := range 4 {
		updates = append(updates, orderPlaced("o-"+string(rune('a'+i)), "u-1", t0, "p-1", "p-2", "p-1"))
	}
	updates = append(updates,
		orderPlaced("o-x", "u-2", t0, "p-3"),
		aisle.Update{Event: &aisle.Decoded{Event: aisle.Event{ID: "e-pf", Type: aisle.TypePaymentFailed, Time: t0},
			PaymentFailed: &aisle.PaymentFailed{OrderID: "o-y", UserID: "u-2", CardFingerprint: "c", DeviceID: "d", IP: "192.0.2.1"}}},
	)
	applied, err := apply(ctx, updates)
	if want := []bool{true, true, true, true, true, false}; err != nil || !reflect.DeepEqual(applied, want) {
		t.Fatalf("first apply = %v, %v; want %v (payment.failed is not order history)", applied, err, want)
	}
	if applied, err := apply(ctx, updates); err != nil || !reflect.DeepEqual(applied, make([]bool, 6)) {
		t.Fatalf("redelivery = %v, %v; want nothing applied", applied, err)
	}

	cfg := models.CoPurchaseConfig{K: 5, MinSupport: 3, Popular: 10}
	first, err := recommend.FitCoPurchase(ctx, db, t0.Add(-time.Minute), cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := recommend.FitCoPurchase(ctx, db, t0.Add(-time.Minute), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.Orders != 5 || first.Pairs != 2 || second.FitID <= first.FitID {
		t.Fatalf("fits %+v then %+v; want 5 orders, the pair p-1/p-2 both ways, a new fit id", first, second)
	}
	a, err := db.LoadCoPurchase(ctx, first.FitID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.LoadCoPurchase(ctx, second.FitID)
	if err != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("re-running the batch changed the fit:\n%+v\n%+v (%v)", a, b, err)
	}
	if want := []models.ItemScore{{ProductID: "p-2", Score: 1}}; !reflect.DeepEqual(b.Neighbours["p-1"], want) {
		t.Errorf("p-1's neighbours = %v, want %v (bought together in all 4 of their orders)", b.Neighbours["p-1"], want)
	}
	if _, err := recommend.FitCoPurchase(ctx, db, time.Now(), cfg); err == nil {
		t.Error("a batch over a window without orders saved a fit")
	}
}
