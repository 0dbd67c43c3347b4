package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// Fraud velocity in Redis: one hash per entity ({prefix}fv:{b}{kind}:{id})
// holding the fields of models.OrderOps and friends, one record per order
// ({prefix}fo:{b}{orderID}) so that a label can find the order's entities,
// and one per label ({prefix}fl:{b}{orderID}), the order's bucket for both.
// An event changes each entity with a script call of its own, effectively
// once by the bookkeeping in that entity's hash (applied.lua). The scripts
// mirror models.EntityState.Apply; reads return the hashes for
// models.ComputeFraudFeatures.

//go:embed velocity.lua
var applyEntitySource string

//go:embed order.lua
var recordOrderSource string

//go:embed labels.lua
var recordLabelSource string

var (
	applyEntityScript = newApplierScript(applyEntitySource)
	recordOrderScript = redis.NewScript(recordOrderSource)
	recordLabelScript = redis.NewScript(recordLabelSource)
)

// FraudOrder converts an order.placed event for the models.
func FraudOrder(d *aisle.Decoded) models.FraudOrder {
	o := d.Order
	return models.FraudOrder{
		OrderID: o.OrderID, UserID: o.UserID, StoreID: o.StoreID,
		Card: o.CardFingerprint, Device: o.DeviceID, IP: o.IP, Address: o.AddressHash,
		AmountCents: *o.AmountCents, At: d.Time,
	}
}

// FraudFailedPayment converts a payment.failed event for the models.
func FraudFailedPayment(d *aisle.Decoded) models.FraudFailedPayment {
	p := d.PaymentFailed
	return models.FraudFailedPayment{UserID: p.UserID, Card: p.CardFingerprint, Device: p.DeviceID, IP: p.IP, At: d.Time}
}

// labelSignature names the entities a label of o updates, then o's time
// (unix ms), which models.LabelOps needs; order.lua stores it in the order
// record and labels.lua returns it. Ids never contain spaces.
func labelSignature(o models.FraudOrder) string {
	parts := make([]string, 0, 5)
	for _, e := range models.LabelEntities(o) {
		parts = append(parts, e.ID)
	}
	return strings.Join(append(parts, strconv.FormatInt(o.At.UnixMilli(), 10)), " ")
}

// labelEntities parses a label signature into its entities and its order's
// time; nil when it is not one. A signature stored before it carried the
// time has the entities alone, and a zero time.
func labelEntities(sig string) ([]models.Entity, time.Time) {
	parts := strings.Split(sig, " ")
	kinds := []models.EntityKind{models.EntityCard, models.EntityDevice, models.EntityAddress, models.EntityStore}
	var orderAt time.Time
	switch len(parts) {
	case len(kinds):
	case len(kinds) + 1:
		ms, err := strconv.ParseInt(parts[len(kinds)], 10, 64)
		if err != nil {
			return nil, time.Time{}
		}
		orderAt = time.UnixMilli(ms)
	default:
		return nil, time.Time{}
	}
	out := make([]models.Entity, len(kinds))
	for k, kind := range kinds {
		out[k] = models.Entity{Kind: kind, ID: parts[k]}
	}
	return out, orderAt
}

// record identifies the record of u for order.lua and labels.lua: its
// partition's mark field and offset, or the event's digest when it did not
// come from Kafka.
func record(applier string, u aisle.Update) string {
	if f := markField(u.Origin); f != "" {
		return f + "=" + strconv.FormatInt(u.Origin.Offset, 10)
	}
	return digest(applier, u.Event.ID)
}

