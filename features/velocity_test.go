package features_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
)

var fraudT0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func orderEvent(t testing.TB, id, orderID, user, card, device string, amount int64, at time.Time) *aisle.Decoded {
	t.Helper()
	return decodeFraudEvent(t, id, aisle.TypeOrderPlaced, at, aisle.OrderPlaced{
		OrderID: orderID, UserID: user, StoreID: "s-1", AmountCents: &amount,
		CardFingerprint: card, DeviceID: device, IP: "10.0.0.1", AddressHash: "addr-1",
		Items: []aisle.OrderItem{{ProductID: "p-1", Quantity: 1}},
	})
}

func failedEvent(t testing.TB, id, user, card, device string, at time.Time) *aisle.Decoded {
	t.Helper()
	return decodeFraudEvent(t, id, aisle.TypePaymentFailed, at, aisle.PaymentFailed{
		OrderID: "o-" + id, UserID: user, CardFingerprint: card, DeviceID: device, IP: "10.0.0.1",
	})
}

func labelEvent(t testing.TB, id, orderID string, fraud bool, at time.Time) *aisle.Decoded {
	t.Helper()
	return decodeFraudEvent(t, id, aisle.TypeOrderLabeled, at, aisle.OrderLabeled{OrderID: orderID, Fraud: &fraud})
}

