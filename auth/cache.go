package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/aisle/aisle/aisle"
)

// Defaults of a Cache.
const (
	DefaultTTL        = 30 * time.Second
	DefaultMaxStale   = 10 * time.Minute
	DefaultMaxEntries = 10_000
)

// Cache is a KeyLookup that remembers the principal of each valid key for
// TTL, keeping the database off the request path. The price: a revoked key
// keeps working for up to TTL in each process that cached it. Refusals
// (unknown or revoked keys) are remembered for TTL too, apart from the
// valid keys, so that a client retrying a revoked key in a loop costs no
// database lookups and a flood of made-up keys cannot evict the valid ones.
// (A key is created with fresh random bits, so it was never refused
// before.) Lookup errors other than "invalid key" are logged here, since
// callers only see EUNAVAILABLE; while lookups fail that way (the database
// is down), a key that was valid when last checked keeps working for up to
// MaxStale past its TTL.
type Cache struct {
	keys KeyLookup
	log  *slog.Logger

	// Settings; change them before first use only.
	TTL time.Duration // how long a valid key is trusted without a lookup
	// MaxStale is how much longer a valid key is trusted while keys cannot
	// be checked, so that an outage of the database does not lock out every
	// client; the price is that a key revoked just before the outage keeps
	// working during it.
	MaxStale   time.Duration
	MaxEntries int              // bound on cached valid keys, and apart on refusals: the least recently used go first
	Now        func() time.Time // clock for expiry

	init     sync.Once
	entries  *lru.Cache[string, cacheEntry] // valid keys, by string(hash)
	refusals *lru.Cache[string, cacheEntry] // unknown or revoked keys, by string(hash)
	inflight singleflight.Group             // lookups under way, by string(hash)
}

// cacheEntry is a valid key's principal, or a refused key's error.
type cacheEntry struct {
	principal *aisle.Principal // shared between requests: never modified
	refusal   error
	checked   time.Time // when the key was last found valid
	expires   time.Time // when to look it up again
}

// staleRetry is how long a key served stale (lookups failing) is trusted
// before the next lookup.
const staleRetry = 5 * time.Second

// NewCache wraps keys with DefaultTTL and DefaultMaxEntries.
func NewCache(keys KeyLookup, log *slog.Logger) (*Cache, error) {
	if keys == nil || log == nil {
		return nil, errors.New("auth: nil key lookup or logger")
	}
	return &Cache{
		keys:       keys,
		log:        log,
		TTL:        DefaultTTL,
		MaxStale:   DefaultMaxStale,
		MaxEntries: DefaultMaxEntries,
		Now:        time.Now,
	}, nil
}

// lists makes the LRU lists on first use, once the settings are final.
func (c *Cache) lists() {
	c.init.Do(func() {
		size := max(1, c.MaxEntries)
		c.entries, _ = lru.New[string, cacheEntry](size) // errs only on a size below 1
		c.refusals, _ = lru.New[string, cacheEntry](size)
	})
}

// PrincipalByKeyHash returns a cached principal or asks the wrapped lookup,
// caching valid answers.
func (c *Cache) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	c.lists()
	now := c.Now()
	e, ok := c.entries.Get(string(hash))
	if ok && now.Before(e.expires) {
		return e.principal, nil
	}
	if refused, ok := c.refusals.Get(string(hash)); ok && now.Before(refused.expires) {
		return nil, refused.refusal
	}

	p, err := c.lookupOnce(ctx, hash)
	if code := aisle.ErrorCode(err); err != nil && code != aisle.EUNAUTHENTICATED && code != aisle.ERATELIMITED {
		c.log.ErrorContext(ctx, "API key lookup failed", "error", err)
		if staleUntil := e.checked.Add(c.TTL + c.MaxStale); ok && now.Before(staleUntil) {
			// Valid when last checked; cannot check now. Ask again only
			// after staleRetry, so that an outage costs one failing lookup
			// (which may wait for a connect timeout) per key per
			// staleRetry, not one per request.
			e.expires = now.Add(min(c.TTL, staleRetry, staleUntil.Sub(now)))
			c.entries.Add(string(hash), e)
			return e.principal, nil
		}
	}
	if err != nil {
		c.entries.Remove(string(hash)) // expired, and possibly revoked since
		if aisle.ErrorCode(err) == aisle.EUNAUTHENTICATED {
			c.refusals.Add(string(hash), cacheEntry{refusal: err, expires: now.Add(c.TTL)})
		}
		return nil, err
	}
	c.refusals.Remove(string(hash))
	c.entries.Add(string(hash), cacheEntry{principal: p, checked: now, expires: now.Add(c.TTL)})
	return p, nil
}

// lookupTimeout bounds a lookup shared by concurrent callers: it does not
// end when the caller that started it goes away.
const lookupTimeout = 5 * time.Second

// lookupOnce asks the wrapped lookup for hash, once for all callers asking
// at the same time: a burst of requests with one uncached key costs one
// lookup.
func (c *Cache) lookupOnce(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	v, err, _ := c.inflight.Do(string(hash), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return c.keys.PrincipalByKeyHash(ctx, hash)
	})
	p, _ := v.(*aisle.Principal)
	return p, err
}
