package aisle

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	goodOrder  = `{"order_id":"o-1","user_id":"u-1","store_id":"s-1","amount_cents":4250,"card_fingerprint":"c-1","device_id":"d-1","ip":"203.0.113.7","address_hash":"a-1","items":[{"product_id":"p-1","quantity":2},{"product_id":"p-2","quantity":1}]}`
	goodFailed = `{"order_id":"o-1","user_id":"u-1","card_fingerprint":"c-1","device_id":"d-1","ip":"2001:db8::1"}`
)

func TestDecodeEventAcceptsCommerceEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, topic, key string
		stores, products        []string
	}{
		{"view", envelope(TypeSessionView, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), TopicSessions, "se-1", []string{"s-1"}, []string{"p-1"}},
		{"add to cart", envelope(TypeSessionAddToCart, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), TopicSessions, "se-1", []string{"s-1"}, []string{"p-1"}},
		{"remove from cart", envelope(TypeSessionRemoveFromCart, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), TopicSessions, "se-1", []string{"s-1"}, []string{"p-1"}},
		{"search", envelope(TypeSessionSearch, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","query":"pancake mix"}`), TopicSessions, "se-1", []string{"s-1"}, nil},
		{"checkout", envelope(TypeSessionCheckout, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","order_id":"o-1"}`), TopicSessions, "se-1", []string{"s-1"}, nil},
		{"order placed", envelope(TypeOrderPlaced, okTime, goodOrder), TopicOrders, "u-1", []string{"s-1"}, []string{"p-1", "p-2"}},
		{"payment failed", envelope(TypePaymentFailed, okTime, goodFailed), TopicOrders, "u-1", nil, nil},
		{"label", envelope(TypeOrderLabeled, okTime, `{"order_id":"o-1","fraud":false}`), TopicLabels, "o-1", nil, nil},
		{"replaced pick", envelope(TypePickReplaced, okTime, `{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1","replacement_product_id":"p-2"}`), TopicPicking, "s-1:p-1", []string{"s-1"}, []string{"p-1", "p-2"}},
	} {
		d, err := DecodeEvent([]byte(tc.value), tc.topic, now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Key() != tc.key {
			t.Errorf("%s: key %q, want %q", tc.name, d.Key(), tc.key)
		}
		stores, products := d.References()
		if !slices.Equal(stores, tc.stores) || !slices.Equal(products, tc.products) {
			t.Errorf("%s: references %v %v, want %v %v", tc.name, stores, products, tc.stores, tc.products)
		}
	}
	d, _ := DecodeEvent([]byte(envelope(TypeOrderPlaced, okTime, goodOrder)), "", now)
	if *d.Order.AmountCents != 4250 || d.Order.Items[0].Quantity != 2 {
		t.Errorf("order data %+v", d.Order)
	}
	d, _ = DecodeEvent([]byte(envelope(TypeOrderLabeled, okTime, `{"order_id":"o-1","fraud":true}`)), "", now)
	if !*d.Label.Fraud {
		t.Errorf("label data %+v", d.Label)
	}
}

func TestDecodeEventRejectsBadCommerceEvents(t *testing.T) {
	t.Parallel()
	order := func(replace, with string) string {
		return envelope(TypeOrderPlaced, okTime, strings.Replace(goodOrder, replace, with, 1))
	}
	for _, tc := range []struct {
		name, value, topic, reason string
	}{
		{"session on the orders topic", envelope(TypeSessionView, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), TopicOrders, "does not belong on topic"},
		{"view without product", envelope(TypeSessionView, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1"}`), "", "missing product_id"},
		{"view without session", envelope(TypeSessionView, okTime, `{"user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), "", "missing session_id"},
		{"search without query", envelope(TypeSessionSearch, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1"}`), "", "missing query"},
		{"search with product", envelope(TypeSessionSearch, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","query":"eggs","product_id":"p-1"}`), "", "product_id is not allowed"},
		{"query on a view", envelope(TypeSessionView, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1","query":"eggs"}`), "", "query is only allowed"},
		{"long query", envelope(TypeSessionSearch, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","query":"`+strings.Repeat("q", 257)+`"}`), "", "longer than 256"},
		{"checkout without order", envelope(TypeSessionCheckout, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1"}`), "", "missing order_id"},
		{"unknown session field", envelope(TypeSessionView, okTime, `{"session_id":"se-1","user_id":"u-1","store_id":"s-1","product_id":"p-1","page":2}`), "", "unknown field"},
		{"order without amount", order(`"amount_cents":4250,`, ``), "", "missing amount_cents"},
		{"negative amount", order(`4250`, `-1`), "", "negative"},
		{"absurd amount", order(`4250`, `100000000000`), "", "more than"},
		{"amount as text", order(`4250`, `"42.50"`), "", "bad order.placed data"},
		{"bad ip", order(`203.0.113.7`, `localhost`), "", "not an IP address"},
		{"missing card", order(`"card_fingerprint":"c-1",`, ``), "", "missing card_fingerprint"},
		{"no items", order(`[{"product_id":"p-1","quantity":2},{"product_id":"p-2","quantity":1}]`, `[]`), "", "missing items"},
		{"zero quantity", order(`"quantity":2`, `"quantity":0`), "", "items[0].quantity 0"},
		{"item without product", order(`"product_id":"p-2",`, ``), "", "missing items[1].product_id"},
		{"NUL in user_id", order(`"user_id":"u-1"`, `"user_id":"u-1\u0000"`), "", "control character"},
		{"newline in card", order(`"c-1"`, `"c-\n1"`), "", "control character"},
		{"control character in an item", order(`"product_id":"p-2"`, `"product_id":"p-\u00022"`), "", "control character"},
		{"NUL in a session id", envelope(TypeSessionView, okTime, `{"session_id":"se-1\u0000","user_id":"u-1","store_id":"s-1","product_id":"p-1"}`), "", "control character"},
		{"NUL in a label's order", envelope(TypeOrderLabeled, okTime, `{"order_id":"o\u0000","fraud":true}`), "", "control character"},
		{"payment failed without ip", envelope(TypePaymentFailed, okTime, `{"order_id":"o-1","user_id":"u-1","card_fingerprint":"c-1","device_id":"d-1"}`), "", "missing ip"},
		{"label without verdict", envelope(TypeOrderLabeled, okTime, `{"order_id":"o-1"}`), "", "missing fraud"},
		{"label verdict as text", envelope(TypeOrderLabeled, okTime, `{"order_id":"o-1","fraud":"yes"}`), "", "bad order.labeled data"},
	} {
		_, err := DecodeEvent([]byte(tc.value), tc.topic, now)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tc.reason) {
			t.Errorf("%s: got %v, want %s mentioning %q", tc.name, err, EINVALID, tc.reason)
		}
	}
}

// One message, named for whoever sent the value: the event's field for the
// stream and the dead-letter topic, the GraphQL argument for the API.
func TestFieldErrorsNameTheArgument(t *testing.T) {
	t.Parallel()
	amount := int64(-100)
	_, err := BuildEvent("e-1", TypeOrderPlaced, time.Time{}, time.Now(), OrderPlaced{OrderID: "o-1", UserID: "u-1", StoreID: "s-1",
		AmountCents: &amount, CardFingerprint: "c-1", DeviceID: "d-1", IP: "192.0.2.1", AddressHash: "a-1", Items: []OrderItem{{ProductID: "p-1", Quantity: 1}}})
	if got := ErrorMessage(err); got != "amount_cents -100 is negative" {
		t.Errorf("event message %q", got)
	}
	if got := InArgument(err, "input"); ErrorCode(got) != EINVALID || ErrorMessage(got) != "input.amountCents -100 is negative" {
		t.Errorf("argument message %q (%s)", ErrorMessage(got), ErrorCode(got))
	}
	_, err = BuildEvent("e-1", TypeOrderPlaced, time.Time{}, time.Now(), OrderPlaced{OrderID: "o-1", UserID: "u-1", StoreID: "s-1",
		AmountCents: new(int64), DeviceID: "d-1", IP: "192.0.2.1", AddressHash: "a-1", Items: []OrderItem{{ProductID: "p-1", Quantity: 1}}})
	if got := ErrorMessage(InArgument(err, "input")); got != "missing input.cardFingerprint" {
		t.Errorf("argument message %q", got)
	}
	other := Errorf(ENOTFOUND, "unknown store s-9")
	if InArgument(other, "input") != error(other) {
		t.Error("an error about no field changed")
	}
}
