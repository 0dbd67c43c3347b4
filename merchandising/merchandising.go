// Package merchandising lets retailers maintain their part of the catalog
// through the API: products and their stores' assortments. It validates a
// whole call, authorizes it and publishes one catalog event per item to
// aisle.catalog; the stream applies them like any catalog event.
package merchandising

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

// MaxItemsPerCall bounds the items of one call.
const MaxItemsPerCall = 1000

// Publisher writes validated events to Kafka, in order, keyed by entity.
type Publisher interface {
	PublishEvents(ctx context.Context, events []*aisle.Decoded) ([]string, error)
}

// Service publishes retailers' catalog changes.
type Service struct {
	catalog   *postgres.DB
	publisher Publisher
	// Now stamps the events; tests replace it before use.
	Now func() time.Time
}

// NewService checks that no dependency is missing.
func NewService(db *postgres.DB, publisher Publisher) (*Service, error) {
	if db == nil || publisher == nil {
		return nil, errors.New("merchandising: nil dependency")
	}
	return &Service{catalog: db, publisher: publisher, Now: time.Now}, nil
}

// UpsertProducts publishes product.upserted for each product (retailer and
// service keys). A retailer key may create products and replace those it
// created (postgres.ClaimProducts); others are FORBIDDEN. It returns the
// event ids in input order.
func (s *Service) UpsertProducts(ctx context.Context, products []aisle.ProductUpserted, idempotencyKey *string) ([]string, error) {
	p, err := requireMerchant(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(products))
	for i, pr := range products {
		ids[i] = pr.ProductID
	}
	events, err := s.build(p, "upsertProducts", "products", aisle.TypeProductUpserted, ids, idempotencyKey, func(i int) any { return products[i] })
	if err != nil {
		return nil, err
	}
	if p.Role == aisle.RoleRetailer {
		notOwned, err := s.catalog.ClaimProducts(ctx, p.RetailerID, ids)
		if err != nil {
			return nil, err
		}
		if len(notOwned) > 0 {
			return nil, aisle.Errorf(aisle.EFORBIDDEN, "product %s was not created by this retailer", notOwned[0])
		}
	}
	return s.publish(ctx, events)
}

// UpsertAssortment publishes assortment.upserted for each item of one store
// (the store's retailer, service keys). The products must exist.
func (s *Service) UpsertAssortment(ctx context.Context, storeID string, items []aisle.Assortment, idempotencyKey *string) ([]string, error) {
	ids := make([]string, len(items))
	for i := range items {
		items[i].StoreID = storeID
		ids[i] = items[i].ProductID
	}
	return s.changeAssortment(ctx, "upsertAssortment", aisle.TypeAssortmentUpserted, storeID, ids, idempotencyKey, func(i int) any { return items[i] })
}

// RemoveAssortment publishes assortment.removed for each product of one
// store (the store's retailer, service keys).
func (s *Service) RemoveAssortment(ctx context.Context, storeID string, productIDs []string, idempotencyKey *string) ([]string, error) {
	return s.changeAssortment(ctx, "removeAssortment", aisle.TypeAssortmentRemoved, storeID, productIDs, idempotencyKey, func(i int) any {
		return aisle.Assortment{StoreID: storeID, ProductID: productIDs[i]}
	})
}

func (s *Service) changeAssortment(ctx context.Context, mutation, eventType, storeID string, productIDs []string, idempotencyKey *string, data func(int) any) ([]string, error) {
	p, err := requireMerchant(ctx)
	if err != nil {
		return nil, err
	}
	if err := aisle.ValidateID("storeId", storeID); err != nil {
		return nil, err
	}
	field := "items"
	if eventType == aisle.TypeAssortmentRemoved {
		field = "productIds"
	}
	events, err := s.build(p, mutation, field, eventType, productIDs, idempotencyKey, data)
	if err != nil {
		return nil, err
	}
	retailerID, err := s.catalog.StoreRetailer(ctx, storeID)
	if err != nil {
		return nil, err
	}
	if !p.CanManageStore(retailerID) {
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "store %s belongs to another retailer", storeID)
	}
	sps := make([]aisle.StoreProduct, len(productIDs))
	for i, id := range productIDs {
		sps[i] = aisle.StoreProduct{StoreID: storeID, ProductID: id}
	}
	missing, err := s.catalog.MissingStoreProducts(ctx, sps)
	if err != nil {
		return nil, err
	}
	for i, sp := range sps {
		if reason, ok := missing[sp]; ok {
			return nil, aisle.Errorf(aisle.ENOTFOUND, "%s[%d]: %s", field, i, reason)
		}
	}
	return s.publish(ctx, events)
}

// build makes and validates one event per item, all or nothing: the first
// bad item fails the call, naming its index. ids are the items' entity ids,
// which may not repeat.
func (s *Service) build(p *aisle.Principal, mutation, field, eventType string, ids []string, idempotencyKey *string, data func(int) any) ([]*aisle.Decoded, error) {
	switch {
	case len(ids) == 0:
		return nil, aisle.Errorf(aisle.EINVALID, "no %s", field)
	case len(ids) > MaxItemsPerCall:
		return nil, aisle.Errorf(aisle.EINVALID, "%d %s, more than %d in one call", len(ids), field, MaxItemsPerCall)
	}
	now := s.Now()
	seen := make(map[string]int, len(ids))
	events := make([]*aisle.Decoded, len(ids))
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			return nil, aisle.Errorf(aisle.EINVALID, "%s[%d]: %s is also %s[%d]", field, i, id, field, j)
		}
		seen[id] = i
		eventID, err := aisle.EventIDFor(p, mutation, idempotencyKey, i)
		if err != nil {
			return nil, err
		}
		ev, err := aisle.BuildEvent(eventID, eventType, now, now, data(i))
		if err != nil {
			return nil, aisle.Errorf(aisle.EINVALID, "%s[%d]: %s", field, i, aisle.ErrorMessage(err))
		}
		events[i] = ev
	}
	return events, nil
}

func (s *Service) publish(ctx context.Context, events []*aisle.Decoded) ([]string, error) {
	ids, err := s.publisher.PublishEvents(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("publish catalog events: %w", err)
	}
	return ids, nil
}

// requireMerchant admits retailer and service keys.
func requireMerchant(ctx context.Context) (*aisle.Principal, error) {
	p := aisle.PrincipalFromContext(ctx)
	switch {
	case !p.Authenticated():
		return nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	case p.Role != aisle.RoleRetailer && p.Role != aisle.RoleService:
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "only retailer and service keys may change the catalog")
	}
	return p, nil
}
