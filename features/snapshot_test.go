package features_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
)

// The feed of these tests counts store s-1 at snapCounted and sends the
// snapshot's events an hour later.
var (
	snapCounted = t0.Add(-2 * time.Hour)
	snapSent    = t0.Add(-time.Hour)
)

func snapshotLevel(snapshotID, productID string, qty int64, countedAt time.Time) *aisle.Decoded {
	ev := feed("lvl-"+snapshotID+"-"+productID, aisle.StoreProduct{StoreID: "s-1", ProductID: productID}, qty, snapSent)
	ev.Inventory.CountedAt = &countedAt
	ev.Inventory.Feed, ev.Inventory.SnapshotID = aisle.FeedSnapshot, snapshotID
	return ev
}

func snapshotCompleted(snapshotID string, levels int64) *aisle.Decoded {
	countedAt := snapCounted
	return &aisle.Decoded{
		Event:    aisle.Event{ID: "done-" + snapshotID, Type: aisle.TypeInventorySnapshotCompleted, Time: snapSent.Add(time.Minute)},
		Snapshot: &aisle.SnapshotCompleted{StoreID: "s-1", SnapshotID: snapshotID, Levels: &levels, CountedAt: &countedAt},
	}
}

// carriedList is the assortment of the tests' store.
func carriedList(productIDs ...string) features.Carried {
	return func(context.Context, string) ([]string, error) { return productIDs, nil }
}

func applyInventory(t *testing.T, s *features.Store, carried features.Carried, events ...*aisle.Decoded) []bool {
	t.Helper()
	updates := make([]aisle.Update, len(events))
	for i, ev := range events {
		updates[i] = aisle.Update{Event: ev}
	}
	applied, err := s.ApplyInventory(context.Background(), updates, carried)
	if err != nil {
		t.Fatalf("ApplyInventory: %v", err)
	}
	return applied
}

// feedOf reads the feed level of each product of store s-1.
func feedOf(t *testing.T, s *features.Store, productIDs ...string) map[string]models.AvailabilityEvidence {
	t.Helper()
	sps := make([]aisle.StoreProduct, len(productIDs))
	for i, p := range productIDs {
		sps[i] = aisle.StoreProduct{StoreID: "s-1", ProductID: p}
	}
	out := map[string]models.AvailabilityEvidence{}
	for i, e := range read(t, s, sps...) {
		out[productIDs[i]] = e
	}
	return out
}

func wantLevel(t *testing.T, what string, e models.AvailabilityEvidence, qty int64, countedAt time.Time) {
	t.Helper()
	if e.FeedAt.IsZero() || e.FeedQuantity != qty || !e.CountedAt.Equal(countedAt) {
		t.Errorf("%s: feed qty=%d at=%s counted=%s, want qty=%d counted=%s", what, e.FeedQuantity, e.FeedAt, e.CountedAt, qty, countedAt)
	}
}

func wantNoLevel(t *testing.T, what string, e models.AvailabilityEvidence) {
	t.Helper()
	if !e.FeedAt.IsZero() {
		t.Errorf("%s: feed qty=%d at=%s, want no level", what, e.FeedQuantity, e.FeedAt)
	}
}

// Issue 18: a product the store carries that a complete snapshot leaves
// out counts as zero, counted when the snapshot was; the products it
// counted keep their counts, and products the store does not carry get
// nothing.
func TestCompleteSnapshotZeroesCarriedProductsLeftOut(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	carried := carriedList("p-1", "p-2", "p-gone")
	applyInventory(t, s, carried,
		snapshotLevel("snap-1", "p-1", 5, snapCounted),
		snapshotLevel("snap-1", "p-2", 3, snapCounted),
		snapshotCompleted("snap-1", 2))
	got := feedOf(t, s, "p-1", "p-2", "p-gone", "p-other")
	wantLevel(t, "p-1", got["p-1"], 5, snapCounted)
	wantLevel(t, "p-2", got["p-2"], 3, snapCounted)
	wantLevel(t, "p-gone (left out)", got["p-gone"], 0, snapCounted)
	if !got["p-gone"].FeedAt.Equal(snapSent.Add(time.Minute)) {
		t.Errorf("the implied zero's feed time is %s, want the completion's %s", got["p-gone"].FeedAt, snapSent.Add(time.Minute))
	}
	wantNoLevel(t, "p-other (not carried)", got["p-other"])
	ids, _, err := s.AtRiskCandidates(context.Background(), "s-1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != "p-gone" {
		t.Errorf("at-risk index %v, want p-gone first of the three", ids)
	}
}

