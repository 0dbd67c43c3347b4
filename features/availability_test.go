package features_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/faulttest"
	"github.com/aisle/aisle/models"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func pick(id, eventType string, sp aisle.StoreProduct, at time.Time) *aisle.Decoded {
	return &aisle.Decoded{
		Event: aisle.Event{ID: id, Type: eventType, Time: at},
		Pick:  &aisle.Pick{StoreID: sp.StoreID, ProductID: sp.ProductID, ShopperID: "sh-1", OrderID: "o-" + id},
	}
}

func feed(id string, sp aisle.StoreProduct, qty int64, at time.Time) *aisle.Decoded {
	return &aisle.Decoded{
		Event:     aisle.Event{ID: id, Type: aisle.TypeInventoryLevel, Time: at},
		Inventory: &aisle.InventoryLevel{StoreID: sp.StoreID, ProductID: sp.ProductID, Quantity: &qty},
	}
}

func apply(t *testing.T, s *features.Store, updates ...aisle.Update) []bool {
	t.Helper()
	applied, err := s.ApplyAvailability(context.Background(), updates)
	if err != nil {
		t.Fatalf("ApplyAvailability: %v", err)
	}
	return applied
}

func read(t *testing.T, s *features.Store, sps ...aisle.StoreProduct) []models.AvailabilityEvidence {
	t.Helper()
	ev, err := s.Availability(context.Background(), sps)
	if err != nil {
		t.Fatalf("Availability: %v", err)
	}
	return ev
}

// The Lua script must give the same evidence as models.ObservePick, event by
// event, for picks arriving out of order, including ties and replacements.
func TestApplyAvailabilityMatchesModel(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	m := models.DefaultAvailabilityModel()
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}

	// Times in quarters of the half-life (whatever the model uses), plus
	// odd milliseconds: older, newer and simultaneous events.
	q := m.PickHalfLife / 4
	steps := []struct {
		typ string
		at  time.Duration
	}{
		{aisle.TypePickFound, 2 * q},
		{aisle.TypePickNotFound, q / 2}, // older than the reference time
		{aisle.TypePickFound, 5*q + 1234*time.Millisecond},
		{aisle.TypePickReplaced, 5*q + 1234*time.Millisecond}, // tie: the not-found is the latest outcome
		{aisle.TypePickFound, 5*q + 1234*time.Millisecond},    // and stays so
		{aisle.TypePickFound, 0},
		{aisle.TypePickNotFound, 7 * q},
		{aisle.TypePickFound, 3*q + 7*time.Millisecond},
		{aisle.TypePickNotFound, 8 * q},
	}
	var want models.AvailabilityEvidence
	for i, st := range steps {
		at := t0.Add(st.at).Truncate(time.Millisecond) // the store keeps milliseconds
		want = m.ObservePick(want, st.typ == aisle.TypePickFound, at)
		if got := apply(t, s, aisle.Update{Event: pick(fmt.Sprint("e-", i), st.typ, sp, at)}); !got[0] {
			t.Fatalf("step %d: not applied", i)
		}
		got := read(t, s, sp)[0]
		if math.Abs(got.Found-want.Found) > 1e-9 || math.Abs(got.NotFound-want.NotFound) > 1e-9 || !got.At.Equal(want.At) || got.LastFound != want.LastFound {
			t.Fatalf("step %d: redis found=%.12f not_found=%.12f at=%s last_found=%t, model found=%.12f not_found=%.12f at=%s last_found=%t",
				i, got.Found, got.NotFound, got.At, got.LastFound, want.Found, want.NotFound, want.At, want.LastFound)
		}
		if !got.FeedAt.IsZero() {
			t.Fatalf("step %d: feed time %s without a feed event", i, got.FeedAt)
		}
	}
	if want.Found < 0.1 || want.NotFound < 0.1 {
		t.Fatalf("sequence decayed to nothing, it tests too little: %+v", want)
	}
}

