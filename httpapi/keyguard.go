package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
)

// maxBlockedAddresses bounds the addresses a keyGuard remembers.
const maxBlockedAddresses = 10_000

// keyGuard keeps a client from making PostgreSQL look up made-up API keys
// at will. Authentication comes before the rate limit (the limit counts per
// key, so it needs the key), and every unknown key costs a lookup. Each
// refused key therefore counts against its client address in the shared
// limiter, and an address over its allowance has its key lookups refused
// with RATE_LIMITED, in process and without a lookup, until the limiter
// says it may retry. It sits under the auth.Cache (GuardKeyLookups), so
// keys already cached, valid or refused, cost nothing and are unaffected.
type keyGuard struct {
	keys    auth.KeyLookup
	limiter RateLimiter

	mu      sync.Mutex
	blocked map[string]time.Time // client address → refused until
}

// GuardKeyLookups wraps keys so that clients sending unknown keys are rate
// limited by address through limiter (nil: keys unchanged). The client
// address comes from the request context (New's handler puts it there).
func GuardKeyLookups(keys auth.KeyLookup, limiter RateLimiter) auth.KeyLookup {
	if limiter == nil {
		return keys
	}
	return &keyGuard{keys: keys, limiter: limiter, blocked: map[string]time.Time{}}
}

func (g *keyGuard) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	now := time.Now()
	if until := g.blockedUntil(ip, now); until.After(now) {
		limitRejections.WithLabelValues(limitRefusedKeys).Inc()
		return nil, aisle.Errorf(aisle.ERATELIMITED, "too many unknown or revoked API keys from this address: retry after %d s", retrySeconds(until.Sub(now)))
	}
	p, err := g.keys.PrincipalByKeyHash(ctx, hash)
	if aisle.ErrorCode(err) == aisle.EUNAUTHENTICATED {
		if ok, retryAfter := g.limiter.Allow(ctx, "refused-key:"+ip); !ok {
			g.block(ip, now.Add(retryAfter))
		}
	}
	return p, err
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