// The completion travels on the store's partition and the levels on their
// products': the completion may be applied first, by another worker. The
// snapshot completes with its last level.
func TestSnapshotCompletedBeforeItsLevels(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	carried := carriedList("p-1", "p-2", "p-gone")
	if applied := applyInventory(t, s, carried, snapshotCompleted("snap-1", 2)); !applied[0] {
		t.Error("a snapshot's first completion was not reported as new")
	}
	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-1", 5, snapCounted))
	if got := feedOf(t, s, "p-gone")["p-gone"]; !got.FeedAt.IsZero() {
		t.Fatalf("p-gone zeroed before the snapshot's levels all arrived: %+v", got)
	}
	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-2", 3, snapCounted))
	got := feedOf(t, s, "p-1", "p-2", "p-gone")
	wantLevel(t, "p-1", got["p-1"], 5, snapCounted)
	wantLevel(t, "p-2", got["p-2"], 3, snapCounted)
	wantLevel(t, "p-gone", got["p-gone"], 0, snapCounted)
}

// A partial snapshot (fewer levels arrived than its completion says) says
// nothing about the products it left out.
func TestPartialSnapshotZeroesNothing(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	carried := carriedList("p-1", "p-2", "p-3", "p-gone")
	applyInventory(t, s, carried,
		snapshotLevel("snap-1", "p-1", 5, snapCounted),
		snapshotLevel("snap-1", "p-2", 3, snapCounted),
		snapshotCompleted("snap-1", 3))
	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-1", 5, snapCounted)) // the same level again is not a third
	got := feedOf(t, s, "p-3", "p-gone")
	wantNoLevel(t, "p-3", got["p-3"])
	wantNoLevel(t, "p-gone", got["p-gone"])

	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-3", 1, snapCounted))
	wantLevel(t, "p-gone, once the third level arrived", feedOf(t, s, "p-gone")["p-gone"], 0, snapCounted)
}

// The implied zero is a level like any: a product counted after the
// snapshot keeps its later count, and a zero does not replace it.
func TestSnapshotZeroLosesToALaterCount(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	carried := carriedList("p-1", "p-later", "p-earlier")
	delta := func(productID string, qty int64, countedAt time.Time) *aisle.Decoded {
		ev := feed("delta-"+productID, aisle.StoreProduct{StoreID: "s-1", ProductID: productID}, qty, snapSent)
		ev.Inventory.Feed, ev.Inventory.CountedAt = aisle.FeedDelta, &countedAt
		return ev
	}
	applyInventory(t, s, carried,
		delta("p-later", 7, snapCounted.Add(time.Minute)),
		delta("p-earlier", 7, snapCounted.Add(-time.Minute)),
		snapshotLevel("snap-1", "p-1", 5, snapCounted),
		snapshotCompleted("snap-1", 1))
	got := feedOf(t, s, "p-later", "p-earlier")
	wantLevel(t, "p-later", got["p-later"], 7, snapCounted.Add(time.Minute))
	wantLevel(t, "p-earlier", got["p-earlier"], 0, snapCounted)
}

// A level of the snapshot that arrives after its completion was fanned out
// (the feed counted more products than it said) replaces the zero the
// completion implied for its product, and a redelivered completion does not
// bring the zero back.
func TestSnapshotLevelAfterTheFanOutWins(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	carried := carriedList("p-1", "p-late")
	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-1", 5, snapCounted), snapshotCompleted("snap-1", 1))
	wantLevel(t, "p-late before its level", feedOf(t, s, "p-late")["p-late"], 0, snapCounted)
	countedEarlier := snapCounted.Add(-10 * time.Minute) // counted during the snapshot
	applyInventory(t, s, carried, snapshotLevel("snap-1", "p-late", 4, countedEarlier))
	wantLevel(t, "p-late", feedOf(t, s, "p-late")["p-late"], 4, countedEarlier)
	if applied := applyInventory(t, s, carried, snapshotCompleted("snap-1", 1)); applied[0] {
		t.Error("a redelivered completion was reported as new")
	}
	wantLevel(t, "p-late after a redelivered completion", feedOf(t, s, "p-late")["p-late"], 4, countedEarlier)
}

