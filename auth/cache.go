package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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
// keeps working for up to TTL in each process that cached it. Failed
// lookups are never cached, so a new key works at once and a revoked one is
// refused as soon as its entry expires. Lookup errors other than "invalid
// key" are logged here, since callers only see EUNAVAILABLE; while lookups
// fail that way (the database is down), a key that was valid when last
// checked keeps working for up to MaxStale past its TTL.
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
	MaxEntries int              // bound on cached keys
	Now        func() time.Time // clock for expiry

	mu      sync.Mutex
	entries map[string]cacheEntry // by string(hash)
}

type cacheEntry struct {
	principal *aisle.Principal // shared between requests: never modified
	expires   time.Time
}

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
		entries:    map[string]cacheEntry{},
	}, nil
}

// PrincipalByKeyHash returns a cached principal or asks the wrapped lookup,
// caching valid answers.
func (c *Cache) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	now := c.Now()
	c.mu.Lock()
	e, ok := c.entries[string(hash)]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.principal, nil
	}

	p, err := c.keys.PrincipalByKeyHash(ctx, hash)
	if err != nil && aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
		c.log.ErrorContext(ctx, "API key lookup failed", "error", err)
		if ok && now.Before(e.expires.Add(c.MaxStale)) {
			return e.principal, nil // valid when last checked; cannot check now
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.entries, string(hash)) // expired, and possibly revoked since
		return nil, err
	}
	if len(c.entries) >= c.MaxEntries {
		c.evict(now)
	}
	c.entries[string(hash)] = cacheEntry{principal: p, expires: now.Add(c.TTL)}
	return p, nil
}

// evict makes room in a full cache: it drops expired entries, and if none
// had expired, arbitrary ones (Go randomizes map iteration). Holds mu.
func (c *Cache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.MaxEntries {
			return
		}
		delete(c.entries, k)
	}
}