// ApplyVelocity applies order.placed and payment.failed events to the fraud
// velocity hashes: first each order's record (one pipelined round trip),
// then each event's operations on each of its entities, one script call per
// entity (one more). A second order.placed for an order id already recorded
// by another record is skipped. applied[i] reports whether updates[i]
// changed the features.
func (s *Store) ApplyVelocity(ctx context.Context, updates []aisle.Update) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	var orders []call
	for _, u := range updates {
		switch ev := u.Event; {
		case ev != nil && ev.Order != nil:
			o := FraudOrder(ev)
			orders = append(orders, call{recordOrderScript, []string{s.orderKey(o.OrderID), s.labelKey(o.OrderID)},
				[]any{record("velocity", u), labelSignature(o), s.ttl.Milliseconds()}})
		case ev != nil && ev.PaymentFailed != nil:
		default:
			return nil, errors.New("apply velocity: not an order.placed or payment.failed event")
		}
	}
	recorded, err := s.evalEach(ctx, orders)
	if err != nil {
		return nil, fmt.Errorf("apply velocity: record orders: %w", err)
	}

	var entities []call
	var owner []int // the update of each entity call
	for i, u := range updates {
		var ops []models.EntityOps
		var at time.Time
		if u.Event.Order != nil {
			r, _ := recorded[0].([]any)
			recorded = recorded[1:]
			if len(r) == 0 || r[0] != int64(1) {
				continue // another record's order
			}
			o := FraudOrder(u.Event)
			ops, at = models.OrderOps(o), o.At
			if len(r) == 3 { // a label that came first, counted with the order
				lt, _ := r[1].(int64)
				fraud, _ := r[2].(int64)
				ops = withOps(ops, models.LabelEntityOps(models.LabelEntities(o), o.At, time.UnixMilli(lt), fraud == 1))
			}
		} else {
			p := FraudFailedPayment(u.Event)
			ops, at = models.FailedPaymentOps(p), p.At
		}
		for _, e := range ops {
			entities = append(entities, s.entityCall("velocity", u, e, at, false))
			owner = append(owner, i)
		}
	}
	return s.applyEntities(ctx, "velocity", len(updates), entities, owner)
}

// withOps adds the operations of add to those of the same entity in ops,
// adding the entities that ops does not have yet.
func withOps(ops, add []models.EntityOps) []models.EntityOps {
	for _, a := range add {
		j := slices.IndexFunc(ops, func(eo models.EntityOps) bool { return eo.Entity == a.Entity })
		if j < 0 {
			ops = append(ops, models.EntityOps{Entity: a.Entity})
			j = len(ops) - 1
		}
		ops[j].Ops = append(slices.Clip(ops[j].Ops), a.Ops...)
	}
	return ops
}

// entityCall is the velocity.lua call that applies e's operations for u;
// with readBefore it returns the hash as it was before, too.
func (s *Store) entityCall(applier string, u aisle.Update, e models.EntityOps, at time.Time, readBefore bool) call {
	minute, hour, day, lastSeen := models.PruneCutoffs(at)
	read := "0"
	if readBefore {
		read = "1"
	}
	args := append(markArgs(applier, u), s.ttl.Milliseconds(), minute, hour, day, lastSeen, models.PruneAbove, models.MaxCounterparts, read)
	for _, op := range e.Ops {
		args = append(args, string(rune(op.Kind)), op.Field, op.Value)
	}
	return call{applyEntityScript, []string{s.entityKey(e.Entity)}, args}
}

// applyEntities runs the entity calls, owner[j] being the update of
// entities[j], and reports for each of n updates whether one of its calls
// changed something.
func (s *Store) applyEntities(ctx context.Context, what string, n int, entities []call, owner []int) ([]bool, error) {
	results, err := s.evalEach(ctx, entities)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", what, err)
	}
	applied := make([]bool, n)
	for j, r := range results {
		if r == int64(1) {
			applied[owner[j]] = true
		}
	}
	return applied, nil
}

// ApplyLabels applies order.labeled events: each label is counted in the
// delayed-label risk of its order's card, device, address and store, once,
// whether the label or the order arrives first (see labels.lua). The first
// label of an order wins; later ones are skipped. It takes two pipelined
// round trips: the labels, then the counts of those whose order is known.
// applied[i] reports whether updates[i] labelled its order now or in an
// earlier try of the step that failed before reporting it: a retried step
// counts what it applied, a redelivery after a step that reported it is a
// duplicate. A third round trip marks the applied labels reported.
func (s *Store) ApplyLabels(ctx context.Context, updates []aisle.Update) (applied []bool, err error) {
	applied, err = s.countLabels(ctx, updates)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	for i, u := range updates {
		if applied[i] {
			pipe.HSet(ctx, s.labelKey(u.Event.Label.OrderID), "@reported", "1")
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("apply labels: mark reported: %w", err)
	}
	return applied, nil
}

// countLabels is ApplyLabels but for marking the labels reported.
func (s *Store) countLabels(ctx context.Context, updates []aisle.Update) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	labels := make([]call, len(updates))
	for i, u := range updates {
		if u.Event == nil || u.Event.Label == nil {
			return nil, errors.New("apply labels: not an order.labeled event")
		}
		l := u.Event.Label
		fraud := 0
		if *l.Fraud {
			fraud = 1
		}
		labels[i] = call{recordLabelScript, []string{s.labelKey(l.OrderID), s.orderKey(l.OrderID)},
			[]any{record("labels", u), u.Event.Time.UnixMilli(), fraud, s.ttl.Milliseconds()}}
	}
	results, err := s.evalEach(ctx, labels)
	if err != nil {
		return nil, fmt.Errorf("apply labels: %w", err)
	}
	var entities []call
	var owner []int
	for i, res := range results {
		r, _ := res.([]any)
		if len(r) < 2 {
			continue // waits for its order, or another label came first
		}
		sig, _ := r[1].(string)
		l := updates[i].Event
		labelled, orderAt := labelEntities(sig)
		for _, op := range models.LabelEntityOps(labelled, orderAt, l.Time, *l.Label.Fraud) {
			entities = append(entities, s.entityCall("labels", updates[i], op, l.Time, false))
			owner = append(owner, i)
		}
	}
	applied, err = s.applyEntities(ctx, "labels", len(updates), entities, owner)
	if err != nil {
		return nil, err
	}
	for i, res := range results {
		// A label this record recorded is applied, even when it waits,
		// and also when an earlier try of the step recorded it and failed
		// before reporting it: counting it as a duplicate then would hide
		// the labels a retried step applied.
		if r, _ := res.([]any); len(r) > 0 && (r[0] == int64(1) || r[0] == int64(0)) {
			applied[i] = true
		}
	}
	return applied, nil
}

