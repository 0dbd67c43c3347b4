package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// `aisle batch priors` reads the pick history from Kafka, fits the priors
// and saves them where serving loads them.
func TestBatchPriors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	broker := streamingtest.MustStartBroker(t, 3)
	log := slog.New(slog.DiscardHandler)
	producer, err := streaming.NewProducer(broker.Addrs(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	now := time.Now().UTC()
	picked := func(id, typ, storeID, productID string, at time.Time) aisle.Event {
		data, err := json.Marshal(aisle.Pick{StoreID: storeID, ProductID: productID, ShopperID: "sh-1", OrderID: "o-" + id})
		if err != nil {
			t.Fatal(err)
		}
		return aisle.Event{ID: id, Type: typ, Time: at, Source: "test", Data: data}
	}
	// p-1 at s-1 is always found, p-2 at s-2 never.
	var events []aisle.Event
	var last time.Time
	for i := range 150 {
		last = now.Add(-time.Duration(150-i) * time.Minute)
		events = append(events,
			picked(fmt.Sprint("a-", i), aisle.TypePickFound, "s-1", "p-1", last),
			picked(fmt.Sprint("b-", i), aisle.TypePickNotFound, "s-2", "p-2", last))
	}
	events = append(events,
		events[0], // redelivered
		picked("old", aisle.TypePickFound, "s-2", "p-2", now.Add(-25*time.Hour)), // before --since
	)
	for _, ev := range events {
		if _, err := producer.Publish(ctx, ev, ""); err != nil {
			t.Fatalf("publish %s: %v", ev.ID, err)
		}
	}

	var out bytes.Buffer
	if err := batchPriors(ctx, db, broker.Addrs(), now, 24*time.Hour, &out, log); err != nil {
		t.Fatalf("batch priors: %v", err)
	}
	want := fmt.Sprintf("availability priors saved: 300 picks, global found rate 0.5000, fitted_at %s (300 events replayed; skipped 1 duplicate, 0 invalid, 1 older than 1d)\n",
		last.Format(time.RFC3339Nano))
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}

	p, err := db.LoadAvailabilityPriors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	categories, err := db.ProductCategories(ctx, []string{"p-1", "p-2"})
	if err != nil {
		t.Fatal(err)
	}
	found, notFound := p.Mean("p-1", categories["p-1"]), p.Mean("p-2", categories["p-2"])
	if p.Observations != 300 || !p.FittedAt.Equal(last) || !(found > 0.8 && notFound < 0.2) {
		t.Errorf("saved priors: %d observations fitted at %v, means %v (always found) and %v (never found); want 300 at %v, > 0.8 and < 0.2",
			p.Observations, p.FittedAt, found, notFound, last)
	}
}
