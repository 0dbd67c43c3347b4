package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// storesOfTwoRetailers returns the first store of the demo catalog and the
// first store of another retailer, with n products each.
func storesOfTwoRetailers(ts *testServer, n int) (own, other testStore) {
	ts.t.Helper()
	stores := ts.stores(100, n)
	for _, s := range stores[1:] {
		if s.RetailerID != stores[0].RetailerID {
			return stores[0], s
		}
	}
	ts.t.Fatalf("the demo catalog's first %d stores belong to one retailer", len(stores))
	return
}

const bulkInventory = `mutation($s: ID!, $levels: [InventoryLevelInput!], $key: String) {
  updateInventory(input: {storeId: $s, levels: $levels, idempotencyKey: $key}) { eventId topic eventIds } }`

func levels(products []string, quantity int) []map[string]any {
	out := make([]map[string]any, len(products))
	for i, p := range products {
		out[i] = map[string]any{"productId": p, "quantity": quantity}
	}
	return out
}

// TestBulkInventoryIsAllOrNothing: a retailer pushes many levels in one
// call, one event each; a retry with the same idempotencyKey has the same
// event ids; one bad level, or one store of another retailer, publishes none.
func TestBulkInventoryIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	own, other := storesOfTwoRetailers(ts, 5)
	key := ts.createKey(aisle.RoleRetailer, own.RetailerID, "")
	admin := streamingtest.MustAdmin(t, ts.main.KafkaBrokers)
	published := func() int64 {
		t.Helper()
		ends, err := admin.EndOffsets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ends.Total()
	}

	var got struct {
		UpdateInventory struct {
			EventID  string   `json:"eventId"`
			Topic    string   `json:"topic"`
			EventIDs []string `json:"eventIds"`
		} `json:"updateInventory"`
	}
	before := published()
	vars := map[string]any{"s": own.ID, "levels": levels(own.Products, 7), "key": "bulk-1"}
	ts.mustData(key, bulkInventory, vars, &got)
	first := got.UpdateInventory
	if len(first.EventIDs) != len(own.Products) || first.EventID != first.EventIDs[0] || first.Topic != aisle.TopicInventory {
		t.Fatalf("got %+v; want %d event ids on %s, eventId the first", first, len(own.Products), aisle.TopicInventory)
	}
	if n := published() - before; n != int64(len(own.Products)) {
		t.Fatalf("%d records published, want one per level (%d)", n, len(own.Products))
	}
	ts.mustData(key, bulkInventory, vars, &got)
	if !slices.Equal(got.UpdateInventory.EventIDs, first.EventIDs) {
		t.Fatalf("a retry with the same idempotencyKey got event ids %v, want %v", got.UpdateInventory.EventIDs, first.EventIDs)
	}

	// The single-level form keeps working and answers its one id.
	var single struct {
		UpdateInventory struct {
			EventID  string   `json:"eventId"`
			EventIDs []string `json:"eventIds"`
		} `json:"updateInventory"`
	}
	ts.mustData(key, `mutation($s: ID!, $p: ID!) { updateInventory(input: {storeId: $s, productId: $p, quantity: 3}) { eventId eventIds } }`,
		map[string]any{"s": own.ID, "p": own.Products[0]}, &single)
	if !slices.Equal(single.UpdateInventory.EventIDs, []string{single.UpdateInventory.EventID}) {
		t.Fatalf("single form answered %+v; want eventIds = [eventId]", single.UpdateInventory)
	}

	before = published()
	bad := levels(own.Products, 7)
	bad[2]["productId"] = "p-no-such-product"
	tooMany := levels(slices.Repeat(own.Products[:1], 1001), 1)
	future := levels(own.Products, 7) // quantities are signed system counts: a negative one is valid
	future[1]["time"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	for _, c := range []struct {
		name, store string
		levels      []map[string]any
		code, msg   string
	}{
		{"an unknown product", own.ID, bad, aisle.ENOTFOUND, "levels[2]"},
		{"a time an hour ahead", own.ID, future, aisle.EINVALID, "levels[1]"},
		{"1,001 levels", own.ID, tooMany, aisle.EINVALID, "1000"},
		{"no levels", own.ID, levels(nil, 1), aisle.EINVALID, "no inventory levels"},
		{"another retailer's store", other.ID, levels(other.Products, 7), aisle.EFORBIDDEN, "another retailer"},
	} {
		resp := ts.query(key, bulkInventory, map[string]any{"s": c.store, "levels": c.levels})
		if code := resp.code(t); code != c.code || !strings.Contains(resp.Errors[0].Message, c.msg) {
			t.Errorf("%s: got %s %q; want %s naming %q", c.name, code, resp.Errors[0].Message, c.code, c.msg)
		}
	}
	resp := ts.query(key, `mutation($s: ID!, $p: ID!, $levels: [InventoryLevelInput!]) { updateInventory(input: {storeId: $s, productId: $p, quantity: 1, levels: $levels}) { eventId } }`,
		map[string]any{"s": own.ID, "p": own.Products[0], "levels": levels(own.Products, 1)})
	if code := resp.code(t); code != aisle.EINVALID {
		t.Errorf("both forms at once: got %s, want %s", code, aisle.EINVALID)
	}
	if n := published() - before; n != 0 {
		t.Fatalf("refused calls published %d records; want none", n)
	}
}