func decodeFraudEvent(t testing.TB, id, typ string, at time.Time, data any) *aisle.Decoded {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(aisle.Event{ID: id, Type: typ, Time: at, Source: "test", Data: raw})
	if err != nil {
		t.Fatal(err)
	}
	d, err := aisle.DecodeEvent(value, "", at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func applyOne(t *testing.T, apply func(context.Context, []aisle.Update) ([]bool, error), d *aisle.Decoded, origin aisle.Origin) bool {
	t.Helper()
	applied, err := apply(context.Background(), []aisle.Update{{Event: d, Origin: origin}})
	if err != nil {
		t.Fatal(err)
	}
	return applied[0]
}

// featuresAt reads the features of a probe order at "at" by name.
func featuresAt(t *testing.T, fs *features.Store, o models.FraudOrder) map[string]float64 {
	t.Helper()
	snap, err := fs.FraudSnapshot(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for i, v := range models.ComputeFraudFeatures(o, snap) {
		out[models.FraudFeatures[i].Name] = v
	}
	return out
}

func probe(at time.Time) models.FraudOrder {
	return models.FraudOrder{OrderID: "o-probe", UserID: "u-1", StoreID: "s-1", Card: "card-1", Device: "dev-1",
		IP: "10.0.0.1", Address: "addr-1", AmountCents: 1000, At: at}
}

func TestVelocityRedeliveryDoesNotInflateWindows(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	at := fraudT0
	order := orderEvent(t, "e-o1", "o-1", "u-1", "card-1", "dev-1", 2500, at)
	fail := failedEvent(t, "e-f1", "u-1", "card-1", "dev-1", at)
	origin := aisle.Origin{Topic: aisle.TopicOrders, Partition: 0, Offset: 7}
	if !applyOne(t, fs.ApplyVelocity, order, origin) {
		t.Fatal("first delivery not applied")
	}
	failOrigin := origin
	failOrigin.Offset = 8
	if !applyOne(t, fs.ApplyVelocity, fail, failOrigin) {
		t.Fatal("failed payment not applied")
	}
	// Redelivery: same event id; same offset with the id forgotten is
	// covered by the watermark (an event id not seen, offset at the mark).
	if applyOne(t, fs.ApplyVelocity, order, origin) || applyOne(t, fs.ApplyVelocity, fail, failOrigin) {
		t.Fatal("a redelivered event was applied again")
	}
	replay := orderEvent(t, "e-o1-replayed", "o-9", "u-1", "card-1", "dev-1", 2500, at)
	if applyOne(t, fs.ApplyVelocity, replay, origin) {
		t.Fatal("a record at the partition's watermark was applied")
	}
	// The same order again under another event id (a second producer).
	if applyOne(t, fs.ApplyVelocity, orderEvent(t, "e-o1-again", "o-1", "u-1", "card-1", "dev-1", 2500, at), aisle.Origin{}) {
		t.Fatal("a second order.placed for the same order was applied")
	}
	got := featuresAt(t, fs, probe(at.Add(time.Minute)))
	for name, want := range map[string]float64{
		"user_orders_1h": 1, "card_orders_1h": 1, "card_failed_payments_10m": 1,
		"user_failed_payments_1h": 1, "device_cards_24h": 1, "first_order": 0, "new_device": 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// The Redis scripts give the same features as the in-memory replay of
// training and evaluation (models.VelocityMemory, in event-time order),
// whatever order the events arrive in: orders, declines and labels, with
// labels before or after their orders, and hashes large enough to be pruned.
func TestVelocityIsOrderInsensitiveAndMatchesTheModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var events []*aisle.Decoded
	for i := range 900 {
		at := fraudT0.Add(-time.Duration(rng.IntN(3*24*60)) * time.Minute)
		card, device := fmt.Sprint("card-", rng.IntN(3)), fmt.Sprint("dev-", rng.IntN(3))
		switch {
		case i%3 == 0:
			events = append(events, failedEvent(t, fmt.Sprint("e-f", i), "u-1", fmt.Sprint("card-x", i), device, at))
		default:
			orderID := fmt.Sprint("o-", i)
			events = append(events, orderEvent(t, fmt.Sprint("e-o", i), orderID, fmt.Sprint("u-", rng.IntN(2)), card, device, int64(1000+rng.IntN(9000)), at))
			if i%2 == 0 {
				labelAt := at.Add(time.Duration(rng.IntN(48*60)) * time.Minute)
				events = append(events, labelEvent(t, fmt.Sprint("e-l", i), orderID, rng.IntN(4) == 0, labelAt))
			}
		}
	}
	mem := models.NewVelocityMemory()
	inTime := slices.Clone(events)
	slices.SortStableFunc(inTime, func(a, b *aisle.Decoded) int { return a.Time.Compare(b.Time) })
	for _, d := range inTime {
		switch {
		case d.Order != nil:
			mem.Order(features.FraudOrder(d))
		case d.PaymentFailed != nil:
			mem.FailedPayment(features.FraudFailedPayment(d))
		default:
			mem.Label(d.Label.OrderID, *d.Label.Fraud, d.Time)
		}
	}
	probes := []models.FraudOrder{probe(fraudT0), probe(fraudT0.Add(2 * 24 * time.Hour))}
	for i := range probes {
		probes[i].Card, probes[i].Device = "card-0", "dev-0"
	}
	for run := range 2 {
		fs := featurestest.MustOpen(t)
		perm := rng.Perm(len(events))
		for from := 0; from < len(perm); from += 50 {
			var orders, labels []aisle.Update
			for _, i := range perm[from:min(from+50, len(perm))] {
				if events[i].Label != nil {
					labels = append(labels, aisle.Update{Event: events[i]})
				} else {
					orders = append(orders, aisle.Update{Event: events[i]})
				}
			}
			if _, err := fs.ApplyVelocity(context.Background(), orders); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.ApplyLabels(context.Background(), labels); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range probes {
			want := models.ComputeFraudFeatures(p, mem.Snapshot(p))
			snap, err := fs.FraudSnapshot(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if got := models.ComputeFraudFeatures(p, snap); !reflect.DeepEqual(got, want) {
				t.Errorf("run %d at %s: features from Redis\n%v\nwant (in memory)\n%v", run, p.At, got, want)
			}
			if run == 0 && p.At.Equal(fraudT0) {
				// Not a degenerate test: activity, declines and risk show.
				if want[5] == 0 || want[17] < 10 || want[26] == models.ComputeFraudFeatures(p, models.FraudSnapshot{})[26] {
					t.Errorf("degenerate features %v", want)
				}
				if len(snap.Device) < models.PruneAbove/2 {
					t.Errorf("device hash has %d fields; want a large one", len(snap.Device))
				}
			}
		}
	}
}

func TestLabelChangesDelayedRiskOnlyAfterTheDelay(t *testing.T) {
	t.Parallel()
	for _, labelFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("label first ", labelFirst), func(t *testing.T) {
			t.Parallel()
			fs := featurestest.MustOpen(t)
			orderAt := fraudT0.Add(-3 * 24 * time.Hour)
			labelAt := fraudT0.Add(-10 * time.Minute) // 11:50 UTC
			order := orderEvent(t, "e-o", "o-1", "u-1", "card-1", "dev-1", 5000, orderAt)
			label := labelEvent(t, "e-l", "o-1", true, labelAt)
			if labelFirst {
				applyOne(t, fs.ApplyLabels, label, aisle.Origin{})
				applyOne(t, fs.ApplyVelocity, order, aisle.Origin{})
			} else {
				applyOne(t, fs.ApplyVelocity, order, aisle.Origin{})
				applyOne(t, fs.ApplyLabels, label, aisle.Origin{})
			}
			// Redelivered and second labels change nothing.
			if applyOne(t, fs.ApplyLabels, label, aisle.Origin{}) {
				t.Error("redelivered label applied")
			}
			if applyOne(t, fs.ApplyLabels, labelEvent(t, "e-l2", "o-1", false, labelAt), aisle.Origin{}) {
				t.Error("second label of an order applied")
			}
			const prior = 0.02 / 2 // no labels: the shrunk prior
			const oneFraud = 1.02 / 3
			// The order was placed three days (UTC) before its label:
			// the store's fresh frauds count it the day after the label.
			for _, tc := range []struct {
				at        time.Time
				want      float64
				wantFresh float64
			}{
				{labelAt.Add(-time.Hour), prior, 0}, // before the label
				{labelAt, prior, 0},                 // its day is not over
				{labelAt.Truncate(24 * time.Hour).Add(24*time.Hour - time.Millisecond), prior, 0},
				{labelAt.Truncate(24 * time.Hour).Add(24 * time.Hour), oneFraud, 1}, // known for a whole day
				{labelAt.Add(2 * 24 * time.Hour), oneFraud, 0},                      // no longer yesterday's
				{labelAt.Add(20 * 24 * time.Hour), oneFraud, 0},
				{labelAt.Add(32 * 24 * time.Hour), prior, 0}, // out of the 30-day window
			} {
				got := featuresAt(t, fs, probe(tc.at))
				for _, name := range []string{"device_risk", "card_risk", "address_risk", "store_risk"} {
					if diff := got[name] - tc.want; diff > 1e-12 || diff < -1e-12 {
						t.Errorf("%s at %s = %v, want %v", name, tc.at, got[name], tc.want)
					}
				}
				if got["store_fresh_frauds_1d"] != tc.wantFresh {
					t.Errorf("store_fresh_frauds_1d at %s = %v, want %v", tc.at, got["store_fresh_frauds_1d"], tc.wantFresh)
				}
			}
		})
	}
}

// A hot entity (an IP shared by hundreds of accounts) keeps at most
// MaxCounterparts of them, so its reads stay small; applied in time order,
// Redis and the in-memory replay still agree.
func TestVelocityBoundsHotEntities(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	mem := models.NewVelocityMemory()
	var updates []aisle.Update
	for i := range 4 * models.MaxCounterparts {
		at := fraudT0.Add(-time.Duration(4*models.MaxCounterparts-i) * time.Second)
		d := orderEvent(t, fmt.Sprint("e-hot-", i), fmt.Sprint("o-hot-", i), fmt.Sprint("u-", i), fmt.Sprint("card-", i), fmt.Sprint("dev-", i), 1000, at)
		updates = append(updates, aisle.Update{Event: d})
		mem.Order(features.FraudOrder(d))
	}
	if _, err := fs.ApplyVelocity(context.Background(), updates); err != nil {
		t.Fatal(err)
	}
	o := probe(fraudT0) // on 10.0.0.1, the hot IP
	snap, err := fs.FraudSnapshot(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.IP) > models.PruneAbove+1 {
		t.Errorf("the hot IP's hash has %d fields, want at most %d", len(snap.IP), models.PruneAbove+1)
	}
	got, want := models.ComputeFraudFeatures(o, snap), models.ComputeFraudFeatures(o, mem.Snapshot(o))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("features from Redis\n%v\nwant (in memory)\n%v", got, want)
	}
	const ipAccounts = 21 // models.FraudFeatures
	if got[ipAccounts] < models.MaxCounterparts || got[ipAccounts] > models.PruneAbove {
		t.Errorf("%s = %v of %d accounts, want it between %d and %d", models.FraudFeatures[ipAccounts].Name, got[ipAccounts],
			4*models.MaxCounterparts, models.MaxCounterparts, models.PruneAbove)
	}
}

// Labels applied while their orders are being recorded, the way a replay
// reads the orders and labels topics side by side: each label is counted
// exactly once, whether its script ran before, after or in the middle of
// its order's, and none is lost to the partition's watermark when one of
// them has to be retried.
func TestLabelsRacingTheirOrdersAreEachCountedOnce(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	const orders, batch = 2000, 40
	orderAt := fraudT0.Add(-3 * 24 * time.Hour)
	labelAt := fraudT0.Add(-time.Hour)
	var orderUpdates, labelUpdates []aisle.Update
	for i := range orders {
		id := fmt.Sprint(i)
		orderUpdates = append(orderUpdates, aisle.Update{
			Event:  orderEvent(t, "e-o"+id, "o-"+id, "u-"+id, "card-"+id, "dev-"+id, 1000, orderAt),
			Origin: aisle.Origin{Topic: aisle.TopicOrders, Offset: int64(i)},
		})
		labelUpdates = append(labelUpdates, aisle.Update{
			Event:  labelEvent(t, "e-l"+id, "o-"+id, true, labelAt),
			Origin: aisle.Origin{Topic: aisle.TopicLabels, Offset: int64(i)},
		})
	}
	applyInBatches := func(apply func(context.Context, []aisle.Update) ([]bool, error), updates []aisle.Update) error {
		for from := 0; from < len(updates); from += batch {
			applied, err := apply(context.Background(), updates[from:from+batch])
			if err != nil {
				return err
			}
			if i := slices.Index(applied, false); i >= 0 {
				return fmt.Errorf("event %s not applied", updates[from+i].Event.ID)
			}
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- applyInBatches(fs.ApplyVelocity, orderUpdates) }()
	if err := applyInBatches(fs.ApplyLabels, labelUpdates); err != nil {
		t.Error(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	day := labelAt.Truncate(24 * time.Hour)
	for i := range orders {
		o := probe(day.Add(24 * time.Hour))
		o.Card = fmt.Sprint("card-", i)
		snap, err := fs.FraudSnapshot(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		field := fmt.Sprint("lf:d:", day.UnixMilli()/(24*time.Hour).Milliseconds())
		if got := snap.Card[field]; got != 1 {
			t.Fatalf("card-%d counts %d fraud labels (%s), want 1: %v", i, got, field, snap.Card)
		}
	}
}

// Finding: the dedup key was global by event id, so an id used first by a
// pick made the velocity applier skip a real order with the same id. An id
// reused on another topic, or for another entity, suppresses nothing.
func TestReusedEventIDSuppressesNoOtherEvent(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	ctx := context.Background()
	const id = "e-1" // two producers with simple ids
	sp1 := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}
	sp2 := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-2"}
	picks, err := fs.ApplyAvailability(ctx, []aisle.Update{
		{Event: pick(id, aisle.TypePickFound, sp1, fraudT0), Origin: aisle.Origin{Topic: aisle.TopicPicking, Partition: 0, Offset: 7}},
		{Event: pick(id, aisle.TypePickFound, sp2, fraudT0), Origin: aisle.Origin{Topic: aisle.TopicPicking, Partition: 1, Offset: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(picks, []bool{true, true}) {
		t.Errorf("picks with one id on two store-products: applied %v, want both", picks)
	}
	order := orderEvent(t, id, "o-reused", "u-reused", "card-reused", "dev-reused", 5000, fraudT0.Add(-time.Minute))
	if !applyOne(t, fs.ApplyVelocity, order, aisle.Origin{Topic: aisle.TopicOrders, Partition: 0, Offset: 7}) {
		t.Error("the order with a pick's event id was skipped")
	}
	o := probe(fraudT0)
	o.UserID = "u-reused"
	if got := featuresAt(t, fs, o)["user_orders_1h"]; got != 1 {
		t.Errorf("user_orders_1h = %v, want the order counted once", got)
	}
}

// Concurrent assessments of one new account see each other: each reads
// each entity's state just before its own order and applies it atomically,
// so N of them see 0..N-1 earlier orders of each entity. The stream's later copies of the
// same events (from Kafka, after more than features.RecentIDs other events
// reached the entities) change nothing.
func TestAssessedOrdersSeeEachOtherAndTheStreamCopyChangesNothing(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	const n = 3 * features.RecentIDs / 2
	events := make([]*aisle.Decoded, n)
	for i := range events {
		events[i] = orderEvent(t, fmt.Sprintf("e-burst-%d", i), fmt.Sprintf("o-burst-%d", i), "u-new", "card-1", "dev-1", 2500, fraudT0)
	}
	seen := make([]map[string]float64, n)
	errs := make(chan error, n)
	for i, ev := range events {
		go func() {
			snap, err := fs.AssessOrder(context.Background(), ev)
			if err == nil {
				seen[i] = map[string]float64{}
				for j, v := range models.ComputeFraudFeatures(features.FraudOrder(ev), snap) {
					seen[i][models.FraudFeatures[j].Name] = v
				}
			}
			errs <- err
		}()
	}
	for range events {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Each entity is read and changed atomically on its own, so each sees
	// the burst one order at a time: 0..n-1 earlier orders. The entities
	// live in different slots (on a Redis Cluster, on different masters),
	// so they may see the orders in different orders.
	firsts := 0
	for _, feature := range []string{"user_orders_1h", "card_orders_1h", "device_orders_1h"} {
		var counts []int
		for _, f := range seen {
			counts = append(counts, int(f[feature]))
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != i {
				t.Fatalf("the assessments' %s were %v, want 0..%d", feature, counts, n-1)
			}
		}
	}
	for _, f := range seen {
		if f["first_order"] == 1 {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d assessments saw a first order, want 1", firsts)
	}

	at := probe(fraudT0.Add(time.Minute))
	at.UserID = "u-new"
	before := featuresAt(t, fs, at)
	for i, ev := range events {
		if applyOne(t, fs.ApplyVelocity, ev, aisle.Origin{Topic: aisle.TopicOrders, Partition: 0, Offset: int64(i)}) {
			t.Errorf("the stream's copy of assessed order %d was applied", i)
		}
	}
	// Assessing an order again reads; it does not count it twice either,
	// though most of the burst's ids have left the entities' "@ids".
	for _, ev := range events {
		if _, err := fs.AssessOrder(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if after := featuresAt(t, fs, at); !reflect.DeepEqual(before, after) {
		t.Errorf("the stream's copies changed the features:\nbefore %v\nafter  %v", before, after)
	}
	if before["user_orders_1h"] != n {
		t.Errorf("user_orders_1h = %v after the burst, want %d", before["user_orders_1h"], n)
	}
}

// Finding: a labels step retried after a failure part way counted the
// labels its first try had recorded as duplicates. A retried step reports
// what it applied; a redelivery after a step that reported it, and another
// record's label of the same order, are the duplicates. The counts are
// made once either way.
func TestARetriedLabelStepCountsWhatItApplied(t *testing.T) {
	t.Parallel()
	fs := featurestest.MustOpen(t)
	labelAt := fraudT0.Add(-time.Hour)
	order := orderEvent(t, "e-o1", "o-1", "u-1", "card-1", "dev-1", 1000, fraudT0.Add(-2*time.Hour))
	if !applyOne(t, fs.ApplyVelocity, order, aisle.Origin{Topic: aisle.TopicOrders, Offset: 1}) {
		t.Fatal("order not applied")
	}
	label := aisle.Update{Event: labelEvent(t, "e-l1", "o-1", true, labelAt), Origin: aisle.Origin{Topic: aisle.TopicLabels, Offset: 5}}
	// The first try applies the label and fails before reporting it.
	if _, err := fs.CountLabels(context.Background(), []aisle.Update{label}); err != nil {
		t.Fatal(err)
	}
	if !applyOne(t, fs.ApplyLabels, label.Event, label.Origin) {
		t.Error("the retried step reports the label it applied a duplicate")
	}
	if applyOne(t, fs.ApplyLabels, label.Event, label.Origin) {
		t.Error("a redelivery of a reported label is reported applied")
	}
	if applyOne(t, fs.ApplyLabels, labelEvent(t, "e-l2", "o-1", false, labelAt), aisle.Origin{Topic: aisle.TopicLabels, Offset: 6}) {
		t.Error("a second label of the order is reported applied")
	}
	snap, err := fs.FraudSnapshot(context.Background(), probe(fraudT0.Add(24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	field := fmt.Sprint("lc:d:", labelAt.UnixMilli()/(24*time.Hour).Milliseconds())
	if snap.Card[field] != 1 {
		t.Errorf("card-1 counts %d labels, want 1", snap.Card[field])
	}
}
