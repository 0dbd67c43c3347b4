package features

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
)

//go:embed snapshot.lua
var trackSnapshotSource string

// trackSnapshotScript records a snapshot's levels and completion in the
// store's bucket (see snapshot.lua).
var trackSnapshotScript = redis.NewScript(trackSnapshotSource)

// SnapshotTTL is how long a snapshot's tracking outlives its last event: a
// snapshot whose levels and completion are not all in within it is
// forgotten, partial, and implies nothing. It is much shorter than the
// availability TTL because a tracking hash lists the products that got a
// level (~1,600 for a store), and a feed may send a snapshot every hour.
const SnapshotTTL = 48 * time.Hour

var snapshotZeros = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_features_snapshot_zeros_total",
	Help: "Zeros applied for carried products that a complete feed snapshot left out.",
})

// Carried lists the products a store carries now (its assortment).
type Carried func(ctx context.Context, storeID string) ([]string, error)

// ApplyInventory applies aisle.inventory's events: levels with
// ApplyAvailability, then what snapshots say (docs/availability.md,
// "Snapshots and deltas"). Each level of a snapshot and each completion is
// recorded in the snapshot's tracking hash, in the store's bucket; when that
// makes the snapshot complete (its completion is known and as many distinct
// products as it says got a level), every product carried lists that got
// no level of it gets the zero the snapshot implies, counted at the
// snapshot's counted_at, through availability.lua like any level, with a
// digest of its own per (snapshot, product). The tracking hash is then
// marked done.
//
// Every step may run again: a redelivered level or completion records what
// is already recorded, and finds the snapshot complete again until it is
// done, so a crash during a fan-out is repaired by the redelivery. The
// zeros are idempotent, also once their digests have left "@ids": a zero
// replaces only a level counted before it that is not of its snapshot, and
// a level of the snapshot replaces its zero, in whichever order they come.
// applied[i] is ApplyAvailability's for a level, and for a completion
// whether it was the snapshot's first (recording one again changes nothing).
func (s *Store) ApplyInventory(ctx context.Context, updates []aisle.Update, carried Carried) (applied []bool, err error) {
	applied = make([]bool, len(updates))
	var levels []aisle.Update
	var at []int
	for i, u := range updates {
		if u.Event == nil || u.Event.Snapshot == nil {
			levels = append(levels, u)
			at = append(at, i)
		}
	}
	if len(levels) > 0 {
		got, err := s.ApplyAvailability(ctx, levels)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			applied[i] = got[j]
		}
	}
	complete, err := s.trackSnapshots(ctx, updates, applied)
	if err != nil {
		return nil, err
	}
	for _, c := range complete {
		if err := s.applySnapshotZeros(ctx, c, carried); err != nil {
			return nil, err
		}
	}
	return applied, nil
}

// completeSnapshot is a snapshot found complete by trackSnapshots.
type completeSnapshot struct {
	trackedSnapshot
	countedAt, at time.Time
	levelled      map[string]bool // the products that got a level of it
}

// trackedSnapshot names a store's snapshot.
type trackedSnapshot struct{ storeID, snapshotID string }

// trackSnapshots records the snapshot levels and completions of updates in
// one pipelined round trip, sets applied[i] for each completion it records
// first, and returns the snapshots they found complete, each once.
func (s *Store) trackSnapshots(ctx context.Context, updates []aisle.Update, applied []bool) ([]completeSnapshot, error) {
	var calls []call
	var tracked []trackedSnapshot // of each call
	var completions []int         // the update of each call that records a completion, else -1
	for i, u := range updates {
		ev := u.Event
		switch {
		case ev.Snapshot != nil:
			c := ev.Snapshot
			calls = append(calls, s.trackSnapshotCall(c.StoreID, c.SnapshotID, "completed", *c.Levels, c.CountedTime(ev.Time).UnixMilli(), ev.Time.UnixMilli()))
			tracked = append(tracked, trackedSnapshot{c.StoreID, c.SnapshotID})
			completions = append(completions, i)
		case ev.Inventory != nil && ev.Inventory.Feed == aisle.FeedSnapshot:
			l := ev.Inventory
			calls = append(calls, s.trackSnapshotCall(l.StoreID, l.SnapshotID, "level", l.ProductID, "", ""))
			tracked = append(tracked, trackedSnapshot{l.StoreID, l.SnapshotID})
			completions = append(completions, -1)
		}
	}
	if len(calls) == 0 {
		return nil, nil
	}
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("track snapshots: %w", err)
	}
	var complete []completeSnapshot
	seen := map[trackedSnapshot]bool{}
	for i, r := range results {
		vals, ok := r.([]any)
		if !ok || len(vals) == 0 {
			return nil, fmt.Errorf("track snapshot %s of store %s: unexpected script result %v", tracked[i].snapshotID, tracked[i].storeID, r)
		}
		if u := completions[i]; u >= 0 {
			applied[u] = vals[0] == int64(1)
		}
		vals = vals[1:]
		if len(vals) == 0 || seen[tracked[i]] {
			continue
		}
		seen[tracked[i]] = true
		c, err := parseCompleteSnapshot(tracked[i], vals)
		if err != nil {
			return nil, fmt.Errorf("track snapshot %s of store %s: %w", tracked[i].snapshotID, tracked[i].storeID, err)
		}
		complete = append(complete, c)
	}
	return complete, nil
}

