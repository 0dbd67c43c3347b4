package features

import "context"

// CountLabels is ApplyLabels without its last step, for tests of a step
// that fails after applying its labels and before reporting them.
func (s *Store) CountLabels(ctx context.Context, updates []Update) ([]bool, error) {
	return s.countLabels(ctx, updates)
}
