package features

import (
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// version v of a hash, with evidence that tells versions apart.
func version(v int64) state {
	return state{ver: v, evidence: models.AvailabilityEvidence{Found: float64(v), At: t0}}
}

// testCache is a live near cache of 10 entries, 30s max age, on a clock
// that moves only when told to.
func testCache(t *testing.T) (*nearCache, *time.Time) {
	t.Helper()
	now := t0
	c := newNearCache(10, 30*time.Second)
	c.now = func() time.Time { return now }
	c.join()
	return c, &now
}

// get reads sp through the cache; when it is not served from memory, Redis
// answers inRedis. It reports the evidence and whether it was a hit.
func get(c *nearCache, sp aisle.StoreProduct, inRedis state) (models.AvailabilityEvidence, bool) {
	out := make([]models.AvailabilityEvidence, 1)
	r := c.lookup([]aisle.StoreProduct{sp}, out)
	if len(r.sps) == 0 {
		return out[0], true
	}
	c.settle(r, []state{inRedis}, out)
	return out[0], false
}

// mustHit checks that sp is served from memory with version v.
func mustHit(t *testing.T, c *nearCache, sp aisle.StoreProduct, v int64) {
	t.Helper()
	got, hit := get(c, sp, version(-1))
	if !hit || got != version(v).evidence {
		t.Fatalf("%v: hit=%v evidence %+v, want a hit on version %d", sp, hit, got, v)
	}
}

var key1 = aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}

// A read from Redis that started before a write must not overwrite the
// newer state announced while it was in flight, nor return the older one.
func TestNearCacheAnnouncementDuringAReadWins(t *testing.T) {
	c, _ := testCache(t)
	out := make([]models.AvailabilityEvidence, 1)
	r := c.lookup([]aisle.StoreProduct{key1}, out)
	if len(r.sps) != 1 {
		t.Fatalf("an empty cache served %v", out)
	}
	c.notify(key1, version(5)) // stored: a read of key1 is in flight
	c.settle(r, []state{version(4)}, out)
	if out[0] != version(5).evidence {
		t.Fatalf("the read returned %+v, want the announced version 5", out[0])
	}
	mustHit(t, c, key1, 5)
	if len(c.pending) != 0 {
		t.Fatalf("pending reads left: %v", c.pending)
	}
}

func TestNearCacheNewerReadReplacesAnnouncement(t *testing.T) {
	c, _ := testCache(t)
	out := make([]models.AvailabilityEvidence, 1)
	r := c.lookup([]aisle.StoreProduct{key1}, out)
	c.notify(key1, version(5))
	c.settle(r, []state{version(6)}, out) // the read saw a later write, whose announcement is on its way
	if out[0] != version(6).evidence {
		t.Fatalf("the read returned %+v, want version 6", out[0])
	}
	mustHit(t, c, key1, 6)
	c.notify(key1, version(6)) // that announcement
	c.notify(key1, version(3)) // and one older than the cached state, delivered late
	mustHit(t, c, key1, 6)
	c.notify(key1, version(7))
	mustHit(t, c, key1, 7)
}

func TestNearCacheIgnoresAnnouncementsOfUnreadKeys(t *testing.T) {
	c, _ := testCache(t)
	c.notify(key1, version(5))
	if got, hit := get(c, key1, version(2)); hit || got != version(2).evidence {
		t.Fatalf("hit=%v %+v: an announcement of a key nobody read was cached", hit, got)
	}
	mustHit(t, c, key1, 2) // the read cached it; now announcements apply
	c.notify(key1, version(5))
	mustHit(t, c, key1, 5)
}

// Past the max age a state is read again, and what Redis holds replaces it
// even with a lower version: the hash was deleted behind the cache's back.
func TestNearCacheMaxAge(t *testing.T) {
	c, now := testCache(t)
	get(c, key1, version(5))
	*now = now.Add(29 * time.Second)
	mustHit(t, c, key1, 5)
	*now = now.Add(time.Second)
	if got, hit := get(c, key1, state{}); hit || got != (models.AvailabilityEvidence{}) {
		t.Fatalf("past max age: hit=%v %+v, want Redis's answer (no data)", hit, got)
	}
	if got, hit := get(c, key1, version(1)); !hit || got != (models.AvailabilityEvidence{}) {
		t.Fatalf("hit=%v %+v, want the no-data state cached", hit, got)
	}
}

// A reset while a read is in flight keeps the read out of the cache: it may
// predate changes that were never announced.
func TestNearCacheResetDuringARead(t *testing.T) {
	c, _ := testCache(t)
	out := make([]models.AvailabilityEvidence, 1)
	r := c.lookup([]aisle.StoreProduct{key1}, out)
	c.reset(resetSubscribed)
	c.settle(r, []state{version(3)}, out)
	if out[0] != version(3).evidence {
		t.Fatalf("the read returned %+v, want what it read", out[0])
	}
	if got, hit := get(c, key1, version(4)); hit || got != version(4).evidence {
		t.Fatalf("hit=%v %+v: a read that spanned a reset was cached", hit, got)
	}
}

