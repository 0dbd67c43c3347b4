package aisle

import (
	"strings"
	"testing"
	"time"
)

// Issue 18 ("Feed semantics"): a level could not say which kind of feed
// sent it, nor a feed that a snapshot of the store was complete.
func TestDecodeFeedKindsAndSnapshotCompletion(t *testing.T) {
	t.Parallel()
	level := func(data string) string { return envelope(TypeInventoryLevel, okTime, data) }
	for _, tc := range []struct {
		name, value      string
		feed, snapshotID string
	}{
		{"no kind", level(goodInventory), "", ""},
		{"delta", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"feed":"delta"}`), FeedDelta, ""},
		{"snapshot level", level(`{"store_id":"s-1","product_id":"p-1","quantity":0,"feed":"snapshot","snapshot_id":"snap-7","counted_at":"2026-11-21T06:00:00Z"}`), FeedSnapshot, "snap-7"},
	} {
		d, err := DecodeEvent([]byte(tc.value), TopicInventory, now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Inventory.Feed != tc.feed || d.Inventory.SnapshotID != tc.snapshotID || d.Key() != "s-1:p-1" {
			t.Errorf("%s: feed %q snapshot %q key %q", tc.name, d.Inventory.Feed, d.Inventory.SnapshotID, d.Key())
		}
	}

	d, err := DecodeEvent([]byte(envelope(TypeInventorySnapshotCompleted, okTime, `{"store_id":"s-1","snapshot_id":"snap-7","levels":1600,"counted_at":"2026-11-21T06:00:00Z"}`)), TopicInventory, now)
	if err != nil {
		t.Fatalf("snapshot completion: %v", err)
	}
	c := d.Snapshot
	if c == nil || d.Inventory != nil || c.StoreID != "s-1" || c.SnapshotID != "snap-7" || *c.Levels != 1600 {
		t.Fatalf("snapshot completion decoded as %+v", d)
	}
	if want := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC); !c.CountedTime(d.Time).Equal(want) {
		t.Errorf("counted at %s, want %s", c.CountedTime(d.Time), want)
	}
	if d.Key() != "s-1" {
		t.Errorf("key %q, want the store", d.Key())
	}
	if stores, products := d.References(); len(stores) != 1 || stores[0] != "s-1" || len(products) != 0 {
		t.Errorf("references %v %v", stores, products)
	}
	d, err = DecodeEvent([]byte(envelope(TypeInventorySnapshotCompleted, okTime, `{"store_id":"s-1","snapshot_id":"snap-8","levels":1}`)), "", now)
	if err != nil {
		t.Fatalf("snapshot completion without counted_at: %v", err)
	}
	if !d.Snapshot.CountedTime(d.Time).Equal(d.Time) {
		t.Errorf("counted at %s, want the event time %s", d.Snapshot.CountedTime(d.Time), d.Time)
	}
}

func TestDecodeFeedRejectsBadInput(t *testing.T) {
	t.Parallel()
	level := func(data string) string { return envelope(TypeInventoryLevel, okTime, data) }
	completed := func(data string) string { return envelope(TypeInventorySnapshotCompleted, okTime, data) }
	for _, tc := range []struct {
		name, value, topic, reason string
	}{
		{"unknown feed kind", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"feed":"full"}`), "", `unknown feed "full"`},
		{"snapshot level without its snapshot", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"feed":"snapshot"}`), "", "missing snapshot_id"},
		{"snapshot id on a delta", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"feed":"delta","snapshot_id":"snap-1"}`), "", "snapshot_id is only allowed with feed"},
		{"snapshot id without a kind", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"snapshot_id":"snap-1"}`), "", "snapshot_id is only allowed with feed"},
		{"snapshot id with a colon", level(`{"store_id":"s-1","product_id":"p-1","quantity":3,"feed":"snapshot","snapshot_id":"a:b"}`), "", "forbidden character"},
		{"completion without store", completed(`{"snapshot_id":"snap-1","levels":3}`), "", "missing store_id"},
		{"completion without snapshot", completed(`{"store_id":"s-1","levels":3}`), "", "missing snapshot_id"},
		{"completion without levels", completed(`{"store_id":"s-1","snapshot_id":"snap-1"}`), "", "missing levels"},
		{"empty snapshot", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":0}`), "", "levels 0 is out of range"},
		{"too many levels", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":1000001}`), "", "out of range"},
		{"levels as text", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":"3"}`), "", "bad inventory.snapshot_completed data"},
		{"completion counted after it was sent", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":3,"counted_at":"2026-11-21T10:00:01Z"}`), "", "counted_at"},
		{"completion with a product", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":3,"product_id":"p-1"}`), "", "unknown field"},
		{"completion on the picking topic", completed(`{"store_id":"s-1","snapshot_id":"snap-1","levels":3}`), TopicPicking, "does not belong on topic"},
	} {
		_, err := DecodeEvent([]byte(tc.value), tc.topic, now)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tc.reason) {
			t.Errorf("%s: got %v, want %s mentioning %q", tc.name, err, EINVALID, tc.reason)
		}
	}
}
