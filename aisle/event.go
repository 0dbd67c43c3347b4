package aisle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kafka topics (docs/design.md "Event envelope").
const (
	TopicInventory = "aisle.inventory"
	TopicPicking   = "aisle.picking"
	TopicSessions  = "aisle.sessions"
	TopicOrders    = "aisle.orders"
	TopicLabels    = "aisle.labels"
	TopicDLQ       = "aisle.dlq"
)

// EventTopics are the topics the stream workers consume.
var EventTopics = []string{TopicInventory, TopicPicking, TopicSessions, TopicOrders, TopicLabels, TopicCatalog}

// Event types.
const (
	TypeInventoryLevel             = "inventory.level"
	TypeInventorySnapshotCompleted = "inventory.snapshot_completed"
	TypePickFound                  = "pick.found"
	TypePickNotFound               = "pick.not_found"
	TypePickReplaced               = "pick.replaced"

	TypeSessionView           = "session.view"
	TypeSessionSearch         = "session.search"
	TypeSessionAddToCart      = "session.add_to_cart"
	TypeSessionRemoveFromCart = "session.remove_from_cart"
	TypeSessionCheckout       = "session.checkout"

	TypeOrderPlaced   = "order.placed"
	TypePaymentFailed = "payment.failed"
	TypeOrderLabeled  = "order.labeled"
)

// MaxEventBytes bounds one record value; larger records are rejected.
const MaxEventBytes = 64 << 10

// MaxClockSkew is how far in the future an event time may be before the event
// is rejected: producers' clocks drift, but not by more than this.
const MaxClockSkew = 5 * time.Minute

// maxIDLength bounds every identifier carried in an event.
const maxIDLength = 128

// Event is the envelope every Kafka record value carries.
type Event struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time"`
	Source string          `json:"source"`
	Data   json.RawMessage `json:"data"`
}

// InventoryLevel is the data of an inventory.level event: a retailer feed's
// count of a product at a store.
type InventoryLevel struct {
	StoreID   string `json:"store_id"`
	ProductID string `json:"product_id"`
	// Quantity is the retailer system's count: it may be negative (sales
	// recorded against units never received), which says "none" more
	// firmly than zero.
	Quantity *int64 `json:"quantity"`
	// CountedAt is when the count was taken, when the feed says so; the
	// event's time is when it was sent, often hours later. At most the
	// event time.
	CountedAt *time.Time `json:"counted_at,omitempty"`
	// Feed says what kind of feed sent the level (FeedSnapshot, FeedDelta);
	// empty for a feed that does not say. Every kind means the same for
	// this product: its count is now Quantity. Only a snapshot says more,
	// about the products it leaves out, once it is complete (see
	// SnapshotCompleted).
	Feed string `json:"feed,omitempty"`
	// SnapshotID names the snapshot a FeedSnapshot level belongs to;
	// required with it and forbidden otherwise.
	SnapshotID string `json:"snapshot_id,omitempty"`
}

// Feed kinds of an inventory.level (docs/events.md).
const (
	// FeedSnapshot: the level is one of a full count of the store, named
	// by its snapshot_id; once the snapshot is complete
	// (inventory.snapshot_completed), a product the store carries that
	// got no level of it counts as zero.
	FeedSnapshot = "snapshot"
	// FeedDelta: the feed sends only the products whose count changed,
	// each with its new count (not the change); a product it leaves out
	// keeps the count it had.
	FeedDelta = "delta"
)

// CountedTime is when the count was taken: CountedAt, else the event time.
func (l *InventoryLevel) CountedTime(eventTime time.Time) time.Time {
	return countedTime(l.CountedAt, eventTime)
}

func countedTime(countedAt *time.Time, eventTime time.Time) time.Time {
	if countedAt != nil {
		return *countedAt
	}
	return eventTime
}

// MaxSnapshotLevels bounds the levels of one snapshot: far above the
// products a store carries (~1,600), so that a count beyond it is a
// producer's mistake.
const MaxSnapshotLevels = 1_000_000