func TestApplyAvailabilityFeedLastWriterWins(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	m := models.DefaultAvailabilityModel()
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-2"}

	steps := []struct {
		qty int64
		at  time.Time
	}{
		{5, t0.Add(time.Hour)},
		{9, t0},                    // older: ignored
		{7, t0.Add(time.Hour)},     // tie: the existing level stays
		{0, t0.Add(2 * time.Hour)}, // newer: wins
	}
	var want models.AvailabilityEvidence
	for i, st := range steps {
		want = m.ObserveFeed(want, st.qty, st.at)
		apply(t, s, aisle.Update{Event: feed(fmt.Sprint("f-", i), sp, st.qty, st.at)})
		got := read(t, s, sp)[0]
		if got.FeedQuantity != want.FeedQuantity || !got.FeedAt.Equal(want.FeedAt) || !got.CountedAt.Equal(want.CountedAt) {
			t.Fatalf("step %d: redis qty=%d at=%s counted=%s, model qty=%d at=%s counted=%s", i, got.FeedQuantity, got.FeedAt, got.CountedAt, want.FeedQuantity, want.FeedAt, want.CountedAt)
		}
	}
	got := read(t, s, sp)[0]
	if got.FeedQuantity != 0 || !got.FeedAt.Equal(t0.Add(2*time.Hour)) || !got.At.IsZero() || got.Found != 0 {
		t.Fatalf("final evidence %+v", got)
	}
	if !got.UpdatedAt().Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("UpdatedAt = %s", got.UpdatedAt())
	}
}

// Finding (issue 18): a count sent hours after it was taken had only the
// sending time. The script keeps the latest count by counted_at, as
// models.ObserveCount does, and the evidence carries both times, and since
// when the level has not moved.
func TestApplyAvailabilityLatestCountWins(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	m := models.DefaultAvailabilityModel()
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-counted"}
	steps := []struct {
		qty             int64
		counted, sentAt time.Duration
	}{
		{5, 0, 3 * time.Hour},
		{9, -time.Hour, 4 * time.Hour},        // sent later, counted earlier: ignored
		{7, 0, 5 * time.Hour},                 // the same count sent again: the level stays
		{-3, time.Hour, 2 * time.Hour},        // counted later, though sent earlier: wins
		{-3, 2 * time.Hour, 6 * time.Hour},    // the same level counted again: it stands since 1 h
		{-3, 90 * time.Minute, 7 * time.Hour}, // an older count of it: ignored
		{4, 3 * time.Hour, 8 * time.Hour},     // moved: it stands since 3 h
		{4, 4 * time.Hour, 9 * time.Hour},
	}
	var want models.AvailabilityEvidence
	for i, st := range steps {
		counted, sent := t0.Add(st.counted), t0.Add(st.sentAt)
		want = m.ObserveCount(want, st.qty, counted, sent)
		ev := feed(fmt.Sprint("c-", i), sp, st.qty, sent)
		ev.Inventory.CountedAt = &counted
		apply(t, s, aisle.Update{Event: ev})
		got := read(t, s, sp)[0]
		if got.FeedQuantity != want.FeedQuantity || !got.FeedAt.Equal(want.FeedAt) || !got.CountedAt.Equal(want.CountedAt) || !got.LevelSince.Equal(want.LevelSince) {
			t.Fatalf("step %d: redis %+v, model %+v", i, got, want)
		}
		if i == 4 && !want.LevelSince.Equal(t0.Add(time.Hour)) {
			t.Fatalf("step %d: the level stands since %s, want since its first count", i, want.LevelSince)
		}
	}
	if want.FeedQuantity != 4 || !want.CountedAt.Equal(t0.Add(4*time.Hour)) || !want.LevelSince.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("the sequence ends at %+v, it tests too little", want)
	}
}

