package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// sql runs statements against the server's database, for tests that shape
// the catalog beyond the demo seed.
func (ts *testServer) sql(query string, args ...any) {
	ts.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ts.main.Config.DatabaseURL)
	if err != nil {
		ts.t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		ts.t.Fatalf("%s: %v", query, err)
	}
}

// uncarriedProduct adds a product to the catalog that no store carries.
func (ts *testServer) uncarriedProduct(id string) {
	ts.t.Helper()
	ts.sql(`INSERT INTO products (id, category_id, name) SELECT $1, id, 'Uncarried ' || $1 FROM categories ORDER BY id LIMIT 1`, id)
}

// A product the store does not carry is never answered IN_STOCK or
// LOW_STOCK, by the query or the subscription, even when shoppers find it;
// their picks count as evidence (flagged by a counter and a log line) and
// count once the assortment lists the product.
func TestAvailabilityOfAProductTheStoreDoesNotCarry(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(1)
	carried := products[0]
	uncarried := "p-uncarried-" + store.ID
	ts.uncarriedProduct(uncarried)
	key := ts.createKey(aisle.RoleService, "", "")

	before := ts.availability(store.ID, carried, uncarried)
	if c := before[0]; !c.Carried || c.Probability <= 0 || c.Status == "OUT_OF_STOCK" {
		t.Errorf("a carried product with no evidence = %+v; want carried, its prior", c)
	}
	if u := before[1]; u.Carried || u.Probability != 0 || u.Status != "OUT_OF_STOCK" || u.UpdatedAt != nil {
		t.Errorf("a product the store does not carry = %+v; want carried false, probability 0, OUT_OF_STOCK, no updatedAt", u)
	}

	ws, err := ts.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.subscribe("1", `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { productId carried probability status updatedAt } }`,
		map[string]any{"s": store.ID, "p": []string{uncarried}})
	flagged := func() float64 {
		return ts.scrape().Total("aisle_stream_uncarried_evidence_total", map[string]string{"type": aisle.TypePickFound})
	}
	flaggedBefore := flagged()

	// Found picks until the subscription delivers one (it is registered
	// asynchronously); every answer must still say not carried.
	const atLeast = 3
	picks := 0
	var pushed itemAvailability
	eventually(t, 10*time.Second, func() string {
		ts.reportPick(key, store.ID, uncarried, "FOUND")
		picks++
		msg, err := ws.next(500 * time.Millisecond)
		if err != nil || picks < atLeast {
			return fmt.Sprintf("after %d picks: no push yet (%v)", picks, err)
		}
		pushed = availabilityPushed(t, msg)
		return ""
	})
	if pushed.Carried || pushed.Probability != 0 || pushed.Status != "OUT_OF_STOCK" || pushed.UpdatedAt == nil {
		t.Errorf("subscription pushed %+v for a found but uncarried product; want carried false, probability 0, OUT_OF_STOCK, with updatedAt", pushed)
	}
	eventually(t, 10*time.Second, func() string {
		got := ts.availability(store.ID, uncarried)[0]
		if got.UpdatedAt == nil {
			return "picks not applied yet"
		}
		if got.Carried || got.Probability != 0 || got.Status != "OUT_OF_STOCK" {
			t.Fatalf("after %d found picks, availability = %+v; want carried false, probability 0, OUT_OF_STOCK", picks, got)
		}
		if n := flagged() - flaggedBefore; n < atLeast {
			return fmt.Sprintf("aisle_stream_uncarried_evidence_total{type=pick.found} rose by %v; want at least %d", n, atLeast)
		}
		return ""
	})
	if !strings.Contains(ts.logs.String(), `"product_id":"`+uncarried+`"`) {
		t.Errorf("no log line names the uncarried product %s", uncarried)
	}

	// The retailer adds it to the assortment: the found picks count, against
	// a product of the same category added without evidence.
	fresh := uncarried + "-fresh"
	ts.uncarriedProduct(fresh)
	// Through the catalog (the API holds assortments in memory, kept fresh
	// by the catalog's change feed, which direct SQL would bypass).
	ts.mustData(key, upsertAssortmentMut, map[string]any{"in": map[string]any{"storeId": store.ID,
		"items": []any{map[string]any{"productId": uncarried}, map[string]any{"productId": fresh}}}}, &struct{}{})
	var after []itemAvailability
	eventually(t, 30*time.Second, func() string {
		if after = ts.availability(store.ID, uncarried, fresh); !after[0].Carried || !after[1].Carried {
			return fmt.Sprintf("after upsertAssortment: %+v", after)
		}
		return ""
	})
	if got, prior := after[0], after[1]; got.Probability <= prior.Probability || got.Status != "IN_STOCK" {
		t.Errorf("once carried, after %d found picks: %+v; want IN_STOCK, above the prior %+v", picks, got, prior)
	}

	// And a removal is answered as soon as it is applied.
	ts.mustData(key, removeAssortmentMut, map[string]any{"in": map[string]any{"storeId": store.ID, "productIds": []string{carried}}}, &struct{}{})
	eventually(t, 30*time.Second, func() string {
		if got := ts.availability(store.ID, carried)[0]; got.Carried || got.Probability != 0 || got.Status != "OUT_OF_STOCK" {
			return fmt.Sprintf("after removeAssortment: %+v; want carried false, probability 0, OUT_OF_STOCK", got)
		}
		return ""
	})
}
