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
	// IdempotencyKey, when set, makes a retried call publish the same
	// event id (aisle.EventIDFor).
	IdempotencyKey *string
}

// MaxPicksPerCall bounds ReportPicks.
const MaxPicksPerCall = 200

// ReportPick publishes a pick event for a shopper or service caller.
func (s *Service) ReportPick(ctx context.Context, r PickReport) (aisle.Receipt, error) {
	events, err := s.pickEvents(ctx, "reportPick", []PickReport{r})
	if err != nil {
		return aisle.Receipt{}, err
	}
	return s.publish(ctx, events[0])
}

// ReportPicks publishes up to MaxPicksPerCall picks in one call (the
// reportPicks mutation fills in one order's store, order, shopper and
// idempotency key). Every pick is validated before any is published: one
// bad pick publishes none. It returns the event ids in input order.
func (s *Service) ReportPicks(ctx context.Context, reports []PickReport) ([]string, error) {
	switch {
	case len(reports) == 0:
		return nil, aisle.Errorf(aisle.EINVALID, "no picks")
	case len(reports) > MaxPicksPerCall:
		return nil, aisle.Errorf(aisle.EINVALID, "%d picks, more than %d in one call", len(reports), MaxPicksPerCall)
	}
	events, err := s.pickEvents(ctx, "reportPicks", reports)
	if err != nil {
		return nil, err
	}
	ids, err := s.publisher.PublishEvents(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("publish picks: %w", err)
	}
	return ids, nil
}

// pickEvents authorizes the caller and builds and checks one pick event per
// report; the first bad report fails them all, naming its index when there
// are several.
func (s *Service) pickEvents(ctx context.Context, mutation string, reports []PickReport) ([]*aisle.Decoded, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return nil, err
	}
	if !p.CanReportPicks() {
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "only shopper and service keys may report picks")
	}
	events := make([]*aisle.Decoded, len(reports))
	for i, r := range reports {
		ev, err := s.pickEvent(ctx, p, mutation, i, r)
		if err != nil {
			if len(reports) > 1 {
				return nil, itemError(err, "picks", i)
			}
			return nil, err
		}
		events[i] = ev
	}
	return events, nil
}

func (s *Service) pickEvent(ctx context.Context, p *aisle.Principal, mutation string, i int, r PickReport) (*aisle.Decoded, error) {
	shopperID, err := p.ActingUser(r.ShopperID, "shopperId")
	if err != nil {
		return nil, err
	}
	id, err := aisle.EventIDFor(p, mutation, r.IdempotencyKey, i)
	if err != nil {
		return nil, err
	}
	data := aisle.Pick{
		StoreID:              r.StoreID,
		ProductID:            r.ProductID,
		ShopperID:            shopperID,
		OrderID:              r.OrderID,
		ReplacementProductID: r.ReplacementProductID,
	}
	return s.validEvent(ctx, id, r.Type, r.Time, data)
}

// itemError says which item of a batch err is about, keeping its code.
func itemError(err error, field string, i int) error {
	if code := aisle.ErrorCode(err); code != aisle.EINTERNAL {
		return aisle.Errorf(code, "%s[%d]: %s", field, i, aisle.ErrorMessage(err))
	}
	return err
}

// InventoryLevel is a retailer's count of one product at a store.
type InventoryLevel struct {
	ProductID string
	Quantity  int64
	Time      time.Time // zero: now
}

// MaxLevelsPerCall bounds UpdateInventory.
const MaxLevelsPerCall = 1000

// InventoryFeed says what kind of feed the levels of an UpdateInventory
// call come from (docs/events.md, inventory.level).
type InventoryFeed struct {
	Kind       string // "" (the feed does not say), aisle.FeedDelta or aisle.FeedSnapshot
	SnapshotID string // with FeedSnapshot: the snapshot the levels belong to
	// CountedAt, with FeedSnapshot, is when the snapshot was counted: the
	// counted_at of every level and of the completion. Zero: each event's
	// time.
	CountedAt time.Time
	// CompleteWithLevels, when above 0 (FeedSnapshot only), completes the
	// snapshot after the call's levels: it is how many distinct products
	// the whole snapshot, over all its calls, has a level for.
	CompleteWithLevels int64
}