// One event applied from 20 goroutines at once counts once.
func TestApplyAvailabilityConcurrentDuplicatesCountOnce(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-3"}
	ev := pick("e-race", aisle.TypePickFound, sp, t0)

	start := make(chan struct{})
	results := make(chan bool, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied, err := s.ApplyAvailability(context.Background(), []aisle.Update{{Event: ev}})
			if err != nil {
				t.Errorf("ApplyAvailability: %v", err)
				return
			}
			results <- applied[0]
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	wins := 0
	for applied := range results {
		if applied {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d goroutines applied the event, want exactly 1", wins)
	}
	if got := read(t, s, sp)[0]; got.Found != 1 || got.NotFound != 0 {
		t.Fatalf("evidence %+v, want one found pick", got)
	}
}

func TestApplyAvailabilitySkipsOffsetsAtOrBelowWatermark(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-4"}
	at := func(offset int64) aisle.Origin {
		return aisle.Origin{Topic: aisle.TopicPicking, TopicID: "abc", Partition: 3, Offset: offset}
	}

	got := apply(t, s,
		aisle.Update{Event: pick("e-10", aisle.TypePickFound, sp, t0), Origin: at(10)},
		aisle.Update{Event: pick("e-5", aisle.TypePickFound, sp, t0), Origin: at(5)},    // stale offset, new id
		aisle.Update{Event: pick("e-10b", aisle.TypePickFound, sp, t0), Origin: at(10)}, // same offset
		aisle.Update{Event: pick("e-11", aisle.TypePickNotFound, sp, t0), Origin: at(11)},
	)
	if want := []bool{true, false, false, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied = %v, want %v", got, want)
	}

	// The same topic recreated (new id) starts a new watermark; another
	// partition has its own; events without an origin only dedup by id.
	recreated := at(0)
	recreated.TopicID = "def"
	other := at(2)
	other.Partition = 4
	got = apply(t, s,
		aisle.Update{Event: pick("e-r0", aisle.TypePickFound, sp, t0), Origin: recreated},
		aisle.Update{Event: pick("e-p4", aisle.TypePickFound, sp, t0), Origin: other},
		aisle.Update{Event: pick("e-api", aisle.TypePickFound, sp, t0)},
		aisle.Update{Event: pick("e-api", aisle.TypePickFound, sp, t0)},
	)
	if want := []bool{true, true, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied = %v, want %v", got, want)
	}
	if e := read(t, s, sp)[0]; e.Found != 4 || e.NotFound != 1 {
		t.Fatalf("evidence %+v, want found 4 not_found 1", e)
	}
}

func TestAvailabilityMissingKeyIsZero(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	got := read(t, s, aisle.StoreProduct{StoreID: "s-none", ProductID: "p-none"})
	if len(got) != 1 || got[0] != (models.AvailabilityEvidence{}) || !got[0].UpdatedAt().IsZero() {
		t.Fatalf("evidence of a missing key = %+v, want the zero value", got)
	}
	if got := read(t, s); len(got) != 0 {
		t.Fatalf("no keys: %v", got)
	}
}

func TestAvailabilityManyKeys(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	var sps []aisle.StoreProduct
	var updates []aisle.Update
	for i := range 100 {
		sp := aisle.StoreProduct{StoreID: fmt.Sprint("s-", i%7), ProductID: fmt.Sprint("p-", i)}
		sps = append(sps, sp)
		if i%2 == 0 { // every other key stays missing
			updates = append(updates, aisle.Update{Event: feed(fmt.Sprint("f-", i), sp, int64(i), t0.Add(time.Duration(i)*time.Second))})
		}
	}
	apply(t, s, updates...)
	got := read(t, s, sps...)
	for i, e := range got {
		if i%2 == 1 {
			if e != (models.AvailabilityEvidence{}) {
				t.Fatalf("key %d: %+v, want zero", i, e)
			}
			continue
		}
		if e.FeedQuantity != int64(i) || !e.FeedAt.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("key %d: %+v", i, e)
		}
	}
}

// storeOnOwnRedis opens a store on a redis-server of the test's own, and
// another client of that server, for tests that flush its scripts: on the
// shared one they flushed the scripts under every other package's tests.
func storeOnOwnRedis(t *testing.T) (*features.Store, *redis.Client) {
	t.Helper()
	srv := faulttest.StartRedis(t, "--appendonly", "no")
	s, err := features.Open(context.Background(), srv.URL(), "aisle-own:", models.DefaultAvailabilityModel())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	other := redis.NewClient(opts)
	t.Cleanup(func() { other.Close() })
	return s, other
}

func TestApplyAvailabilityReloadsScriptAfterRedisForgetsIt(t *testing.T) {
	t.Parallel()
	// SCRIPT FLUSH is what a Redis restart does to the script cache.
	s, rdb := storeOnOwnRedis(t)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-5"}
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	got := apply(t, s,
		aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)},
		aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)},
	)
	if !got[0] || got[1] {
		t.Fatalf("applied = %v, want [true false]", got)
	}
	if e := read(t, s, sp)[0]; e.Found != 1 {
		t.Fatalf("evidence %+v", e)
	}
}

