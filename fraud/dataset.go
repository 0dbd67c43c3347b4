package fraud

import (
	"cmp"
	"slices"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
)

// Example is one order of a replayed history: its features as serving would
// have computed them when the order was placed, and its label if one came.
type Example struct {
	Order    models.FraudOrder
	Features []float64 // raw, models.FraudFeatures order
	Labeled  bool
	Fraud    bool
	LabelAt  time.Time // when the label became known
}

// Dataset replays events (order.placed, payment.failed,
// order.labeled; other types are ignored) in event-time order through the
// same velocity operations the stream workers apply to Redis, and computes
// each order's features just before applying it: point in time, nothing
// from its future. Orders repeated under another event id count once, and
// the first label of an order wins, as in Redis. Ties in time keep the
// events' given order.
func Dataset(events []*aisle.Decoded) []Example {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b *aisle.Decoded) int { return cmp.Compare(a.Time.UnixMilli(), b.Time.UnixMilli()) })
	mem := models.NewVelocityMemory()
	var out []Example
	byOrder := map[string]int{}
	pending := map[string]*aisle.Decoded{} // labels that came before their order
	label := func(i int, d *aisle.Decoded) {
		out[i].Labeled, out[i].Fraud, out[i].LabelAt = true, *d.Label.Fraud, d.Time
	}
	for _, d := range sorted {
		switch {
		case d.Order != nil:
			o := features.FraudOrder(d)
			snap := mem.Snapshot(o)
			x := models.ComputeFraudFeatures(o, snap)
			if !mem.Order(o) {
				continue
			}
			byOrder[o.OrderID] = len(out)
			out = append(out, Example{Order: o, Features: x})
			if l, ok := pending[o.OrderID]; ok {
				label(len(out)-1, l)
			}
		case d.PaymentFailed != nil:
			mem.FailedPayment(features.FraudFailedPayment(d))
		case d.Label != nil:
			if !mem.Label(d.Label.OrderID, *d.Label.Fraud, d.Time) {
				continue
			}
			if i, ok := byOrder[d.Label.OrderID]; ok {
				label(i, d)
			} else {
				pending[d.Label.OrderID] = d
			}
		}
	}
	return out
}
