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

func smallFraudWorld(seed int64) FraudWorld {
	cat := SyntheticCatalog(seed, CatalogSize{Stores: 150, Products: 50, Categories: 5, ProductsPerStore: 20})
	w := DefaultFraudWorld(seed, cat.Stores)
	w.Days, w.Customers, w.ScenarioScale = 21, 2000, 0.2
	return w
}

func TestGenerateFraudIsDeterministicAndRealistic(t *testing.T) {
	t.Parallel()
	a, err := GenerateFraud(smallFraudWorld(3))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateFraud(smallFraudWorld(3))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same world generated different records")
	}
	c, _ := GenerateFraud(smallFraudWorld(4))
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed generated the same records")
	}

	var orders, frauds, declines, labels int
	orderTime := map[string]time.Time{}
	scenarios := map[string]int{}
	for i, r := range a {
		if i > 0 && r.Event.Time.Before(a[i-1].Event.Time) {
			t.Fatalf("record %d is earlier than the one before", i)
		}
		switch {
		case r.Event.Order != nil:
			orders++
			orderTime[r.Event.Order.OrderID] = r.Event.Time
			if r.Fraud != (r.Scenario != "") {
				t.Fatalf("order %s: fraud %v but scenario %q", r.Event.Order.OrderID, r.Fraud, r.Scenario)
			}
			if r.Fraud {
				frauds++
				scenarios[r.Scenario]++
			}
		case r.Event.PaymentFailed != nil:
			declines++
		case r.Event.Label != nil:
			labels++
			placed, ok := orderTime[r.Event.Label.OrderID]
			if !ok || r.Event.Time.Sub(placed) < 24*time.Hour {
				t.Fatalf("label of %s at %s: order placed at %v (known %v); labels come a day or more later",
					r.Event.Label.OrderID, r.Event.Time, placed, ok)
			}
		}
	}
	if labels != orders {
		t.Errorf("%d labels for %d orders", labels, orders)
	}
	if rate := float64(frauds) / float64(orders); rate < 0.004 || rate > 0.025 {
		t.Errorf("fraud rate %.4f (%d of %d), want about 1%%", rate, frauds, orders)
	}
	for _, s := range []string{ScenarioCardTesting, ScenarioAccountTakeover, ScenarioPromoRing, ScenarioOrderBurst, ScenarioCompromisedStore} {
		if scenarios[s] == 0 {
			t.Errorf("no %s fraud in three weeks: %v", s, scenarios)
		}
	}
	if declines < orders/100 {
		t.Errorf("%d declined payments for %d orders", declines, orders)
	}
}

func TestRunFraudPublishesValidEventsAtTheRate(t *testing.T) {
	t.Parallel()
	cat := SyntheticCatalog(1, CatalogSize{Stores: 10, Products: 30, Categories: 3, ProductsPerStore: 10})
	var events []aisle.Event
	start := time.Now()
	err := RunFraud(context.Background(), FraudRunConfig{Stores: cat.Stores, Seed: 1, Rate: 2000, Limit: 400, RunID: "r1"},
		func(_ context.Context, ev aisle.Event) error {
			value, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := aisle.DecodeEvent(value, "", time.Now()); err != nil {
				return err
			}
			events = append(events, ev)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 400 {
		t.Fatalf("published %d events, want 400", len(events))
	}
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("400 events at 2000/s took %s", elapsed)
	}
	types := map[string]int{}
	for _, ev := range events {
		types[ev.Type]++
		if !strings.HasSuffix(ev.ID, "-r1") || !strings.Contains(string(ev.Data), `-r1"`) {
			t.Fatalf("event %s (%s) does not carry the run id in its event and order ids", ev.ID, ev.Data)
		}
	}
	if types[aisle.TypeOrderPlaced] == 0 {
		t.Errorf("no orders among %v", types)
	}
}

// Every world of five weeks has a store compromise that ended weeks before
// its last day and one going on in its last week.
func TestFraudWorldHasAnOldAndACurrentStoreCompromise(t *testing.T) {
	t.Parallel()
	w := smallFraudWorld(5)
	w.Days = 35
	records, err := GenerateFraud(w)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]time.Time{} // a store's last compromised order
	for _, r := range records {
		if r.Scenario == ScenarioCompromisedStore {
			last[r.Event.Order.StoreID] = r.Event.Time
		}
	}
	end := w.Start.AddDate(0, 0, w.Days)
	var old, current bool
	for _, at := range last {
		old = old || at.Before(end.AddDate(0, 0, -14))
		current = current || !at.Before(end.AddDate(0, 0, -2))
	}
	if !old || !current {
		t.Errorf("store compromises ending %v: want one over two weeks before %s and one in its last two days", last, end)
	}
}