// UpdateInventory publishes a retailer's inventory levels for one of its
// stores, one inventory.level event each, and returns where each was
// written, in input order; a call that completes a snapshot publishes its
// inventory.snapshot_completed last, after the levels. Every event is
// validated, and the store checked against the caller, before any is
// published: one bad level publishes none. The events go out in one produce
// batch, which Kafka does not make atomic: when the broker fails during it,
// some may have been written and the call fails with EUNAVAILABLE.
// idempotencyKey (as in PickReport) gives event i the same event id on
// every retry, so a retry after such a failure writes the events again
// under their ids and the stream applies each once.
func (s *Service) UpdateInventory(ctx context.Context, storeID string, levels []InventoryLevel, feed InventoryFeed, idempotencyKey *string) ([]aisle.Receipt, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return nil, err
	}
	if p.Role != aisle.RoleService && p.Role != aisle.RoleRetailer {
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "only retailer and service keys may push inventory")
	}
	switch {
	case len(levels) == 0:
		return nil, aisle.Errorf(aisle.EINVALID, "no inventory levels")
	case len(levels) > MaxLevelsPerCall:
		return nil, aisle.Errorf(aisle.EINVALID, "%d inventory levels, more than %d in one call", len(levels), MaxLevelsPerCall)
	case feed.Kind != aisle.FeedSnapshot && (feed.SnapshotID != "" || !feed.CountedAt.IsZero() || feed.CompleteWithLevels != 0):
		return nil, aisle.Errorf(aisle.EINVALID, "a snapshot id, count time or completion needs the snapshot feed kind")
	case feed.CompleteWithLevels < 0:
		return nil, aisle.Errorf(aisle.EINVALID, "completeWithLevels %d is negative", feed.CompleteWithLevels)
	}
	if err := aisle.ValidateID("storeId", storeID); err != nil {
		return nil, err
	}
	retailerID, err := s.catalog.StoreRetailer(ctx, storeID)
	if err != nil {
		return nil, err
	}
	if !p.CanPushInventory(retailerID) {
		return nil, aisle.Errorf(aisle.EFORBIDDEN, "store %s belongs to another retailer", storeID)
	}
	events := make([]*aisle.Decoded, len(levels), len(levels)+1)
	for i, l := range levels {
		ev, err := s.inventoryEvent(ctx, p, storeID, i, l, feed, idempotencyKey)
		if err != nil {
			if len(levels) > 1 {
				return nil, itemError(err, "levels", i)
			}
			return nil, err
		}
		events[i] = ev
	}
	if feed.CompleteWithLevels > 0 {
		ev, err := s.snapshotCompletedEvent(ctx, p, storeID, events, feed, idempotencyKey)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	receipts, err := s.publisher.PublishBatch(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("publish inventory levels: %w", err)
	}
	return receipts, nil
}

func (s *Service) inventoryEvent(ctx context.Context, p *aisle.Principal, storeID string, i int, l InventoryLevel, feed InventoryFeed, idempotencyKey *string) (*aisle.Decoded, error) {
	id, err := aisle.EventIDFor(p, "updateInventory", idempotencyKey, i)
	if err != nil {
		return nil, err
	}
	quantity := l.Quantity
	data := aisle.InventoryLevel{StoreID: storeID, ProductID: l.ProductID, Quantity: &quantity, Feed: feed.Kind, SnapshotID: feed.SnapshotID, CountedAt: optionalTime(feed.CountedAt)}
	return s.validEvent(ctx, id, aisle.TypeInventoryLevel, l.Time, data)
}

// snapshotCompletedEvent completes feed's snapshot at the time of the
// call's latest level; its id follows the levels' ids.
func (s *Service) snapshotCompletedEvent(ctx context.Context, p *aisle.Principal, storeID string, levels []*aisle.Decoded, feed InventoryFeed, idempotencyKey *string) (*aisle.Decoded, error) {
	id, err := aisle.EventIDFor(p, "updateInventory", idempotencyKey, len(levels))
	if err != nil {
		return nil, err
	}
	var at time.Time
	for _, l := range levels {
		if l.Time.After(at) {
			at = l.Time
		}
	}
	n := feed.CompleteWithLevels
	data := aisle.SnapshotCompleted{StoreID: storeID, SnapshotID: feed.SnapshotID, Levels: &n, CountedAt: optionalTime(feed.CountedAt)}
	return s.validEvent(ctx, id, aisle.TypeInventorySnapshotCompleted, at, data)
}

// optionalTime is nil for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func requireAuthenticated(p *aisle.Principal) error {
	if !p.Authenticated() {
		return aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	}
	return nil
}

// validEvent builds the event and checks it as the stream workers will:
// its fields, and that its store and product exist.
func (s *Service) validEvent(ctx context.Context, id, eventType string, at time.Time, data any) (*aisle.Decoded, error) {
	decoded, err := aisle.BuildEvent(id, eventType, at, s.Now(), data)
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
