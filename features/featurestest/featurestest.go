// Package featurestest opens feature stores on the local Redis for tests.
package featurestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
)

// DefaultRedisURL is used when REDIS_URL is not set.
const DefaultRedisURL = "redis://localhost:6379/0"

// URL returns REDIS_URL, or DefaultRedisURL when it is not set.
func URL() string {
	if url := os.Getenv("REDIS_URL"); url != "" {
		return url
	}
	return DefaultRedisURL
}

// Cluster reports whether AISLE_REDIS_CLUSTER=true makes URL() a Redis
// Cluster (go-redis's cluster URL form), so that the whole suite can run on
// one. Any other value than "true", "false" or none stops the tests.
func Cluster() bool {
	v := os.Getenv("AISLE_REDIS_CLUSTER")
	if v == "" {
		return false
	}
	cluster, err := strconv.ParseBool(v)
	if err != nil {
		panic(fmt.Sprintf("featurestest: AISLE_REDIS_CLUSTER=%q is not a boolean", v))
	}
	return cluster
}

// NewPrefix returns a fresh key prefix, "aisle-test-<random>:".
func NewPrefix() string {
	var b [8]byte
	rand.Read(b[:])
	return "aisle-test-" + hex.EncodeToString(b[:]) + ":"
}

// MustOpen opens a store with the default availability model on URL() under
// a fresh key prefix, so parallel tests never see each other's keys. The keys
// are deleted when the test ends. A missing Redis fails the test with the
// command that starts it.
func MustOpen(tb testing.TB, opts ...features.Option) *features.Store {
	tb.Helper()
	return MustOpenAt(tb, URL(), NewPrefix(), opts...)
}

// MustOpenAt is MustOpen with the Redis URL and key prefix given, e.g. for a
// second store on the same keys. The URL is a cluster's when Cluster() is.
func MustOpenAt(tb testing.TB, redisURL, prefix string, opts ...features.Option) *features.Store {
	tb.Helper()
	opts = append([]features.Option{features.WithCluster(Cluster())}, opts...)
	s, err := features.Open(context.Background(), redisURL, prefix, models.DefaultAvailabilityModel(), opts...)
	if err != nil {
		tb.Fatalf("featurestest: %v", err)
	}
	tb.Cleanup(func() {
		// Deleting scans the whole keyspace: slow when the shared Redis
		// holds many keys of other tests and the machine is busy.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.DeleteAll(ctx); err != nil {
			tb.Errorf("featurestest: delete keys under %s: %v", prefix, err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("featurestest: close: %v", err)
		}
	})
	return s
}

// Snapshot returns every key under prefix in the Redis at redisURL (a
// cluster's when Cluster() is), without
// the prefix, with its content: a hash's fields, a sorted set's members with
// their scores, a string under the field "". Fault tests compare two
// snapshots to prove that two ways of consuming the same events wrote the
// same features.
func Snapshot(ctx context.Context, redisURL, prefix string) (map[string]map[string]string, error) {
	rdb, err := features.NewClient(redisURL, Cluster())
	if err != nil {
		return nil, fmt.Errorf("featurestest: %w", err)
	}
	defer rdb.Close()
	var keys []string
	if err := features.ScanKeys(ctx, rdb, prefix+"*", func(batch []string) error {
		keys = append(keys, batch...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("featurestest: %w", err)
	}
	types := make([]*redis.StatusCmd, len(keys))
	if _, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			types[i] = pipe.Type(ctx, k)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("featurestest: key types: %w", err)
	}
	reads := make([]func() (map[string]string, error), len(keys))
	if _, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			switch t := types[i].Val(); t {
			case "hash":
				cmd := pipe.HGetAll(ctx, k)
				reads[i] = cmd.Result
			case "string":
				cmd := pipe.Get(ctx, k)
				reads[i] = func() (map[string]string, error) { v, err := cmd.Result(); return map[string]string{"": v}, err }
			case "zset":
				cmd := pipe.ZRangeWithScores(ctx, k, 0, -1)
				reads[i] = func() (map[string]string, error) {
					zs, err := cmd.Result()
					out := make(map[string]string, len(zs))
					for _, z := range zs {
						out[fmt.Sprint(z.Member)] = strconv.FormatFloat(z.Score, 'g', -1, 64)
					}
					return out, err
				}
			default: // "none": expired or deleted since the scan
				reads[i] = func() (map[string]string, error) { return nil, fmt.Errorf("unexpected type %q", t) }
			}
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("featurestest: read keys: %w", err)
	}
	out := make(map[string]map[string]string, len(keys))
	for i, k := range keys {
		v, err := reads[i]()
		if err != nil {
			return nil, fmt.Errorf("featurestest: read %s: %w", k, err)
		}
		out[strings.TrimPrefix(k, prefix)] = v
	}
	return out, nil
}