// SnapshotCompleted is the data of an inventory.snapshot_completed event:
// the feed has sent every level of a full snapshot of the store's counts.
// Once Levels distinct products have a level of the snapshot, every product
// the store carries that got none counts as zero, counted at CountedAt.
type SnapshotCompleted struct {
	StoreID    string `json:"store_id"`
	SnapshotID string `json:"snapshot_id"`
	// Levels is how many distinct products the snapshot has a level for.
	// Until that many have arrived the snapshot is partial and implies
	// nothing about the products it leaves out.
	Levels *int64 `json:"levels"`
	// CountedAt is when the snapshot was counted, at most the event time;
	// defaults to the event time.
	CountedAt *time.Time `json:"counted_at,omitempty"`
}

// CountedTime is when the snapshot was counted: CountedAt, else the event time.
func (c *SnapshotCompleted) CountedTime(eventTime time.Time) time.Time {
	return countedTime(c.CountedAt, eventTime)
}

// Pick is the data of pick.found, pick.not_found and pick.replaced events.
type Pick struct {
	StoreID              string `json:"store_id"`
	ProductID            string `json:"product_id"`
	ShopperID            string `json:"shopper_id"`
	OrderID              string `json:"order_id"`
	ReplacementProductID string `json:"replacement_product_id,omitempty"`
}

// typeTopics says which topic each event type travels on, in the order
// the event catalog (docs/events.md) lists them.
var typeTopics = []struct{ eventType, topic string }{
	{TypeInventoryLevel, TopicInventory},
	{TypeInventorySnapshotCompleted, TopicInventory},
	{TypePickFound, TopicPicking},
	{TypePickNotFound, TopicPicking},
	{TypePickReplaced, TopicPicking},
	{TypeSessionView, TopicSessions},
	{TypeSessionAddToCart, TopicSessions},
	{TypeSessionRemoveFromCart, TopicSessions},
	{TypeSessionSearch, TopicSessions},
	{TypeSessionCheckout, TopicSessions},
	{TypeOrderPlaced, TopicOrders},
	{TypePaymentFailed, TopicOrders},
	{TypeOrderLabeled, TopicLabels},
	{TypeRetailerUpserted, TopicCatalog},
	{TypeStoreUpserted, TopicCatalog},
	{TypeProductUpserted, TopicCatalog},
	{TypeAssortmentUpserted, TopicCatalog},
	{TypeAssortmentRemoved, TopicCatalog},
}

// EventTypes returns every event type the decoder accepts.
func EventTypes() []string {
	types := make([]string, len(typeTopics))
	for i, tt := range typeTopics {
		types[i] = tt.eventType
	}
	return types
}

// TopicFor returns the topic an event type belongs to.
func TopicFor(eventType string) (string, error) {
	for _, tt := range typeTopics {
		if tt.eventType == eventType {
			return tt.topic, nil
		}
	}
	return "", Errorf(EINVALID, "unknown event type %q", eventType)
}

// StoreProduct identifies one product at one store; its String form is the
// record key of inventory and picking events.
type StoreProduct struct {
	StoreID   string
	ProductID string
}

func (sp StoreProduct) String() string { return sp.StoreID + ":" + sp.ProductID }

// Decoded is an event whose envelope and data have been validated. Exactly
// one of the data pointers is set, by type.
type Decoded struct {
	Event
	Inventory     *InventoryLevel    // inventory.level
	Snapshot      *SnapshotCompleted // inventory.snapshot_completed
	Pick          *Pick              // pick.*
	Session       *SessionEvent      // session.*
	Order         *OrderPlaced       // order.placed
	PaymentFailed *PaymentFailed     // payment.failed
	Label         *OrderLabeled      // order.labeled

	Retailer   *RetailerUpserted // retailer.upserted
	Store      *StoreUpserted    // store.upserted
	Product    *ProductUpserted  // product.upserted
	Assortment *Assortment       // assortment.upserted, assortment.removed
}

// StoreProduct returns the store-product an inventory level or picking
// event is about.
func (d *Decoded) StoreProduct() StoreProduct {
	if d.Inventory != nil {
		return StoreProduct{d.Inventory.StoreID, d.Inventory.ProductID}
	}
	return StoreProduct{d.Pick.StoreID, d.Pick.ProductID}
}

