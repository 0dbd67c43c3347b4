package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// Fraud velocity in Redis: one hash per entity ({prefix}fv:{kind}:{id})
// holding the fields of models.OrderOps and friends, one record per order
// ({prefix}fo:{orderID}) so that a label can find the order's entities, and
// one per label ({prefix}fl:{orderID}), and while ApplyLabels retries a
// label, a guard per round and partition
// ({prefix}labels-round:{topic/partition}:{round}).
// The scripts mirror
// models.EntityState.Apply; reads return the hashes for
// models.ComputeFraudFeatures.

//go:embed velocity.lua
var applyVelocitySource string

//go:embed labels.lua
var applyLabelSource string

var (
	applyVelocityScript = newApplierScript(applyVelocitySource)
	applyLabelScript    = newApplierScript(applyLabelSource)
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

// labelSignature names the entities a label of o updates; velocity.lua
// stores it in the order record and labels.lua checks it. Ids never contain
// spaces.
func labelSignature(o models.FraudOrder) string {
	ids := make([]string, 0, 4)
	for _, e := range models.LabelEntities(o) {
		ids = append(ids, e.ID)
	}
	return strings.Join(ids, " ")
}

// ApplyVelocity applies order.placed and payment.failed events to the fraud
// velocity hashes in one pipelined round trip, each atomically with its dedup
// key and offset watermark (as ApplyAvailability). A second order.placed for
// an order id already recorded is skipped too. applied[i] reports whether
// updates[i] changed the features.
func (s *Store) ApplyVelocity(ctx context.Context, updates []Update) (applied []bool, err error) {
	return s.applyEach(ctx, "velocity", applyVelocityScript, updates, s.velocityCall)
}

func (s *Store) velocityCall(u Update) ([]string, []any, error) {
	ev := u.Event
	var (
		entities []models.EntityOps
		orderID  string
		isOrder  = "0"
		sig      string
		labelPos []int
		at       time.Time
	)
	switch {
	case ev != nil && ev.Order != nil:
		o := FraudOrder(ev)
		entities, orderID, isOrder, sig, at = models.OrderOps(o), o.OrderID, "1", labelSignature(o), o.At
		// The entities a label updates, some of which (the store) the
		// order itself does not touch.
		for _, le := range models.LabelEntities(o) {
			j := slices.IndexFunc(entities, func(e models.EntityOps) bool { return e.Entity == le })
			if j < 0 {
				j = len(entities)
				entities = append(entities, models.EntityOps{Entity: le})
			}
			labelPos = append(labelPos, j+1)
		}
	case ev != nil && ev.PaymentFailed != nil:
		p := FraudFailedPayment(ev)
		entities, orderID, at = models.FailedPaymentOps(p), ev.PaymentFailed.OrderID, p.At
	default:
		return nil, nil, errors.New("apply velocity: not an order.placed or payment.failed event")
	}
	keys := []string{s.seenKey(ev.ID), s.offsetsKey(), s.orderKey(orderID), s.labelKey(orderID)}
	minute, hour, day, lastSeen := models.PruneCutoffs(at)
	args := []any{u.Origin.field(), u.Origin.Offset, s.seenTTL.Milliseconds(), s.ttl.Milliseconds(), isOrder,
		minute, hour, day, lastSeen, sig, len(labelPos)}
	for _, p := range labelPos {
		args = append(args, p)
	}
	for _, e := range entities {
		keys = append(keys, s.entityKey(e.Entity))
		args = append(args, len(e.Ops))
		for _, op := range e.Ops {
			args = append(args, string(rune(op.Kind)), op.Field, op.Value)
		}
	}
	args = append(args, models.PruneAbove, models.MaxCounterparts)
	return keys, args, nil
}

// maxLabelAttempts bounds how often ApplyLabels reads a label's order record
// again because it changed between the read and the script (an order
// recorded in between): the second attempt sees it.
const maxLabelAttempts = 3

// ApplyLabels applies order.labeled events: each label is counted in the
// delayed-label risk of its order's card, device, address and store, once,
// whether the label or the order arrives first (see labels.lua). The first
// label of an order wins; later ones are skipped.
func (s *Store) ApplyLabels(ctx context.Context, updates []Update) (applied []bool, err error) {
	applied = make([]bool, len(updates))
	pending := make([]int, 0, len(updates))
	for i, u := range updates {
		if u.Event == nil || u.Event.Label == nil {
			return nil, errors.New("apply labels: not an order.labeled event")
		}
		pending = append(pending, i)
	}
	retried, attempts := -1, 0 // the label retried last, and how often
	for len(pending) > 0 {
		sigs, err := s.orderSignatures(ctx, updates, pending)
		if err != nil {
			return nil, err
		}
		// One round: one pipeline of scripts, each partition's in offset
		// order (see labels.lua for the guard that keeps it so).
		round := strconv.FormatUint(rand.Uint64(), 36)
		last := map[string]int{} // guard key → its last label in pending
		for j, i := range pending {
			last[s.labelRoundKey(updates[i].Origin, round)] = j
		}
		keys := make([][]string, len(pending))
		args := make([][]any, len(pending))
		for j, i := range pending {
			u := updates[i]
			l := u.Event.Label
			guard := s.labelRoundKey(u.Origin, round)
			keys[j] = []string{s.seenKey(u.Event.ID), s.offsetsKey(), s.labelKey(l.OrderID), s.orderKey(l.OrderID), guard}
			if sigs[j] != "" {
				ids := strings.Split(sigs[j], " ")
				for k, kind := range []models.EntityKind{models.EntityCard, models.EntityDevice, models.EntityAddress, models.EntityStore} {
					keys[j] = append(keys[j], s.entityKey(models.Entity{Kind: kind, ID: ids[k]}))
				}
			}
			fraud := 0
			if *l.Fraud {
				fraud = 1
			}
			isLast := "0"
			if last[guard] == j {
				isLast = "1"
			}
			args[j] = []any{u.Origin.field(), u.Origin.Offset, s.seenTTL.Milliseconds(), s.ttl.Milliseconds(), u.Event.Time.UnixMilli(), fraud, sigs[j], round, isLast}
		}
		results, err := s.evalEach(ctx, applyLabelScript, keys, args)
		if err != nil {
			return nil, fmt.Errorf("apply labels: %w", err)
		}
		var again []int
		for j, r := range results {
			switch r {
			case int64(-1), int64(-2):
				again = append(again, pending[j])
			case int64(1):
				applied[pending[j]] = true
			}
		}
		pending = again
		if len(pending) == 0 {
			break
		}
		// The first label retried is one that returned -1; every round
		// applies or retries its first label, so only it can stall.
		if pending[0] != retried {
			retried, attempts = pending[0], 0
		}
		if attempts++; attempts == maxLabelAttempts {
			return nil, fmt.Errorf("apply labels: the order record of %s kept changing", updates[retried].Event.Label.OrderID)
		}
	}
	return applied, nil
}

// orderSignatures reads the label signature of the order of each pending
// label ("" when the order is not recorded).
func (s *Store) orderSignatures(ctx context.Context, updates []Update, pending []int) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(pending))
	for j, i := range pending {
		cmds[j] = pipe.HGet(ctx, s.orderKey(updates[i].Event.Label.OrderID), "sig")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read order records: %w", err)
	}
	sigs := make([]string, len(pending))
	for j, cmd := range cmds {
		sig, err := cmd.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read order record: %w", err)
		}
		if strings.Count(sig, " ") == 3 {
			sigs[j] = sig
		}
	}
	return sigs, nil
}

