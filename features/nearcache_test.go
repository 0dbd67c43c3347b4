package features_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
)

// While WatchAvailability runs, a state once read is served from memory:
// deleting the hash behind the cache's back (no announcement) does not
// change the answer. A key announced but never read is not cached.
func TestNearCacheServesRepeatReadsFromMemory(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	changes := watch(t, s)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
	unread := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-2"}

	apply(t, s, aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)})
	want := read(t, s, sp)[0]
	if want.Found != 1 || !want.At.Equal(t0) {
		t.Fatalf("first read %+v, want one found pick at %s", want, t0)
	}
	apply(t, s, aisle.Update{Event: pick("e-2", aisle.TypePickFound, unread, t0)})
	if !announced(changes, unread, 5*time.Second) {
		t.Fatalf("change of %v not announced", unread)
	}
	deleteBehindTheCache(t, s)

	if got := read(t, s, sp, sp)[0]; got != want {
		t.Fatalf("after deleting the hash: %+v, want the cached %+v", got, want)
	}
	if got := read(t, s, unread)[0]; got != (models.AvailabilityEvidence{}) {
		t.Fatalf("a key never read: %+v, want Redis's answer (no data)", got)
	}
}

// An announced change is in the cache before WatchAvailability hands it to
// fn: a read right then returns exactly what Redis holds, never the state
// cached before.
func TestNearCacheFollowsAnnouncedChanges(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	direct := featurestest.MustOpenAt(t, featurestest.URL(), prefix, features.WithNearCache(0, time.Minute))
	changes := watch(t, s)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}

	if got := read(t, s, sp)[0]; got != (models.AvailabilityEvidence{}) {
		t.Fatalf("before any event: %+v", got) // now cached as "no data"
	}
	steps := []*aisle.Decoded{
		pick("e-1", aisle.TypePickFound, sp, t0),
		pick("e-2", aisle.TypePickNotFound, sp, t0.Add(time.Hour)),
		feed("f-1", sp, 4, t0.Add(time.Hour)),
		pick("e-3", aisle.TypePickFound, sp, t0.Add(time.Minute)), // older than the reference time
		feed("f-2", sp, 0, t0.Add(2*time.Hour)),
	}
	var previous models.AvailabilityEvidence
	for i, ev := range steps {
		apply(t, s, aisle.Update{Event: ev})
		if !announced(changes, sp, 5*time.Second) {
			t.Fatalf("step %d: change not announced", i)
		}
		got := read(t, s, sp)[0]
		if want := read(t, direct, sp)[0]; got != want {
			t.Fatalf("step %d: cached %+v, Redis holds %+v", i, got, want)
		}
		if got == previous {
			t.Fatalf("step %d: the evidence did not change: %+v", i, got)
		}
		previous = got
	}
	deleteBehindTheCache(t, s)
	if got := read(t, s, sp)[0]; got != previous {
		t.Fatalf("after deleting the hash: %+v, want the cached %+v", got, previous)
	}
}

// When the pub/sub connection breaks, changes may go unannounced: the cache
// is emptied and bypassed at once, and after WatchAvailability has
// subscribed again, new changes are announced and cached again.
func TestNearCacheResetsWhenTheSubscriptionBreaks(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	clientName := strings.TrimSuffix(prefix, ":")
	u, err := url.Parse(featurestest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("client_name", clientName)
	u.RawQuery = q.Encode()
	s := featurestest.MustOpenAt(t, u.String(), prefix)
	changes := watch(t, s)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}

	apply(t, s, aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)})
	cached := read(t, s, sp)[0]
	deleteBehindTheCache(t, s)
	if got := read(t, s, sp)[0]; got != cached {
		t.Fatalf("before the kill: %+v, want the cached %+v", got, cached)
	}

	killPubSub(t, clientName)
	waitFor(t, "the cache to be reset", func() bool { return read(t, s, sp)[0] == (models.AvailabilityEvidence{}) })
	// Until it has subscribed again (100ms), a change is not announced, and
	// reads go to Redis rather than to a cache that would miss it.
	apply(t, s, aisle.Update{Event: pick("e-2", aisle.TypePickNotFound, sp, t0)})
	changed := models.AvailabilityEvidence{NotFound: 1, At: t0}
	if got := read(t, s, sp)[0]; got != changed {
		t.Fatalf("a change while unsubscribed: %+v, want %+v", got, changed)
	}

	sp2 := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-2"}
	announce(t, s, changes, sp2, "e-after-")
	want := read(t, s, sp2)[0]
	if got := read(t, s, sp)[0]; got != changed {
		t.Fatalf("after resubscribing: %+v, want %+v", got, changed)
	}
	deleteBehindTheCache(t, s)
	if got := read(t, s, sp2)[0]; got != want || got.Found == 0 {
		t.Fatalf("after resubscribing: %+v, want the cached %+v", got, want)
	}
}

