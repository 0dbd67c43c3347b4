// Package fraud scores orders for fraud risk in milliseconds: it reads the
// order's velocity features (features), scores them with the active model
// from the registry (catalog, models), stores every assessment for audit,
// publishes order.placed and labels, alerts operations, and trains new
// model versions from the event history.
package fraud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// DefaultModelPollInterval is how often serving checks which model version is
// active, so `aisle models activate` takes effect without a restart.
const DefaultModelPollInterval = 2 * time.Second

// maxReasons is how many reasons an assessment names at most.
const maxReasons = 3

// forgetTimeout bounds the delete that undoes an assessment whose order
// could not be published.
const forgetTimeout = 5 * time.Second

// outboxSize bounds the assessments waiting to be announced to riskAlerts
// subscribers; beyond it alerts are dropped (and counted), never waited for.
const outboxSize = 4096

// Publisher writes an event to the log (Kafka) and says where it landed.
type Publisher interface {
	Publish(ctx context.Context, ev aisle.Event, key string) (aisle.Receipt, error)
}

// activeModel is the model serving scores with.
type activeModel struct {
	version int64
	scorer  *models.FraudScorer
}

// Service assesses and labels orders. It is safe for concurrent use.
type Service struct {
	catalog    *postgres.DB
	features   *features.Store
	publisher  Publisher
	thresholds models.FraudThresholds
	model      atomic.Pointer[activeModel] // nil until a version is active
	alerts     *AlertHub
	outbox     chan postgres.FraudAssessment // new assessments for RunAlerts to announce
	log        *slog.Logger
	Now        func() time.Time
}

