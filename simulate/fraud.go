package simulate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aisle/aisle/aisle"
)

// The fraud world follows the transaction simulator described in the
// Fraud Detection Handbook (Le Borgne et al., "Reproducible Machine Learning
// for Credit Card Fraud Detection", chapter 3), re-implemented from its text
// and adapted to a grocery marketplace. Customers have a spending profile
// (mean and spread of the amount, orders per day) and shop at a few nearby
// stores (the handbook's terminals); orders are drawn per customer and day.
// The handbook's three fraud scenarios become:
//
//   - high_amount: every order above FraudWorld.HighAmountCents is fraud;
//   - compromised_store: a store is compromised (one chance in 3,000 a
//     day) for 3 to 28 days, and every order placed there meanwhile is
//     fraud, as at the handbook's compromised terminals and in the outside
//     world the evaluation is held against. (An earlier version made half
//     of them fraud by coin flip; nothing in an order told the two halves
//     apart, so no score could pass an average precision of about 0.5.)
//     A world of three weeks or more also has one compromise of ten days
//     that ends weeks before its last day and one that runs through its
//     last week, so that every seed asks a model to tell this week's
//     compromise from one that ended long ago;
//   - compromised_account: an account's credentials leak; for 14 days a
//     third of its orders are fraud at five times the usual amount.
//
// Marketplace scenarios come on top:
//
//   - card_testing: a new account on a new device tries stolen cards, a
//     burst of declined payments within minutes (several on the cards whose
//     expiry and security code it guesses), then orders with the cards that
//     went through;
//   - account_takeover: an established account orders from a new device,
//     IP and delivery address, at two to four times its usual amount;
//   - promo_ring: a ring of fresh accounts sharing a device or two and one
//     delivery address collects new-customer promotions;
//   - order_burst: four to nine orders within two minutes, several in the
//     same second, from one new device: half from a new account on one
//     new card (a tested card cashed out), half from an established
//     account taken over (its card, a new address). Assessments of
//     concurrent orders must see each other.
//
// Every order is labelled later: fraud when the chargeback arrives (one to
// seven days), legitimate once seven days pass without one (the handbook's
// feedback delay). Legitimate customers also have declined payments
// (insufficient funds), share household addresses and carrier IPs, and new
// customers join every day, so no single signal separates the classes.

// Fraud scenarios, as named in FraudRecord.Scenario.
const (
	ScenarioHighAmount         = "high_amount"
	ScenarioCompromisedStore   = "compromised_store"
	ScenarioCompromisedAccount = "compromised_account"
	ScenarioCardTesting        = "card_testing"
	ScenarioAccountTakeover    = "account_takeover"
	ScenarioPromoRing          = "promo_ring"
	ScenarioOrderBurst         = "order_burst"
)

// SourceOrders is the envelope source of simulated commerce events.
const SourceOrders = "simulator/checkout"

// FraudWorld sizes and seeds a fraud simulation.
type FraudWorld struct {
	Seed            int64
	Start           time.Time // midnight of the first day (UTC)
	Days            int
	Customers       int     // at the start; more join every day
	OrdersPerDay    float64 // a customer's mean, the mean over customers
	HighAmountCents int64
	// ScenarioScale multiplies the daily number of card-testing bursts,
	// account takeovers, promo rings and order bursts (3, 4, 0.6 and 1 at
	// scale 1, which suits 10,000 customers).
	ScenarioScale float64
	Stores        []Store // where customers shop; orders name one to five of a store's products
}

// DefaultFraudWorld is the world of `aisle eval fraud`: five weeks of 10,000
// customers, about 4,000 orders a day, about 1 % of them fraud.
func DefaultFraudWorld(seed int64, stores []Store) FraudWorld {
	return FraudWorld{
		Seed:            seed,
		Start:           time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC),
		Days:            35,
		Customers:       10_000,
		OrdersPerDay:    0.4,
		HighAmountCents: 30_000,
		ScenarioScale:   1,
		Stores:          stores,
	}
}

// FraudRecord is one simulated event with the ground truth behind it.
type FraudRecord struct {
	Event    *aisle.Decoded // typed data set; Event.Data is empty (see Envelope)
	Fraud    bool           // order.placed: the order is fraud
	Scenario string         // order.placed: the fraud scenario, "" when legitimate
}

