// Package featurestest opens feature stores on the local Redis for tests.
package featurestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

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
// second store on the same keys.
func MustOpenAt(tb testing.TB, redisURL, prefix string, opts ...features.Option) *features.Store {
	tb.Helper()
	s, err := features.Open(context.Background(), redisURL, prefix, models.DefaultAvailabilityModel(), opts...)
	if err != nil {
		tb.Fatalf("featurestest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
