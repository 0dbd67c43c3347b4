package recommend

import (
	"context"
	"fmt"
	"time"

	"github.com/aisle/aisle/aisle"
)

// SessionEventInput is a frontend's report of one session event.
type SessionEventInput struct {
	Type      string // aisle.TypeSessionView … TypeSessionCheckout
	SessionID string
	StoreID   string
	ProductID string // view and cart events
	Query     string // search
	OrderID   string // checkout
	UserID    string // required for service keys; a customer key's own user otherwise
	Time      time.Time
	// IdempotencyKey, when set, makes a retried call publish the same
	// event id (aisle.EventIDFor).
	IdempotencyKey *string
}

// RecordSessionEvent publishes a session event to Kafka. A customer records
// events of its own sessions only: the user is the key's, and a session that
// another user started is FORBIDDEN. A service records for any user, who
// must be named. A session belongs to the user of its first event (the
// stream applier enforces it, so two users racing for a new session id
// cannot share it).
func (s *Service) RecordSessionEvent(ctx context.Context, in SessionEventInput) (aisle.Receipt, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := canReadSessions(p); err != nil {
		return aisle.Receipt{}, err
	}
	userID, err := p.ActingUser(in.UserID, "userId")
	if err != nil {
		return aisle.Receipt{}, err
	}
	data := aisle.SessionEvent{
		SessionID: in.SessionID,
		UserID:    userID,
		StoreID:   in.StoreID,
		ProductID: in.ProductID,
		Query:     in.Query,
		OrderID:   in.OrderID,
	}
	id, err := aisle.EventIDFor(p, "recordSessionEvent", in.IdempotencyKey, 0)
	if err != nil {
		return aisle.Receipt{}, err
	}
	ev, err := s.validEvent(ctx, id, in.Type, in.Time, data)
	if err != nil {
		return aisle.Receipt{}, err
	}
	st, err := s.features.Session(ctx, in.SessionID)
	if err != nil {
		return aisle.Receipt{}, err
	}
	if st.Owner != "" && st.Owner != userID {
		return aisle.Receipt{}, aisle.Errorf(aisle.EFORBIDDEN, "this session belongs to another user")
	}
	receipt, err := s.publisher.Publish(ctx, ev.Event, "")
	if err != nil {
		return aisle.Receipt{}, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return receipt, nil
}

// validEvent builds the event and checks it as the stream workers will:
// its fields, and that its store and product exist.
func (s *Service) validEvent(ctx context.Context, id, eventType string, at time.Time, data aisle.SessionEvent) (*aisle.Decoded, error) {
	if topic, err := aisle.TopicFor(eventType); err != nil || topic != aisle.TopicSessions {
		return nil, aisle.Errorf(aisle.EINVALID, "%q is not a session event type", eventType)
	}
	decoded, err := aisle.BuildEvent(id, eventType, at, s.Now(), data)
	if err != nil {
		return nil, err
	}
	if err := s.catalog.RequireReferences(ctx, decoded); err != nil {
		return nil, err
	}
	return decoded, nil
}
