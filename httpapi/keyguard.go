package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/ratelimit"
)

// maxBlockedAddresses bounds the addresses a keyGuard remembers.
const maxBlockedAddresses = 10_000

// Key lookups one client address may make, by default and whatever the
// rate limit: a client sends one key, looked up once per auth.Cache TTL,
// so these admit a backend relaying 50 keys at once and 10 more a second.
const (
	keyLookupsPerSecond = 10
	keyLookupBurst      = 50
)

// keyGuard keeps a client from making PostgreSQL look up made-up API keys
// at will. Authentication comes before the rate limit (the limit counts per
// key, so it needs the key), and every unknown key costs a lookup. It sits
// under the auth.Cache (GuardKeyLookups), so keys already cached, valid or
// refused, cost nothing and are unaffected. Each address may make
// keyLookupsPerSecond lookups in this process (keyLookupBurst at once),
// counted before the lookup, so a flood of concurrent made-up keys costs
// at most a burst of queries. With a shared limiter, each refused key also
// counts against its client address across replicas, and an address over
// that allowance has its key lookups refused, in process and without a
// lookup, until the limiter says it may retry. Both refusals are
// RATE_LIMITED with when to retry (auth.RateLimitedError).
type keyGuard struct {
	keys    auth.KeyLookup
	limiter RateLimiter // nil: no shared count of refused keys
	lookups *ratelimit.Local

	mu      sync.Mutex
	blocked map[string]time.Time // client address → refused until
}

// GuardKeyLookups wraps keys so that each client address has a bounded
// rate of key lookups, and, when limiter is not nil, its refused keys are
// rate limited through limiter. The client address comes from the request
// context (New's handler puts it there).
func GuardKeyLookups(keys auth.KeyLookup, limiter RateLimiter) auth.KeyLookup {
	lookups, err := ratelimit.NewLocal(keyLookupsPerSecond, keyLookupBurst)
	if err != nil {
		panic(err) // the constants above are positive
	}
	return &keyGuard{keys: keys, limiter: limiter, lookups: lookups, blocked: map[string]time.Time{}}
}

func (g *keyGuard) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	now := time.Now()
	if until := g.blockedUntil(ip, now); until.After(now) {
		return nil, refusedKeys(until.Sub(now), "too many unknown or revoked API keys from this address")
	}
	if ok, retryAfter := g.lookups.Allow(ip); !ok {
		return nil, refusedKeys(retryAfter, "too many new API keys from this address")
	}
	p, err := g.keys.PrincipalByKeyHash(ctx, hash)
	if aisle.ErrorCode(err) == aisle.EUNAUTHENTICATED && g.limiter != nil {
		if ok, retryAfter := g.limiter.Allow(ctx, "refused-key:"+ip); !ok {
			g.block(ip, now.Add(retryAfter))
		}
	}
	return p, err
}

func refusedKeys(retryAfter time.Duration, why string) error {
	limitRejections.WithLabelValues(limitRefusedKeys).Inc()
	return &auth.RateLimitedError{
		Err:        aisle.Errorf(aisle.ERATELIMITED, "%s: retry after %d s", why, retrySeconds(retryAfter)),
		RetryAfter: retryAfter,
	}
}

func (g *keyGuard) blockedUntil(ip string, now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.blocked[ip]
	if ok && !until.After(now) {
		delete(g.blocked, ip)
	}
	return until
}

func (g *keyGuard) block(ip string, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.blocked) >= maxBlockedAddresses {
		now := time.Now()
		for k, u := range g.blocked {
			if !u.After(now) {
				delete(g.blocked, k)
			}
		}
		if len(g.blocked) >= maxBlockedAddresses {
			return // still full: the shared limiter refuses this address again next time
		}
	}
	g.blocked[ip] = until
}
