package simulate

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

var testSize = CatalogSize{Stores: 4, Products: 120, Categories: 8, ProductsPerStore: 80}

func generate(t *testing.T, seed int64, days int) (Catalog, []Record) {
	t.Helper()
	cat := SyntheticCatalog(seed, testSize)
	records, err := Generate(cat, Config{Seed: seed}, time.Duration(days)*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return cat, records
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	_, a := generate(t, 7, 2)
	_, b := generate(t, 7, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different events")
	}
	_, c := generate(t, 8, 2)
	if len(c) > 0 && len(a) > 0 && reflect.DeepEqual(a[:10], c[:10]) {
		t.Fatal("different seeds, same events")
	}
}

func TestGenerateEmitsValidOrderedEvents(t *testing.T) {
	t.Parallel()
	cat, records := generate(t, 1, 3)
	if len(records) < 1000 {
		t.Fatalf("only %d events in 3 days", len(records))
	}
	carried := make(map[aisle.StoreProduct]bool)
	for _, s := range cat.Stores {
		for _, p := range s.Products {
			carried[aisle.StoreProduct{StoreID: s.ID, ProductID: p}] = true
		}
	}
	ids := make(map[string]bool)
	end := defaultStart.Add(3 * 24 * time.Hour)
	var prev time.Time
	for i, r := range records {
		value, err := json.Marshal(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		topic, err := aisle.TopicFor(r.Event.Type)
		if err != nil {
			t.Fatal(err)
		}
		d, err := aisle.DecodeEvent(value, topic, r.Event.Time)
		if err != nil {
			t.Fatalf("event %d %s is invalid: %v", i, value, err)
		}
		if ids[d.ID] {
			t.Fatalf("event id %s repeats", d.ID)
		}
		ids[d.ID] = true
		if d.Time.Before(prev) || d.Time.Before(defaultStart) || !d.Time.Before(end) {
			t.Fatalf("event %d at %v out of order (previous %v) or outside the run", i, d.Time, prev)
		}
		prev = d.Time
		sp := d.StoreProduct()
		if !carried[sp] || sp != (aisle.StoreProduct{StoreID: r.Truth.StoreID, ProductID: r.Truth.ProductID}) {
			t.Fatalf("event %d is about %v, truth about %s:%s", i, sp, r.Truth.StoreID, r.Truth.ProductID)
		}
		if d.Pick != nil && d.Pick.ReplacementProductID != "" {
			replacement := aisle.StoreProduct{StoreID: sp.StoreID, ProductID: d.Pick.ReplacementProductID}
			if !carried[replacement] || replacement == sp {
				t.Fatalf("event %d replaces with %v", i, replacement)
			}
		}
	}
}

// TestHiddenWorld checks that the ground truth behaves as documented and that
// the effects the model must cope with actually occur.
func TestHiddenWorld(t *testing.T) {
	t.Parallel()
	cat, records := generate(t, 2, 7)
	var picks, found, misses, phantom, feeds, emptyFeeds int
	byProduct := make(map[string][2]int) // found, picks
	for _, r := range records {
		switch r.Event.Type {
		case aisle.TypePickFound:
			if r.Truth.OnShelf == 0 {
				t.Fatalf("found an item with an empty shelf: %+v", r)
			}
			found++
		case aisle.TypePickNotFound:
			if r.Truth.OnShelf > 0 {
				misses++
			}
		case aisle.TypePickReplaced:
			if r.Truth.OnShelf > 0 {
				t.Fatalf("replaced an item that was on the shelf: %+v", r)
			}
		case aisle.TypeInventoryLevel:
			feeds++
			var l aisle.InventoryLevel
			if err := json.Unmarshal(r.Event.Data, &l); err != nil {
				t.Fatal(err)
			}
			if r.Truth.OnShelf == 0 && *l.Quantity > 0 {
				phantom++
			}
			if *l.Quantity == 0 {
				emptyFeeds++
			}
			continue
		}
		picks++
		c := byProduct[r.Truth.ProductID]
		c[1]++
		if r.Event.Type == aisle.TypePickFound {
			c[0]++
		}
		byProduct[r.Truth.ProductID] = c
	}
	rate := float64(found) / float64(picks)
	t.Logf("%d picks, found %.3f, misses %d, feeds %d (empty %d, phantom %d)", picks, rate, misses, feeds, emptyFeeds, phantom)
	if rate < 0.6 || rate > 0.95 {
		t.Errorf("found rate %.3f: want a marketplace where items are mostly but not always there", rate)
	}
	if misses == 0 || phantom == 0 || emptyFeeds == 0 {
		t.Errorf("misses %d, phantom counts %d, empty feeds %d: each must occur", misses, phantom, emptyFeeds)
	}
	// Products differ: some are reliably there, some often missing.
	var reliable, unreliable int
	for _, c := range byProduct {
		if c[1] < 20 {
			continue
		}
		switch r := float64(c[0]) / float64(c[1]); {
		case r > 0.9:
			reliable++
		case r < 0.6:
			unreliable++
		}
	}
	if reliable == 0 || unreliable == 0 {
		t.Errorf("%d reliable and %d unreliable products of %d: want both", reliable, unreliable, len(cat.Categories))
	}
}

func TestNewRejectsBadCatalogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cat  Catalog
	}{
		{"empty", Catalog{}},
		{"no products", Catalog{Stores: []Store{{ID: "s1"}}}},
		{"bad store id", Catalog{Stores: []Store{{ID: "s:1", Products: []string{"p1"}}}}},
		{"bad product id", Catalog{Stores: []Store{{ID: "s1", Products: []string{"p 1"}}}}},
		{"duplicate store", Catalog{Stores: []Store{{ID: "s1", Products: []string{"p1"}}, {ID: "s1", Products: []string{"p2"}}}}},
		{"duplicate product", Catalog{Stores: []Store{{ID: "s1", Products: []string{"p1", "p1"}}}}},
	}
	for _, tt := range tests {
		_, err := New(tt.cat, Config{})
		var e *aisle.Error
		if !errors.As(err, &e) || e.Code != aisle.EINVALID {
			t.Errorf("%s: got %v, want an EINVALID error", tt.name, err)
		}
	}
}

func TestSingleProductStoreNeverReplaces(t *testing.T) {
	t.Parallel()
	cat := Catalog{Stores: []Store{{ID: "s1", Products: []string{"p1"}}}}
	records, err := Generate(cat, Config{Seed: 3}, 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) == 0 {
		t.Fatal("no events")
	}
	for _, r := range records {
		if r.Event.Type == aisle.TypePickReplaced {
			t.Fatalf("replaced with nothing to replace with: %+v", r)
		}
	}
}