// FraudSnapshot reads the velocity state of o's entities in one pipelined
// round trip. Entities never seen have empty states.
func (s *Store) FraudSnapshot(ctx context.Context, o models.FraudOrder) (models.FraudSnapshot, error) {
	entities := []models.Entity{
		{Kind: models.EntityUser, ID: o.UserID}, {Kind: models.EntityCard, ID: o.Card},
		{Kind: models.EntityDevice, ID: o.Device}, {Kind: models.EntityIP, ID: o.IP},
		{Kind: models.EntityAddress, ID: o.Address}, {Kind: models.EntityStore, ID: o.StoreID},
	}
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
		st := make(models.EntityState, len(cmd.Val()))
		for f, v := range cmd.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return models.FraudSnapshot{}, fmt.Errorf("read velocity of %s:%s: bad %s %q", entities[i].Kind, entities[i].ID, f, v)
			}
			st[f] = n
		}
		states[i] = st
	}
	return models.FraudSnapshot{User: states[0], Card: states[1], Device: states[2], IP: states[3], Address: states[4], Store: states[5]}, nil
}

func (s *Store) entityKey(e models.Entity) string {
	return s.prefix + "fv:" + string(e.Kind) + ":" + e.ID
}

func (s *Store) orderKey(orderID string) string { return s.prefix + "fo:" + orderID }

func (s *Store) labelKey(orderID string) string { return s.prefix + "fl:" + orderID }

// labelRoundKey is the guard of one ApplyLabels round for o's partition. It
// is the round's own: another round on the same partition (replay beside
// the workers, or a worker that lost the partition) must neither delete nor
// replace it, or the labels after a retried one would raise the watermark
// past it and it would be skipped as applied.
func (s *Store) labelRoundKey(o Origin, round string) string {
	return s.prefix + "labels-round:" + o.field() + ":" + round
}

// PublishFraudAlert announces an assessment (encoded by the caller) to every
// API process watching with WatchFraudAlerts.
func (s *Store) PublishFraudAlert(ctx context.Context, payload []byte) error {
	if err := s.rdb.Publish(ctx, s.alertsChannel(), payload).Err(); err != nil {
		return fmt.Errorf("publish fraud alert: %w", err)
	}
	return nil
}

// WatchFraudAlerts calls fn with every alert published, until ctx is done;
// then it returns nil. It subscribes again after a Redis outage (alerts
// published meanwhile are missed: they stay in the assessments audit). It
// returns an error only when the first subscription fails.
func (s *Store) WatchFraudAlerts(ctx context.Context, fn func(payload []byte)) error {
	return s.watchLoop(ctx, s.alertsChannel(), watcher{
		message: func(payload string) { fn([]byte(payload)) },
	})
}

func (s *Store) alertsChannel() string { return s.prefix + "alerts:fraud" }
