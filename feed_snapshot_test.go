package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

const snapshotInventory = `mutation($s: ID!, $levels: [InventoryLevelInput!], $feed: FeedKind, $snapshot: InventorySnapshotInput) {
  updateInventory(input: {storeId: $s, levels: $levels, feed: $feed, snapshot: $snapshot}) { eventId topic eventIds } }`

// Issue 18 ("Feed semantics"): a retailer's full count of a store said
// nothing about the products it left out. A snapshot that omits a carried
// product, once complete, drops the product's availability with the
// evidence FEED_SAYS_ZERO; the products it counted keep their counts.
func TestSnapshotOmittingAProductSaysItIsGone(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(5)
	counted, omitted := products[:4], products[4]
	retailer := ts.createKey(aisle.RoleRetailer, store.RetailerID, "")
	before := ts.availability(store.ID, omitted)[0]

	countedAt := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	var got struct {
		UpdateInventory struct {
			EventIDs []string `json:"eventIds"`
		} `json:"updateInventory"`
	}
	// Two calls of one snapshot; the second completes it.
	ts.mustData(retailer, snapshotInventory, map[string]any{"s": store.ID, "levels": levels(counted[:2], 20), "feed": "SNAPSHOT",
		"snapshot": map[string]any{"id": "snap-1", "countedAt": countedAt}}, &got)
	ts.mustData(retailer, snapshotInventory, map[string]any{"s": store.ID, "levels": levels(counted[2:], 20), "feed": "SNAPSHOT",
		"snapshot": map[string]any{"id": "snap-1", "countedAt": countedAt, "completeWithLevels": len(counted)}}, &got)
	if n := len(got.UpdateInventory.EventIDs); n != 3 {
		t.Fatalf("the completing call published %d events, want its 2 levels and the completion", n)
	}

	eventually(t, 10*time.Second, func() string {
		ev := ts.evidence(store.ID, omitted)
		if ev.FeedQuantity == nil || *ev.FeedQuantity != 0 || !slices.Contains(ev.Signals, "FEED_SAYS_ZERO") {
			return fmt.Sprintf("evidence of the omitted product %+v, want a zero and FEED_SAYS_ZERO", ev)
		}
		return ""
	})
	if ev := ts.evidence(store.ID, omitted); ev.CountedAt == nil || !strings.HasPrefix(*ev.CountedAt, countedAt[:16]) {
		t.Errorf("the implied zero was counted at %v, want the snapshot's %s", ev.CountedAt, countedAt)
	}
	after := ts.availability(store.ID, omitted)[0]
	if after.Probability >= before.Probability {
		t.Errorf("the omitted product's probability went from %v to %v, want lower", before.Probability, after.Probability)
	}
	for _, p := range counted {
		if ev := ts.evidence(store.ID, p); ev.FeedQuantity == nil || *ev.FeedQuantity != 20 {
			t.Errorf("%s: evidence %+v, want its snapshot count 20", p, ev)
		}
	}
}

// The bulk form says its feed kind and snapshot together, or refuses the
// call before it publishes anything.
func TestUpdateInventoryRefusesAMisstatedFeed(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(2)
	retailer := ts.createKey(aisle.RoleRetailer, store.RetailerID, "")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name     string
		feed     any
		snapshot any
		msg      string
	}{
		{"a snapshot without its kind", nil, map[string]any{"id": "snap-1"}, "go together"},
		{"kind SNAPSHOT without the snapshot", "SNAPSHOT", nil, "go together"},
		{"a delta with a snapshot", "DELTA", map[string]any{"id": "snap-1"}, "go together"},
		{"no level to complete", "SNAPSHOT", map[string]any{"id": "snap-1", "completeWithLevels": 0}, "completeWithLevels"},
		{"a bad snapshot id", "SNAPSHOT", map[string]any{"id": "snap:1"}, "forbidden character"},
		{"counted after it was sent", "SNAPSHOT", map[string]any{"id": "snap-1", "countedAt": future}, "counted_at"},
	} {
		resp := ts.query(retailer, snapshotInventory, map[string]any{"s": store.ID, "levels": levels(products, 1), "feed": c.feed, "snapshot": c.snapshot})
		if code := resp.code(t); code != aisle.EINVALID || !strings.Contains(resp.Errors[0].Message, c.msg) {
			t.Errorf("%s: got %s %q; want %s naming %q", c.name, code, resp.Errors[0].Message, aisle.EINVALID, c.msg)
		}
	}
	var got struct {
		UpdateInventory struct {
			EventIDs []string `json:"eventIds"`
		} `json:"updateInventory"`
	}
	ts.mustData(retailer, snapshotInventory, map[string]any{"s": store.ID, "levels": levels(products, 3), "feed": "DELTA"}, &got)
	if len(got.UpdateInventory.EventIDs) != len(products) {
		t.Errorf("a delta published %v, want one event per level", got.UpdateInventory.EventIDs)
	}
}
