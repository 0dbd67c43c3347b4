package availability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres/postgrestest"
)

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// rec is a record as read from Kafka.
type rec struct {
	topic string
	value []byte
}

func pickRec(id, typ, store, product string, at time.Time) rec {
	return eventRec(aisle.TopicPicking, id, typ, at, aisle.Pick{StoreID: store, ProductID: product, ShopperID: "sh-1", OrderID: "o-" + id})
}

func feedRec(id, store, product string, quantity int64, at time.Time) rec {
	return eventRec(aisle.TopicInventory, id, aisle.TypeInventoryLevel, at, aisle.InventoryLevel{StoreID: store, ProductID: product, Quantity: &quantity})
}

func snapshotDone(id, store string, at time.Time) rec {
	levels := int64(1)
	return eventRec(aisle.TopicInventory, id, aisle.TypeInventorySnapshotCompleted, at, aisle.SnapshotCompleted{StoreID: store, SnapshotID: "snap-1", Levels: &levels})
}

func eventRec(topic, id, typ string, at time.Time, data any) rec {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	value, err := json.Marshal(aisle.Event{ID: id, Type: typ, Time: at, Source: "test", Data: raw})
	if err != nil {
		panic(err)
	}
	return rec{topic, value}
}

func historyOf(since time.Time, recs []rec) *availability.History {
	h := availability.NewHistory(since)
	for _, r := range recs {
		h.Add(r.topic, r.value, now)
	}
	return h
}

// The fit replays the history in event-time order, whatever the read order,
// once per event id, without what the stream would reject, and saves it.
func TestRefitPriors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	model := models.DefaultAvailabilityModel()
	since := now.Add(-24 * time.Hour)

	// p-1 at s-1 is always found after a feed of 10; p-2 at s-2 never,
	// after a feed of 0. Each feed comes a minute before its pick.
	var recs []rec
	for i := range 150 {
		at := since.Add(time.Minute + time.Duration(i)*5*time.Minute)
		recs = append(recs,
			feedRec(fmt.Sprint("f1-", i), "s-1", "p-1", 10, at.Add(-time.Minute)),
			pickRec(fmt.Sprint("a-", i), aisle.TypePickFound, "s-1", "p-1", at),
			feedRec(fmt.Sprint("f2-", i), "s-2", "p-2", 0, at.Add(-time.Minute)),
			pickRec(fmt.Sprint("b-", i), aisle.TypePickNotFound, "s-2", "p-2", at))
	}
	valid := len(recs)
	recs = append(recs, recs[:40]...) // redelivered
	recs = append(recs,
		rec{aisle.TopicPicking, []byte("{not json")},
		pickRec("bad-topic", aisle.TypePickFound, "s-1", "p-1", now).topicOf(aisle.TopicInventory),
		pickRec("future", aisle.TypePickFound, "s-1", "p-1", now.Add(time.Hour)),
		pickRec("unknown-product", aisle.TypePickFound, "s-1", "p-999999", now),
		pickRec("unknown-store", aisle.TypePickFound, "s-999", "p-1", now),
		pickRec("old", aisle.TypePickNotFound, "s-1", "p-1", since.Add(-time.Second)),
		snapshotDone("snap-done", "s-1", now), // names no product: not part of the fit
	)
	// Read order must not matter: partitions interleave arbitrarily.
	reversed := slices.Clone(recs)
	slices.Reverse(reversed)

	fit, err := availability.RefitPriors(ctx, db, model, historyOf(since, reversed))
	if err != nil {
		t.Fatalf("RefitPriors: %v", err)
	}
	want := availability.PriorsFit{Priors: fit.Priors, Events: valid, Duplicates: 40, Invalid: 5, Older: 1}
	if !reflect.DeepEqual(fit, want) {
		t.Errorf("fit counts %+v, want %+v", fit, want)
	}
	p := fit.Priors
	if p.Observations != 300 || p.Products["p-1"] != (models.FoundRate{Found: 150, Total: 150}) || p.Products["p-2"] != (models.FoundRate{Found: 0, Total: 150}) {
		t.Errorf("picks: %d observations, p-1 %+v, p-2 %+v; want 300, 150/150 and 0/150", p.Observations, p.Products["p-1"], p.Products["p-2"])
	}
	if last := since.Add(time.Minute + 149*5*time.Minute); !p.FittedAt.Equal(last) {
		t.Errorf("fitted_at %v, want the last pick's time %v", p.FittedAt, last)
	}
	// The seeded stores keep Chicago's hours (catalog timezone): the picks,
	// 10:01 to 22:26 UTC on 20 November, are 04:01 to 16:26 on their clock.
	if !p.LocalHours || len(p.PickHours) != 24 || !(p.PickHours[4] > 0) || p.PickHours[20] != 0 {
		t.Errorf("pick hours %v (local hours %v): want the picks' Chicago hours, 04:00 to 16:00", p.PickHours, p.LocalHours)
	}
	categories, err := db.ProductCategories(ctx, []string{"p-1", "p-2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p-1", "p-2"} {
		if _, ok := p.Categories[categories[id]]; !ok || categories[id] == "" {
			t.Errorf("category %q of %s is not in the priors %v", categories[id], id, p.Categories)
		}
	}
	if found, notFound := p.Mean("p-1", categories["p-1"]), p.Mean("p-2", categories["p-2"]); !(found > 0.8 && notFound < 0.2) {
		t.Errorf("prior means: always found %v, never found %v", found, notFound)
	}
	// Every pick saw the feed a minute before it: evidence is replayed in
	// time order and handed to the fit. Feed levels are item-weighted: the
	// picks of each store-product count as one in all, here all in the
	// fastest velocity class.
	var emptyFeed, fullFeed models.FeedLevelRate // the levels of quantities 0 and 10
	fastest := 0.0
	for _, l := range p.FeedLevels {
		fastest = max(fastest, l.MinVelocity)
	}
	for _, l := range p.FeedLevels {
		if l.MinVelocity != fastest {
			continue
		}
		if l.Min <= 0 {
			emptyFeed = l
		}
		if l.Min <= 10 {
			fullFeed = l
		}
	}
	if !(emptyFeed.Total > 0.9 && emptyFeed.Found == 0) || !(fullFeed.Total > 0.9 && fullFeed.Found == fullFeed.Total) {
		t.Errorf("feed levels %+v: want the level of 0 with only not-found picks and that of 10 with only found ones", p.FeedLevels)
	}

	saved, err := db.LoadAvailabilityPriors(ctx)
	if err != nil || !reflect.DeepEqual(saved, p) {
		t.Fatalf("saved priors %+v, %v; want the fit %+v", saved, err, p)
	}
	again, err := availability.RefitPriors(ctx, db, model, historyOf(since, recs))
	if err != nil || !reflect.DeepEqual(again, fit) {
		t.Errorf("same records in another order: %+v, %v; want %+v", again, err, fit)
	}
}