// Key is the record key of the event: the entity it is about, so that one
// entity's events stay ordered in one partition (docs/design.md "Event envelope").
func (d *Decoded) Key() string {
	switch {
	case d.Session != nil:
		return d.Session.SessionID
	case d.Order != nil:
		return d.Order.UserID
	case d.PaymentFailed != nil:
		return d.PaymentFailed.UserID
	case d.Label != nil:
		return d.Label.OrderID
	case d.Retailer != nil || d.Store != nil || d.Product != nil || d.Assortment != nil:
		return d.catalogKey()
	case d.Snapshot != nil:
		return d.Snapshot.StoreID
	}
	return d.StoreProduct().String()
}

// References returns the stores and products the event names, which must
// exist in the catalog for the event to be applied.
func (d *Decoded) References() (storeIDs, productIDs []string) {
	switch {
	case d.Inventory != nil:
		return []string{d.Inventory.StoreID}, []string{d.Inventory.ProductID}
	case d.Snapshot != nil:
		return []string{d.Snapshot.StoreID}, nil
	case d.Pick != nil:
		productIDs = []string{d.Pick.ProductID}
		if d.Pick.ReplacementProductID != "" {
			productIDs = append(productIDs, d.Pick.ReplacementProductID)
		}
		return []string{d.Pick.StoreID}, productIDs
	case d.Session != nil:
		if d.Session.ProductID != "" {
			productIDs = []string{d.Session.ProductID}
		}
		return []string{d.Session.StoreID}, productIDs
	case d.Order != nil:
		for _, it := range d.Order.Items {
			productIDs = append(productIDs, it.ProductID)
		}
		return []string{d.Order.StoreID}, productIDs
	case d.Assortment != nil:
		return []string{d.Assortment.StoreID}, []string{d.Assortment.ProductID}
	}
	return nil, nil
}