func TestNearCacheFailedReadReleasesItsKeys(t *testing.T) {
	c, _ := testCache(t)
	out := make([]models.AvailabilityEvidence, 2)
	r := c.lookup([]aisle.StoreProduct{key1, key1}, out)
	c.settle(r, nil, out)
	if len(c.pending) != 0 {
		t.Fatalf("pending reads left: %v", c.pending)
	}
	c.notify(key1, version(5))
	if _, hit := get(c, key1, version(1)); hit {
		t.Fatal("an announcement was cached for a read that had failed")
	}
}

// The cache is used only while a subscription is live, and never when off.
func TestNearCacheLiveness(t *testing.T) {
	c, _ := testCache(t)
	get(c, key1, version(5))
	c.join() // a second subscription: its confirmation may follow lost changes
	if _, hit := get(c, key1, version(6)); hit {
		t.Fatal("a state cached before a subscription was confirmed was served")
	}
	c.leave() // emptied, but one subscription is still live
	get(c, key1, version(7))
	mustHit(t, c, key1, 7)
	c.leave()
	if _, hit := get(c, key1, version(8)); hit {
		t.Fatal("served from memory without a live subscription")
	}
	if len(c.entries) != 0 || len(c.pending) != 0 {
		t.Fatalf("not live, yet %d entries and %d pending reads", len(c.entries), len(c.pending))
	}

	off := newNearCache(0, time.Minute)
	off.join()
	get(off, key1, version(1))
	if _, hit := get(off, key1, version(1)); hit || len(off.entries) != 0 {
		t.Fatal("a cache turned off was used")
	}
}

func TestNearCacheEvictsWhenFull(t *testing.T) {
	c, _ := testCache(t)
	keys := make([]aisle.StoreProduct, 25)
	for i := range keys {
		keys[i] = aisle.StoreProduct{StoreID: "s-1", ProductID: "p-" + string(rune('a'+i))}
		get(c, keys[i], version(int64(i)))
		if len(c.entries) > c.maxEntries {
			t.Fatalf("%d entries, max %d", len(c.entries), c.maxEntries)
		}
	}
	if len(c.entries) != c.maxEntries {
		t.Fatalf("%d entries, want a full cache of %d", len(c.entries), c.maxEntries)
	}
	mustHit(t, c, keys[24], 24) // the latest is always kept
}

func TestParseChange(t *testing.T) {
	sp, st, err := parseChange("1795000000000001|0.5|1.25|1795000000000|7|1795000000001|1|1795000000000|1794990000000|s-1:p|x")
	want := state{ver: 1795000000000001, evidence: models.AvailabilityEvidence{
		Found: 0.5, NotFound: 1.25, At: time.UnixMilli(1795000000000).UTC(), LastFound: true,
		FeedQuantity: 7, FeedAt: time.UnixMilli(1795000000001).UTC(), CountedAt: time.UnixMilli(1795000000000).UTC(),
		LevelSince: time.UnixMilli(1794990000000).UTC(),
	}}
	if err != nil || sp != (aisle.StoreProduct{StoreID: "s-1", ProductID: "p|x"}) || st != want {
		t.Fatalf("parseChange = %v, %+v, %v", sp, st, err)
	}
	if _, st, err := parseChange("3||||2|1795000000001||||s-1:p-1"); err != nil || st.evidence.FeedQuantity != 2 || !st.evidence.At.IsZero() {
		t.Fatalf("feed only: %+v, %v", st, err)
	}
	for _, bad := range []string{
		"s-1:p-1",                           // no state
		"|0.5|1|1795000000000||||||s-1:p-1", // no version
		"0|0.5|1|1795000000000||||||s-1:p-1",
		"x|0.5|1|1795000000000||||||s-1:p-1",
		"3|x|1|1795000000000||||||s-1:p-1",
		"3|0.5|1|1795000000000||x||||s-1:p-1",
		"3|0.5|1|1795000000000|2|1795000000001|||x|s-1:p-1", // a bad level_since_ms
		"3|0.5|1|1795000000000||||||s-1",
		"3|0.5|1|1795000000000||||||:p-1",
		"3|0.5|1|1795000000000|||||s-1:p-1",
	} {
		if _, _, err := parseChange(bad); err == nil || !strings.Contains(err.Error(), "change message") {
			t.Errorf("parseChange(%q) = %v, want an error", bad, err)
		}
	}
}
