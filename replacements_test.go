package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

const replacementsQuery = `query($s: ID!, $p: ID!, $first: Int) {
  replacements(storeId: $s, productId: $p, first: $first) {
    product { id name brand size priceCents availability { carried status probability } }
    score reason
  }
}`

type replacement struct {
	Product storefrontProduct `json:"product"`
	Score   float64           `json:"score"`
	Reason  string            `json:"reason"`
}

func (ts *testServer) replacements(storeID, productID string) []replacement {
	ts.t.Helper()
	var data struct {
		Replacements []replacement `json:"replacements"`
	}
	ts.mustData("", replacementsQuery, map[string]any{"s": storeID, "p": productID, "first": 10}, &data)
	return data.Replacements
}

// A picking app gets replacements the store carries in the category, likely
// on the shelf, the most similar first, and the replacements shoppers made
// before count, from their pick.replaced events.
func TestReplacementSuggestions(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, _ := ts.store(1)
	key := ts.createKey(aisle.RoleService, "", "")
	ts.sql(`INSERT INTO categories (id, name) VALUES ('repl', 'Replacement Test')`)
	type product struct{ id, name, brand, size string }
	products := []product{
		{"p-repl-orig", "Acme Greek Yogurt 32 oz", "Acme", "32 oz"},
		{"p-repl-line", "Clover Greek Yogurt 32 oz", "Clover", "32 oz"},      // same line and size
		{"p-repl-brand", "Acme Oat Crackers 8 oz", "Acme", "8 oz"},           // same brand
		{"p-repl-other", "Birch Oat Crackers 8 oz", "Birch", "8 oz"},         // same category only
		{"p-repl-taken", "Dunmore Spicy Beans 12 oz", "Dunmore", "12 oz"},    // shoppers chose it before
		{"p-repl-gone", "Acme Greek Yogurt 16 oz", "Acme", "16 oz"},          // similar, but never found
		{"p-repl-elsewhere", "Clover Greek Yogurt 16 oz", "Clover", "16 oz"}, // not carried by the store
	}
	for _, p := range products {
		ts.sql(`INSERT INTO products (id, category_id, name, brand, size) VALUES ($1, 'repl', $2, $3, $4)`, p.id, p.name, p.brand, p.size)
		if p.id != "p-repl-elsewhere" {
			ts.sql(`INSERT INTO store_products (store_id, product_id, price_cents) VALUES ($1, $2, 349)`, store.ID, p.id)
		}
	}
	orig := products[0].id

	for range 8 {
		ts.reportPick(key, store.ID, "p-repl-gone", "NOT_FOUND")
	}
	const replaced = 6
	for range replaced {
		var data struct {
			ReportPick struct{ EventID string } `json:"reportPick"`
		}
		ts.mustData(key, `mutation($s: ID!, $p: ID!, $r: ID!) {
		  reportPick(input: {storeId: $s, productId: $p, orderId: "o-repl", outcome: REPLACED, replacementProductId: $r, shopperId: "sh-1"}) { eventId }
		}`, map[string]any{"s": store.ID, "p": orig, "r": "p-repl-taken"}, &data)
	}

	var got []replacement
	eventually(t, 10*time.Second, func() string {
		got = ts.replacements(store.ID, orig)
		for _, r := range got {
			if r.Product.ID == "p-repl-taken" && strings.Contains(r.Reason, fmt.Sprintf("accepted as a replacement %d times", replaced)) {
				return ""
			}
		}
		return fmt.Sprintf("the %d replacements are not counted yet: %+v", replaced, got)
	})
	var ids []string
	for _, r := range got {
		ids = append(ids, r.Product.ID)
		p := r.Product
		if a := p.Availability; a == nil || !a.Carried || a.Probability < 0.05 {
			t.Errorf("%s: availability %+v; want carried and possibly on the shelf", p.ID, a)
		}
		if p.PriceCents == nil || *p.PriceCents != 349 || r.Score <= 0 || !strings.Contains(r.Reason, "likely on the shelf") {
			t.Errorf("suggestion %+v", r)
		}
	}
	t.Logf("replacements: %v", ids)
	pos := func(id string) int {
		for i, x := range ids {
			if x == id {
				return i
			}
		}
		return len(ids)
	}
	switch {
	case pos(orig) < len(ids) || pos("p-repl-elsewhere") < len(ids):
		t.Errorf("suggested %v: the product itself or one the store does not carry", ids)
	case len(ids) != 4:
		t.Errorf("suggested %v; want the 4 carried products likely on the shelf", ids)
	case ids[0] != "p-repl-line":
		t.Errorf("first suggestion %s; want the same product line and size", ids[0])
	case pos("p-repl-taken") > pos("p-repl-other") || pos("p-repl-brand") > pos("p-repl-other"):
		t.Errorf("suggested %v: the accepted before and the same brand must come before a mere category match", ids)
	case pos("p-repl-gone") < len(ids):
		t.Errorf("suggested %v: a product shoppers never found, out of stock", ids)
	}

	for _, tc := range []struct {
		vars map[string]any
		code string
	}{
		{map[string]any{"s": store.ID, "p": "p-nope"}, aisle.ENOTFOUND},
		{map[string]any{"s": "s-nope", "p": orig}, aisle.ENOTFOUND},
		{map[string]any{"s": store.ID, "p": orig, "first": 21}, aisle.EINVALID},
		{map[string]any{"s": store.ID, "p": orig, "first": 0}, aisle.EINVALID},
	} {
		if code := ts.query("", replacementsQuery, tc.vars).code(t); code != tc.code {
			t.Errorf("replacements(%v): code %s, want %s", tc.vars, code, tc.code)
		}
	}
}
