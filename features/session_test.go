package features_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
)

func sessionEvent(id, eventType, session, user, product string, at time.Time) aisle.Update {
	se := &aisle.SessionEvent{SessionID: session, UserID: user, StoreID: "s-1", ProductID: product}
	switch eventType {
	case aisle.TypeSessionSearch:
		se.ProductID, se.Query = "", "eggs"
	case aisle.TypeSessionCheckout:
		se.ProductID, se.OrderID = "", "o-"+id
	}
	return aisle.Update{Event: &aisle.Decoded{Event: aisle.Event{ID: id, Type: eventType, Time: at}, Session: se}}
}

func applySessions(t *testing.T, s *features.Store, updates ...aisle.Update) []bool {
	t.Helper()
	applied, err := s.ApplySessions(context.Background(), updates)
	if err != nil {
		t.Fatalf("ApplySessions: %v", err)
	}
	return applied
}

func readSession(t *testing.T, s *features.Store, id string) features.SessionState {
	t.Helper()
	st, err := s.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	return st
}

func TestApplySessions(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	applied := applySessions(t, s,
		sessionEvent("e1", aisle.TypeSessionView, "ss-1", "u-1", "pancake", sec(1)),
		sessionEvent("e2", aisle.TypeSessionAddToCart, "ss-1", "u-1", "pancake", sec(2)),
		sessionEvent("e3", aisle.TypeSessionSearch, "ss-1", "u-1", "", sec(3)),
		sessionEvent("e4", aisle.TypeSessionAddToCart, "ss-1", "u-1", "eggs", sec(5)),
		sessionEvent("e5", aisle.TypeSessionView, "ss-1", "u-1", "syrup", sec(4)),        // late: sorted in by event time
		sessionEvent("e2", aisle.TypeSessionAddToCart, "ss-1", "u-1", "pancake", sec(2)), // redelivery
		sessionEvent("e6", aisle.TypeSessionAddToCart, "ss-1", "u-2", "bacon", sec(6)),   // another user
		sessionEvent("e7", aisle.TypeSessionRemoveFromCart, "ss-1", "u-1", "pancake", sec(7)),
	)
	if want := []bool{true, true, true, true, true, false, false, true}; !reflect.DeepEqual(applied, want) {
		t.Fatalf("applied = %v, want %v", applied, want)
	}
	ms := func(n int) int64 { return sec(n).UnixMilli() }
	want := features.SessionState{
		Owner: "u-1",
		Session: models.Session{
			Items: []models.SessionItem{
				{ProductID: "pancake", Action: models.ActionView, AtMillis: ms(1)},
				{ProductID: "pancake", Action: models.ActionAddToCart, AtMillis: ms(2)},
				{ProductID: "syrup", Action: models.ActionView, AtMillis: ms(4)},
				{ProductID: "eggs", Action: models.ActionAddToCart, AtMillis: ms(5)},
				{ProductID: "pancake", Action: models.ActionRemoveFromCart, AtMillis: ms(7)},
			},
			Cart: []string{"eggs"},
		},
	}
	if got := readSession(t, s, "ss-1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("session = %+v\nwant      %+v", got, want)
	}

	applySessions(t, s, sessionEvent("e8", aisle.TypeSessionCheckout, "ss-1", "u-1", "", sec(8)))
	if got := readSession(t, s, "ss-1"); len(got.Session.Cart) != 0 || len(got.Session.Items) != 5 {
		t.Errorf("after checkout: %+v, want an empty cart and the items kept", got)
	}
	if got := readSession(t, s, "ss-404"); !reflect.DeepEqual(got, features.SessionState{}) {
		t.Errorf("unknown session = %+v, want the zero state", got)
	}

	// Only the newest SessionItems item events are kept.
	var many []aisle.Update
	for i := range features.SessionItems + 5 {
		many = append(many, sessionEvent("m"+string(rune('a'+i)), aisle.TypeSessionView, "ss-2", "u-1", "p", sec(i)))
	}
	applySessions(t, s, many...)
	if got := readSession(t, s, "ss-2").Session.Items; len(got) != features.SessionItems || got[0].AtMillis != ms(5) {
		t.Errorf("kept %d items from %v, want %d from the 6th", len(got), got[0], features.SessionItems)
	}
}

