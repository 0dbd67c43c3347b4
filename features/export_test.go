package features

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
)

// CountLabels is ApplyLabels without its last step, for tests of a step
// that fails after applying its labels and before reporting them.
func (s *Store) CountLabels(ctx context.Context, updates []aisle.Update) ([]bool, error) {
	return s.countLabels(ctx, updates)
}

// ApplyToSessionsOnly is ApplySessions's first round trip alone: what a
// worker that dies before the second leaves behind.
func (s *Store) ApplyToSessionsOnly(ctx context.Context, updates []aisle.Update) error {
	_, err := s.applyToSessions(ctx, updates)
	return err
}

// AddHook adds a go-redis hook to the store's client, for tests that act
// between the commands the store sends.
func (s *Store) AddHook(h redis.Hook) { s.rdb.AddHook(h) }

// LoadAvailabilityScript loads the availability applier into rdb's script
// cache, as another process that met NOSCRIPT first would.
func LoadAvailabilityScript(ctx context.Context, rdb redis.Cmdable) error {
	return applyAvailabilityScript.Load(ctx, rdb).Err()
}