// NewService returns a Service that has loaded the active model, if any.
func NewService(ctx context.Context, db *postgres.DB, fs *features.Store, pub Publisher, thresholds models.FraudThresholds, log *slog.Logger) (*Service, error) {
	if db == nil || fs == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("fraud: nil dependency")
	}
	if err := thresholds.Validate(); err != nil {
		return nil, fmt.Errorf("fraud: %w", err)
	}
	s := &Service{
		catalog: db, features: fs, publisher: pub, thresholds: thresholds, log: log, Now: time.Now,
		alerts: NewAlertHub(), outbox: make(chan postgres.FraudAssessment, outboxSize),
	}
	if err := s.ReloadModel(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ReloadModel swaps to the active model version when it changed, so that
// `aisle models activate` takes effect without a restart; assessments in
// flight finish with the model they started with.
func (s *Service) ReloadModel(ctx context.Context) error {
	version, ok, err := s.catalog.ActiveFraudModelVersion(ctx)
	if err != nil {
		return err
	}
	cur := s.model.Load()
	switch {
	case !ok:
		// Deactivating every version is not possible through the registry;
		// keep serving what we have.
		return nil
	case cur != nil && cur.version == version:
		return nil
	}
	v, err := s.catalog.FraudModel(ctx, version)
	if err != nil {
		return err
	}
	scorer, err := models.NewFraudScorer(v.Model)
	if err != nil {
		return fmt.Errorf("fraud model version %d: %w", version, err)
	}
	s.model.Store(&activeModel{version: version, scorer: scorer})
	servingModel.Set(float64(version))
	s.log.Info("fraud: serving model", "version", version)
	return nil
}

func requireFraudAccess(p *aisle.Principal) error {
	if !p.Authenticated() {
		return aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	}
	if !p.CanSeeFraud() {
		return aisle.Errorf(aisle.EFORBIDDEN, "fraud risk is only available to ops and service keys")
	}
	return nil
}

// Order is an order to assess: the data of order.placed, and its time.
type Order struct {
	aisle.OrderPlaced
	Time time.Time // zero: now
	// IdempotencyKey is checked but changes nothing: order.placed's event
	// id derives from the order id, so an order is published once anyway.
	IdempotencyKey *string
}

// Assess scores an order synchronously from its velocity features, which it
// updates with the order in the same step (features.AssessOrder), so that
// concurrent orders of one account, card or device see each other; the
// stream's later copy of order.placed changes them no more. It then stores
// the assessment, publishes order.placed and queues the assessment for
// riskAlerts subscribers (service keys only). An order is assessed once:
// assessing it again returns the stored assessment (and publishes the order
// again under the same event id, which the stream deduplicates). When the
// order cannot be published the new assessment is deleted again (see
// forget), so a failed call leaves no audit row. EUNAVAILABLE when no
// model version is active yet or a dependency is down.
func (s *Service) Assess(ctx context.Context, in Order) (postgres.FraudAssessment, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireFraudAccess(p); err != nil {
		return postgres.FraudAssessment{}, err
	}
	if err := aisle.ValidateIdempotencyKey(in.IdempotencyKey); err != nil {
		return postgres.FraudAssessment{}, err
	}
	if p.Role != aisle.RoleService {
		return postgres.FraudAssessment{}, aisle.Errorf(aisle.EFORBIDDEN, "only service keys assess orders")
	}
	ev, err := s.orderEvent(ctx, in)
	if err != nil {
		return postgres.FraudAssessment{}, err
	}
	m := s.model.Load()
	if m == nil {
		return postgres.FraudAssessment{}, aisle.Errorf(aisle.EUNAVAILABLE, "no active fraud model yet: run `aisle train fraud --activate`")
	}
	order := features.FraudOrder(ev)
	snap, err := s.features.AssessOrder(ctx, ev)
	if err != nil {
		return postgres.FraudAssessment{}, err
	}
	raw := models.ComputeFraudFeatures(order, snap)
	score, contributions := m.scorer.Score(raw)
	values := make(map[string]float64, len(raw))
	for i, v := range raw {
		values[models.FraudFeatures[i].Name] = v
	}
	a := postgres.FraudAssessment{
		OrderID:      order.OrderID,
		UserID:       order.UserID,
		StoreID:      order.StoreID,
		AmountCents:  order.AmountCents,
		OrderTime:    order.At,
		Score:        score,
		Decision:     s.thresholds.Decide(score),
		Reasons:      models.Reasons(contributions, maxReasons),
		Features:     values,
		ModelVersion: m.version,
		AssessedAt:   s.Now().UTC().Truncate(time.Microsecond), // as Postgres keeps it
	}
	// An order assessed before keeps its first assessment (the insert
	// returns it); publishing again is harmless, see above.
	stored, created, err := s.catalog.SaveFraudAssessment(ctx, a)
	if err != nil {
		return postgres.FraudAssessment{}, err
	}
	if err := s.publish(ctx, ev); err != nil {
		if created {
			s.forget(ctx, stored)
		}
		return postgres.FraudAssessment{}, err
	}
	if created {
		assessments.WithLabelValues(string(stored.Decision)).Inc()
		select {
		case s.outbox <- stored:
		default:
			alertsUnsent.Inc()
		}
	}
	return stored, nil
}

// forget deletes an assessment this call stored but whose order.placed
// could not be published, so that no assessment exists for an order the
// stream never saw, and a retry assesses it afresh (and alerts). If the
// delete fails too, the row stays: a retry then returns it and publishes
// the order, which completes it, but sends no alert. A failure can be
// ambiguous (the record reached the broker before the connection dropped),
// and a concurrent retry may have published the order meanwhile: then the
// stream has the order without its assessment until the caller retries,
// and that retry's score counts the order once in its own velocity
// features. The order's velocity contribution stays either way: it is an
// attempt the card, device and account made, and a retry does not count
// it again.
func (s *Service) forget(ctx context.Context, a postgres.FraudAssessment) {
	// The request's context may be what ran out; the delete gets its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forgetTimeout)
	defer cancel()
	if err := s.catalog.DeleteFraudAssessment(ctx, a.OrderID, a.AssessedAt); err != nil {
		s.log.Error("fraud: assessment kept for an order that was not published", "order_id", a.OrderID, "err", err)
	}
}

// orderEvent builds the order.placed event of in and checks it as the stream
// workers will: fields, and that its store and products exist. Its id
// derives from the order id, so publishing an order twice is one event.
func (s *Service) orderEvent(ctx context.Context, in Order) (*aisle.Decoded, error) {
	ev, err := aisle.BuildEvent(orderEventID(in.OrderID), aisle.TypeOrderPlaced, in.Time, s.Now(), in.OrderPlaced)
	if err != nil {
		return nil, aisle.InArgument(err, "input") // assessOrder(input:) mirrors order.placed
	}
	if err := s.catalog.RequireReferences(ctx, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

func (s *Service) publish(ctx context.Context, ev *aisle.Decoded) error {
	if _, err := s.publisher.Publish(ctx, ev.Event, ""); err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}

// RunAlerts carries alerts until ctx is done, then closes this process's
// riskAlerts subscriptions. It announces this process's new assessments to
// every API process through Redis pub/sub, off the request path (a failure
// only costs the alert: the assessment is stored), and feeds the
// assessments any process announces to the local subscribers.
func (s *Service) RunAlerts(ctx context.Context) error {
	defer s.alerts.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case a := <-s.outbox:
				payload, err := json.Marshal(a)
				if err == nil {
					err = s.features.PublishFraudAlert(ctx, payload)
				}
				if err != nil && ctx.Err() == nil {
					alertsUnsent.Inc()
					s.log.Warn("fraud: alert not sent", "order_id", a.OrderID, "err", err)
				}
			}
		}
	})
	g.Go(func() error {
		return s.features.WatchFraudAlerts(ctx, func(payload []byte) {
			var a postgres.FraudAssessment
			if err := json.Unmarshal(payload, &a); err != nil {
				s.log.Warn("fraud: bad alert message", "err", err)
				return
			}
			s.alerts.Publish(a)
		})
	})
	return g.Wait()
}