// Envelope returns the record's event with its data encoded, ready to publish.
func (r FraudRecord) Envelope() (aisle.Event, error) {
	var data any
	switch {
	case r.Event.Order != nil:
		data = r.Event.Order
	case r.Event.PaymentFailed != nil:
		data = r.Event.PaymentFailed
	default:
		data = r.Event.Label
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return aisle.Event{}, fmt.Errorf("encode %s: %w", r.Event.Type, err)
	}
	ev := r.Event.Event
	ev.Data = raw
	return ev, nil
}

type customer struct {
	id        string
	meanCents float64
	stdCents  float64
	perDay    float64
	stores    []int
	cards     []string
	devices   []string
	address   string
	homeIP    string
	// compromised until this day (exclusive); 0 when never
	compromisedUntil int
}

type fraudSim struct {
	w       FraudWorld
	rng     *rand.Rand
	records []FraudRecord
	seq     int // id counter
	users   []*customer
	// stores compromised until a day (exclusive), by store index
	compromised map[int]int
	sharedIPs   []string // carrier NAT addresses many customers share
}

// GenerateFraud simulates w and returns its events in event-time order
// (orders, declined payments and labels). Same world, same records.
func GenerateFraud(w FraudWorld) ([]FraudRecord, error) {
	if len(w.Stores) == 0 || w.Days <= 0 || w.Customers <= 0 || !(w.OrdersPerDay > 0) || w.ScenarioScale < 0 {
		return nil, aisle.Errorf(aisle.EINVALID, "fraud world needs stores, days, customers, orders per day and a scenario scale >= 0")
	}
	for _, s := range w.Stores {
		if err := aisle.ValidateID("store id", s.ID); err != nil {
			return nil, err
		}
		if len(s.Products) == 0 {
			return nil, aisle.Errorf(aisle.EINVALID, "store %s has no products", s.ID)
		}
	}
	s := &fraudSim{w: w, rng: rand.New(rand.NewPCG(uint64(w.Seed), hashString("fraud"))), compromised: map[int]int{}}
	for i := range 400 {
		s.sharedIPs = append(s.sharedIPs, fmt.Sprintf("100.64.%d.%d", i/200, i%200+1))
	}
	for range w.Customers {
		s.newCustomer()
	}
	for day := range w.Days {
		s.simulateDay(day)
	}
	slices.SortStableFunc(s.records, func(a, b FraudRecord) int { return a.Event.Time.Compare(b.Event.Time) })
	return s.records, nil
}

func (s *fraudSim) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%d-%d", prefix, s.w.Seed, s.seq)
}

func (s *fraudSim) newCustomer() *customer {
	r := s.rng
	mean := 2000 + r.Float64()*10000 // 20 to 120 a basket
	c := &customer{
		id:        s.nextID("u"),
		meanCents: mean,
		stdCents:  mean / 2,
		perDay:    s.w.OrdersPerDay * 2 * r.Float64(),
		address:   s.nextID("addr"),
		homeIP:    fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254)),
	}
	for range 1 + r.IntN(3) {
		c.stores = append(c.stores, r.IntN(len(s.w.Stores)))
	}
	for range 1 + r.IntN(2) {
		c.cards = append(c.cards, s.nextID("card"))
	}
	for range 1 + r.IntN(2) {
		c.devices = append(c.devices, s.nextID("dev"))
	}
	// Households: some customers share an address (and the home IP) with
	// one already known.
	if len(s.users) > 0 && r.Float64() < 0.15 {
		other := s.users[r.IntN(len(s.users))]
		c.address, c.homeIP = other.address, other.homeIP
	}
	s.users = append(s.users, c)
	return c
}

