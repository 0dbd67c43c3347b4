package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

const assessOrderMutation = `mutation($in: AssessOrderInput!) {
  assessOrder(input: $in) { orderId score decision modelVersion reasons { feature description value contribution } }
}`

const orderRiskQuery = `query($o: ID!) {
  orderRisk(orderId: $o) { orderId score decision modelVersion fraud reasons { feature description value contribution } }
}`

type riskReason struct {
	Feature      string  `json:"feature"`
	Description  string  `json:"description"`
	Value        float64 `json:"value"`
	Contribution float64 `json:"contribution"`
}

type fraudAssessment struct {
	OrderID      string       `json:"orderId"`
	Score        float64      `json:"score"`
	Decision     string       `json:"decision"`
	ModelVersion int64        `json:"modelVersion"`
	Fraud        *bool        `json:"fraud"`
	Reasons      []riskReason `json:"reasons"`
}

// orderInput is assessOrder's input for an order at the store of one product.
func orderInput(orderID, user, store, product, card, device string, amountCents int) map[string]any {
	return map[string]any{
		"orderId": orderID, "userId": user, "storeId": store, "amountCents": amountCents,
		"cardFingerprint": card, "deviceId": device, "ip": "192.0.2.7", "addressHash": "addr-" + user,
		"items": []map[string]any{{"productId": product, "quantity": 2}},
	}
}

// TestFraudAccessRules: only ops and service see fraud risk, through every
// root field, nested selections and subscriptions; nothing else gets data.
func TestFraudAccessRules(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(1)
	keys := map[string]string{
		"anonymous": "",
		"customer":  ts.createKey(aisle.RoleCustomer, "", "u-1"),
		"shopper":   ts.createKey(aisle.RoleShopper, "", ""),
		"retailer":  ts.createKey(aisle.RoleRetailer, store.RetailerID, ""),
	}
	ops := ts.createKey(aisle.RoleOps, "", "")
	in := orderInput("o-access", "u-1", store.ID, products[0], "card-1", "dev-1", 1234)
	operations := []struct {
		name, query string
		vars        map[string]any
	}{
		{"orderRisk", orderRiskQuery, map[string]any{"o": "o-access"}},
		{"orderRisk nested reasons only", `query { orderRisk(orderId: "o-access") { reasons { description } } }`, nil},
		{"orderRisk under an alias beside public data", `query { stores(first: 1) { edges { cursor } } r: orderRisk(orderId: "o-access") { score } }`, nil},
		{"assessOrder", assessOrderMutation, map[string]any{"in": in}},
		{"labelOrder", `mutation { labelOrder(orderId: "o-access", fraud: true) { eventId } }`, nil},
	}
	for role, key := range keys {
		want := aisle.EFORBIDDEN
		if key == "" {
			want = aisle.EUNAUTHENTICATED
		}
		for _, op := range operations {
			resp := ts.query(key, op.query, op.vars)
			if len(resp.Errors) != 1 {
				t.Errorf("%s %s: errors %+v, want one", role, op.name, resp.Errors)
				continue
			}
			if code := resp.code(t); code != want {
				t.Errorf("%s %s: code %s, want %s", role, op.name, code, want)
			}
			var data map[string]json.RawMessage
			if string(resp.Data) != "null" {
				if err := json.Unmarshal(resp.Data, &data); err != nil {
					t.Fatal(err)
				}
			}
			for field, v := range data {
				if field != "stores" && string(v) != "null" {
					t.Errorf("%s %s: data.%s = %s, want null", role, op.name, field, v)
				}
			}
		}

		init := map[string]any{}
		if key != "" {
			init["Authorization"] = "Bearer " + key
		}
		ws, err := ts.dialWS(init)
		if err != nil {
			t.Fatalf("%s: dial: %v", role, err)
		}
		ws.subscribe("1", `subscription { riskAlerts(minScore: 0) { orderId score reasons { description } } }`, nil)
		msg, err := ws.next(10 * time.Second)
		if err != nil {
			t.Fatalf("%s riskAlerts: %v", role, err)
		}
		// gqlgen reports a resolver's refusal as a result with errors and no data.
		var result gqlResponse
		if msg.Type != "next" || json.Unmarshal(msg.Payload, &result) != nil || len(result.Errors) != 1 ||
			result.Errors[0].Extensions["code"] != want || string(result.Data) != "null" {
			t.Errorf("%s riskAlerts: got %s %s, want one %s error and null data", role, msg.Type, msg.Payload, want)
		}
	}

	// ops reads and labels, but only backend services assess orders.
	resp := ts.query(ops, assessOrderMutation, map[string]any{"in": in})
	if resp.code(t) != aisle.EFORBIDDEN {
		t.Errorf("ops assessOrder: %+v, want FORBIDDEN", resp.Errors)
	}
	var risk struct {
		OrderRisk *fraudAssessment `json:"orderRisk"`
	}
	ts.mustData(ops, orderRiskQuery, map[string]any{"o": "o-never-assessed"}, &risk)
	if risk.OrderRisk != nil {
		t.Errorf("orderRisk of an order never assessed = %+v, want null", risk.OrderRisk)
	}
	var label struct {
		LabelOrder struct {
			Topic string `json:"topic"`
		} `json:"labelOrder"`
	}
	ts.mustData(ops, `mutation { labelOrder(orderId: "o-access", fraud: false) { topic } }`, nil, &label)
	if label.LabelOrder.Topic != aisle.TopicLabels {
		t.Errorf("labelOrder topic = %q, want %s", label.LabelOrder.Topic, aisle.TopicLabels)
	}
}

// Before any model version is active, assessOrder says so plainly.
func TestAssessOrderWithoutModelIsUnavailable(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(1)
	service := ts.createKey(aisle.RoleService, "", "")
	resp := ts.query(service, assessOrderMutation, map[string]any{"in": orderInput("o-1", "u-1", store.ID, products[0], "card-1", "dev-1", 1000)})
	if code := resp.code(t); code != aisle.EUNAVAILABLE {
		t.Errorf("code %s (%q), want UNAVAILABLE", code, resp.Errors[0].Message)
	}
	bad := orderInput("o-2", "u-1", store.ID, products[0], "card-1", "dev-1", -5)
	if code := ts.query(service, assessOrderMutation, map[string]any{"in": bad}).code(t); code != aisle.EINVALID {
		t.Errorf("negative amount: code %s, want BAD_USER_INPUT", code)
	}
	unknown := orderInput("o-3", "u-1", store.ID, "p-999999", "card-1", "dev-1", 100)
	if resp := ts.query(service, assessOrderMutation, map[string]any{"in": unknown}); resp.code(t) != aisle.ENOTFOUND {
		t.Errorf("unknown product: %+v, want NOT_FOUND", resp.Errors)
	}
}