// DecodeEvent parses and validates one record value. It checks the envelope,
// that the type belongs on topic (when topic is not empty), the data fields
// and that the event time is not beyond now+MaxClockSkew. Every failure is an
// EINVALID *Error whose message says what is wrong.
func DecodeEvent(value []byte, topic string, now time.Time) (*Decoded, error) {
	if len(value) == 0 {
		return nil, Errorf(EINVALID, "empty record value")
	}
	if len(value) > MaxEventBytes {
		return nil, Errorf(EINVALID, "event is %d bytes, more than the limit of %d", len(value), MaxEventBytes)
	}
	var ev Event
	if err := decodeStrict(value, &ev); err != nil {
		return nil, Errorf(EINVALID, "bad envelope: %s", err)
	}
	if err := ValidateID("id", ev.ID); err != nil {
		return nil, err
	}
	wantTopic, err := TopicFor(ev.Type)
	if err != nil {
		return nil, err
	}
	if topic != "" && topic != wantTopic {
		return nil, Errorf(EINVALID, "event type %q does not belong on topic %s (want %s)", ev.Type, topic, wantTopic)
	}
	if ev.Time.IsZero() {
		return nil, Errorf(EINVALID, "missing time")
	}
	if ev.Time.After(now.Add(MaxClockSkew)) {
		return nil, Errorf(EINVALID, "time %s is more than %s in the future", ev.Time.Format(time.RFC3339Nano), MaxClockSkew)
	}
	if len(ev.Data) == 0 || bytes.Equal(ev.Data, []byte("null")) {
		return nil, Errorf(EINVALID, "missing data")
	}
	d := &Decoded{Event: ev}
	var data interface{ validate(eventType string) error }
	switch wantTopic {
	case TopicInventory:
		if ev.Type == TypeInventorySnapshotCompleted {
			d.Snapshot = new(SnapshotCompleted)
			data = d.Snapshot
		} else {
			d.Inventory = new(InventoryLevel)
			data = d.Inventory
		}
	case TopicPicking:
		d.Pick = new(Pick)
		data = d.Pick
	case TopicSessions:
		d.Session = new(SessionEvent)
		data = d.Session
	case TopicLabels:
		d.Label = new(OrderLabeled)
		data = d.Label
	case TopicCatalog:
		data = d.newCatalogData(ev.Type)
	default:
		if ev.Type == TypeOrderPlaced {
			d.Order = new(OrderPlaced)
			data = d.Order
		} else {
			d.PaymentFailed = new(PaymentFailed)
			data = d.PaymentFailed
		}
	}
	if err := decodeStrict(ev.Data, data); err != nil {
		return nil, Errorf(EINVALID, "bad %s data: %s", ev.Type, err)
	}
	if err := data.validate(ev.Type); err != nil {
		return nil, err
	}
	if d.Inventory != nil {
		if err := checkCountedAt(d.Inventory.CountedAt, ev.Time); err != nil {
			return nil, err
		}
	}
	if d.Snapshot != nil {
		if err := checkCountedAt(d.Snapshot.CountedAt, ev.Time); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (l *InventoryLevel) validate(string) error {
	if err := validateIDs("store_id", l.StoreID, "product_id", l.ProductID); err != nil {
		return err
	}
	if l.Quantity == nil {
		return Errorf(EINVALID, "missing quantity")
	}
	switch l.Feed {
	case FeedSnapshot:
		return ValidateID("snapshot_id", l.SnapshotID)
	case "", FeedDelta:
		if l.SnapshotID != "" {
			return Errorf(EINVALID, "snapshot_id is only allowed with feed %q", FeedSnapshot)
		}
		return nil
	}
	return Errorf(EINVALID, "unknown feed %q: want %q or %q (or none)", l.Feed, FeedSnapshot, FeedDelta)
}

func (c *SnapshotCompleted) validate(string) error {
	if err := validateIDs("store_id", c.StoreID, "snapshot_id", c.SnapshotID); err != nil {
		return err
	}
	switch {
	case c.Levels == nil:
		return Errorf(EINVALID, "missing levels")
	case *c.Levels < 1 || *c.Levels > MaxSnapshotLevels:
		// An empty snapshot would zero every product of the store: far
		// more likely a broken export than an empty store.
		return Errorf(EINVALID, "levels %d is out of range: 1 to %d", *c.Levels, MaxSnapshotLevels)
	}
	return nil
}

// checkCountedAt refuses a count taken after the event that reports it.
func checkCountedAt(countedAt *time.Time, eventTime time.Time) error {
	if countedAt != nil && countedAt.After(eventTime) {
		return Errorf(EINVALID, "counted_at %s is after the event time %s", countedAt.Format(time.RFC3339Nano), eventTime.Format(time.RFC3339Nano))
	}
	return nil
}

func (p *Pick) validate(eventType string) error {
	err := validateIDs("store_id", p.StoreID, "product_id", p.ProductID, "shopper_id", p.ShopperID, "order_id", p.OrderID)
	if err != nil {
		return err
	}
	if eventType == TypePickReplaced {
		if err := ValidateID("replacement_product_id", p.ReplacementProductID); err != nil {
			return err
		}
	} else if p.ReplacementProductID != "" {
		return Errorf(EINVALID, "replacement_product_id is only allowed on %s", TypePickReplaced)
	}
	return nil
}

// validateIDs validates name/value pairs of identifiers.
func validateIDs(namesAndValues ...string) error {
	for i := 0; i+1 < len(namesAndValues); i += 2 {
		if err := ValidateID(namesAndValues[i], namesAndValues[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// ValidateID checks an identifier given by a client: non-empty, bounded,
// printable UTF-8 text (no NUL or other control character: PostgreSQL
// refuses NUL in text, so such an id could never be stored) and free of
// the characters we use as separators in keys. Every id of an event and
// every id argument of the API is checked by it.
func ValidateID(name, id string) error {
	switch {
	case id == "":
		return fieldErrorf(EINVALID, name, "missing %s")
	case len(id) > maxIDLength:
		return fieldErrorf(EINVALID, name, "%s is longer than %d bytes", maxIDLength)
	case !utf8.ValidString(id):
		return fieldErrorf(EINVALID, name, "%s %q is not valid UTF-8", id)
	case strings.ContainsFunc(id, unicode.IsControl):
		return fieldErrorf(EINVALID, name, "%s %q contains a control character", id)
	case strings.ContainsAny(id, ": {}"):
		return fieldErrorf(EINVALID, name, "%s %q contains a forbidden character (colon, brace or space)", id)
	}
	return nil
}

// decodeStrict decodes exactly one JSON object into v, rejecting unknown
// fields and trailing data so that typos in producers surface as errors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON object")
	}
	return nil
}

// Receipt says where a published event was written.
type Receipt struct {
	EventID   string
	Topic     string
	Partition int32
	Offset    int64
}
