package aisle

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func envelope(eventType, timeText, data string) string {
	return `{"id":"e-1","type":"` + eventType + `","time":"` + timeText + `","source":"test","data":` + data + `}`
}

const (
	goodPick      = `{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1"}`
	goodInventory = `{"store_id":"s-1","product_id":"p-1","quantity":3}`
	okTime        = "2026-11-21T09:59:00.000Z"
)

func TestDecodeEventAcceptsContractEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, topic string
		found              bool
	}{
		{"found pick", envelope(TypePickFound, okTime, goodPick), TopicPicking, true},
		{"not found pick", envelope(TypePickNotFound, okTime, goodPick), TopicPicking, false},
		{"replaced pick", envelope(TypePickReplaced, okTime, `{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1","replacement_product_id":"p-2"}`), TopicPicking, false},
		{"inventory level", envelope(TypeInventoryLevel, okTime, goodInventory), TopicInventory, false},
		{"zero inventory", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":0}`), "", false},
		// Finding (issue 18): a negative system count was refused, losing what it says.
		{"negative system count", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":-2}`), "", false},
		// Finding (issue 18): one time could not say when a count sent later was taken.
		{"count taken before it was sent", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":2,"counted_at":"2026-11-21T06:00:00Z"}`), "", false},
		{"slightly in the future", envelope(TypePickFound, "2026-11-21T10:04:00Z", goodPick), "", true},
	} {
		d, err := DecodeEvent([]byte(tc.value), tc.topic, now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := d.StoreProduct(); got != (StoreProduct{"s-1", "p-1"}) || got.String() != "s-1:p-1" {
			t.Errorf("%s: store-product %v", tc.name, got)
		}
		if d.ID != "e-1" || d.Source != "test" {
			t.Errorf("%s: envelope %+v", tc.name, d.Event)
		}
	}
}

func TestDecodeEventRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, topic, reason string
	}{
		{"not JSON", `not json`, "", "bad envelope"},
		{"JSON array", `[]`, "", "bad envelope"},
		{"trailing data", envelope(TypePickFound, okTime, goodPick) + `{}`, "", "trailing data"},
		{"unknown envelope field", `{"id":"e-1","type":"pick.found","time":"` + okTime + `","data":` + goodPick + `,"extra":1}`, "", "unknown field"},
		{"missing id", `{"type":"pick.found","time":"` + okTime + `","data":` + goodPick + `}`, "", "missing id"},
		{"id with colon", `{"id":"e:1","type":"pick.found","time":"` + okTime + `","data":` + goodPick + `}`, "", "forbidden character"},
		{"unknown type", envelope("pick.lost", okTime, goodPick), "", `unknown event type "pick.lost"`},
		{"type on the wrong topic", envelope(TypePickFound, okTime, goodPick), TopicInventory, "does not belong on topic"},
		{"missing time", `{"id":"e-1","type":"pick.found","data":` + goodPick + `}`, "", "missing time"},
		{"time not RFC 3339", envelope(TypePickFound, "yesterday", goodPick), "", "bad envelope"},
		{"far future", envelope(TypePickFound, "2026-11-21T11:00:00Z", goodPick), "", "in the future"},
		{"missing data", `{"id":"e-1","type":"pick.found","time":"` + okTime + `"}`, "", "missing data"},
		{"null data", envelope(TypePickFound, okTime, `null`), "", "missing data"},
		{"data not an object", envelope(TypePickFound, okTime, `"s-1"`), "", "bad pick.found data"},
		{"missing store", envelope(TypePickFound, okTime, `{"product_id":"p-1","shopper_id":"sh-1","order_id":"o-1"}`), "", "missing store_id"},
		{"store id not a string", envelope(TypePickFound, okTime, `{"store_id":1,"product_id":"p-1","shopper_id":"sh-1","order_id":"o-1"}`), "", "bad pick.found data"},
		{"replacement missing", envelope(TypePickReplaced, okTime, goodPick), "", "missing replacement_product_id"},
		{"replacement on a found pick", envelope(TypePickFound, okTime, `{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1","replacement_product_id":"p-2"}`), "", "only allowed on pick.replaced"},
		{"missing quantity", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1"}`), "", "missing quantity"},
		{"count taken after it was sent", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":2,"counted_at":"2026-11-21T10:00:01Z"}`), "", "counted_at"},
		{"counted_at not a time", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":2,"counted_at":"06:00"}`), "", "bad inventory.level data"},
		{"fractional quantity", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":1.5}`), "", "bad inventory.level data"},
		{"quantity as text", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-1","quantity":"3"}`), "", "bad inventory.level data"},
		{"id too long", envelope(TypeInventoryLevel, okTime, `{"store_id":"`+strings.Repeat("s", 129)+`","product_id":"p-1","quantity":1}`), "", "longer than 128"},
		{"empty value", ``, "", "empty record value"},
		{"NUL in store_id", envelope(TypePickFound, okTime, `{"store_id":"s-1\u0000","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1"}`), "", "control character"},
		{"DEL in product_id", envelope(TypeInventoryLevel, okTime, `{"store_id":"s-1","product_id":"p-\u007f","quantity":1}`), "", "control character"},
		{"C1 control in event id", `{"id":"e-\u0085","type":"pick.found","time":"` + okTime + `","data":` + goodPick + `}`, "", "control character"},
		{"oversized record", envelope(TypePickFound, okTime, `{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"`+strings.Repeat("o", MaxEventBytes)+`"}`), "", "more than the limit"},
	} {
		_, err := DecodeEvent([]byte(tc.value), tc.topic, now)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tc.reason) {
			t.Errorf("%s: got %v, want %s mentioning %q", tc.name, err, EINVALID, tc.reason)
		}
	}
}

// Identifiers are printable text: NUL and every other control character
// are refused (PostgreSQL refuses NUL in text, and control characters in
// keys and logs are a producer's bug), as is text that is not UTF-8.
func TestValidateIDRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"o\x00", "\x00", "o\x01-1", "o\x1b[31m", "o\x7f", "o\u0080", "o\u009f", "o\xff"} {
		err := ValidateID("orderId", id)
		if ErrorCode(err) != EINVALID {
			t.Errorf("ValidateID(%q) = %v, want %s", id, err, EINVALID)
		}
	}
	for _, id := range []string{"o-1", "ürün-7", "店-1", "o_1.2"} {
		if err := ValidateID("orderId", id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	t.Parallel()
	wrapped := Errorf(EFORBIDDEN, "store %s belongs to another retailer", "s-2")
	internal := strings.NewReader("").UnreadByte() // any non-domain error
	for _, tc := range []struct {
		name          string
		err           error
		code, message string
	}{
		{"nil", nil, "", ""},
		{"domain error", wrapped, EFORBIDDEN, "store s-2 belongs to another retailer"},
		{"wrapped domain error", fmt.Errorf("update inventory: %w", wrapped), EFORBIDDEN, "store s-2 belongs to another retailer"},
		{"internal error hides its text", internal, EINTERNAL, "internal error"},
	} {
		if got := ErrorCode(tc.err); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
		if got := ErrorMessage(tc.err); got != tc.message {
			t.Errorf("%s: message %q, want %q", tc.name, got, tc.message)
		}
	}
}