type statusAlert struct {
	PreviousStatus string `json:"previousStatus"`
	Availability   struct {
		StoreID   string `json:"storeId"`
		ProductID string `json:"productId"`
		Status    string `json:"status"`
	} `json:"availability"`
}

func nextStatusAlert(t *testing.T, ws *wsClient, timeout time.Duration) (statusAlert, error) {
	t.Helper()
	msg, err := ws.next(timeout)
	if err != nil {
		return statusAlert{}, err
	}
	var payload struct {
		Data struct {
			StatusAlerts statusAlert `json:"statusAlerts"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(msg.Payload, &payload); err != nil || msg.Type != "next" || len(payload.Errors) > 0 {
		t.Fatalf("statusAlerts sent %s %s (%v)", msg.Type, msg.Payload, err)
	}
	return payload.Data.StatusAlerts, nil
}

// TestStatusAlertsSendOnlyTransitions subscribes a retailer to its stores'
// alerts: a level that changes a product's status is sent with the status
// before; one that moves the probability within a status is not.
func TestStatusAlertsSendOnlyTransitions(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	own, other := storesOfTwoRetailers(ts, 3)
	key := ts.createKey(aisle.RoleRetailer, own.RetailerID, "")
	push := func(product string, quantity int) {
		ts.mustData(key, `mutation($s: ID!, $p: ID!, $q: Int!) { updateInventory(input: {storeId: $s, productId: $p, quantity: $q}) { eventId } }`,
			map[string]any{"s": own.ID, "p": product, "q": quantity}, &struct{}{})
	}
	ws, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + key})
	if err != nil {
		t.Fatal(err)
	}
	const alerts = `subscription($s: [ID!]!) { statusAlerts(storeIds: $s) { previousStatus availability { storeId productId status } } }`
	ws.subscribe("1", alerts, map[string]any{"s": []string{own.ID}})

	// The subscription is in place once a transition comes through; a
	// count of 0 and one of 50 are OUT_OF_STOCK and IN_STOCK.
	p := own.Products[0]
	var first statusAlert
	eventually(t, 10*time.Second, func() string {
		push(p, 0)
		push(p, 50)
		a, err := nextStatusAlert(t, ws, 500*time.Millisecond)
		if err != nil {
			return "no alert: " + err.Error()
		}
		first = a
		return ""
	})
	for ws.drain(300 * time.Millisecond) {
	}
	if first.Availability.StoreID != own.ID || first.Availability.ProductID != p || first.PreviousStatus == first.Availability.Status {
		t.Fatalf("first alert %+v is no transition of %s at %s", first, p, own.ID)
	}

	push(p, 50) // ends IN_STOCK whatever came before
	for ws.drain(300 * time.Millisecond) {
	}
	push(p, 60) // still IN_STOCK: no alert
	push(own.Products[1], 0)
	a, err := nextStatusAlert(t, ws, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Availability.ProductID != own.Products[1] || a.PreviousStatus != "IN_STOCK" || a.Availability.Status == "IN_STOCK" {
		t.Fatalf("got %+v; want %s leaving IN_STOCK (the count of 60 for %s changes no status)", a, own.Products[1], p)
	}

	for _, c := range []struct {
		name   string
		stores []string
		code   string
	}{
		{"another retailer's store", []string{own.ID, other.ID}, aisle.EFORBIDDEN},
		{"101 stores", slices.Repeat([]string{own.ID}, 101), aisle.EINVALID},
		{"no stores", []string{}, aisle.EINVALID},
	} {
		id := "refused-" + c.name
		ws.subscribe(id, alerts, map[string]any{"s": c.stores})
		for {
			msg, err := ws.next(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if msg.ID != id {
				continue // the complete of the case before
			}
			if msg.Type == "complete" || !strings.Contains(string(msg.Payload), fmt.Sprintf("%q", c.code)) {
				t.Errorf("%s: got %s %s; want an error %s", c.name, msg.Type, msg.Payload, c.code)
			}
			break
		}
	}
}

// TestPipelineStatusReadsKafka: after events flow, ops see the inventory
// topic's rate, no lag and the time of the newest applied record; others
// are refused.
func TestPipelineStatusReadsKafka(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(2)
	service := ts.createKey(aisle.RoleService, "", "")
	ops := ts.createKey(aisle.RoleOps, "", "")
	retailer := ts.createKey(aisle.RoleRetailer, store.RetailerID, "")
	ts.mustData(service, bulkInventory, map[string]any{"s": store.ID, "levels": levels(products, 5)}, &struct{}{})

	const status = `{ pipelineStatus { measuredAt consumerGroup topics { topic eventsPerSecond lag newestAppliedAt newestAppliedAgeSeconds } } }`
	eventually(t, 20*time.Second, func() string {
		var got struct {
			PipelineStatus struct {
				ConsumerGroup string `json:"consumerGroup"`
				Topics        []struct {
					Topic           string   `json:"topic"`
					EventsPerSecond float64  `json:"eventsPerSecond"`
					Lag             int      `json:"lag"`
					NewestAppliedAt *string  `json:"newestAppliedAt"`
					Age             *float64 `json:"newestAppliedAgeSeconds"`
				} `json:"topics"`
			} `json:"pipelineStatus"`
		}
		ts.mustData(ops, status, nil, &got)
		if got.PipelineStatus.ConsumerGroup == "" || len(got.PipelineStatus.Topics) != len(aisle.EventTopics) {
			return fmt.Sprintf("pipelineStatus %+v lacks the group or a topic", got.PipelineStatus)
		}
		for _, tp := range got.PipelineStatus.Topics {
			if tp.Topic != aisle.TopicInventory {
				continue
			}
			if tp.EventsPerSecond < float64(len(products))/60 || tp.Lag != 0 || tp.NewestAppliedAt == nil || tp.Age == nil || *tp.Age < 0 {
				return fmt.Sprintf("inventory topic %+v: want at least %d events in the minute, no lag, a newest applied time", tp, len(products))
			}
			return ""
		}
		return "no inventory topic"
	})
	for key, code := range map[string]string{retailer: aisle.EFORBIDDEN, "": aisle.EUNAUTHENTICATED} {
		if got := ts.query(key, status, nil).code(t); got != code {
			t.Errorf("pipelineStatus as %q: got %s, want %s", key, got, code)
		}
	}
}