// A fan-out that fails (PostgreSQL down) fails the batch; its redelivery
// fans the snapshot out.
func TestSnapshotFanOutRepairedByRedelivery(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	batch := []aisle.Update{{Event: snapshotLevel("snap-1", "p-1", 5, snapCounted)}, {Event: snapshotCompleted("snap-1", 1)}}
	down := func(context.Context, string) ([]string, error) { return nil, errors.New("connection refused") }
	if _, err := s.ApplyInventory(context.Background(), batch, down); err == nil {
		t.Fatal("ApplyInventory did not fail without its assortment")
	}
	wantNoLevel(t, "p-gone after the failure", feedOf(t, s, "p-gone")["p-gone"])
	applied, err := s.ApplyInventory(context.Background(), batch, carriedList("p-1", "p-gone"))
	if err != nil {
		t.Fatal(err)
	}
	if applied[0] || applied[1] {
		t.Errorf("applied = %v, want both known from the failed attempt", applied)
	}
	wantLevel(t, "p-gone", feedOf(t, s, "p-gone")["p-gone"], 0, snapCounted)
}

// Redelivered batches, levels spread over partitions and a completion
// applied before some of its levels give the same features as a clean
// replay in order: the fault tests' comparison.
func TestSnapshotsGiveTheFeaturesOfACleanReplay(t *testing.T) {
	t.Parallel()
	carried := carriedList("p-1", "p-2", "p-3", "p-gone", "p-also-gone")
	origin := func(ev *aisle.Decoded, partition int32, offset int64) aisle.Update {
		return aisle.Update{Event: ev, Origin: aisle.Origin{Topic: aisle.TopicInventory, Partition: partition, Offset: offset}}
	}
	l1 := origin(snapshotLevel("snap-1", "p-1", 5, snapCounted), 0, 10)
	l2 := origin(snapshotLevel("snap-1", "p-2", 0, snapCounted), 1, 20)
	l3 := origin(snapshotLevel("snap-1", "p-3", 2, snapCounted), 2, 30)
	done := origin(snapshotCompleted("snap-1", 3), 3, 40)
	second := origin(snapshotCompleted("snap-2", 1), 3, 41) // partial: snap-2 has no level
	run := func(batches ...[]aisle.Update) map[string]map[string]string {
		prefix := featurestest.NewPrefix()
		s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
		for _, b := range batches {
			if _, err := s.ApplyInventory(context.Background(), b, carried); err != nil {
				t.Fatal(err)
			}
		}
		return featurestest.FeaturesOnly(featurestest.MustSnapshot(t, prefix))
	}
	clean := run([]aisle.Update{l1, l2, l3, done, second})
	live := run(
		[]aisle.Update{done, second}, // the store's partition first
		[]aisle.Update{l2},
		[]aisle.Update{done, second}, // redelivered
		[]aisle.Update{l1, l3},       // completes the snapshot
		[]aisle.Update{l3, l1},       // redelivered, another worker's order
		[]aisle.Update{done},
	)
	if d := featurestest.Diff(live, clean); d != "" {
		t.Errorf("live features differ from a clean replay:\n%s", d)
	}
	if _, ok := clean[features.KeyName("avail", "s-1:p-gone")]; !ok {
		t.Errorf("the clean replay zeroed nothing, it tests too little: %v", clean)
	}
}

// A level applied to its product's hash but not yet recorded in its
// snapshot's tracking (another worker, between its two round trips) when
// the snapshot completes keeps its count: the zero never replaces a level
// of its own snapshot.
func TestSnapshotZeroSparesALevelNotYetTracked(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	countedEarlier := snapCounted.Add(-10 * time.Minute)
	apply(t, s, aisle.Update{Event: snapshotLevel("snap-1", "p-racing", 4, countedEarlier)}) // the hash only
	applyInventory(t, s, carriedList("p-1", "p-racing"), snapshotLevel("snap-1", "p-1", 5, snapCounted), snapshotCompleted("snap-1", 1))
	wantLevel(t, "p-racing", feedOf(t, s, "p-racing")["p-racing"], 4, countedEarlier)
}
