package fraud

import (
	"strings"
	"testing"

	"github.com/aisle/aisle/aisle"
)

func TestOrderEventIDIsStableAndValid(t *testing.T) {
	t.Parallel()
	for _, orderID := range []string{"o-1", strings.Repeat("x", 120), strings.Repeat("y", 128)} {
		id := orderEventID(orderID)
		if err := aisle.ValidateID("id", id); err != nil {
			t.Errorf("order %d bytes: event id %q: %v", len(orderID), id, err)
		}
		if id != orderEventID(orderID) {
			t.Errorf("order %q: event id not stable", orderID)
		}
	}
	if orderEventID("o-1") != "e-order-o-1" || orderEventID(strings.Repeat("y", 128)) == orderEventID(strings.Repeat("y", 127)) {
		t.Error("event ids do not follow the order id")
	}
}