// trackSnapshotCall is a snapshot.lua call.
func (s *Store) trackSnapshotCall(storeID, snapshotID, mode string, arg, countedAtMS, atMS any) call {
	return call{trackSnapshotScript, []string{s.snapshotKey(storeID, snapshotID)},
		[]any{mode, arg, countedAtMS, atMS, SnapshotTTL.Milliseconds()}}
}

// parseCompleteSnapshot reads snapshot.lua's answer for a complete snapshot:
// {counted_at_ms, time_ms, product...}.
func parseCompleteSnapshot(t trackedSnapshot, vals []any) (completeSnapshot, error) {
	if len(vals) < 2 {
		return completeSnapshot{}, fmt.Errorf("unexpected script result %v", vals)
	}
	countedAt, err := parseInt("counted_at_ms", vals[0])
	if err != nil {
		return completeSnapshot{}, err
	}
	at, err := parseInt("time_ms", vals[1])
	if err != nil {
		return completeSnapshot{}, err
	}
	out := completeSnapshot{
		trackedSnapshot: t,
		countedAt:       time.UnixMilli(countedAt).UTC(),
		at:              time.UnixMilli(at).UTC(),
		levelled:        make(map[string]bool, len(vals)-2),
	}
	for _, v := range vals[2:] {
		p, _ := v.(string)
		out.levelled[p] = true
	}
	return out, nil
}

// maxZerosPerRoundTrip bounds one pipeline of a snapshot's implied zeros.
const maxZerosPerRoundTrip = 1000

// applySnapshotZeros applies the zeros a complete snapshot implies for the
// carried products that got no level of it, then marks it done.
func (s *Store) applySnapshotZeros(ctx context.Context, c completeSnapshot, carried Carried) error {
	products, err := carried(ctx, c.storeID)
	if err != nil {
		return fmt.Errorf("snapshot %s of store %s: read the assortment: %w", c.snapshotID, c.storeID, err)
	}
	var zeros []aisle.Update
	for _, p := range products {
		if !c.levelled[p] {
			zeros = append(zeros, aisle.Update{Event: snapshotZero(c, p)})
		}
	}
	now := time.Now()
	tag := "zero:" + c.snapshotID
	for lo := 0; lo < len(zeros); lo += maxZerosPerRoundTrip {
		batch := zeros[lo:min(lo+maxZerosPerRoundTrip, len(zeros))]
		calls := make([]call, len(batch))
		for i, u := range batch {
			if calls[i], err = s.availabilityCall(u, tag, now); err != nil {
				return err
			}
		}
		applied, err := s.applyAvailabilityCalls(ctx, batch, calls)
		if err != nil {
			return fmt.Errorf("snapshot %s of store %s: %w", c.snapshotID, c.storeID, err)
		}
		for _, a := range applied {
			if a {
				snapshotZeros.Inc()
			}
		}
	}
	finish := s.trackSnapshotCall(c.storeID, c.snapshotID, "finished", "", "", "")
	if _, err := s.evalEach(ctx, []call{finish}); err != nil {
		return fmt.Errorf("snapshot %s of store %s: mark it done: %w", c.snapshotID, c.storeID, err)
	}
	return nil
}

// snapshotZero is the level a complete snapshot implies for a product it
// left out. Its id, which no event can have (ids hold no colon), makes its
// digest the same on every fan-out of the snapshot.
func snapshotZero(c completeSnapshot, productID string) *aisle.Decoded {
	var zero int64
	countedAt := c.countedAt
	return &aisle.Decoded{
		Event:     aisle.Event{ID: "zero:" + c.snapshotID + ":" + productID, Type: aisle.TypeInventoryLevel, Time: c.at},
		Inventory: &aisle.InventoryLevel{StoreID: c.storeID, ProductID: productID, Quantity: &zero, CountedAt: &countedAt},
	}
}

// levelSnapshotTag is availability.lua's ARGV[14] for an event of the stream.
func levelSnapshotTag(ev *aisle.Decoded) string {
	if ev != nil && ev.Inventory != nil && ev.Inventory.Feed == aisle.FeedSnapshot {
		return "level:" + ev.Inventory.SnapshotID
	}
	return ""
}

// snapshotKey is the tracking hash of a store's snapshot, in the store's bucket.
func (s *Store) snapshotKey(storeID, snapshotID string) string {
	return s.key("snap", storeID) + ":" + snapshotID
}
