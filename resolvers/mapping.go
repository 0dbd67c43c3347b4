package resolvers

import (
	"context"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

func edges[T, E any](page postgres.Page[T], newEdge func(cursor string, node *T) E) []E {
	out := make([]E, len(page.Edges))
	for i := range page.Edges {
		out[i] = newEdge(page.Edges[i].Cursor, &page.Edges[i].Node)
	}
	return out
}

func newStoreEdge(cursor string, node *postgres.Store) *graph.StoreEdge {
	return &graph.StoreEdge{Cursor: cursor, Node: node}
}

func newProductEdge(cursor string, node *postgres.Product) *graph.ProductEdge {
	return &graph.ProductEdge{Cursor: cursor, Node: node}
}

func pageInfo[T any](page postgres.Page[T]) *graph.PageInfo {
	return &graph.PageInfo{
		HasNextPage:     page.HasNextPage,
		HasPreviousPage: page.HasPreviousPage,
		StartCursor:     page.StartCursor(),
		EndCursor:       page.EndCursor(),
	}
}

func newItemAvailability(item availability.Item) *graph.ItemAvailability {
	out := &graph.ItemAvailability{
		StoreID:     item.StoreID,
		ProductID:   item.ProductID,
		Carried:     item.Carried,
		Probability: item.Probability,
		Status:      graph.AvailabilityStatus(item.Status),
	}
	if !item.UpdatedAt.IsZero() {
		t := item.UpdatedAt.UTC()
		out.UpdatedAt = &t
	}
	return out
}

func newAtRiskEdge(cursor string, node *availability.Item) *graph.AtRiskEdge {
	return &graph.AtRiskEdge{Cursor: cursor, Node: newItemAvailability(*node)}
}

func newAvailabilityEvidence(v models.EvidenceView) *graph.AvailabilityEvidence {
	out := &graph.AvailabilityEvidence{
		Found:    v.Found,
		NotFound: v.NotFound,
		Prior:    v.Prior,
		Signals:  make([]graph.AvailabilitySignal, len(v.Signals)),
	}
	if !v.LastPickAt.IsZero() {
		out.LastPickAt = utcTime(v.LastPickAt)
		out.LastPickFound = &v.LastPickFound
	}
	if !v.FeedAt.IsZero() {
		q := int(v.FeedQuantity)
		out.FeedQuantity = &q
		out.FeedAt = utcTime(v.FeedAt)
		out.CountedAt = utcTime(v.CountedAt)
		out.LevelSince = utcTime(v.LevelSince)
	}
	for i, s := range v.Signals {
		out.Signals[i] = graph.AvailabilitySignal(s)
	}
	return out
}

func utcTime(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

var pickEventTypes = map[graph.PickOutcome]string{
	graph.PickOutcomeFound:    aisle.TypePickFound,
	graph.PickOutcomeNotFound: aisle.TypePickNotFound,
	graph.PickOutcomeReplaced: aisle.TypePickReplaced,
}

func newEventReceipt(r aisle.Receipt) *graph.EventReceipt {
	return &graph.EventReceipt{
		EventID:   r.EventID,
		Topic:     r.Topic,
		Partition: int(r.Partition),
		Offset:    strconv.FormatInt(r.Offset, 10),
		EventIds:  []string{r.EventID},
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// batchReceipt maps the event ids a batch mutation published.
func batchReceipt(eventIDs []string, err error) (*graph.EventBatchReceipt, error) {
	if err != nil {
		return nil, err
	}
	return &graph.EventBatchReceipt{EventIds: eventIDs}, nil
}

// selects reports whether the current field's selection reaches the field
// path (fragments expanded, @skip and @include applied, as gqlgen executes
// it).
func selects(ctx context.Context, path ...string) bool {
	opCtx := graphql.GetOperationContext(ctx)
	fields := graphql.CollectFieldsCtx(ctx, nil)
	for i, name := range path {
		var next []graphql.CollectedField
		for _, f := range fields {
			if f.Name != name {
				continue
			}
			if i == len(path)-1 {
				return true
			}
			next = append(next, graphql.CollectFields(opCtx, f.Selections, nil)...)
		}
		fields = next
	}
	return false
}