// A message on the change channel that availability.lua did not write
// hides a change of unknown state: the cache is emptied, and later changes
// are still announced.
func TestNearCacheResetsOnAnUnreadableMessage(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	changes := watch(t, s)
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}

	apply(t, s, aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)})
	read(t, s, sp)
	deleteBehindTheCache(t, s)

	rdb := featurestest.Client(t)
	for b := range features.Buckets { // the channel of sp's bucket among them
		channel := fmt.Sprintf("%s0:changes:availability:{%d}", prefix, b)
		if err := rdb.SPublish(context.Background(), channel, "s-1:p-1").Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the cache to be reset", func() bool { return read(t, s, sp)[0] == (models.AvailabilityEvidence{}) })
	announce(t, s, changes, sp, "e-after-")
}

// Without a running WatchAvailability, with the cache turned off, or once a
// cached state is older than the max age, reads go to Redis.
func TestNearCacheUnusedReadsRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  []features.Option
		watch bool
	}{
		{"not watching", nil, false},
		{"turned off", []features.Option{features.WithNearCache(0, time.Minute)}, true},
		{"past max age", []features.Option{features.WithNearCache(100, time.Millisecond)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := featurestest.MustOpen(t, tc.opts...)
			if tc.watch {
				watch(t, s)
			}
			sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
			apply(t, s, aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp, t0)})
			if got := read(t, s, sp)[0]; got.Found != 1 {
				t.Fatalf("first read %+v", got)
			}
			deleteBehindTheCache(t, s)
			time.Sleep(5 * time.Millisecond) // past the 1ms max age
			if got := read(t, s, sp)[0]; got != (models.AvailabilityEvidence{}) {
				t.Fatalf("after deleting the hash: %+v, want Redis's answer (no data)", got)
			}
		})
	}
}

func TestOpenRejectsABadNearCache(t *testing.T) {
	t.Parallel()
	for _, opt := range []features.Option{features.WithNearCache(-1, time.Minute), features.WithNearCache(10, 0)} {
		s, err := features.Open(context.Background(), featurestest.URL(), featurestest.NewPrefix(), models.DefaultAvailabilityModel(), opt)
		if err == nil {
			s.Close()
			t.Fatal("Open accepted a near cache of negative size or no max age")
		}
	}
}

// Every change of a hash raises its version; a no-op does not; a hash
// deleted and written again continues above its old versions.
func TestApplyAvailabilityVersions(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	rdb := featurestest.Client(t)
	ctx := context.Background()
	sp := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
	key := prefix + features.KeyName("avail", "s-1:p-1")
	version := func() int64 {
		t.Helper()
		v, err := rdb.HGet(ctx, key, "ver").Int64()
		if err != nil {
			t.Fatalf("HGET ver: %v", err)
		}
		return v
	}

	apply(t, s, aisle.Update{Event: feed("f-1", sp, 3, t0.Add(time.Hour))})
	v1 := version()
	apply(t, s, aisle.Update{Event: feed("f-2", sp, 5, t0)}) // older: no change
	if v := version(); v != v1 {
		t.Fatalf("a no-op feed changed the version %d to %d", v1, v)
	}
	var last int64 = v1
	for i := range 3 {
		apply(t, s, aisle.Update{Event: pick(fmt.Sprint("e-", i), aisle.TypePickFound, sp, t0)})
		v := version()
		if v <= last {
			t.Fatalf("pick %d: version %d after %d", i, v, last)
		}
		last = v
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	apply(t, s, aisle.Update{Event: pick("e-new", aisle.TypePickFound, sp, t0)})
	if v := version(); v <= last {
		t.Fatalf("re-created hash: version %d, not above the deleted one's %d", v, last)
	}
}

// deleteBehindTheCache deletes s's keys without announcing it, so that
// only a cached state can still be served.
func deleteBehindTheCache(t *testing.T, s *features.Store) {
	t.Helper()
	if err := s.DeleteAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// killPubSub closes the pub/sub connections of the client named clientName
// from the Redis side, as an outage or CLIENT KILL would: on every master of
// a cluster, where each holds some of the subscriptions.
func killPubSub(t *testing.T, clientName string) {
	t.Helper()
	ctx := context.Background()
	killed := 0
	kill := func(ctx context.Context, node *redis.Client) error {
		list, err := node.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			return fmt.Errorf("CLIENT LIST: %w", err)
		}
		for line := range strings.Lines(list) {
			fields := strings.Fields(line)
			if slices.Contains(fields, "name="+clientName) {
				if err := node.Do(ctx, "CLIENT", "KILL", "ID", strings.TrimPrefix(fields[0], "id=")).Err(); err != nil {
					return fmt.Errorf("CLIENT KILL: %w", err)
				}
				killed++
			}
		}
		return nil
	}
	var err error
	switch rdb := featurestest.Client(t).(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		err = rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return kill(ctx, node)
		})
	case *redis.Client:
		err = kill(ctx, rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatalf("no pub/sub connection named %s", clientName)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