// poisson draws from a Poisson distribution (Knuth; small means only).
func (s *fraudSim) poisson(mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= s.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// timeOfDay draws when in the day an order is placed: around early
// afternoon, between 07:00 and 23:00.
func (s *fraudSim) timeOfDay(day int) time.Time {
	h := min(max(14+3.5*s.rng.NormFloat64(), 7), 22.99)
	return s.w.Start.Add(time.Duration(day)*24*time.Hour + time.Duration(h*float64(time.Hour)))
}

func (s *fraudSim) amount(mean, std float64) int64 {
	return int64(max(mean+std*s.rng.NormFloat64(), 500))
}

func (s *fraudSim) ip(c *customer) string {
	if s.rng.Float64() < 0.25 {
		return s.sharedIPs[s.rng.IntN(len(s.sharedIPs))]
	}
	return c.homeIP
}

func (s *fraudSim) simulateDay(day int) {
	r := s.rng
	// Scenario switches of the day.
	// Each store has a one-in-3,000 chance a day of being compromised, so
	// the share of such fraud does not depend on how many stores there are.
	// A compromise lasts 3 to 28 days, so that compromises start and end
	// at different times and a model must tell this week's from one that
	// ended weeks ago.
	for range s.poisson(float64(len(s.w.Stores)) / 3000) {
		s.compromised[r.IntN(len(s.w.Stores))] = day + 3 + r.IntN(26)
	}
	if s.w.Days >= 21 {
		switch day {
		case s.w.Days / 4: // ends weeks before the last day
			s.compromised[r.IntN(len(s.w.Stores))] = day + 10
		case s.w.Days - 10: // runs through the last week
			s.compromised[r.IntN(len(s.w.Stores))] = s.w.Days
		}
	}
	if day > 0 {
		for range s.poisson(float64(len(s.users)) * 0.0005) {
			s.users[r.IntN(len(s.users))].compromisedUntil = day + 14
		}
	}
	for range s.poisson(float64(s.w.Customers) * 0.003) {
		s.newCustomer()
	}

	// Customers' own orders; index order keeps the run deterministic.
	for _, c := range s.users {
		for range s.poisson(c.perDay) {
			s.customerOrder(c, day)
		}
	}
	scale := s.w.ScenarioScale
	for range s.poisson(3 * scale) {
		s.cardTesting(day)
	}
	if day >= 7 {
		for range s.poisson(4 * scale) {
			s.accountTakeover(day)
		}
	}
	for range s.poisson(0.6 * scale) {
		s.promoRing(day)
	}
	for range s.poisson(scale) {
		s.orderBurst(day)
	}
}

func (s *fraudSim) customerOrder(c *customer, day int) {
	r := s.rng
	at := s.timeOfDay(day)
	store := c.stores[r.IntN(len(c.stores))]
	card := c.cards[r.IntN(len(c.cards))]
	device := c.devices[r.IntN(len(c.devices))]
	ip := s.ip(c)
	amount := s.amount(c.meanCents, c.stdCents)
	scenario := ""
	if c.compromisedUntil > day && r.Float64() < 1.0/3 {
		amount *= 5
		scenario = ScenarioCompromisedAccount
	}
	if until, ok := s.compromised[store]; ok && until > day {
		scenario = ScenarioCompromisedStore
	}
	if amount > s.w.HighAmountCents {
		scenario = ScenarioHighAmount
	}
	if scenario == "" && r.Float64() < 0.02 {
		// A legitimate decline (insufficient funds), retried.
		s.failedPayment(c.id, card, device, ip, at.Add(-time.Duration(1+r.IntN(5))*time.Minute))
	}
	s.order(c.id, store, card, device, ip, c.address, amount, at, scenario)
}

func (s *fraudSim) cardTesting(day int) {
	r := s.rng
	at := s.timeOfDay(day)
	user, device := s.nextID("u"), s.nextID("dev")
	ip := fmt.Sprintf("198.51.100.%d", 1+r.IntN(254))
	store := r.IntN(len(s.w.Stores))
	address := s.nextID("addr")
	tried := 6 + r.IntN(15)
	var worked []string
	for i := range tried {
		card := s.nextID("card")
		fails := 1 + r.IntN(3)
		if i%4 == 3 {
			// This one goes through once the expiry date and security
			// code have been guessed.
			fails = 2 + r.IntN(5)
			worked = append(worked, card)
		}
		for range fails {
			at = at.Add(time.Duration(5+r.IntN(40)) * time.Second)
			s.failedPayment(user, card, device, ip, at)
		}
	}
	for _, card := range worked {
		at = at.Add(time.Duration(1+r.IntN(10)) * time.Minute)
		s.order(user, store, card, device, ip, address, s.amount(8000, 3000), at, ScenarioCardTesting)
	}
}

func (s *fraudSim) accountTakeover(day int) {
	r := s.rng
	c := s.users[r.IntN(len(s.users))]
	at := s.timeOfDay(day)
	device, address := s.nextID("dev"), s.nextID("addr")
	ip := fmt.Sprintf("203.0.113.%d", 1+r.IntN(254))
	card := c.cards[r.IntN(len(c.cards))]
	for range 1 + r.IntN(2) {
		amount := int64(c.meanCents * (2 + 2*r.Float64()))
		s.order(c.id, c.stores[0], card, device, ip, address, amount, at, ScenarioAccountTakeover)
		at = at.Add(time.Duration(10+r.IntN(120)) * time.Minute)
	}
}

func (s *fraudSim) promoRing(day int) {
	r := s.rng
	devices := []string{s.nextID("dev"), s.nextID("dev")}
	address := s.nextID("addr")
	store := r.IntN(len(s.w.Stores))
	for range 5 + r.IntN(8) {
		user, card := s.nextID("u"), s.nextID("card")
		device := devices[r.IntN(len(devices))]
		ip := s.sharedIPs[r.IntN(len(s.sharedIPs))]
		for range 1 + r.IntN(2) {
			at := s.timeOfDay(day + r.IntN(3))
			s.order(user, store, card, device, ip, address, s.amount(4000, 1500), at, ScenarioPromoRing)
		}
	}
}

func (s *fraudSim) orderBurst(day int) {
	r := s.rng
	at := s.timeOfDay(day)
	device := s.nextID("dev")
	ip := fmt.Sprintf("198.18.%d.%d", r.IntN(256), 1+r.IntN(254))
	user, card, address, store, mean := s.nextID("u"), s.nextID("card"), s.nextID("addr"), r.IntN(len(s.w.Stores)), 6000.0
	if r.Float64() < 0.5 && len(s.users) > 0 {
		c := s.users[r.IntN(len(s.users))]
		user, card, store, mean = c.id, c.cards[r.IntN(len(c.cards))], c.stores[0], max(c.meanCents, 4000)
	}
	for range 4 + r.IntN(6) {
		if r.Float64() < 0.6 { // else in the same second as the one before
			at = at.Add(time.Duration(1+r.IntN(20)) * time.Second)
		}
		s.order(user, store, card, device, ip, address, s.amount(mean, mean/3), at, ScenarioOrderBurst)
	}
}

func (s *fraudSim) failedPayment(user, card, device, ip string, at time.Time) {
	d := &aisle.Decoded{
		Event:         aisle.Event{ID: s.nextID("e"), Type: aisle.TypePaymentFailed, Time: at, Source: SourceOrders},
		PaymentFailed: &aisle.PaymentFailed{OrderID: s.nextID("o"), UserID: user, CardFingerprint: card, DeviceID: device, IP: ip},
	}
	s.records = append(s.records, FraudRecord{Event: d})
}

func (s *fraudSim) order(user string, storeIdx int, card, device, ip, address string, amount int64, at time.Time, scenario string) {
	r := s.rng
	store := s.w.Stores[storeIdx]
	items := make([]aisle.OrderItem, 1+r.IntN(5))
	for i := range items {
		items[i] = aisle.OrderItem{ProductID: store.Products[r.IntN(len(store.Products))], Quantity: int64(1 + r.IntN(3))}
	}
	items = slices.CompactFunc(slices.SortedFunc(slices.Values(items), func(a, b aisle.OrderItem) int { return cmp.Compare(a.ProductID, b.ProductID) }),
		func(a, b aisle.OrderItem) bool { return a.ProductID == b.ProductID })
	orderID := s.nextID("o")
	d := &aisle.Decoded{
		Event: aisle.Event{ID: s.nextID("e"), Type: aisle.TypeOrderPlaced, Time: at, Source: SourceOrders},
		Order: &aisle.OrderPlaced{
			OrderID: orderID, UserID: user, StoreID: store.ID, AmountCents: &amount,
			CardFingerprint: card, DeviceID: device, IP: ip, AddressHash: address, Items: items,
		},
	}
	fraud := scenario != ""
	s.records = append(s.records, FraudRecord{Event: d, Fraud: fraud, Scenario: scenario})

	// The label: a chargeback for fraud, seven quiet days for the rest.
	labelAt := at.Add(7*24*time.Hour + time.Duration(r.IntN(3600))*time.Second)
	if fraud {
		labelAt = at.Add(24*time.Hour + time.Duration(r.Float64()*6*24*float64(time.Hour)))
	}
	label := &aisle.Decoded{
		Event: aisle.Event{ID: s.nextID("e"), Type: aisle.TypeOrderLabeled, Time: labelAt, Source: SourceOrders},
		Label: &aisle.OrderLabeled{OrderID: orderID, Fraud: &fraud},
	}
	s.records = append(s.records, FraudRecord{Event: label})
}
