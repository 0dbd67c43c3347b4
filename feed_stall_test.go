package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// Issue 18 ("Phantom-stock detection", the zero-sales streak): a positive
// count that stopped moving was trusted like one that moves, although
// nobody can buy what is not on the shelf. From a feed on Kafka to the
// answer, under priors that know the products' velocities and learnt that
// such counts are often phantom stock: a fast mover's count of 5 that has
// not moved for 12 hours is answered lower than one that moved an hour ago
// and is named NO_RECENT_SALES, with the time its level started; a slow
// mover's count that stood still as long is not named.
func TestStalledCountReachesTheAnswer(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(3)
	stalled, moving, slow := products[0], products[1], products[2]

	priors := models.DefaultAvailabilityPriors()
	priors.FittedAt, priors.Observations = time.Now().UTC().Truncate(time.Second), 161
	priors.WindowDays = 10
	priors.Products = map[string]models.FoundRate{ // 8 picks a day, and one in ten days
		stalled: {Found: 72, Total: 80}, moving: {Found: 72, Total: 80}, slow: {Found: 1, Total: 1},
	}
	priors.StallShifts = []models.StallShift{{Min: 0, Shift: 0}, {Min: 2, Shift: -1.5}}
	ts.insertPriors(priors)

	now := time.Now().UTC().Truncate(time.Millisecond)
	level := func(product string, qty int, counted time.Duration) aisle.Event {
		countedAt := now.Add(-counted)
		return feedLevel(t, fmt.Sprintf("e-%s-%s-%d", store.ID, product, counted/time.Hour), store.ID, product, qty, countedAt, countedAt.Add(10*time.Minute))
	}
	// One call per count: one store-product's levels in the order counted.
	for i, ago := range []time.Duration{12 * time.Hour, 8 * time.Hour, 4 * time.Hour, time.Hour} {
		ts.publish(level(stalled, 5, ago), level(moving, 8-i, ago), level(slow, 5, ago))
	}

	var items []itemAvailability
	eventually(t, 90*time.Second, func() string {
		if !ts.servesPriors(priors) {
			return "the priors are not served yet"
		}
		items = ts.availability(store.ID, products...)
		return countsApplied(ts, store.ID, products, now.Add(-time.Hour))
	})
	if !(items[0].Probability < items[1].Probability-0.05) {
		t.Errorf("a fast mover's count of 5, unmoved for 12 h: %.3f; moved an hour ago: %.3f; want it well below", items[0].Probability, items[1].Probability)
	}
	ev := stallEvidence(ts, store.ID, stalled)
	if !slices.Contains(ev.Signals, "NO_RECENT_SALES") {
		t.Errorf("signals of the unmoved count %v, want NO_RECENT_SALES", ev.Signals)
	}
	if ev.LevelSince == nil || !strings.HasPrefix(*ev.LevelSince, now.Add(-12*time.Hour).Format("2006-01-02T15:04")) {
		t.Errorf("the unmoved count's level since %v, want its first count %s", ev.LevelSince, now.Add(-12*time.Hour))
	}
	for _, p := range []string{moving, slow} {
		if ev := stallEvidence(ts, store.ID, p); slices.Contains(ev.Signals, "NO_RECENT_SALES") {
			t.Errorf("%s: signals %v, want no NO_RECENT_SALES", p, ev.Signals)
		}
	}
}

// insertPriors stores priors as the latest fit, which serving loads within
// a minute (servesPriors).
func (ts *testServer) insertPriors(priors models.AvailabilityPriors) {
	ts.t.Helper()
	doc, err := json.Marshal(priors)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.sql(`INSERT INTO availability_priors (fitted_at, document) VALUES ($1, $2)`, priors.FittedAt, doc)
}

// servesPriors reports whether serving has logged loading priors, told
// apart from other fits by their number of observations.
func (ts *testServer) servesPriors(priors models.AvailabilityPriors) bool {
	return strings.Contains(ts.logs.String(), fmt.Sprintf(`"observations":%d`, priors.Observations))
}

// feedLevel is a retailer feed's inventory.level of qty, counted at
// countedAt and sent at sent.
func feedLevel(t *testing.T, id, storeID, productID string, qty int, countedAt, sent time.Time) aisle.Event {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"store_id": storeID, "product_id": productID, "quantity": qty, "counted_at": countedAt.Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return aisle.Event{ID: id, Type: aisle.TypeInventoryLevel, Time: sent, Source: "feed", Data: raw}
}

// countsApplied says which of products has not yet the count of countedAt
// (to the minute) as its latest, "" when all have.
func countsApplied(ts *testServer, storeID string, products []string, countedAt time.Time) string {
	for _, p := range products {
		if ev := stallEvidence(ts, storeID, p); ev.CountedAt == nil || !strings.HasPrefix(*ev.CountedAt, countedAt.Format("2006-01-02T15:04")) {
			return fmt.Sprintf("%s: the count of %s is not applied yet: %+v", p, countedAt, ev)
		}
	}
	return ""
}

type stalledEvidence struct {
	CountedAt  *string  `json:"countedAt"`
	LevelSince *string  `json:"levelSince"`
	Signals    []string `json:"signals"`
}

// stallEvidence reads a product's evidence with a service key.
func stallEvidence(ts *testServer, storeID, productID string) stalledEvidence {
	ts.t.Helper()
	var data struct {
		Availability []struct {
			Evidence stalledEvidence `json:"evidence"`
		} `json:"availability"`
	}
	ts.mustData(ts.createKey(aisle.RoleService, "", ""), `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) {
	  evidence { countedAt levelSince signals } } }`, map[string]any{"s": storeID, "p": []string{productID}}, &data)
	return data.Availability[0].Evidence
}
