package availability

import (
	"context"
	"fmt"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

// MaxAlertStores bounds the stores of one status-alert subscription.
const MaxAlertStores = 100

// StatusChanged says whether next is a status transition from prev, what a
// status-alert subscription sends.
func StatusChanged(prev, next Item) bool { return prev.Status != next.Status }

// StatusBaseline authorizes a status-alert subscription to storeIDs
// (retailer keys for their own stores, service keys for any) and returns
// the availability now of every product each store carries, by store and
// product: what the first change of each is compared with.
func (s *Service) StatusBaseline(ctx context.Context, storeIDs []string) (map[string]map[string]Item, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return nil, err
	}
	if p.Role != aisle.RoleService && p.Role != aisle.RoleRetailer {
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "only retailer and service keys may subscribe to status alerts")
	}
	switch {
	case len(storeIDs) == 0:
		return nil, aisle.Errorf(aisle.EINVALID, "storeIds is empty")
	case len(storeIDs) > MaxAlertStores:
		return nil, aisle.Errorf(aisle.EINVALID, "storeIds has %d ids; at most %d are allowed", len(storeIDs), MaxAlertStores)
	}
	for _, id := range storeIDs {
		if err := aisle.ValidateID("storeIds", id); err != nil {
			return nil, err
		}
		retailerID, err := s.catalog.StoreRetailer(ctx, id)
		if err != nil {
			return nil, err
		}
		if !p.CanManageStore(retailerID) {
			return nil, aisle.Errorf(aisle.EFORBIDDEN, "store %s belongs to another retailer", id)
		}
	}
	baseline := make(map[string]map[string]Item, len(storeIDs))
	for _, id := range storeIDs {
		if _, done := baseline[id]; done {
			continue
		}
		items, err := s.storeItems(ctx, id)
		if err != nil {
			return nil, err
		}
		baseline[id] = items
	}
	return baseline, nil
}

// storeItems reads the availability of every product the store carries,
// one page of the assortment at a time.
func (s *Service) storeItems(ctx context.Context, storeID string) (map[string]Item, error) {
	out := make(map[string]Item)
	size := postgres.MaxPageSize
	var after *string
	for {
		page, err := s.catalog.StoreProducts(ctx, storeID, &size, after, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("list the products of store %s: %w", storeID, err)
		}
		sps := make([]aisle.StoreProduct, len(page.Edges))
		for i, e := range page.Edges {
			sps[i] = aisle.StoreProduct{StoreID: storeID, ProductID: e.Node.ID}
		}
		items, err := s.items(ctx, sps)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out[it.ProductID] = it
		}
		if !page.HasNextPage || len(page.Edges) == 0 {
			return out, nil
		}
		after = &page.Edges[len(page.Edges)-1].Cursor
	}
}