func TestNeighbourSessions(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	ctx := context.Background()
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	applySessions(t, s,
		sessionEvent("a1", aisle.TypeSessionAddToCart, "old", "u-1", "eggs", sec(1)),
		sessionEvent("a2", aisle.TypeSessionAddToCart, "old", "u-1", "bacon", sec(2)),
		sessionEvent("b1", aisle.TypeSessionView, "new", "u-2", "flour", sec(3)),
		sessionEvent("b2", aisle.TypeSessionAddToCart, "new", "u-2", "eggs", sec(4)),
		sessionEvent("b3", aisle.TypeSessionAddToCart, "new", "u-2", "flour", sec(5)),
		sessionEvent("c1", aisle.TypeSessionAddToCart, "me", "u-3", "eggs", sec(6)),
		sessionEvent("d1", aisle.TypeSessionView, "other", "u-4", "charcoal", sec(7)),
	)
	got, err := s.NeighbourSessions(ctx, "me", []string{"eggs", "milk"}, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []models.NeighbourSession{{ID: "new", Items: []string{"flour", "eggs"}}, {ID: "old", Items: []string{"eggs", "bacon"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("neighbours = %+v, want %+v", got, want)
	}
	if got, _ := s.NeighbourSessions(ctx, "me", []string{"eggs"}, 10, 1); len(got) != 1 || got[0].ID != "new" {
		t.Errorf("a sample of 1 = %+v, want the most recent session", got)
	}
}

func TestWatchSessions(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan string, 10)
	done := make(chan error, 1)
	go func() { done <- s.WatchSessions(ctx, func(id string) { changed <- id }) }()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		applySessions(t, s, sessionEvent("w"+string(rune('a'+i)), aisle.TypeSessionView, "ss-w", "u-1", "p", t0))
		select {
		case id := <-changed:
			if id != "ss-w" {
				t.Fatalf("changed %q, want ss-w", id)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("WatchSessions = %v", err)
			}
			return
		case <-time.After(50 * time.Millisecond): // not subscribed yet
		case <-deadline:
			t.Fatal("no change announced within 5s")
		}
	}
}

// While WatchSessions runs, neighbour sessions come from the cache, and a
// change of a neighbour session reaches the next read.
func TestNeighbourSessionsStayCoherentWhileWatched(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan string, 100)
	go func() { _ = s.WatchSessions(ctx, func(id string) { changed <- id }) }()
	waitFor := func(id string) {
		t.Helper()
		for {
			select {
			case got := <-changed:
				if got == id {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no change of %s announced", id)
			}
		}
	}
	// Events until one is announced: the subscription is confirmed.
	for i := 0; ; i++ {
		applySessions(t, s, sessionEvent("n"+string(rune('a'+i)), aisle.TypeSessionView, "nb", "u-1", "eggs", t0))
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	read := func() []string {
		t.Helper()
		got, err := s.NeighbourSessions(ctx, "me", []string{"eggs"}, 10, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("NeighbourSessions = %+v, %v; want the one session nb", got, err)
		}
		return got[0].Items
	}
	if got := read(); !reflect.DeepEqual(got, []string{"eggs"}) {
		t.Fatalf("items %v, want [eggs]", got)
	}
	applySessions(t, s, sessionEvent("n-bacon", aisle.TypeSessionAddToCart, "nb", "u-1", "bacon", t0.Add(time.Second)))
	waitFor("nb")
	if got := read(); !reflect.DeepEqual(got, []string{"eggs", "bacon"}) {
		t.Fatalf("after a change, items %v, want [eggs bacon]", got)
	}
}

// Cart adds are tallied live, once each however often they arrive: the
// store's popularity and the co-occurrence of products added together.
func TestLiveTallies(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	ctx := context.Background()
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	add := func(id, session, product string, at int) aisle.Update {
		u := sessionEvent(id, aisle.TypeSessionAddToCart, session, "u-"+session, product, sec(at))
		u.Origin = aisle.Origin{Topic: aisle.TopicSessions, Partition: 0, Offset: int64(at)}
		return u
	}
	first := []aisle.Update{
		add("a1", "a", "eggs", 1), add("a2", "a", "bacon", 2), add("a3", "a", "milk", 3),
		add("b1", "b", "eggs", 4), add("b2", "b", "bacon", 5),
		add("c1", "c", "eggs", 6), add("c2", "c", "charcoal", 7),
	}
	applySessions(t, s, first...)
	applySessions(t, s, first[3:]...) // a redelivery of the last records
	applySessions(t, s, add("b2-again", "b", "bacon", 8))

	popular, err := s.LivePopular(ctx, "s-1", 10)
	if err != nil {
		t.Fatal(err)
	}
	// eggs 3 adds, bacon 3 (b's second add is an add again), charcoal 1, milk 1.
	wantPopular := []models.ItemScore{
		{ProductID: "bacon", Score: 3}, {ProductID: "eggs", Score: 3}, {ProductID: "charcoal", Score: 1}, {ProductID: "milk", Score: 1},
	}
	if !reflect.DeepEqual(popular, wantPopular) {
		t.Errorf("popular = %v, want %v", popular, wantPopular)
	}
	co, err := s.LiveCoOccurrence(ctx, []string{"eggs", "unknown"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// eggs-bacon: a, b and b's second bacon (eggs added before it again):
	// 3 / √(3·3); eggs-milk 1 / √(3·1); eggs-charcoal the same.
	eggs := co["eggs"]
	if len(eggs) != 3 || eggs[0].ProductID != "bacon" || eggs[0].Score != 1 || eggs[1].Score >= eggs[0].Score {
		t.Errorf("eggs' co-occurrence = %v, want bacon first at 1, then charcoal and milk lower", eggs)
	}
	if len(co["unknown"]) != 0 {
		t.Errorf("an untallied product's co-occurrence = %v, want none", co["unknown"])
	}
}

// Finding: after a worker died between a batch's two round trips, the
// redelivered cart adds were counted into the live co-occurrence with the
// products their session's items showed then, not when they were first
// applied: a session's later events in the batch had pushed the earlier
// adds out of its items, and the counts fell below a clean replay's.
func TestARedeliveredAddCountsAsItsFirstDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var updates []aisle.Update
	event := func(eventType, product string) {
		n := len(updates)
		u := sessionEvent(fmt.Sprintf("e-%d", n), eventType, "sess-1", "u-1", product, t0.Add(time.Duration(n)*time.Second))
		u.Origin = aisle.Origin{Topic: aisle.TopicSessions, Partition: 0, Offset: int64(n)}
		updates = append(updates, u)
	}
	event(aisle.TypeSessionAddToCart, "eggs")
	event(aisle.TypeSessionAddToCart, "bacon")
	// More views than the session keeps items: the adds leave its items.
	for i := 0; i < features.SessionItems; i++ {
		event(aisle.TypeSessionView, fmt.Sprintf("p-%d", i))
	}
	event(aisle.TypeSessionAddToCart, "milk")

	clean, redelivered := featurestest.NewPrefix(), featurestest.NewPrefix()
	applySessions(t, featurestest.MustOpenAt(t, featurestest.URL(), clean), updates...)
	died := featurestest.MustOpenAt(t, featurestest.URL(), redelivered)
	if err := died.ApplyToSessionsOnly(ctx, updates); err != nil {
		t.Fatal(err)
	}
	applySessions(t, featurestest.MustOpenAt(t, featurestest.URL(), redelivered), updates...)

	want := featurestest.FeaturesOnly(featurestest.MustSnapshot(t, clean))
	got := featurestest.FeaturesOnly(featurestest.MustSnapshot(t, redelivered))
	if d := featurestest.Diff(got, want); d != "" {
		t.Errorf("after a redelivery the features differ from a clean application:%s", d)
	}
}
