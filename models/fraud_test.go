package models

import (
	"testing"
	"time"
)

func TestFraudFeaturesArePointInTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mem := NewVelocityMemory()
	order := func(id, user, card, device, address string, cents int64, at time.Time) FraudOrder {
		return FraudOrder{OrderID: id, UserID: user, StoreID: "s-1", Card: card, Device: device, IP: "10.0.0.1", Address: address, AmountCents: cents, At: at}
	}
	// u-1's history: four 20.00 orders over ten days on card-1, dev-1.
	for i := range 4 {
		mem.Order(order("o-"+string(rune('a'+i)), "u-1", "card-1", "dev-1", "addr-1", 2000, t0.AddDate(0, 0, -10+3*i)))
	}
	// Declines on card-2 from dev-2, 15 and 5 minutes before; another user on dev-2.
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(-15 * time.Minute)})
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(-5 * time.Minute)})
	mem.Order(order("o-x", "u-2", "card-3", "dev-2", "addr-1", 1000, t0.Add(-50*time.Minute)))
	// Something in a later bucket must not count (within the scoring time's
	// own bucket, later events cannot be told apart; serving and replay
	// never hold them).
	mem.FailedPayment(FraudFailedPayment{UserID: "u-1", Card: "card-2", Device: "dev-2", IP: "10.0.0.1", At: t0.Add(2 * time.Hour)})

	o := order("o-now", "u-1", "card-2", "dev-2", "addr-1", 12000, t0)
	got := map[string]float64{}
	for i, v := range ComputeFraudFeatures(o, mem.Snapshot(o)) {
		got[FraudFeatures[i].Name] = v
	}
	for name, want := range map[string]float64{
		"amount":                   120,
		"amount_vs_usual":          6, // 120 against a 20.00 mean
		"first_order":              0,
		"account_age_days":         10,
		"user_orders_24h":          0,
		"new_device":               1,
		"new_card":                 1,
		"new_address":              0,
		"card_failed_payments_10m": 1, // the one 15 minutes ago is out, the future one too
		"card_failed_payments_24h": 2,
		"device_cards_24h":         2, // card-3 ordered, card-2 declined (and scored now)
		"device_accounts_7d":       2,
		"address_accounts_7d":      2,
		"device_orders_1h":         1,
		"ip_accounts_24h":          2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if mem.Order(order("o-a", "u-1", "card-1", "dev-1", "addr-1", 2000, t0)) {
		t.Error("an order recorded twice")
	}
}
