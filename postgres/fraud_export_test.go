package postgres

import "context"

// RecordFraudLabels is LabelFraudAssessments without its last step, for
// tests of a step that fails after recording its labels and before
// reporting them.
func (db *DB) RecordFraudLabels(ctx context.Context, labels []FraudLabel) ([]bool, error) {
	return db.recordFraudLabels(ctx, labels)
}