// reloadBetweenCommands is a go-redis hook that, once armed, sends the next
// pipeline of two or more commands in two parts and has another client load
// the availability script between them: what happens when, after Redis lost
// its scripts, another worker met NOSCRIPT first and reloaded them while
// this pipeline was being executed.
type reloadBetweenCommands struct {
	other *redis.Client
	armed atomic.Bool
}

func (h *reloadBetweenCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *reloadBetweenCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *reloadBetweenCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) < 2 || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		first := next(ctx, cmds[:1])
		if err := features.LoadAvailabilityScript(ctx, h.other); err != nil {
			return err
		}
		return errors.Join(first, next(ctx, cmds[1:]))
	}
}

// Two records of one partition for one entity, in one pipeline, after Redis
// lost its scripts: the first meets NOSCRIPT, another client reloads the
// script, the second is applied and moves the entity's mark past the first.
// The first, retried, must still be applied, not taken for a replay.
func TestRecordRetriedAfterNoScriptIsNotTakenForAReplay(t *testing.T) {
	t.Parallel()
	s, other := storeOnOwnRedis(t)
	hook := &reloadBetweenCommands{other: other}
	s.AddHook(hook)

	if err := other.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	hook.armed.Store(true)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-5"}
	got := apply(t, s,
		aisle.Update{Event: pick("e-10", aisle.TypePickFound, sp, t0), Origin: aisle.Origin{Topic: "picks", Offset: 10}},
		aisle.Update{Event: pick("e-11", aisle.TypePickFound, sp, t0.Add(time.Minute)), Origin: aisle.Origin{Topic: "picks", Offset: 11}},
	)
	if hook.armed.Load() {
		t.Fatal("the pipeline was not split: the test did not happen")
	}
	if !got[0] || !got[1] {
		t.Fatalf("applied = %v, want both", got)
	}
	if e := read(t, s, sp)[0]; e.Found <= 1 { // one pick alone counts at most 1, decayed
		t.Fatalf("evidence %+v, want both picks counted", e)
	}

	// Both are replays from now on, by their offsets.
	got = apply(t, s,
		aisle.Update{Event: pick("e-10", aisle.TypePickFound, sp, t0), Origin: aisle.Origin{Topic: "picks", Offset: 10}},
		aisle.Update{Event: pick("e-11", aisle.TypePickFound, sp, t0.Add(time.Minute)), Origin: aisle.Origin{Topic: "picks", Offset: 11}},
	)
	if got[0] || got[1] {
		t.Fatalf("replayed: applied = %v, want neither", got)
	}
}

func TestApplyAvailabilityRejectsOtherEvents(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	_, err := s.ApplyAvailability(context.Background(), []aisle.Update{{Event: &aisle.Decoded{Event: aisle.Event{ID: "x"}}}})
	if err == nil {
		t.Fatal("an event without inventory or pick data was accepted")
	}
}

