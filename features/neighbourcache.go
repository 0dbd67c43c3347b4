package features

import (
	"sync"
	"time"

	"github.com/aisle/aisle/models"
)

// Bounds of the neighbour cache.
const (
	// neighbourCacheEntries bounds the cache: a few hundred bytes a session.
	neighbourCacheEntries = 200_000
	// neighbourCacheMaxAge bounds how long a cached session is served
	// without hearing from Redis: changes are announced, so this only
	// bounds what is not (an expired hash).
	neighbourCacheMaxAge = 30 * time.Second
)

// neighbourCache keeps the neighbour items of sessions that
// NeighbourSessions read, in each API process. A request compares the
// session with a few hundred recent sessions; most of them were read by
// the requests just before, and reading them all from Redis every time
// would dominate the request. It is used only while WatchSessions has a
// confirmed subscription: every announced change of a session drops its
// entry, and the whole cache is emptied whenever the subscription may have
// missed changes (when it starts, breaks or is confirmed again). A read
// that races with a change may cache the state before it; maxAge bounds
// that staleness, which only delays a neighbour's newest items. When full
// it is emptied, which costs one round of reads.
type neighbourCache struct {
	mu      sync.Mutex
	active  bool
	entries map[string]neighbourEntry
	now     func() time.Time
}

type neighbourEntry struct {
	items []string
	at    time.Time
}

func newNeighbourCache() *neighbourCache {
	return &neighbourCache{entries: make(map[string]neighbourEntry), now: time.Now}
}

// lookup fills out[i] for the cached ids[i] and returns the indexes of the
// others.
func (c *neighbourCache) lookup(ids []string, out []models.NeighbourSession) (missing []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		missing = make([]int, len(ids))
		for i := range ids {
			missing[i] = i
		}
		return missing
	}
	fresh := c.now().Add(-neighbourCacheMaxAge)
	for i, id := range ids {
		if e, ok := c.entries[id]; ok && e.at.After(fresh) {
			out[i] = models.NeighbourSession{ID: id, Items: e.items}
			continue
		}
		missing = append(missing, i)
	}
	return missing
}

// store caches a session read from Redis.
func (c *neighbourCache) store(ns models.NeighbourSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return
	}
	if len(c.entries) >= neighbourCacheEntries {
		clear(c.entries)
	}
	c.entries[ns.ID] = neighbourEntry{items: ns.Items, at: c.now()}
}

// forget drops a session that changed.
func (c *neighbourCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

// use starts (or restarts) caching on a confirmed subscription; what was
// cached before may have missed changes.
func (c *neighbourCache) use() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.active = true
}

// stop ends caching when the subscription ends.
func (c *neighbourCache) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.active = false
}