func (r rec) topicOf(topic string) rec {
	r.topic = topic
	return r
}

// Too little history keeps the priors being served.
func TestRefitPriorsNeedsEnoughPicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	since := now.Add(-time.Hour)
	var recs []rec
	for i := range availability.MinPriorPicks {
		at := since.Add(time.Duration(i) * time.Second)
		if i == 0 {
			at = since.Add(-time.Second) // outside the window
		}
		recs = append(recs, pickRec(fmt.Sprint("e-", i), aisle.TypePickFound, "s-1", "p-1", at))
	}
	recs = append(recs, feedRec("f-1", "s-1", "p-1", 3, now)) // feeds are not picks

	fit, err := availability.RefitPriors(ctx, db, models.DefaultAvailabilityModel(), historyOf(since, recs))
	if !errors.Is(err, availability.ErrNotEnoughHistory) {
		t.Fatalf("RefitPriors with %d picks: %v, want ErrNotEnoughHistory", availability.MinPriorPicks-1, err)
	}
	if fit.Events != availability.MinPriorPicks || fit.Older != 1 {
		t.Errorf("fit %+v: want %d events replayed and 1 older", fit, availability.MinPriorPicks)
	}
	if p, err := db.LoadAvailabilityPriors(ctx); err != nil || !reflect.DeepEqual(p, models.DefaultAvailabilityPriors()) {
		t.Errorf("after a refused fit the stored priors are %+v, %v; want the defaults still", p, err)
	}
}