// snapshotEntities are the entities whose states score o, in the order of
// snapshotOf.
func snapshotEntities(o models.FraudOrder) []models.Entity {
	return []models.Entity{
		{Kind: models.EntityUser, ID: o.UserID}, {Kind: models.EntityCard, ID: o.Card},
		{Kind: models.EntityDevice, ID: o.Device}, {Kind: models.EntityIP, ID: o.IP},
		{Kind: models.EntityAddress, ID: o.Address}, {Kind: models.EntityStore, ID: o.StoreID},
	}
}

func snapshotOf(states []models.EntityState) models.FraudSnapshot {
	return models.FraudSnapshot{User: states[0], Card: states[1], Device: states[2], IP: states[3], Address: states[4], Store: states[5]}
}

// FraudSnapshot reads the velocity state of o's entities in one pipelined
// round trip. Entities never seen have empty states.
func (s *Store) FraudSnapshot(ctx context.Context, o models.FraudOrder) (models.FraudSnapshot, error) {
	entities := snapshotEntities(o)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(entities))
	for i, e := range entities {
		cmds[i] = pipe.HGetAll(ctx, s.entityKey(e))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return models.FraudSnapshot{}, fmt.Errorf("read velocity: %w", err)
	}
	states := make([]models.EntityState, len(entities))
	for i, cmd := range cmds {
		st, err := parseEntityState(entities[i], cmd.Val())
		if err != nil {
			return models.FraudSnapshot{}, err
		}
		states[i] = st
	}
	return snapshotOf(states), nil
}

// parseEntityState reads an entity hash's state fields, leaving out the
// bookkeeping.
func parseEntityState(e models.Entity, fields map[string]string) (models.EntityState, error) {
	st := make(models.EntityState, len(fields))
	for f, v := range fields {
		if IsBookkeeping(f) {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read velocity of %s:%s: bad %s %q", e.Kind, e.ID, f, v)
		}
		st[f] = n
	}
	return st, nil
}

// readStateScript returns an entity hash, for an entity an assessed order
// does not change (AssessOrder reads it in the same pipeline as the others).
var readStateScript = redis.NewScript("return redis.call('HGETALL', KEYS[1])")

