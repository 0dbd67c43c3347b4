package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

// countingKeys is an in-memory KeyLookup that counts lookups, to observe the
// cache. (The database-backed behaviour is tested in auth_test.go.)
type countingKeys struct {
	mu      sync.Mutex
	valid   map[string]*aisle.Principal // by string(hash)
	lookups int
	down    bool // lookups fail as with the database unreachable
}

func (k *countingKeys) PrincipalByKeyHash(_ context.Context, hash []byte) (*aisle.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lookups++
	if k.down {
		return nil, errors.New("look up API key: dial tcp: connection refused")
	}
	if p, ok := k.valid[string(hash)]; ok {
		return p, nil
	}
	return nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "invalid or revoked API key")
}

func (k *countingKeys) add(name string) string {
	key, hash := NewKey()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.valid[string(hash)] = &aisle.Principal{KeyID: name, Role: aisle.RoleService}
	return key
}

func (k *countingKeys) remove(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.valid, string(HashKey(key)))
}

// newTestCache returns a Cache over countingKeys with a clock the test
// moves.
func newTestCache(t *testing.T) (*Cache, *countingKeys, *time.Time) {
	keys := &countingKeys{valid: map[string]*aisle.Principal{}}
	c, err := NewCache(keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	return c, keys, &now
}

func TestCache_ServesWithinTTLAndRechecksAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, keys, now := newTestCache(t)
	key := keys.add("k-1")

	for range 3 {
		if p, err := Authenticate(ctx, c, "Bearer "+key); err != nil || p.KeyID != "k-1" {
			t.Fatalf("Authenticate = %v, %v", p, err)
		}
	}
	if keys.lookups != 1 {
		t.Errorf("%d lookups for 3 requests within the TTL, want 1", keys.lookups)
	}

	keys.remove(key) // revoked
	*now = now.Add(DefaultTTL - time.Second)
	if _, err := Authenticate(ctx, c, "Bearer "+key); err != nil {
		t.Errorf("within the TTL a revoked key is still served from the cache: got %v", err)
	}
	*now = now.Add(time.Second)
	if _, err := Authenticate(ctx, c, "Bearer "+key); aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
		t.Errorf("after the TTL the revocation must apply: got %v", err)
	}
	if keys.lookups != 2 {
		t.Errorf("%d lookups, want 2", keys.lookups)
	}
}

func TestCache_RefusalsCachedApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, keys, now := newTestCache(t)
	c.MaxEntries = 3
	valid := keys.add("k-1")
	if _, err := Authenticate(ctx, c, "Bearer "+valid); err != nil {
		t.Fatal(err)
	}

	// A client retrying a refused key costs one lookup per TTL.
	revoked := keys.add("k-2")
	keys.remove(revoked)
	for range 3 {
		if _, err := Authenticate(ctx, c, "Bearer "+revoked); aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
			t.Fatalf("revoked key: %v", err)
		}
	}
	if keys.lookups != 2 {
		t.Errorf("%d lookups for a valid key and a refused one asked 3 times, want 2", keys.lookups)
	}

	// A flood of made-up keys fills the refusals, not the valid keys.
	for range 10 {
		bad, _ := NewKey()
		if _, err := Authenticate(ctx, c, "Bearer "+bad); aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
			t.Fatalf("made-up key: %v", err)
		}
	}
	if c.refusals.Len() > 3 {
		t.Errorf("%d refusals cached, bound is 3", c.refusals.Len())
	}
	lookups := keys.lookups
	if _, err := Authenticate(ctx, c, "Bearer "+valid); err != nil || keys.lookups != lookups {
		t.Errorf("the valid key after a flood of refusals: %v, %d more lookups; want it cached", err, keys.lookups-lookups)
	}

	// An outage is not a refusal: the next request asks again.
	*now = now.Add(DefaultTTL)
	keys.down = true
	unseen, _ := NewKey()
	for range 2 {
		if _, err := Authenticate(ctx, c, "Bearer "+unseen); aisle.ErrorCode(err) != aisle.EUNAVAILABLE {
			t.Fatalf("unseen key with lookups failing: %v, want UNAVAILABLE", err)
		}
	}
	if _, ok := c.refusals.Peek(string(HashKey(unseen))); ok {
		t.Error("a failed lookup was cached as a refusal")
	}
}

