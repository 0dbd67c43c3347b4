package simulate

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

func TestShoppingEventsAreValidAndDeterministic(t *testing.T) {
	t.Parallel()
	cat := SyntheticCatalog(3, CatalogSize{Stores: 3, Products: 300, Categories: 8, ProductsPerStore: 250})
	cfg := ShoppingConfig{Seed: 3, Customers: 200, Missions: 40, SessionsPerDay: 0.5}
	events, err := GenerateShopping(cat, cfg, 3*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := GenerateShopping(cat, cfg, 3*24*time.Hour)
	if err != nil || !reflect.DeepEqual(events, again) {
		t.Fatalf("the same seed generated different events (%v)", err)
	}

	carried := map[string]map[string]bool{}
	for _, s := range cat.Stores {
		carried[s.ID] = map[string]bool{}
		for _, p := range s.Products {
			carried[s.ID][p] = true
		}
	}
	types := map[string]int{}
	owners := map[string]string{}
	checkouts := map[string]bool{}
	var last time.Time
	for _, ev := range events {
		if ev.Time.Before(last) {
			t.Fatalf("event %s at %s is before the previous one at %s", ev.ID, ev.Time, last)
		}
		last = ev.Time
		value, _ := json.Marshal(ev)
		d, err := aisle.DecodeEvent(value, "", ev.Time)
		if err != nil {
			t.Fatalf("event %s is invalid: %v", ev.ID, err)
		}
		types[ev.Type]++
		switch {
		case d.Session != nil:
			if owner, ok := owners[d.Session.SessionID]; ok && owner != d.Session.UserID {
				t.Fatalf("session %s has two users", d.Session.SessionID)
			}
			owners[d.Session.SessionID] = d.Session.UserID
			if p := d.Session.ProductID; p != "" && !carried[d.Session.StoreID][p] {
				t.Fatalf("session event %s names %s, which store %s does not carry", ev.ID, p, d.Session.StoreID)
			}
			if d.Session.OrderID != "" {
				checkouts[d.Session.OrderID] = true
			}
		case d.Order != nil:
			if !checkouts[d.Order.OrderID] {
				t.Fatalf("order %s was placed without a checkout before it", d.Order.OrderID)
			}
		}
	}
	for _, typ := range []string{aisle.TypeSessionView, aisle.TypeSessionSearch, aisle.TypeSessionAddToCart,
		aisle.TypeSessionRemoveFromCart, aisle.TypeSessionCheckout, aisle.TypeOrderPlaced} {
		if types[typ] == 0 {
			t.Errorf("no %s events in %v", typ, types)
		}
	}
	if types[aisle.TypeOrderPlaced] != types[aisle.TypeSessionCheckout] || types[aisle.TypeOrderPlaced] < 100 {
		t.Errorf("%d orders for %d checkouts, want the same and at least 100", types[aisle.TypeOrderPlaced], types[aisle.TypeSessionCheckout])
	}
}

func TestRunShoppingPublishesTheWorldInOrder(t *testing.T) {
	t.Parallel()
	cat := SyntheticCatalog(5, testSize)
	stamp := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	world := ShoppingConfig{Customers: 50, Missions: 10, SessionsPerDay: 1}
	var got []aisle.Event
	cfg := RunConfig{Catalog: cat, Seed: 5, Rate: 5000, Limit: 100, Now: func() time.Time { return stamp }, RunID: "r1"}
	err := RunShopping(t.Context(), cfg, world, func(_ context.Context, ev aisle.Event) error {
		got = append(got, ev)
		return nil
	})
	if err != nil || len(got) != 100 {
		t.Fatalf("RunShopping = %v with %d events, want the limit 100", err, len(got))
	}
	// The live run is the world whose sessions and orders carry the run id.
	world.Seed, world.IDSuffix = 5, "-r1"
	w, err := NewShopping(cat, world)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range got {
		want := w.Next()
		if ev.ID != want.ID+"-r1" || ev.Type != want.Type || string(ev.Data) != string(want.Data) || !ev.Time.Equal(stamp) {
			t.Fatalf("event %d = %+v, want the world's %+v at %v", i, ev, want, stamp)
		}
	}
	var first aisle.SessionEvent
	if err := json.Unmarshal(got[0].Data, &first); err != nil || !strings.HasSuffix(first.SessionID, "-r1") {
		t.Errorf("first session event %s: session id without the run id (%v)", got[0].Data, err)
	}
}