// MustSnapshot is Snapshot of prefix in the test Redis, URL(), failing the
// test on an error.
func MustSnapshot(tb testing.TB, prefix string) map[string]map[string]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a scan of the whole shared Redis
	defer cancel()
	snap, err := Snapshot(ctx, URL(), prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// DropWriterState deletes what differs between any two writers of the
// same events from snap and returns snap: the "ver" field of every
// availability hash (the writer's clock when it wrote, which orders a
// hash's states for the API's near caches) and the "@ids" field of every
// hash (its last event ids, in the order the writer interleaved the
// partitions and topics that reach the entity), and the at-risk indexes'
// versions (those "ver" values again).
func DropWriterState(snap map[string]map[string]string) map[string]map[string]string {
	for key, fields := range snap {
		if strings.HasPrefix(key, "atriskver:") {
			delete(snap, key)
			continue
		}
		if strings.HasPrefix(key, "avail:") {
			delete(fields, "ver")
		}
		delete(fields, "@ids")
	}
	return snap
}

// FeaturesOnly deletes from snap what DropWriterState does and all the
// effectively-once bookkeeping ("@…" fields), and returns snap. Which script
// joins a label with its order (the label's or the order's, whichever came
// second) depends on how the writer interleaved the two topics, and the
// join's counts carry that script's marks; the counts are the same.
func FeaturesOnly(snap map[string]map[string]string) map[string]map[string]string {
	for _, fields := range DropWriterState(snap) {
		for f := range fields {
			if features.IsBookkeeping(f) {
				delete(fields, f)
			}
		}
	}
	return snap
}

// Watermarks returns, per topic and partition, the highest offset that an
// entity of snap recorded as applied (the hashes' "@topic/partition[/id]"
// fields, and the record an order or label hash names in "@rec"): the last
// record of each partition that reached Redis.
func Watermarks(snap map[string]map[string]string) (map[string]map[int32]int64, error) {
	marks := map[string]map[int32]int64{}
	for key, fields := range snap {
		for f, v := range fields {
			if f == "@rec" { // the record that recorded an order or label: "mark=offset"
				f, v, _ = strings.Cut(v, "=")
			}
			topic, p, ok := features.ParseMark(f)
			if !ok {
				continue
			}
			off, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("featurestest: %s: mark %q = %q is not an offset", key, f, v)
			}
			if marks[topic] == nil {
				marks[topic] = map[int32]int64{}
			}
			if cur, ok := marks[topic][p]; !ok || off > cur {
				marks[topic][p] = off
			}
		}
	}
	return marks, nil
}

// Diff describes the first differences between two snapshots, "" when they
// are equal: keys or fields one has and the other has not (even when
// empty), and values that differ.
func Diff(got, want map[string]map[string]string) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(union(got, want))) {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inGot:
			diffs = append(diffs, fmt.Sprintf("missing %s = %v", k, w))
		case !inWant:
			diffs = append(diffs, fmt.Sprintf("extra %s = %v", k, g))
		default:
			for _, f := range slices.Sorted(maps.Keys(union(g, w))) {
				gv, inG := g[f]
				wv, inW := w[f]
				switch {
				case !inG:
					diffs = append(diffs, fmt.Sprintf("%s field %q missing, want %q", k, f, wv))
				case !inW:
					diffs = append(diffs, fmt.Sprintf("%s field %q = %q, want none", k, f, gv))
				case gv != wv:
					diffs = append(diffs, fmt.Sprintf("%s field %q = %q, want %q", k, f, gv, wv))
				}
			}
		}
	}
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("… and %d more", len(diffs)-20))
	}
	return strings.Join(diffs, "\n")
}

func union[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Client returns a plain client of the test Redis (a cluster client when
// Cluster() is), closed when the test ends, for tests that look at or break
// keys directly.
func Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	rdb, err := features.NewClient(URL(), Cluster())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
