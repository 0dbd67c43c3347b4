package models

import "time"

// VelocityMemory is the fraud velocity state of a whole event history in
// memory: what the Redis store holds, built by the same operations, for
// training and evaluation that replay history in event-time order.
type VelocityMemory struct {
	states map[Entity]EntityState
	orders map[string]FraudOrder  // recorded orders, by id
	labels map[string]memoryLabel // labels, by order id
}

type memoryLabel struct {
	at     time.Time
	fraud  bool
	joined bool // counted in the order's entities
}

// NewVelocityMemory returns an empty state.
func NewVelocityMemory() *VelocityMemory {
	return &VelocityMemory{states: map[Entity]EntityState{}, orders: map[string]FraudOrder{}, labels: map[string]memoryLabel{}}
}

func (m *VelocityMemory) state(e Entity) EntityState {
	s := m.states[e]
	if s == nil {
		s = EntityState{}
		m.states[e] = s
	}
	return s
}

func (m *VelocityMemory) apply(entities []EntityOps, at time.Time) {
	for _, e := range entities {
		s := m.state(e.Entity)
		s.Apply(e.Ops)
		if len(s) > PruneAbove {
			s.Prune(at)
		}
	}
}

// Snapshot returns the state of o's entities; scoring must not modify it.
func (m *VelocityMemory) Snapshot(o FraudOrder) FraudSnapshot {
	return FraudSnapshot{
		User: m.states[Entity{EntityUser, o.UserID}], Card: m.states[Entity{EntityCard, o.Card}],
		Device: m.states[Entity{EntityDevice, o.Device}], IP: m.states[Entity{EntityIP, o.IP}],
		Address: m.states[Entity{EntityAddress, o.Address}], Store: m.states[Entity{EntityStore, o.StoreID}],
	}
}

// Order applies a placed order, and a label that arrived before it. It
// returns false, changing nothing, when the order was already recorded.
func (m *VelocityMemory) Order(o FraudOrder) bool {
	if _, ok := m.orders[o.OrderID]; ok {
		return false
	}
	m.orders[o.OrderID] = o
	m.apply(OrderOps(o), o.At)
	if l, ok := m.labels[o.OrderID]; ok && !l.joined {
		m.join(o, l)
	}
	return true
}

// FailedPayment applies a declined payment.
func (m *VelocityMemory) FailedPayment(p FraudFailedPayment) { m.apply(FailedPaymentOps(p), p.At) }

// Label applies the first label of an order, known at "at"; it returns false
// for later ones.
func (m *VelocityMemory) Label(orderID string, fraud bool, at time.Time) bool {
	if _, ok := m.labels[orderID]; ok {
		return false
	}
	l := memoryLabel{at: at, fraud: fraud}
	if o, ok := m.orders[orderID]; ok {
		m.join(o, l)
		return true
	}
	m.labels[orderID] = l
	return true
}

func (m *VelocityMemory) join(o FraudOrder, l memoryLabel) {
	for _, e := range LabelEntityOps(LabelEntities(o), o.At, l.at, l.fraud) {
		m.state(e.Entity).Apply(e.Ops)
	}
	l.joined = true
	m.labels[o.OrderID] = l
}