// AssessOrder applies the velocity contribution of an order being assessed,
// before it is published, and returns the state of its entities just
// before it, each read and changed atomically: concurrent orders of one
// account, card or device see each other, in some order, as the stream
// would have shown them given time. Each entity orders them on its own
// (the entities hash to different slots, on a Redis Cluster to different
// masters), so two concurrent orders of one account and one card may
// reach the two in different orders. It takes three pipelined round trips:
// the order's record, its entities, and marking the record done.
//
// The record is the assessment's own ("assessed:" and the event's digest),
// which no stream record equals, so the stream's later copy of the event
// (order.lua) is a duplicate and changes nothing, however many events its
// entities saw since (their "@ids" keep the last features.RecentIDs only).
// A retried assessment whose first try failed part way redoes the entity
// updates, skipped where made while they are among those last ids, and
// sees what its first try applied in its own state; once the record is
// done, assessing again (or an order the stream recorded first) only reads
// the states, which then hold the order itself.
func (s *Store) AssessOrder(ctx context.Context, ev *aisle.Decoded) (models.FraudSnapshot, error) {
	if ev == nil || ev.Order == nil {
		return models.FraudSnapshot{}, errors.New("assess order: not an order.placed event")
	}
	o := FraudOrder(ev)
	rec := "assessed:" + digest("velocity", ev.ID)
	res, err := s.evalEach(ctx, []call{{recordOrderScript, []string{s.orderKey(o.OrderID), s.labelKey(o.OrderID)},
		[]any{rec, labelSignature(o), s.ttl.Milliseconds()}}})
	if err != nil {
		return models.FraudSnapshot{}, fmt.Errorf("assess order: record order: %w", err)
	}
	r, _ := res[0].([]any)
	if len(r) == 0 || r[0] != int64(1) {
		return s.FraudSnapshot(ctx, o)
	}
	ops := models.OrderOps(o)
	if len(r) == 3 { // a label that came first, counted with the order
		lt, _ := r[1].(int64)
		fraud, _ := r[2].(int64)
		ops = withOps(ops, models.LabelEntityOps(models.LabelEntities(o), o.At, time.UnixMilli(lt), fraud == 1))
	}
	entities := snapshotEntities(o)
	u := aisle.Update{Event: ev}
	calls := make([]call, len(entities))
	for i, e := range entities {
		if j := slices.IndexFunc(ops, func(eo models.EntityOps) bool { return eo.Entity == e }); j >= 0 {
			calls[i] = s.entityCall("velocity", u, ops[j], o.At, true)
		} else {
			calls[i] = call{readStateScript, []string{s.entityKey(e)}, nil}
		}
	}
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return models.FraudSnapshot{}, fmt.Errorf("assess order: %w", err)
	}
	states := make([]models.EntityState, len(entities))
	for i, res := range results {
		flat := res
		if calls[i].script != readStateScript {
			pair, _ := res.([]any)
			if len(pair) != 2 {
				return models.FraudSnapshot{}, fmt.Errorf("assess order: velocity.lua returned %v", res)
			}
			flat = pair[1]
		}
		fields, err := fieldMap(flat)
		if err != nil {
			return models.FraudSnapshot{}, fmt.Errorf("assess order: %s:%s: %w", entities[i].Kind, entities[i].ID, err)
		}
		if states[i], err = parseEntityState(entities[i], fields); err != nil {
			return models.FraudSnapshot{}, err
		}
	}
	if err := s.rdb.HSet(ctx, s.orderKey(o.OrderID), "@done", "1").Err(); err != nil {
		return models.FraudSnapshot{}, fmt.Errorf("assess order: mark record done: %w", err)
	}
	return snapshotOf(states), nil
}

// fieldMap reads an HGETALL reply returned by a script: field, value, ….
func fieldMap(reply any) (map[string]string, error) {
	flat, ok := reply.([]any)
	if !ok || len(flat)%2 != 0 {
		return nil, fmt.Errorf("not a hash: %v", reply)
	}
	out := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		f, ok1 := flat[i].(string)
		v, ok2 := flat[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("not a hash: %v", reply)
		}
		out[f] = v
	}
	return out, nil
}

func (s *Store) entityKey(e models.Entity) string { return s.key("fv", string(e.Kind)+":"+e.ID) }

func (s *Store) orderKey(orderID string) string { return s.key("fo", orderID) }

// labelKey is in the order's bucket, as orderKey: labels.lua and order.lua
// touch both.
func (s *Store) labelKey(orderID string) string { return s.key("fl", orderID) }

// PublishFraudAlert announces an assessment (encoded by the caller) to every
// API process watching with WatchFraudAlerts.
func (s *Store) PublishFraudAlert(ctx context.Context, payload []byte) error {
	if err := s.rdb.SPublish(ctx, s.alertsChannel(), payload).Err(); err != nil {
		return fmt.Errorf("publish fraud alert: %w", err)
	}
	return nil
}

// WatchFraudAlerts calls fn with every alert published, until ctx is done;
// then it returns nil. It subscribes again after a Redis outage (alerts
// published meanwhile are missed: they stay in the assessments audit). It
// returns an error only when the first subscription fails.
func (s *Store) WatchFraudAlerts(ctx context.Context, fn func(payload []byte)) error {
	return s.watchLoop(ctx, []string{s.alertsChannel()}, watcher{
		message: func(payload string) { fn([]byte(payload)) },
	})
}

// alertsChannel is one shard channel: alerts are few.
func (s *Store) alertsChannel() string { return s.scope + "alerts:fraud" }
