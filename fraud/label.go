package fraud

import (
	"context"
	"errors"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

// RecordLabels returns the stream applier that writes order.labeled events
// onto the stored assessments of their orders (Postgres), for audit and for
// orderRisk. It is the Postgres applier of aisle.labels, next to the Redis
// one (features.ApplyLabels); idempotent, as appliers must be.
func RecordLabels(db *postgres.DB) func(context.Context, []aisle.Update) ([]bool, error) {
	return func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		labels := make([]postgres.FraudLabel, len(updates))
		for i, u := range updates {
			if u.Event == nil || u.Event.Label == nil {
				return nil, errors.New("record labels: not an order.labeled event")
			}
			labels[i] = postgres.FraudLabel{EventID: u.Event.ID, OrderID: u.Event.Label.OrderID, Fraud: *u.Event.Label.Fraud, LabeledAt: u.Event.Time}
		}
		return db.LabelFraudAssessments(ctx, labels)
	}
}
