// Package features is Aisle's online feature store in Redis (one server or
// a Redis Cluster): one hash per entity, written atomically by Lua scripts
// that record in the same hash what it applied (effectively once, see
// applied.lua and keys.go), read with pipelines, and announced on sharded
// pub/sub. The announcements carry the new state, which keeps a near cache
// of availability in each API process coherent (see nearCache).
package features

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/models"
)

// Defaults for Option.
const (
	DefaultTTL = 30 * 24 * time.Hour // entity hashes, refreshed on every write

	// DefaultNearCacheEntries bounds the availability near cache: about 230
	// bytes an entry with its key, so some 45 MB when full.
	DefaultNearCacheEntries = 200_000
	// DefaultNearCacheMaxAge is how long a cached availability state is
	// served without hearing from Redis. Changes are announced, so this only
	// bounds what is not: a hash deleted or expired in Redis.
	DefaultNearCacheMaxAge = 30 * time.Second
)

// Store is the online feature store. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	cluster bool // rdb is a Redis Cluster client
	prefix  string
	// scope starts every channel's name: the prefix and the database, since
	// pub/sub ignores the database number, so that deployments that share
	// a Redis server in different databases never hear each other.
	scope      string
	model      models.AvailabilityModel
	ttl        time.Duration
	near       *nearCache      // availability states, used while WatchAvailability runs
	neighbours *neighbourCache // neighbour sessions, used while WatchSessions runs
}

// Option configures Open.
type Option func(*Store)

// WithTTL sets how long an entity hash lives after its last write.
func WithTTL(d time.Duration) Option { return func(s *Store) { s.ttl = d } }

// WithCluster says whether the Redis URL names a Redis Cluster (see
// NewClient).
func WithCluster(cluster bool) Option { return func(s *Store) { s.cluster = cluster } }

// WithNearCache sizes the in-process cache of availability states that
// Availability serves from while WatchAvailability keeps it coherent:
// at most maxEntries states (0 turns the cache off), each served for at most
// maxAge after it was last read from or announced by Redis.
func WithNearCache(maxEntries int, maxAge time.Duration) Option {
	return func(s *Store) { s.near = newNearCache(maxEntries, maxAge) }
}

// Open connects to Redis at redisURL (redis://host:port/db, or a cluster's
// URL with WithCluster), checks that it answers and loads the Lua scripts. Every key the store uses starts with
// keyPrefix, so several stores (tests, environments) can share one Redis.
func Open(ctx context.Context, redisURL, keyPrefix string, model models.AvailabilityModel, opts ...Option) (*Store, error) {
	if model.PickHalfLife <= 0 {
		return nil, fmt.Errorf("open feature store: pick half-life must be positive, got %s", model.PickHalfLife)
	}
	s := &Store{
		prefix:     keyPrefix,
		model:      model,
		ttl:        DefaultTTL,
		near:       newNearCache(DefaultNearCacheEntries, DefaultNearCacheMaxAge),
		neighbours: newNeighbourCache(),
	}
	for _, o := range opts {
		o(s)
	}
	if s.ttl < time.Millisecond {
		return nil, fmt.Errorf("open feature store: the TTL must be at least 1ms, got %s", s.ttl)
	}
	if strings.ContainsAny(keyPrefix, "{}") {
		// The first {…} of a key is its hash tag: the prefix's would put
		// every key in one slot.
		return nil, fmt.Errorf("open feature store: the key prefix %q must not contain braces", keyPrefix)
	}
	if s.near.maxEntries < 0 || s.near.maxAge <= 0 {
		return nil, fmt.Errorf("open feature store: near cache needs entries >= 0 and a positive max age (entries %d, max age %s)", s.near.maxEntries, s.near.maxAge)
	}
	rdb, err := NewClient(redisURL, s.cluster)
	if err != nil {
		return nil, fmt.Errorf("open feature store: %w", err)
	}
	s.rdb = rdb
	db := 0 // a cluster has database 0 only
	if c, ok := rdb.(*redis.Client); ok {
		db = c.Options().DB
	}
	s.scope = keyPrefix + strconv.Itoa(db) + ":"

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis at %s is unreachable (%s): %w", Addrs(s.rdb), unreachableHint(s.rdb), err)
	}
	if err := applyAvailabilityScript.Load(ctx, s.rdb).Err(); err != nil { // on every master of a cluster
		s.rdb.Close()
		return nil, fmt.Errorf("open feature store: load availability script: %w", err)
	}
	poolStats.Add(s.rdb)
	return s, nil
}

// Close closes the connections to Redis.
func (s *Store) Close() error {
	poolStats.Remove(s.rdb)
	return s.rdb.Close()
}

// Ping checks that Redis answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// DeleteAll deletes every key under the store's prefix, on every master of
// a cluster. Replaying the Kafka topics afterwards rebuilds the features.
func (s *Store) DeleteAll(ctx context.Context) error {
	return ScanKeys(ctx, s.rdb, s.prefix+"*", func(keys []string) error {
		// One UNLINK per key: a cluster refuses keys of several slots in one.
		pipe := s.rdb.Pipeline()
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("delete feature keys: %w", err)
		}
		return nil
	})
}

// ScanKeys calls fn with the keys matching pattern, some hundreds at a time,
// scanning every master of a cluster (a SCAN sees one node's keys only).
// Keys written meanwhile may or may not be seen.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(keys []string) error) error {
	scan := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := fn(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", pattern, err)
		}
		if len(batch) > 0 {
			return fn(batch)
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		// The masters are scanned at once; fn runs for one at a time.
		var mu sync.Mutex
		serial := fn
		fn = func(keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			return serial(keys)
		}
		return c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return scan(ctx, c)
	default:
		return fmt.Errorf("scan %s: unsupported Redis client %T", pattern, rdb)
	}
}

// Addrs names the server or cluster nodes rdb was configured with, for
// messages (no credentials).
func Addrs(rdb redis.UniversalClient) string {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return strings.Join(c.Options().Addrs, ",")
	case *redis.Client:
		return c.Options().Addr
	default:
		return fmt.Sprintf("%T", rdb)
	}
}
