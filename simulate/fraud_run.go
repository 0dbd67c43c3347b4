package simulate

import (
	"context"
	"time"

	"github.com/aisle/aisle/aisle"
)

// FraudRunConfig configures a live fraud simulation.
type FraudRunConfig struct {
	Stores []Store
	Seed   int64
	Rate   float64 // events per second, > 0
	Limit  int     // stop after this many events; 0 means no limit
	// RunID is appended to every event and order id so that a second run
	// of the same seed is new orders, not redeliveries; empty means the
	// start time.
	RunID string
}

// liveFraudWorld is a week of 2,000 customers with scenarios scaled to
// them (about 1 % fraud); a live run goes through one week after another.
func liveFraudWorld(seed int64, stores []Store) FraudWorld {
	w := DefaultFraudWorld(seed, stores)
	w.Days, w.Customers, w.ScenarioScale = 7, 2000, 0.2
	return w
}

// RunFraud publishes the fraud world live, like Run: orders, declined
// payments and labels in simulated order, spaced at cfg.Rate per second and
// stamped with the current time, so a simulated week (labels included)
// passes in whatever wall time the rate gives it. When a week is out the
// next one (the next seed) follows.
func RunFraud(ctx context.Context, cfg FraudRunConfig, publish func(context.Context, aisle.Event) error) error {
	runID := runIDOr(cfg.RunID)
	seed := cfg.Seed
	records, err := GenerateFraud(liveFraudWorld(seed, cfg.Stores))
	if err != nil {
		return err
	}
	var nextErr error
	next := func() aisle.Event {
		for len(records) == 0 && nextErr == nil {
			seed++
			records, nextErr = GenerateFraud(liveFraudWorld(seed, cfg.Stores))
		}
		if nextErr != nil {
			return aisle.Event{}
		}
		r := records[0]
		records = records[1:]
		renameOrder(r.Event, runID)
		ev, err := r.Envelope()
		if err != nil {
			nextErr = err
		}
		return ev
	}
	paced := RunConfig{Rate: cfg.Rate, Limit: cfg.Limit, RunID: runID}
	return pace(ctx, paced, next, func(ctx context.Context, ev aisle.Event) error {
		if nextErr != nil {
			return nextErr
		}
		return publish(ctx, ev)
	})
}

// renameOrder suffixes the order id an event names with runID.
func renameOrder(d *aisle.Decoded, runID string) {
	switch {
	case d.Order != nil:
		d.Order.OrderID += "-" + runID
	case d.PaymentFailed != nil:
		d.PaymentFailed.OrderID += "-" + runID
	case d.Label != nil:
		d.Label.OrderID += "-" + runID
	}
}

// FraudHistory simulates the fraud world w over the days before now (its
// Start and Days are set from days) and returns, in time order, the events
// that have happened by now with their simulated times: orders, declines and
// the labels known by now. Publishing them gives `aisle train fraud` a
// history to learn from at once, with velocity windows as real time spaces
// them (a live run compresses time).
func FraudHistory(w FraudWorld, days int, now time.Time) ([]aisle.Event, error) {
	now = now.UTC()
	w.Start, w.Days = now.Truncate(24*time.Hour).AddDate(0, 0, -days), days+1
	records, err := GenerateFraud(w)
	if err != nil {
		return nil, err
	}
	var events []aisle.Event
	for _, r := range records {
		if r.Event.Time.After(now) {
			break // in time order: the rest has not happened yet
		}
		ev, err := r.Envelope()
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}
