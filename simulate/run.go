package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aisle/aisle/aisle"
)

// RunConfig configures a live simulation.
type RunConfig struct {
	Catalog Catalog
	Seed    int64
	Rate    float64          // events per second, > 0
	Limit   int              // stop after this many events; 0 means no limit
	Now     func() time.Time // event time; nil means time.Now
	// RunID is appended to every event id so that a second run of the same
	// seed is not dropped as a redelivery of the first; empty means the
	// start time.
	RunID string
	// Start is the simulated time of the first hour; zero means the first
	// day at 07:00, an hour before opening, so that a live viewer sees
	// shoppers' picks within seconds rather than a night of feeds.
	Start time.Time
}

// liveStart is the default simulated start of a live run.
var liveStart = defaultStart.Add(7 * time.Hour)

// maxLag bounds how far a slow publisher may fall behind the schedule before
// pacing forgets the backlog instead of bursting to catch up.
const maxLag = time.Second

// Run publishes the simulated stream live: events in the simulator's order,
// spaced at cfg.Rate per second, each stamped with the current time, so the
// simulated hours are compressed into whatever wall time the rate gives them.
// The sequence of stores, products and outcomes (and the event ids) depends
// only on the catalog and seed. Run returns nil when ctx is done or Limit is
// reached, and the first publish error otherwise.
func Run(ctx context.Context, cfg RunConfig, publish func(context.Context, aisle.Event) error) error {
	start := cfg.Start
	if start.IsZero() {
		start = liveStart
	}
	sim, err := New(cfg.Catalog, Config{Seed: cfg.Seed, Start: start})
	if err != nil {
		return err
	}
	return pace(ctx, cfg, func() aisle.Event { return sim.Next().Event }, publish)
}

// runIDOr returns id, or when it is empty a run id made of the start time.
func runIDOr(id string) string {
	if id == "" {
		return strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	return id
}

// restamped is ev sent at now instead of its simulated time. A feed level's
// counted_at keeps its distance before the event time: a count published an
// hour after it was taken stays an hour old, not a simulated date.
func restamped(ev aisle.Event, now time.Time) aisle.Event {
	if ev.Type == aisle.TypeInventoryLevel {
		var level aisle.InventoryLevel
		if err := json.Unmarshal(ev.Data, &level); err != nil {
			panic(fmt.Sprintf("simulate: decode own %s data: %v", ev.Type, err)) // the simulator encoded it
		}
		if level.CountedAt != nil {
			counted := now.Add(-ev.Time.Sub(*level.CountedAt)).Truncate(time.Millisecond)
			level.CountedAt = &counted
			raw, err := json.Marshal(level)
			if err != nil {
				panic(fmt.Sprintf("simulate: encode %s data: %v", ev.Type, err)) // plain structs always encode
			}
			ev.Data = raw
		}
	}
	ev.Time = now
	return ev
}

// pace publishes next's events at cfg.Rate per second, each stamped with
// cfg.Now and its id suffixed with the run id, until ctx is done or
// cfg.Limit events were published.
func pace(ctx context.Context, cfg RunConfig, next func() aisle.Event, publish func(context.Context, aisle.Event) error) error {
	if !(cfg.Rate > 0) {
		return aisle.Errorf(aisle.EINVALID, "simulation rate must be positive, got %g events/s", cfg.Rate)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	runID := runIDOr(cfg.RunID)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now()
	for sent := 0; cfg.Limit == 0 || sent < cfg.Limit; sent++ {
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			if ctx.Err() != nil { // both were ready: stopping wins
				return nil
			}
		}
		ev := restamped(next(), now().UTC())
		ev.ID += "-" + runID
		if err := publish(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publish simulated event %s: %w", ev.ID, err)
		}
		due = due.Add(interval)
		if lag := time.Since(due); lag > maxLag {
			due = time.Now()
		}
	}
	return nil
}
