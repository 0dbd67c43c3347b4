package resolvers

import (
	"context"

	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/postgres"
)

func newFraudAssessment(a postgres.FraudAssessment) *graph.FraudAssessment {
	out := &graph.FraudAssessment{
		OrderID:      a.OrderID,
		Score:        a.Score,
		Decision:     graph.FraudDecision(a.Decision),
		Reasons:      make([]*graph.RiskReason, len(a.Reasons)),
		ModelVersion: int(a.ModelVersion),
		AssessedAt:   a.AssessedAt.UTC(),
		Fraud:        a.Fraud,
	}
	for i, r := range a.Reasons {
		out.Reasons[i] = &graph.RiskReason{Feature: r.Feature, Description: r.Description, Value: r.Value, Contribution: r.Contribution}
	}
	return out
}

// alertStream turns an alert subscription into the channel gqlgen reads.
// The goroutine belongs to the subscription: it ends, closing the channel,
// when the client unsubscribes (ctx) or the hub closes the subscription
// (shutdown, or the client fell too far behind).
func alertStream(ctx context.Context, sub *fraud.AlertSubscription) <-chan *graph.FraudAssessment {
	out := make(chan *graph.FraudAssessment, 1)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			select {
			case a, ok := <-sub.C:
				if !ok {
					return
				}
				select {
				case out <- newFraudAssessment(a):
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