// OrderRisk returns the stored assessment of an order, and false when the
// order was never assessed (ops and service keys only).
func (s *Service) OrderRisk(ctx context.Context, orderID string) (postgres.FraudAssessment, bool, error) {
	if err := requireFraudAccess(aisle.PrincipalFromContext(ctx)); err != nil {
		return postgres.FraudAssessment{}, false, err
	}
	if err := aisle.ValidateID("orderId", orderID); err != nil {
		return postgres.FraudAssessment{}, false, err
	}
	a, err := s.catalog.FraudAssessment(ctx, orderID)
	if aisle.ErrorCode(err) == aisle.ENOTFOUND {
		return postgres.FraudAssessment{}, false, nil
	}
	return a, err == nil, err
}

// Label publishes the outcome of an order, known now (ops and service keys).
// The first label of an order counts; later ones are ignored downstream.
// idempotencyKey, when set, makes a retried call publish the same event id.
func (s *Service) Label(ctx context.Context, orderID string, fraud bool, idempotencyKey *string) (aisle.Receipt, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireFraudAccess(p); err != nil {
		return aisle.Receipt{}, err
	}
	id, err := aisle.EventIDFor(p, "labelOrder", idempotencyKey, 0)
	if err != nil {
		return aisle.Receipt{}, err
	}
	ev, err := aisle.BuildEvent(id, aisle.TypeOrderLabeled, time.Time{}, s.Now(), aisle.OrderLabeled{OrderID: orderID, Fraud: &fraud})
	if err != nil {
		return aisle.Receipt{}, err
	}
	receipt, err := s.publisher.Publish(ctx, ev.Event, "")
	if err != nil {
		return aisle.Receipt{}, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return receipt, nil
}

// SubscribeAlerts subscribes to assessments scoring at least minScore, made
// from now on by any API process (ops and service keys).
func (s *Service) SubscribeAlerts(ctx context.Context, minScore float64) (*AlertSubscription, error) {
	if err := requireFraudAccess(aisle.PrincipalFromContext(ctx)); err != nil {
		return nil, err
	}
	if math.IsNaN(minScore) || minScore < 0 || minScore > 1 {
		return nil, aisle.Errorf(aisle.EINVALID, "minScore must be between 0 and 1, got %v", minScore)
	}
	return s.alerts.Subscribe(minScore), nil
}

// orderEventID is the event id of an order's order.placed: the order id,
// or its hash when the id would be too long for an event id.
func orderEventID(orderID string) string {
	const prefix, maxEventID = "e-order-", 128 // aisle.ValidateID's bound
	if len(prefix)+len(orderID) <= maxEventID {
		return prefix + orderID
	}
	sum := sha256.Sum256([]byte(orderID))
	return prefix + hex.EncodeToString(sum[:])
}
