package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

const (
	upsertProductsMutation = `mutation($in: UpsertProductsInput!) { upsertProducts(input: $in) { eventIds } }`
	upsertAssortmentMut    = `mutation($in: UpsertAssortmentInput!) { upsertAssortment(input: $in) { eventIds } }`
	removeAssortmentMut    = `mutation($in: RemoveAssortmentInput!) { removeAssortment(input: $in) { eventIds } }`
	reportPicksMutation    = `mutation($in: ReportPicksInput!) { reportPicks(input: $in) { eventIds } }`
)

// errorMessage returns the only error's code and message.
func errorMessage(t *testing.T, resp gqlResponse) (code, message string) {
	t.Helper()
	return resp.code(t), resp.Errors[0].Message
}

// storeProductIDs lists the ids of a store's products matching query.
func (ts *testServer) storeProductIDs(storeID, query string) []string {
	var got storeAnswer
	ts.mustData("", `query($id: ID!, $q: String) { store(id: $id) { name retailer { id } products(first: 100, query: $q) { edges { node { id name category } } } } }`,
		map[string]any{"id": storeID, "q": query}, &got)
	var ids []string
	for _, e := range got.Store.Products.Edges {
		ids = append(ids, e.Node.ID)
	}
	return ids
}

// TestMerchandisingMutations: a retailer loads products and its store's
// assortment through the API, all or nothing per call, and sees them in
// the storefront reads; another retailer may touch neither.
func TestMerchandisingMutations(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, _ := ts.store(1)
	var other testStore
	for _, s := range ts.stores(24, 1) {
		if s.RetailerID != store.RetailerID {
			other = s
			break
		}
	}
	mine := ts.createKey(aisle.RoleRetailer, store.RetailerID, "")
	theirs := ts.createKey(aisle.RoleRetailer, other.RetailerID, "")
	product := func(id, name string) map[string]any {
		return map[string]any{"id": id, "name": name, "category": "Merch Test", "brand": "Acme", "gtin": "7394376616037"}
	}

	var created struct{ UpsertProducts struct{ EventIds []string } }
	ts.mustData(mine, upsertProductsMutation, map[string]any{"in": map[string]any{"products": []any{product("p-m-1", "Merch One"), product("p-m-2", "Merch Two")}}}, &created)
	if len(created.UpsertProducts.EventIds) != 2 {
		t.Fatalf("upsertProducts published %v, want two events", created.UpsertProducts.EventIds)
	}

	// One bad item publishes none; too many items are refused.
	bad := product("p-m-3", "Merch Three")
	bad["gtin"] = "12345"
	code, msg := errorMessage(t, ts.query(mine, upsertProductsMutation, map[string]any{"in": map[string]any{"products": []any{product("p-m-4", "Merch Four"), bad}}}))
	if code != aisle.EINVALID || !strings.Contains(msg, "products[1]: gtin") {
		t.Errorf("a bad product: %s %q, want BAD_USER_INPUT naming products[1]", code, msg)
	}
	many := make([]any, 1001)
	for i := range many {
		many[i] = product(fmt.Sprint("p-many-", i), "Many")
	}
	if code, msg := errorMessage(t, ts.query(mine, upsertProductsMutation, map[string]any{"in": map[string]any{"products": many}})); code != aisle.EINVALID || !strings.Contains(msg, "1001 products") {
		t.Errorf("1,001 products: %s %q", code, msg)
	}
	if code := ts.query(theirs, upsertProductsMutation, map[string]any{"in": map[string]any{"products": []any{product("p-m-1", "Stolen")}}}).code(t); code != aisle.EFORBIDDEN {
		t.Errorf("another retailer replacing p-m-1: %s, want FORBIDDEN", code)
	}

	// The assortment names products once they are applied.
	items := map[string]any{"storeId": store.ID, "items": []any{
		map[string]any{"productId": "p-m-1", "priceCents": 250, "aisle": "4"},
		map[string]any{"productId": "p-m-2"},
	}}
	eventually(t, 10*time.Second, func() string {
		if resp := ts.query(mine, upsertAssortmentMut, map[string]any{"in": items}); len(resp.Errors) > 0 {
			return fmt.Sprintf("upsertAssortment: %+v", resp.Errors)
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		if got := ts.storeProductIDs(store.ID, "Merch"); !slices.Equal(got, []string{"p-m-1", "p-m-2"}) {
			return fmt.Sprintf("store lists %v", got)
		}
		return ""
	})
	if code := ts.query(theirs, upsertAssortmentMut, map[string]any{"in": items}).code(t); code != aisle.EFORBIDDEN {
		t.Errorf("another retailer's assortment: %s, want FORBIDDEN", code)
	}
	unknown := map[string]any{"storeId": store.ID, "items": []any{map[string]any{"productId": "p-m-1"}, map[string]any{"productId": "p-nope"}}}
	if code, msg := errorMessage(t, ts.query(mine, upsertAssortmentMut, map[string]any{"in": unknown})); code != aisle.ENOTFOUND || !strings.Contains(msg, "items[1]: unknown product p-nope") {
		t.Errorf("an unknown product: %s %q", code, msg)
	}
	if code := ts.query(theirs, removeAssortmentMut, map[string]any{"in": map[string]any{"storeId": store.ID, "productIds": []string{"p-m-1"}}}).code(t); code != aisle.EFORBIDDEN {
		t.Errorf("another retailer's removal: %s, want FORBIDDEN", code)
	}
	var removed struct{ RemoveAssortment struct{ EventIds []string } }
	ts.mustData(mine, removeAssortmentMut, map[string]any{"in": map[string]any{"storeId": store.ID, "productIds": []string{"p-m-1"}}}, &removed)
	eventually(t, 10*time.Second, func() string {
		if got := ts.storeProductIDs(store.ID, "Merch"); !slices.Equal(got, []string{"p-m-2"}) {
			return fmt.Sprintf("after the removal the store lists %v", got)
		}
		return ""
	})
	// Everything published after the refused call has been applied (one
	// partition, in order): the refused batch's good item never was.
	if n := ts.countRows(`SELECT count(*) FROM products WHERE id IN ('p-m-3', 'p-m-4')`); n != 0 {
		t.Errorf("%d products of the refused batch exist", n)
	}
}

// TestReportPicksAndIdempotency: reportPicks publishes one order's picks in
// one call, all or nothing; a retried call with the same idempotencyKey
// publishes the same event ids, which the stream applies once.
func TestReportPicksAndIdempotency(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(4)
	shopper := ts.createKey(aisle.RoleShopper, "", "sh-batch")
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	picks := func(key string, productIDs ...string) map[string]any {
		var list []any
		for _, p := range productIDs {
			list = append(list, map[string]any{"productId": p, "outcome": "FOUND", "time": at})
		}
		in := map[string]any{"storeId": store.ID, "orderId": "o-batch", "picks": list}
		if key != "" {
			in["idempotencyKey"] = key
		}
		return map[string]any{"in": in}
	}
	report := func(key string, productIDs ...string) []string {
		var out struct{ ReportPicks struct{ EventIds []string } }
		ts.mustData(shopper, reportPicksMutation, picks(key, productIDs...), &out)
		return out.ReportPicks.EventIds
	}

	first := report("retry-1", products[0], products[1])
	retried := report("retry-1", products[0], products[1])
	if len(first) != 2 || !slices.Equal(first, retried) {
		t.Fatalf("retried call published %v, first %v: want the same two ids", retried, first)
	}
	other := report("retry-2", products[0])
	if other[0] == first[0] {
		t.Fatal("another idempotency key published the same event id")
	}
	unkeyed := [][]string{report("", products[2]), report("", products[2])}
	if unkeyed[0][0] == unkeyed[1][0] {
		t.Fatal("calls without a key published the same event id")
	}
	// A shopper's key and a service's sharing an idempotency key never share ids.
	service := ts.createKey(aisle.RoleService, "", "")
	var byService struct{ ReportPicks struct{ EventIds []string } }
	in := picks("retry-1", products[0], products[1])
	in["in"].(map[string]any)["shopperId"] = "sh-batch"
	ts.mustData(service, reportPicksMutation, in, &byService)
	if slices.Contains(byService.ReportPicks.EventIds, first[0]) {
		t.Fatal("two callers with one idempotency key share an event id")
	}

	// The retry was applied once: products[0] was found by the first call,
	// the other key's call and the service's call, not by the retry. The
	// service's call is the last on the partition, so once it shows the
	// retry has been processed.
	fs := ts.serverFeatures()
	sp := aisle.StoreProduct{StoreID: store.ID, ProductID: products[0]}
	eventually(t, 10*time.Second, func() string {
		ev, err := fs.Availability(context.Background(), []aisle.StoreProduct{sp})
		if err != nil {
			return err.Error()
		}
		if math.Abs(ev[0].Found-3) > 1e-9 {
			return fmt.Sprintf("found %v times, want 3", ev[0].Found)
		}
		return ""
	})

	// All or nothing, at most 200 picks.
	tooMany := make([]string, 201)
	for i := range tooMany {
		tooMany[i] = products[0]
	}
	if code, msg := errorMessage(t, ts.query(shopper, reportPicksMutation, picks("", tooMany...))); code != aisle.EINVALID || !strings.Contains(msg, "201 picks") {
		t.Errorf("201 picks: %s %q", code, msg)
	}
	if code, msg := errorMessage(t, ts.query(shopper, reportPicksMutation, picks("", products[3], "p-unknown"))); code != aisle.ENOTFOUND || !strings.Contains(msg, "picks[1]: unknown product p-unknown") {
		t.Errorf("a pick of an unknown product: %s %q", code, msg)
	}
	if code, _ := errorMessage(t, ts.query(shopper, reportPicksMutation, picks(strings.Repeat("k", 129), products[3]))); code != aisle.EINVALID {
		t.Errorf("an overlong idempotency key: %s", code)
	}
	if n := countRecords(t, ts.main.KafkaBrokers, aisle.TopicPicking, products[3]); n != 0 {
		t.Errorf("refused calls published %d picks of %s", n, products[3])
	}
}
