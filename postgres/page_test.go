package postgres

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aisle/aisle/aisle"
)

func ptr[T any](v T) *T { return &v }

func TestPageSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		first    *int
		want     int
		wantCode string
	}{
		{nil, DefaultPageSize, ""},
		{ptr(1), 1, ""},
		{ptr(MaxPageSize), MaxPageSize, ""},
		{ptr(0), 0, aisle.EINVALID},
		{ptr(-1), 0, aisle.EINVALID},
		{ptr(MaxPageSize + 1), 0, aisle.EINVALID},
	} {
		got, err := pageSize(tt.first)
		if code := aisle.ErrorCode(err); code != tt.wantCode || got != tt.want {
			t.Errorf("pageSize(%v) = %d, %q; want %d, %q", tt.first, got, code, tt.want, tt.wantCode)
		}
	}
}

func TestSearchPattern(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		reason   string
		query    *string
		want     string
		wantCode string
	}{
		{"nil is no search", nil, "", ""},
		{"blank is no search", ptr("  "), "", ""},
		{"substring", ptr("milk"), "%milk%", ""},
		{"surrounding spaces trimmed", ptr(" whole milk "), "%whole milk%", ""},
		{"wildcards are literal", ptr(`50%_\`), `%50\%\_\\%`, ""},
		{"100 characters allowed", ptr(strings.Repeat("é", MaxQueryLength)), "%" + strings.Repeat("é", MaxQueryLength) + "%", ""},
		{"101 characters refused", ptr(strings.Repeat("a", MaxQueryLength+1)), "", aisle.EINVALID},
		{"NUL refused", ptr("a\x00b"), "", aisle.EINVALID},
		{"invalid UTF-8 refused", ptr("\xff"), "", aisle.EINVALID},
	} {
		got, err := searchPattern(tt.query)
		if code := aisle.ErrorCode(err); code != tt.wantCode || got != tt.want {
			t.Errorf("%s: searchPattern = %q, %q; want %q, %q", tt.reason, got, code, tt.want, tt.wantCode)
		}
	}
}

func TestCursor(t *testing.T) {
	t.Parallel()
	c := cursor{Kind: storeCursor, Name: "FreshCo Downtown", ID: "s-1"}
	enc := c.encode()
	got, err := decodeCursor(storeCursor, &enc)
	if err != nil || *got != c {
		t.Fatalf("round trip: got %+v, %v; want %+v", got, err, c)
	}
	if got, err := decodeCursor(storeCursor, ptr("")); got != nil || err != nil {
		t.Errorf(`decodeCursor("") = %v, %v; want nil, nil`, got, err)
	}

	for _, tt := range []struct {
		reason string
		after  string
	}{
		{"not base64", "!!!"},
		{"not JSON", base64.RawURLEncoding.EncodeToString([]byte("s-1"))},
		{"no ID", base64.RawURLEncoding.EncodeToString([]byte(`{"k":"store","n":"x"}`))},
		{"other list", cursor{Kind: productCursor, Name: "x", ID: "p-1"}.encode()},
		{"NUL in name", base64.RawURLEncoding.EncodeToString([]byte(`{"k":"store","n":"\u0000","i":"s-1"}`))},
		{"too long", strings.Repeat("A", maxCursorLength+1)},
	} {
		if _, err := decodeCursor(storeCursor, &tt.after); aisle.ErrorCode(err) != aisle.EINVALID {
			t.Errorf("%s: got %v, want %s", tt.reason, err, aisle.EINVALID)
		}
	}
}

// The demo catalog is part of the product: event streams and saved demos
// refer to its IDs, so its generator must not drift. These values pin it.
func TestDemoCatalogIsStable(t *testing.T) {
	t.Parallel()
	d := newDemoCatalog()
	if got := len(d.products); got != 30*productsPerCategory {
		t.Fatalf("products = %d, want %d", got, 30*productsPerCategory)
	}
	names := map[string]bool{}
	for _, p := range d.products {
		if names[p.Name] {
			t.Errorf("duplicate product name %q", p.Name)
		}
		names[p.Name] = true
	}
	first, last := d.products[0], d.products[len(d.products)-1]
	for _, tt := range []struct{ got, want string }{
		{first.ProductID + "|" + first.Category + "|" + first.Name + "|" + *first.Brand + "|" + *first.Size, "p-1|Fresh Fruit|Coastal Farms Bananas 2 lb|Coastal Farms|2 lb"},
		{last.ProductID + "|" + last.Category + "|" + last.Name, "p-2100|Personal Care|Pure Essentials Moisturizing Body Wash 30 oz"},
		{d.stores[0].StoreID + "|" + d.stores[0].RetailerID + "|" + d.stores[0].Name, "s-1|r-1|FreshCo Downtown"},
		{d.stores[len(d.stores)-1].StoreID + "|" + d.stores[len(d.stores)-1].RetailerID + "|" + d.stores[len(d.stores)-1].Name, "s-24|r-4|Greenleaf Grocers Elm Street"},
	} {
		if tt.got != tt.want {
			t.Errorf("demo row %q, want %q", tt.got, tt.want)
		}
	}
	if got, want := len(d.assortments), 39063; got != want {
		t.Errorf("store products = %d, want %d", got, want)
	}
}