func TestCache_Bounded(t *testing.T) {
	t.Parallel()
	c, keys, now := newTestCache(t)
	c.MaxEntries = 3
	var all []string
	for i := range 10 {
		all = append(all, keys.add("k"))
		if i == 5 {
			*now = now.Add(DefaultTTL) // the first entries expire
		}
	}
	for _, key := range all {
		if _, err := Authenticate(context.Background(), c, "Bearer "+key); err != nil {
			t.Fatal(err)
		}
		if c.entries.Len() > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", c.entries.Len())
		}
	}
}

// A full cache evicts the least recently used key, never one in use.
func TestCache_EvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, keys, _ := newTestCache(t)
	c.MaxEntries = 3
	hot := keys.add("hot")
	for range 20 {
		if _, err := Authenticate(ctx, c, "Bearer "+hot); err != nil {
			t.Fatal(err)
		}
		if _, err := Authenticate(ctx, c, "Bearer "+keys.add("cold")); err != nil {
			t.Fatal(err)
		}
	}
	lookups := keys.lookups
	if _, err := Authenticate(ctx, c, "Bearer "+hot); err != nil || keys.lookups != lookups {
		t.Errorf("the key used on every other request: %v, %d lookups; want it still cached", err, keys.lookups-lookups)
	}
}

// blockingKeys is a KeyLookup whose lookups wait until released, to hold
// concurrent misses together.
type blockingKeys struct {
	countingKeys
	started chan struct{} // one value per lookup started
	release chan struct{}
}

func (k *blockingKeys) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	k.started <- struct{}{}
	<-k.release
	return k.countingKeys.PrincipalByKeyHash(ctx, hash)
}

// Concurrent requests with one uncached key cost one lookup.
func TestCache_CollapsesConcurrentMisses(t *testing.T) {
	t.Parallel()
	keys := &blockingKeys{countingKeys: countingKeys{valid: map[string]*aisle.Principal{}}, started: make(chan struct{}, 100), release: make(chan struct{})}
	c, err := NewCache(keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	key := keys.add("k-1")
	const callers = 50
	var inLookup sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		inLookup.Go(func() {
			_, err := Authenticate(context.Background(), c, "Bearer "+key)
			errs <- err
		})
	}
	<-keys.started // one lookup is under way; the others join it or are answered by its result
	close(keys.release)
	inLookup.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if keys.lookups != 1 {
		t.Errorf("%d lookups for %d concurrent requests with one key, want 1", keys.lookups, callers)
	}
}

func TestKeyFormat(t *testing.T) {
	t.Parallel()
	key, hash := NewKey()
	other, _ := NewKey()
	if key == other {
		t.Fatal("two keys are equal")
	}
	if !wellFormed(key) || !strings.HasPrefix(key, "aisle_") || len(key) != 58 {
		t.Errorf("key %q (len %d) is not well formed", key, len(key))
	}
	if string(hash) != string(HashKey(key)) || len(hash) != 32 {
		t.Errorf("hash of NewKey differs from HashKey")
	}
	for _, bad := range []string{"", key[:57], key + "a", strings.ToUpper(key), "xisle_" + key[6:], key[:57] + "1"} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q) = true", bad)
		}
	}
}

// While keys cannot be checked, a key that was valid when last checked keeps
// working for MaxStale past its TTL; one never seen is UNAVAILABLE; and once
// lookups work again a revocation applies at once.
func TestCache_ServesSeenKeysWhileLookupsFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, keys, now := newTestCache(t)
	seen := keys.add("k-seen")
	unseen := keys.add("k-unseen")
	if _, err := Authenticate(ctx, c, "Bearer "+seen); err != nil {
		t.Fatal(err)
	}

	keys.down = true
	*now = now.Add(DefaultTTL + DefaultMaxStale - time.Second)
	if p, err := Authenticate(ctx, c, "Bearer "+seen); err != nil || p.KeyID != "k-seen" {
		t.Errorf("a seen key past its TTL while lookups fail: %v, %v; want it served", p, err)
	}
	if _, err := Authenticate(ctx, c, "Bearer "+unseen); aisle.ErrorCode(err) != aisle.EUNAVAILABLE {
		t.Errorf("an unseen key while lookups fail: %v, want UNAVAILABLE", err)
	}
	*now = now.Add(time.Second)
	if _, err := Authenticate(ctx, c, "Bearer "+seen); aisle.ErrorCode(err) != aisle.EUNAVAILABLE {
		t.Errorf("a seen key MaxStale past its TTL: %v, want UNAVAILABLE", err)
	}

	keys.down = false
	keys.remove(seen)
	if _, err := Authenticate(ctx, c, "Bearer "+seen); aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
		t.Errorf("a key revoked during the outage, once lookups work: %v, want UNAUTHENTICATED", err)
	}
}