func TestWatchAvailability(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	changes := watch(t, s)

	// A feed level older than the recorded one changes nothing, so it is not
	// announced: after sp2's first level the next change is sp3's pick.
	sp2 := aisle.StoreProduct{StoreID: "s-2", ProductID: "p-6"}
	sp3 := aisle.StoreProduct{StoreID: "s-3", ProductID: "p-6"}
	apply(t, s, aisle.Update{Event: feed("f-new", sp2, 3, t0.Add(time.Hour))})
	apply(t, s, aisle.Update{Event: feed("f-old", sp2, 8, t0)})
	apply(t, s, aisle.Update{Event: pick("e-last", aisle.TypePickNotFound, sp3, t0)})
	var got []aisle.StoreProduct
	for len(got) < 2 {
		select {
		case c := <-changes:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("changes so far %v, want [%v %v]", got, sp2, sp3)
		}
	}
	if got[0] != sp2 || got[1] != sp3 {
		t.Fatalf("changes %v, want [%v %v]", got, sp2, sp3)
	}
}

// watch runs s.WatchAvailability until the test ends and returns the changes
// it announces once its subscription is live, except those of a warm-up key
// used to find out when that is. At the end WatchAvailability must return nil.
func watch(t *testing.T, s *features.Store) <-chan aisle.StoreProduct {
	t.Helper()
	warm := aisle.StoreProduct{StoreID: "s-warm", ProductID: "p-warm"}
	warmed := make(chan aisle.StoreProduct, 1)
	changes := make(chan aisle.StoreProduct, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- s.WatchAvailability(ctx, func(sp aisle.StoreProduct) {
			if sp != warm {
				changes <- sp
				return
			}
			select {
			case warmed <- sp:
			default:
			}
		}, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-watchErr; err != nil {
			t.Errorf("WatchAvailability returned %v after cancel, want nil", err)
		}
	})
	announce(t, s, warmed, warm, "e-warm-")
	return changes
}

// announce applies fresh picks to sp until changes yields sp: subscriptions
// start asynchronously, and changes made before are not announced.
func announce(t *testing.T, s *features.Store, changes <-chan aisle.StoreProduct, sp aisle.StoreProduct, idPrefix string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		apply(t, s, aisle.Update{Event: pick(fmt.Sprint(idPrefix, i), aisle.TypePickFound, sp, t0)})
		if announced(changes, sp, 50*time.Millisecond) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no change of %v announced within 5s", sp)
		}
	}
}

// announced reads changes until sp comes (true) or d has passed (false).
func announced(changes <-chan aisle.StoreProduct, sp aisle.StoreProduct, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case got := <-changes:
			if got == sp {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func TestOpenFailsClearlyWithoutRedis(t *testing.T) {
	t.Parallel()
	_, err := features.Open(context.Background(), "redis://127.0.0.1:1/0", "x:", models.DefaultAvailabilityModel())
	if err == nil || !strings.Contains(err.Error(), "redis-server --daemonize yes") {
		t.Fatalf("Open on a closed port: %v, want an error naming the start command", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open timed out instead of failing fast: %v", err)
	}
}

// Finding: every event left a dedup key for a week and moved one global
// offsets hash, so Redis grew with events. Now 200 events on two
// store-products of one store leave two keys, their bookkeeping inside,
// and the store's at-risk index (two keys).
func TestKeysGrowWithEntitiesNotEvents(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	sps := []aisle.StoreProduct{{StoreID: "s-1", ProductID: "p-1"}, {StoreID: "s-1", ProductID: "p-2"}}
	var updates []aisle.Update
	for i := range 200 {
		sp := sps[i%2]
		updates = append(updates, aisle.Update{
			Event:  pick(fmt.Sprint("e-", i), aisle.TypePickFound, sp, t0.Add(time.Duration(i)*time.Second)),
			Origin: aisle.Origin{Topic: aisle.TopicPicking, Partition: int32(i % 2), Offset: int64(i)},
		})
	}
	apply(t, s, updates...)
	snap := featurestest.MustSnapshot(t, prefix)
	if want := len(sps) + 2; len(snap) != want { // + the store's index and its versions
		t.Errorf("%d keys after 200 events on %d store-products, want %d: %v", len(snap), len(sps), want, slices.Sorted(maps.Keys(snap)))
	}
}
