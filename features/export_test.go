package features

import (
	"context"

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
