package aisle

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds DecodeEvent, which stream workers and mutations share,
// any record value for any topic. Its seeds are in testdata/fuzz/FuzzDecode
// (every event type, and broken, huge, odd and mistyped values); go test
// runs them, go test -fuzz FuzzDecode explores from them. Beyond not
// panicking: a rejection is an EINVALID *Error with a message; an accepted
// event keeps the rules (ids, ranges, one data field matching its type and
// topic) and re-encodes to a value that decodes to the same event.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte, topic string) {
		d, err := DecodeEvent(value, topic, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || e.Message == "" {
				t.Fatalf("rejection %#v is not an EINVALID *Error with a message", err)
			}
			return
		}
		checkDecoded(t, d, topic)

		again, err := DecodeEvent(reencode(t, d), topic, now)
		if err != nil {
			t.Fatalf("re-encoded event rejected: %v\nfirst decoded: %+v", err, d)
		}
		if !sameEvent(d, again) {
			t.Fatalf("re-encoding changed the event:\nfirst  %+v\nsecond %+v", d, again)
		}
	})
}

// checkDecoded checks the rules every accepted event keeps.
func checkDecoded(t *testing.T, d *Decoded, topic string) {
	t.Helper()
	wantTopic, err := TopicFor(d.Type)
	switch {
	case err != nil:
		t.Fatalf("accepted an event of unknown type %q", d.Type)
	case topic != "" && wantTopic != topic:
		t.Fatalf("accepted a %s event on topic %s", d.Type, topic)
	case ValidateID("id", d.ID) != nil:
		t.Fatalf("accepted event id %q", d.ID)
	case d.Time.IsZero() || d.Time.After(now.Add(MaxClockSkew)):
		t.Fatalf("accepted event time %s (now %s)", d.Time, now)
	}
	set := 0
	for _, p := range []any{d.Inventory, d.Pick, d.Session, d.Order, d.PaymentFailed, d.Label} {
		if !reflect.ValueOf(p).IsNil() {
			set++
		}
	}
	if set != 1 {
		t.Fatalf("%d data fields set, want 1: %+v", set, d)
	}
	stores, products := d.References()
	for _, id := range append(stores, products...) {
		if ValidateID("reference", id) != nil {
			t.Fatalf("accepted a reference to %q", id)
		}
	}
	if d.Key() == "" {
		t.Fatalf("accepted an event whose record key is %q", d.Key())
	}
	switch {
	case d.Inventory != nil:
		// Quantities are signed system counts; a count is never taken after it is sent.
		if wantTopic != TopicInventory || d.Inventory.Quantity == nil || (d.Inventory.CountedAt != nil && d.Inventory.CountedAt.After(d.Time)) {
			t.Fatalf("accepted inventory %+v", d.Inventory)
		}
	case d.Pick != nil:
		if wantTopic != TopicPicking || (d.Type == TypePickReplaced) != (d.Pick.ReplacementProductID != "") {
			t.Fatalf("accepted %s %+v", d.Type, d.Pick)
		}
	case d.Session != nil:
		s := d.Session
		if wantTopic != TopicSessions || len(s.Query) > MaxSearchQueryLength || !utf8.ValidString(s.Query) ||
			(d.Type == TypeSessionSearch) != (s.Query != "") || (d.Type == TypeSessionCheckout) != (s.OrderID != "") {
			t.Fatalf("accepted %s %+v", d.Type, s)
		}
	case d.Order != nil:
		o := d.Order
		if d.Type != TypeOrderPlaced || o.AmountCents == nil || *o.AmountCents < 0 || *o.AmountCents > MaxOrderAmountCents ||
			len(o.Items) == 0 || len(o.Items) > MaxOrderItems || validateIP(o.IP) != nil {
			t.Fatalf("accepted order %+v", o)
		}
		for _, it := range o.Items {
			if it.Quantity < 1 || it.Quantity > MaxItemQuantity {
				t.Fatalf("accepted order line %+v", it)
			}
		}
	case d.PaymentFailed != nil:
		if d.Type != TypePaymentFailed || validateIP(d.PaymentFailed.IP) != nil {
			t.Fatalf("accepted payment failure %+v", d.PaymentFailed)
		}
	case d.Label != nil:
		if wantTopic != TopicLabels || d.Label.Fraud == nil || ValidateID("order_id", d.Label.OrderID) != nil {
			t.Fatalf("accepted label %+v", d.Label)
		}
	}
}

// reencode writes d back as a record value from its typed fields.
func reencode(t *testing.T, d *Decoded) []byte {
	t.Helper()
	var data any
	for _, p := range []any{d.Inventory, d.Pick, d.Session, d.Order, d.PaymentFailed, d.Label} {
		if !reflect.ValueOf(p).IsNil() {
			data = p
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("encode the data of an accepted event: %v", err)
	}
	ev := d.Event
	ev.Data = raw
	value, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("encode an accepted event: %v", err)
	}
	return value
}

// sameEvent compares two decoded events: times by instant (a time zone
// offset is not part of the event), the raw data by what it decoded to.
func sameEvent(a, b *Decoded) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	x, y := *a, *b
	x.Time, y.Time = b.Time, b.Time
	x.Data, y.Data = nil, nil
	return reflect.DeepEqual(x, y)
}
