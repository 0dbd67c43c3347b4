package postgres

import (
	"fmt"
	"github.com/aisle/aisle/aisle"
	"testing"
)

// An assortment read from PostgreSQL before a change and returned after its
// notification is not kept, nor one read while the feed is not listening.
func TestAssortmentCacheKeepsNoReadOlderThanADrop(t *testing.T) {
	t.Parallel()
	c := newAssortmentCache()
	stores, products := []string{"s-1"}, []string{"p-1"}
	carried := make([]bool, 1)
	if _, _, usable := c.lookup(stores, products, carried); usable {
		t.Fatal("usable before LISTEN")
	}
	c.listen()
	missing, generation, usable := c.lookup(stores, products, carried)
	if !usable || fmt.Sprint(missing) != "[s-1]" {
		t.Fatalf("lookup = %v, %v; want s-1 missing", missing, usable)
	}
	c.forget(change{Assortments: []string{"s-1"}})
	c.keep(generation, map[string]map[string]struct{}{"s-1": {"p-1": {}}})
	if missing, _, _ := c.lookup(stores, products, carried); missing == nil {
		t.Fatal("kept an assortment read before a change to it was announced")
	}

	_, generation, _ = c.lookup(stores, products, carried)
	c.keep(generation, map[string]map[string]struct{}{"s-1": {"p-1": {}}})
	if missing, _, _ := c.lookup(stores, products, carried); missing != nil || !carried[0] {
		t.Fatalf("lookup after keep = %v, %v; want answered, carried", missing, carried)
	}
	c.deaf()
	if _, _, usable := c.lookup(stores, products, carried); usable {
		t.Error("usable after the feed lost its connection")
	}
	if got, ok := c.recall([]aisle.StoreProduct{{StoreID: "s-1", ProductID: "p-1"}}); !ok || !got[0] {
		t.Errorf("recall while deaf = %v, %v; want the last good answer", got, ok)
	}
	c.listen()
	if missing, _, _ := c.lookup(stores, products, carried); missing == nil {
		t.Error("an assortment held before the feed reconnected was served")
	}
}

// The cache holds at most maxCachedAssortmentRows, dropping the store read
// longest ago.
func TestAssortmentCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newAssortmentCache()
	c.listen()
	third := map[string]struct{}{}
	for i := range maxCachedAssortmentRows / 3 {
		third[fmt.Sprint("p-", i)] = struct{}{}
	}
	carried := make([]bool, 1)
	for _, s := range []string{"s-1", "s-2", "s-3", "s-1", "s-4"} {
		_, generation, _ := c.lookup([]string{s}, []string{"p-1"}, carried)
		c.keep(generation, map[string]map[string]struct{}{s: third})
	}
	if _, ok := c.stores["s-2"]; ok {
		t.Error("s-2, read longest ago, was kept")
	}
	if c.rows > maxCachedAssortmentRows || len(c.stores) != 3 {
		t.Errorf("%d stores, %d rows held; want 3 stores within %d", len(c.stores), c.rows, maxCachedAssortmentRows)
	}
}
