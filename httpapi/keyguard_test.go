package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/resolvers"
)

// keyStore knows one live key; every other key is refused. A lookup waits
// until release is closed (nil: no wait).
type keyStore struct {
	live    string // hash of the live key
	release chan struct{}
	calls   atomic.Int64
}

func (s *keyStore) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	s.calls.Add(1)
	if s.release != nil {
		<-s.release
	}
	if string(hash) == s.live {
		return &aisle.Principal{KeyID: "k-live", Role: aisle.RoleService}, nil
	}
	return nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "unknown API key")
}

func guardedCache(t *testing.T, store *keyStore) *auth.Cache {
	t.Helper()
	keys, err := auth.NewCache(GuardKeyLookups(store, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// heldLookups is a guarded cache over a store with one live key whose
// lookups wait until store.release is closed.
func heldLookups(t *testing.T) (liveKey string, store *keyStore, keys *auth.Cache) {
	liveKey, liveHash := auth.NewKey()
	store = &keyStore{live: string(liveHash), release: make(chan struct{})}
	return liveKey, store, guardedCache(t, store)
}

func fromAddress(ip string) context.Context {
	return context.WithValue(context.Background(), clientIPKey{}, ip)
}

// TestUnknownKeyFloodIsBoundedByAddress: 4,000 concurrent made-up keys
// from one address, without any --rate-limit, reach the key store at most
// a burst's worth of times, and another address's new key is still looked
// up.
func TestUnknownKeyFloodIsBoundedByAddress(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		liveKey, store, keys := heldLookups(t)
		var wg sync.WaitGroup
		var limited atomic.Int64
		for range 4000 {
			wg.Go(func() {
				key, _ := auth.NewKey()
				if _, err := auth.Authenticate(fromAddress("203.0.113.9"), keys, "Bearer "+key); aisle.ErrorCode(err) == aisle.ERATELIMITED {
					limited.Add(1)
				}
			})
		}
		synctest.Wait() // every lookup let through is now waiting in the store
		if got := store.calls.Load(); got > keyLookupBurst {
			t.Errorf("%d concurrent lookups of made-up keys from one address, want at most %d", got, keyLookupBurst)
		}
		close(store.release)
		wg.Wait()
		if got := limited.Load(); got < 4000-keyLookupBurst {
			t.Errorf("%d of 4,000 refused as RATE_LIMITED, want all past the burst of %d", got, keyLookupBurst)
		}
		if p, err := auth.Authenticate(fromAddress("198.51.100.7"), keys, "Bearer "+liveKey); err != nil || p.KeyID != "k-live" {
			t.Errorf("another address's live key during the flood: %v, %v", p, err)
		}
	})
}

// TestConcurrentLookupsOfOneKeyAreOne: a burst of requests with one
// uncached key costs one lookup.
func TestConcurrentLookupsOfOneKeyAreOne(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		liveKey, store, keys := heldLookups(t)
		var wg sync.WaitGroup
		var served atomic.Int64
		for i := range 100 {
			wg.Go(func() {
				ip := "192.0.2." + strconv.Itoa(i%10)
				if p, err := auth.Authenticate(fromAddress(ip), keys, "Bearer "+liveKey); err == nil && p.KeyID == "k-live" {
					served.Add(1)
				}
			})
		}
		synctest.Wait()
		if got := store.calls.Load(); got != 1 {
			t.Errorf("100 concurrent requests with one new key made %d lookups, want 1", got)
		}
		close(store.release)
		wg.Wait()
		if got := served.Load(); got != 100 {
			t.Errorf("%d of 100 requests served", got)
		}
	})
}

// TestRefusedKeysGetRetryAfter: the 429 of an address sending too many
// unknown keys says when to retry in Retry-After, as the rate limit's does.
func TestRefusedKeysGetRetryAfter(t *testing.T) {
	t.Parallel()
	h := New(Config{Resolver: &resolvers.Resolver{}, Keys: guardedCache(t, &keyStore{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i := range keyLookupBurst + 1 {
		key, _ := auth.NewKey()
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query": "{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if i < keyLookupBurst {
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("made-up key %d: HTTP %d %s, want 401", i+1, rec.Code, rec.Body)
			}
			continue
		}
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), aisle.ERATELIMITED) {
			t.Errorf("made-up key %d: HTTP %d, Retry-After %q, %s; want 429 RATE_LIMITED with Retry-After", i+1, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
}
