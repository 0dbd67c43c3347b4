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
