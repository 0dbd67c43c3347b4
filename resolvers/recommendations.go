package resolvers

import (
	"context"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/recommend"
)

// defaultRecommendations is the schema's default for first, also used when
// a client passes null.
const defaultRecommendations = 10

func listLength(first *int) int {
	if first == nil {
		return defaultRecommendations
	}
	return *first
}

var sessionEventTypes = map[graph.SessionEventType]string{
	graph.SessionEventTypeView:           aisle.TypeSessionView,
	graph.SessionEventTypeSearch:         aisle.TypeSessionSearch,
	graph.SessionEventTypeAddToCart:      aisle.TypeSessionAddToCart,
	graph.SessionEventTypeRemoveFromCart: aisle.TypeSessionRemoveFromCart,
	graph.SessionEventTypeCheckout:       aisle.TypeSessionCheckout,
}

func newRecommendations(recs []recommend.Recommendation) []*graph.Recommendation {
	out := make([]*graph.Recommendation, len(recs))
	for i, r := range recs {
		out[i] = &graph.Recommendation{Product: r.Product, Score: r.Score, Reason: r.Reason}
	}
	return out
}

// recommendationStream sends the session's list now and a recomputed one
// after every change the hub announces. It subscribes before the first
// read, so a change between the two is not missed. The goroutine belongs to
// the subscription: it ends, closing the channel, when the client
// unsubscribes, the hub shuts down, or a recomputation fails (the client
// then sees the subscription complete and may subscribe again).
func (r *Resolver) recommendationStream(ctx context.Context, sessionID, storeID string, first int) (<-chan []*graph.Recommendation, error) {
	sub := r.RecommendHub.Subscribe(sessionID, nil)
	initial, err := r.RecommendService.Recommend(ctx, sessionID, storeID, first)
	if err != nil {
		sub.Close()
		return nil, err
	}
	out := make(chan []*graph.Recommendation, 1)
	out <- newRecommendations(initial)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			if _, ok := sub.Next(ctx); !ok {
				return
			}
			recs, err := r.RecommendService.Recommend(ctx, sessionID, storeID, first)
			if err != nil {
				return
			}
			select {
			case out <- newRecommendations(recs):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
