package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

func TestRunPacesDeterministicEvents(t *testing.T) {
	t.Parallel()
	cat := SyntheticCatalog(5, testSize)
	stamp := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var got []aisle.Event
	cfg := RunConfig{Catalog: cat, Seed: 5, Rate: 2000, Limit: 200, Now: func() time.Time { return stamp }, RunID: "r1"}
	start := time.Now()
	err := Run(t.Context(), cfg, func(_ context.Context, ev aisle.Event) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 {
		t.Fatalf("published %d events, want the limit 200", len(got))
	}
	// 200 events at 2000/s take at least ~0.1 s.
	if elapsed := time.Since(start); elapsed < 90*time.Millisecond {
		t.Errorf("200 events at 2000/s took %v: not paced", elapsed)
	}
	sim, err := New(cat, Config{Seed: 5, Start: liveStart})
	if err != nil {
		t.Fatal(err)
	}
	counts := 0
	for i, ev := range got {
		simulated := sim.Next().Event
		want := restamped(simulated, stamp)
		if ev.Type == aisle.TypeInventoryLevel {
			counts++
			var sent, counted aisle.InventoryLevel
			if json.Unmarshal(ev.Data, &sent) != nil || json.Unmarshal(simulated.Data, &counted) != nil {
				t.Fatalf("event %d: feed data %s", i, ev.Data)
			}
			// As long before now as the simulated count was before its
			// event, to the millisecond the event keeps.
			if age, want := stamp.Sub(*sent.CountedAt), simulated.Time.Sub(*counted.CountedAt); age < want || age > want+time.Millisecond {
				t.Fatalf("event %d counted_at %s: not as long before now as the simulated count before its event %s", i, ev.Data, simulated.Data)
			}
		}
		if !ev.Time.Equal(stamp) {
			t.Fatalf("event %d time %v, want now %v", i, ev.Time, stamp)
		}
		if ev.ID != want.ID+"-r1" || ev.Type != want.Type || string(ev.Data) != string(want.Data) {
			t.Fatalf("event %d = %+v, want the simulator's %+v", i, ev, want)
		}
		value, _ := json.Marshal(ev)
		if _, err := aisle.DecodeEvent(value, "", stamp); err != nil {
			t.Fatalf("event %d invalid: %v", i, err)
		}
	}
	if counts == 0 {
		t.Errorf("no feed level among the first 200 events: counted_at is not checked")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{Catalog: SyntheticCatalog(1, testSize), Seed: 1, Rate: 1000}, func(ctx context.Context, ev aisle.Event) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n == 20 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 20 {
		t.Fatalf("published %d events, want to stop right after 20", n)
	}
}

func TestRunReturnsPublishErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("broker down")
	err := Run(t.Context(), RunConfig{Catalog: SyntheticCatalog(1, testSize), Seed: 1, Rate: 1000}, func(context.Context, aisle.Event) error {
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the publish error", err)
	}
}

func TestRunRejectsBadRate(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, -1} {
		err := Run(t.Context(), RunConfig{Catalog: SyntheticCatalog(1, testSize), Rate: rate}, func(context.Context, aisle.Event) error { return nil })
		if aisle.ErrorCode(err) != aisle.EINVALID {
			t.Errorf("rate %v: got %v, want EINVALID", rate, err)
		}
	}
}
