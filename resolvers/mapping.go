package resolvers

import (
	"context"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/graph"
)

func edges[T, E any](page catalog.Page[T], newEdge func(cursor string, node *T) E) []E {
	out := make([]E, len(page.Edges))
	for i := range page.Edges {
		out[i] = newEdge(page.Edges[i].Cursor, &page.Edges[i].Node)
	}
	return out
}

func newStoreEdge(cursor string, node *catalog.Store) *graph.StoreEdge {
	return &graph.StoreEdge{Cursor: cursor, Node: node}
}

func newProductEdge(cursor string, node *catalog.Product) *graph.ProductEdge {
	return &graph.ProductEdge{Cursor: cursor, Node: node}
}

func pageInfo[T any](page catalog.Page[T]) *graph.PageInfo {
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
