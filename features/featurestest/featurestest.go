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

// MustOpen opens a store with the default availability model under a fresh
// key prefix ("aisle-test-<random>:"), so parallel tests never see each
// other's keys. The keys are deleted when the test ends. A missing Redis
// fails the test with the command that starts it.
func MustOpen(tb testing.TB, opts ...features.Option) *features.Store {
	tb.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = DefaultRedisURL
	}
	var b [8]byte
	rand.Read(b[:])
	prefix := "aisle-test-" + hex.EncodeToString(b[:]) + ":"

	s, err := features.Open(context.Background(), url, prefix, models.DefaultAvailabilityModel(), opts...)
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
