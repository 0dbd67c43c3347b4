package availability

import (
	"context"
	"fmt"
	"time"

	"github.com/aisle/aisle/aisle"
)

// PickReport is a shopper's report of one pick.
type PickReport struct {
	StoreID              string
	ProductID            string
	OrderID              string
	ShopperID            string // defaults to the user bound to the caller's key
	Type                 string // aisle.TypePickFound, TypePickNotFound or TypePickReplaced
	ReplacementProductID string
	Time                 time.Time // zero: now
}

// ReportPick publishes a pick event for a shopper or service caller.
func (s *Service) ReportPick(ctx context.Context, r PickReport) (aisle.Receipt, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return aisle.Receipt{}, err
	}
	if !p.CanReportPicks() {
		return aisle.Receipt{}, aisle.Errorf(aisle.EFORBIDDEN, "only shopper and service keys may report picks")
	}
	shopperID, err := p.ActingUser(r.ShopperID, "shopperId")
	if err != nil {
		return aisle.Receipt{}, err
	}
	data := aisle.Pick{
		StoreID:              r.StoreID,
		ProductID:            r.ProductID,
		ShopperID:            shopperID,
		OrderID:              r.OrderID,
		ReplacementProductID: r.ReplacementProductID,
	}
	ev, err := s.validEvent(ctx, r.Type, r.Time, data)
	if err != nil {
		return aisle.Receipt{}, err
	}
	return s.publish(ctx, ev)
}

// UpdateInventory publishes a retailer's inventory level for one of its stores.
func (s *Service) UpdateInventory(ctx context.Context, storeID, productID string, quantity int64, at time.Time) (aisle.Receipt, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return aisle.Receipt{}, err
	}
	if p.Role != aisle.RoleService && p.Role != aisle.RoleRetailer {
		return aisle.Receipt{}, aisle.Errorf(aisle.EFORBIDDEN, "only retailer and service keys may push inventory")
	}
	ev, err := s.validEvent(ctx, aisle.TypeInventoryLevel, at, aisle.InventoryLevel{StoreID: storeID, ProductID: productID, Quantity: &quantity})
	if err != nil {
		return aisle.Receipt{}, err
	}
	retailerID, err := s.catalog.StoreRetailer(ctx, storeID)
	if err != nil {
		return aisle.Receipt{}, err
	}
	if !p.CanPushInventory(retailerID) {
		return aisle.Receipt{}, aisle.Errorf(aisle.EFORBIDDEN, "store %s belongs to another retailer", storeID)
	}
	return s.publish(ctx, ev)
}

func requireAuthenticated(p *aisle.Principal) error {
	if !p.Authenticated() {
		return aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	}
	return nil
}

// validEvent builds the event and checks it as the stream workers will:
// its fields, and that its store and product exist.
func (s *Service) validEvent(ctx context.Context, eventType string, at time.Time, data any) (*aisle.Decoded, error) {
	decoded, err := aisle.BuildEvent(aisle.NewEventID(), eventType, at, s.Now(), data)
	if err != nil {
		return nil, err
	}
	if err := s.catalog.RequireReferences(ctx, decoded); err != nil {
		return nil, err
	}
	return decoded, nil
}

func (s *Service) publish(ctx context.Context, ev *aisle.Decoded) (aisle.Receipt, error) {
	receipt, err := s.publisher.Publish(ctx, ev.Event, ev.StoreProduct().String())
	if err != nil {
		return aisle.Receipt{}, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return receipt, nil
}
