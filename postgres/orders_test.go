package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

func TestOrderHistoryAndCoPurchaseFits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	orders := []postgres.Order{
		{ID: "o-1", UserID: "u-1", StoreID: "s-1", PlacedAt: t0, Lines: map[string]int64{"p-1": 2, "p-2": 1}},
		{ID: "o-2", UserID: "u-2", StoreID: "s-2", PlacedAt: t0.Add(time.Hour), Lines: map[string]int64{"p-2": 1}},
	}
	recorded, err := db.RecordOrders(ctx, orders)
	if err != nil || !reflect.DeepEqual(recorded, []bool{true, true}) {
		t.Fatalf("RecordOrders = %v, %v", recorded, err)
	}
	// A redelivery (even with other lines) changes nothing; a new order is
	// added once, although the batch holds it twice.
	o3 := postgres.Order{ID: "o-3", UserID: "u-1", StoreID: "s-1", PlacedAt: t0.Add(2 * time.Hour), Lines: map[string]int64{"p-3": 1}}
	again := []postgres.Order{orders[0], o3, o3}
	again[0].Lines = map[string]int64{"p-9": 1}
	if recorded, err := db.RecordOrders(ctx, again); err != nil || !reflect.DeepEqual(recorded, []bool{false, true, false}) {
		t.Fatalf("RecordOrders again = %v, %v", recorded, err)
	}
	baskets, err := db.Baskets(ctx, t0)
	want := []models.Basket{{StoreID: "s-1", Products: []string{"p-1", "p-2"}}, {StoreID: "s-2", Products: []string{"p-2"}}, {StoreID: "s-1", Products: []string{"p-3"}}}
	if err != nil || !reflect.DeepEqual(baskets, want) {
		t.Fatalf("Baskets = %v, %v; want %v", baskets, err, want)
	}
	if later, err := db.Baskets(ctx, t0.Add(90*time.Minute)); err != nil || len(later) != 1 {
		t.Fatalf("Baskets since 11:30 = %v, %v; want o-3 only", later, err)
	}

	if id, err := db.LatestCoPurchaseFit(ctx); err != nil || id != 0 {
		t.Fatalf("LatestCoPurchaseFit before any fit = %d, %v", id, err)
	}
	fit := models.CoPurchase{
		Neighbours: map[string][]models.ItemScore{"p-1": {{ProductID: "p-2", Score: 0.5}, {ProductID: "p-3", Score: 0.25}}},
		Popular:    map[string][]models.ItemScore{"": {{ProductID: "p-2", Score: 0.7}}, "s-1": {{ProductID: "p-1", Score: 1}}},
		Orders:     3,
	}
	var ids []int64
	for range 3 {
		id, err := db.SaveCoPurchase(ctx, fit, t0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if latest, err := db.LatestCoPurchaseFit(ctx); err != nil || latest != ids[2] {
		t.Fatalf("LatestCoPurchaseFit = %d, %v; want %d", latest, err, ids[2])
	}
	for _, id := range ids[1:] {
		if got, err := db.LoadCoPurchase(ctx, id); err != nil || !reflect.DeepEqual(got, fit) {
			t.Fatalf("LoadCoPurchase(%d) = %+v, %v; want %+v", id, got, err, fit)
		}
	}
	if _, err := db.LoadCoPurchase(ctx, ids[0]); err == nil {
		t.Errorf("the oldest of three fits is still there; only the newest two are kept")
	}
}
