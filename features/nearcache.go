package features

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// Reasons the near cache is emptied, the values of the reason label of
// nearCacheResets.
const (
	resetSubscribed   = "subscribed"   // a change subscription was (re)confirmed: earlier changes may be unannounced
	resetUnsubscribed = "unsubscribed" // a change subscription ended or broke
	resetBadMessage   = "bad_message"  // a change message that cannot be read: some state is unknown
)

var (
	nearCacheHits = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_features_near_cache_hits_total",
		Help: "Availability states served from the API process's near cache.",
	})
	nearCacheMisses = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_features_near_cache_misses_total",
		Help: "Availability states read from Redis while the near cache was in use (absent or older than its max age).",
	})
	nearCacheEvictions = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_features_near_cache_evictions_total",
		Help: "Availability states dropped from the full near cache to make room.",
	})
	nearCacheResets = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_features_near_cache_resets_total",
		Help: "Times the near cache was emptied, by reason (subscribed, unsubscribed, bad_message).",
	}, []string{"reason"})
)

// state is an availability hash as read or announced: its evidence and its
// version, which grows with every change of the hash (0: no hash).
type state struct {
	ver      int64
	evidence models.AvailabilityEvidence
}

// nearCache holds availability states in the API process so that hot reads
// need no Redis round trip. It is coherent only while a change subscription
// feeds it every change, so it is used only while one is confirmed (live > 0)
// and emptied whenever one starts or stops: changes in between may never be
// announced. Versions keep it from going back in time: a read from Redis that
// raced with a change announcement never replaces the newer state.
type nearCache struct {
	maxEntries int // 0: never used
	maxAge     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	live    int    // confirmed change subscriptions feeding the cache
	epoch   uint64 // counts resets: a read from Redis that spans one must not fill the cache
	seq     uint64 // counts stores, to tell which entries changed while a read was in flight
	entries map[aisle.StoreProduct]cachedState
	pending map[aisle.StoreProduct]int // reads from Redis in flight, by key
}

type cachedState struct {
	state
	storedAt time.Time // when Redis last told us this state, for maxAge
	seq      uint64
}

func newNearCache(maxEntries int, maxAge time.Duration) *nearCache {
	return &nearCache{
		maxEntries: maxEntries,
		maxAge:     maxAge,
		now:        time.Now,
		entries:    make(map[aisle.StoreProduct]cachedState),
		pending:    make(map[aisle.StoreProduct]int),
	}
}

// redisRead names the keys a lookup could not serve, to be read from Redis
// and handed back to settle.
type redisRead struct {
	sps     []aisle.StoreProduct
	at      []int  // index of each in the caller's result
	tracked bool   // registered in pending: the cache was live at lookup
	epoch   uint64 // the cache's epoch and seq at lookup
	seq     uint64
}

// lookup fills out[i] with the cached evidence of sps[i] where it has a
// state younger than maxAge, and returns the keys left to read. Unless the
// cache is off or not live, those keys are registered as pending until
// settle, so that changes announced meanwhile are kept.
func (c *nearCache) lookup(sps []aisle.StoreProduct, out []models.AvailabilityEvidence) redisRead {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == 0 {
		r := redisRead{sps: sps, at: make([]int, len(sps))}
		for i := range r.at {
			r.at[i] = i
		}
		return r
	}
	r := redisRead{tracked: true, epoch: c.epoch, seq: c.seq}
	now := c.now()
	for i, sp := range sps {
		if e, ok := c.entries[sp]; ok && now.Sub(e.storedAt) < c.maxAge {
			out[i] = e.evidence
			continue
		}
		r.sps = append(r.sps, sp)
		r.at = append(r.at, i)
		c.pending[sp]++
	}
	nearCacheHits.Add(float64(len(sps) - len(r.sps)))
	nearCacheMisses.Add(float64(len(r.sps)))
	return r
}

// settle ends the read r: read[j] is the state of r.sps[j] in Redis, or read
// is nil when the read failed. It stores what was read unless a reset
// happened meanwhile, and fills the caller's result with the newest state
// known, which is the cached one when a change announced during the read
// is newer than what the read saw.
func (c *nearCache) settle(r redisRead, read []state, out []models.AvailabilityEvidence) {
	if !r.tracked {
		for j, st := range read {
			out[r.at[j]] = st.evidence
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for j, sp := range r.sps {
		if c.pending[sp]--; c.pending[sp] == 0 {
			delete(c.pending, sp)
		}
		if read == nil {
			continue
		}
		st := read[j]
		if r.epoch == c.epoch {
			st = c.fill(sp, st, r.seq, now)
		}
		out[r.at[j]] = st.evidence
	}
}

// fill stores st, read from Redis by a read that started at seq, and
// returns the state to serve. An entry stored after the read started
// (announced, or read by a concurrent reader) with a higher version is
// newer and stays. An entry from before the read started is older than
// what was read, whatever its version says: that is how a hash deleted in
// Redis, whose version starts again from 0, leaves the cache.
func (c *nearCache) fill(sp aisle.StoreProduct, st state, seq uint64, now time.Time) state {
	if e, ok := c.entries[sp]; ok && e.seq >= seq && e.ver > st.ver {
		return e.state
	}
	c.store(sp, st, now)
	return st
}

// notify applies an announced change: it is newer than what is cached
// unless its version says otherwise. Keys neither cached nor being read are
// not stored: nobody asked for them.
func (c *nearCache) notify(sp aisle.StoreProduct, st state) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, cached := c.entries[sp]
	if (cached && st.ver > e.ver) || (!cached && c.pending[sp] > 0) {
		c.store(sp, st, c.now())
	}
}

// store puts st in the cache, first evicting an arbitrary entry (Go
// randomises map iteration) when the cache is full. Random eviction keeps
// hits lock-cheap: a hit records nothing.
func (c *nearCache) store(sp aisle.StoreProduct, st state, now time.Time) {
	if _, ok := c.entries[sp]; !ok && len(c.entries) >= c.maxEntries {
		for victim := range c.entries {
			delete(c.entries, victim)
			nearCacheEvictions.Inc()
			break
		}
	}
	c.entries[sp] = cachedState{state: st, storedAt: now, seq: c.seq}
	c.seq++
}

// join starts using the cache for a newly confirmed change subscription.
// A cache that is off is never used.
func (c *nearCache) join() {
	if c.maxEntries == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live++
	c.resetLocked(resetSubscribed)
}

// leave stops using the cache for a subscription that joined and has ended.
func (c *nearCache) leave() {
	if c.maxEntries == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live--
	c.resetLocked(resetUnsubscribed)
}

// reset empties the cache because changes may have gone unseen.
func (c *nearCache) reset(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked(reason)
}

func (c *nearCache) resetLocked(reason string) {
	clear(c.entries)
	c.epoch++
	nearCacheResets.WithLabelValues(reason).Inc()
}
