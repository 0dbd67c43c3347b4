package aisle

import (
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// Bounds on commerce event data.
const (
	MaxSearchQueryLength = 256  // bytes of a session.search query
	MaxOrderItems        = 500  // lines of one order
	MaxItemQuantity      = 1000 // units of one order line
	// MaxOrderAmountCents bounds an order's amount (one million currency
	// units): larger amounts are producer bugs, not orders.
	MaxOrderAmountCents = 100_000_000
)

// SessionEvent is the data of session.* events. Which of ProductID, Query
// and OrderID is required depends on the type: product for view and cart
// events, query for search, order for checkout; the others must be empty.
type SessionEvent struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	StoreID   string `json:"store_id"`
	ProductID string `json:"product_id,omitempty"`
	Query     string `json:"query,omitempty"`
	OrderID   string `json:"order_id,omitempty"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

// OrderPlaced is the data of an order.placed event.
type OrderPlaced struct {
	OrderID         string      `json:"order_id"`
	UserID          string      `json:"user_id"`
	StoreID         string      `json:"store_id"`
	AmountCents     *int64      `json:"amount_cents"`
	CardFingerprint string      `json:"card_fingerprint"`
	DeviceID        string      `json:"device_id"`
	IP              string      `json:"ip"`
	AddressHash     string      `json:"address_hash"`
	Items           []OrderItem `json:"items"`
}

// PaymentFailed is the data of a payment.failed event.
type PaymentFailed struct {
	OrderID         string `json:"order_id"`
	UserID          string `json:"user_id"`
	CardFingerprint string `json:"card_fingerprint"`
	DeviceID        string `json:"device_id"`
	IP              string `json:"ip"`
}

// OrderLabeled is the data of an order.labeled event: the outcome of an
// investigation or a chargeback, known some time after the order.
type OrderLabeled struct {
	OrderID string `json:"order_id"`
	Fraud   *bool  `json:"fraud"`
}

func (s *SessionEvent) validate(eventType string) error {
	if err := validateIDs("session_id", s.SessionID, "user_id", s.UserID, "store_id", s.StoreID); err != nil {
		return err
	}
	var wantProduct, wantQuery, wantOrder bool
	switch eventType {
	case TypeSessionSearch:
		wantQuery = true
	case TypeSessionCheckout:
		wantOrder = true
	default:
		wantProduct = true
	}
	for _, f := range []struct {
		name, value string
		want        bool
	}{
		{"product_id", s.ProductID, wantProduct},
		{"order_id", s.OrderID, wantOrder},
	} {
		if f.want {
			if err := ValidateID(f.name, f.value); err != nil {
				return err
			}
		} else if f.value != "" {
			return Errorf(EINVALID, "%s is not allowed on %s", f.name, eventType)
		}
	}
	switch {
	case !wantQuery && s.Query != "":
		return Errorf(EINVALID, "query is only allowed on %s", TypeSessionSearch)
	case wantQuery && s.Query == "":
		return Errorf(EINVALID, "missing query")
	case len(s.Query) > MaxSearchQueryLength:
		return Errorf(EINVALID, "query is longer than %d bytes", MaxSearchQueryLength)
	case !utf8.ValidString(s.Query):
		return Errorf(EINVALID, "query is not valid UTF-8")
	}
	return nil
}

func (o *OrderPlaced) validate(string) error {
	err := validateIDs("order_id", o.OrderID, "user_id", o.UserID, "store_id", o.StoreID,
		"card_fingerprint", o.CardFingerprint, "device_id", o.DeviceID, "address_hash", o.AddressHash)
	if err != nil {
		return err
	}
	if err := validateIP(o.IP); err != nil {
		return err
	}
	switch {
	case o.AmountCents == nil:
		return fieldErrorf(EINVALID, "amount_cents", "missing %s")
	case *o.AmountCents < 0:
		return fieldErrorf(EINVALID, "amount_cents", "%s %d is negative", *o.AmountCents)
	case *o.AmountCents > MaxOrderAmountCents:
		return fieldErrorf(EINVALID, "amount_cents", "%s %d is more than %d", *o.AmountCents, MaxOrderAmountCents)
	case len(o.Items) == 0:
		return fieldErrorf(EINVALID, "items", "missing %s")
	case len(o.Items) > MaxOrderItems:
		return fieldErrorf(EINVALID, "items", "%s has %d lines, more than %d", len(o.Items), MaxOrderItems)
	}
	for i, it := range o.Items {
		if err := ValidateID(fmt.Sprintf("items[%d].product_id", i), it.ProductID); err != nil {
			return err
		}
		if it.Quantity < 1 || it.Quantity > MaxItemQuantity {
			return fieldErrorf(EINVALID, fmt.Sprintf("items[%d].quantity", i), "%s %d is not between 1 and %d", it.Quantity, MaxItemQuantity)
		}
	}
	return nil
}

func (p *PaymentFailed) validate(string) error {
	err := validateIDs("order_id", p.OrderID, "user_id", p.UserID,
		"card_fingerprint", p.CardFingerprint, "device_id", p.DeviceID)
	if err != nil {
		return err
	}
	return validateIP(p.IP)
}

func (l *OrderLabeled) validate(string) error {
	if err := ValidateID("order_id", l.OrderID); err != nil {
		return err
	}
	if l.Fraud == nil {
		return Errorf(EINVALID, "missing fraud")
	}
	return nil
}

func validateIP(ip string) error {
	if ip == "" {
		return fieldErrorf(EINVALID, "ip", "missing %s")
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return fieldErrorf(EINVALID, "ip", "%s %q is not an IP address", ip)
	}
	return nil
}
