package aisle

import (
	"strings"
	"testing"
)

func TestDecodeCatalogEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, data, key string
	}{
		{TypeRetailerUpserted, `{"retailer_id":"r-1","name":"FreshCo"}`, "r-1"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"Downtown"}`, "s-1"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"Downtown","address":"1 Main St","lat":-90,"lon":180,"timezone":"Europe/Paris"}`, "s-1"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"Whole Milk","category":"Milk & Cream"}`, "p-1"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"Whole Milk","category":"Milk","brand":"Meadow","size":"1 gal","gtin":"0012345678905","image_url":"https://cdn.example/p-1.png"}`, "p-1"},
		{TypeAssortmentUpserted, `{"store_id":"s-1","product_id":"p-1"}`, "s-1:p-1"},
		{TypeAssortmentUpserted, `{"store_id":"s-1","product_id":"p-1","price_cents":0,"aisle":"12B"}`, "s-1:p-1"},
		{TypeAssortmentRemoved, `{"store_id":"s-1","product_id":"p-1"}`, "s-1:p-1"},
	} {
		d, err := DecodeEvent([]byte(envelope(tc.typ, okTime, tc.data)), TopicCatalog, now)
		if err != nil {
			t.Errorf("%s %s: %v", tc.typ, tc.data, err)
			continue
		}
		if got := d.Key(); got != tc.key {
			t.Errorf("%s: key %q, want %q", tc.typ, got, tc.key)
		}
	}
}

func TestDecodeCatalogEventsRejectsBadData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, data, want string
	}{
		{TypeRetailerUpserted, `{"retailer_id":"r-1"}`, "missing name"},
		{TypeRetailerUpserted, `{"retailer_id":"r:1","name":"x"}`, "forbidden character"},
		{TypeRetailerUpserted, `{"retailer_id":"r-1","name":"a\u0007b"}`, "control character"},
		{TypeStoreUpserted, `{"store_id":"s-1","name":"x"}`, "missing retailer_id"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","lat":91,"lon":0}`, "lat 91"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","lat":0,"lon":-180.5}`, "lon -180.5"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","lat":0}`, "lat and lon go together"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","timezone":"Mars/Olympus"}`, "IANA"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","timezone":"Local"}`, "IANA"},
		{TypeStoreUpserted, `{"store_id":"s-1","retailer_id":"r-1","name":"x","timezone":"../../etc/passwd"}`, "IANA"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x"}`, "missing category"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x","category":"c","gtin":"0012345678906"}`, "check digit"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x","category":"c","gtin":"12AB"}`, "digits"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x","category":"c","image_url":"javascript:alert(1)"}`, "http or https"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x","category":"c","image_url":"/relative.png"}`, "http or https"},
		{TypeProductUpserted, `{"product_id":"p-1","name":"x","category":"c","colour":"red"}`, "unknown field"},
		{TypeAssortmentUpserted, `{"store_id":"s-1","product_id":"p-1","price_cents":-1}`, "price_cents -1"},
		{TypeAssortmentUpserted, `{"store_id":"s-1","product_id":"p-1","price_cents":1.5}`, "bad assortment.upserted data"},
		{TypeAssortmentRemoved, `{"store_id":"s-1","product_id":"p-1","price_cents":100}`, "only allowed on assortment.upserted"},
		{TypeAssortmentRemoved, `{"store_id":"s-1"}`, "missing product_id"},
	} {
		_, err := DecodeEvent([]byte(envelope(tc.typ, okTime, tc.data)), TopicCatalog, now)
		if err == nil || !strings.Contains(ErrorMessage(err), tc.want) {
			t.Errorf("%s %s: error %v, want one containing %q", tc.typ, tc.data, err, tc.want)
		}
	}
	// Catalog events belong on the catalog topic only.
	if _, err := DecodeEvent([]byte(envelope(TypeRetailerUpserted, okTime, `{"retailer_id":"r-1","name":"x"}`)), TopicInventory, now); err == nil {
		t.Error("a catalog event was accepted on aisle.inventory")
	}
}

func TestEventIDFor(t *testing.T) {
	t.Parallel()
	shopper := &Principal{KeyID: "k-1", Role: RoleShopper}
	other := &Principal{KeyID: "k-2", Role: RoleShopper}
	key := "retry-7"
	id := func(p *Principal, mutation string, item int) string {
		t.Helper()
		id, err := EventIDFor(p, mutation, &key, item)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateID("id", id); err != nil {
			t.Fatalf("derived id %q: %v", id, err)
		}
		return id
	}
	first := id(shopper, "reportPicks", 0)
	if again := id(shopper, "reportPicks", 0); again != first {
		t.Errorf("same call, ids %s and %s", first, again)
	}
	for name, differs := range map[string]string{
		"another caller":   id(other, "reportPicks", 0),
		"another mutation": id(shopper, "reportPick", 0),
		"another item":     id(shopper, "reportPicks", 1),
	} {
		if differs == first {
			t.Errorf("%s got the same id %s", name, first)
		}
	}
	a, _ := EventIDFor(shopper, "reportPick", nil, 0)
	b, _ := EventIDFor(shopper, "reportPick", nil, 0)
	if a == b {
		t.Error("without a key two calls got the same id")
	}
	for _, bad := range []string{"", strings.Repeat("k", MaxIdempotencyKeyLength+1), "a\nb", "\xff"} {
		if _, err := EventIDFor(shopper, "reportPick", &bad, 0); ErrorCode(err) != EINVALID {
			t.Errorf("key %q: %v, want BAD_USER_INPUT", bad, err)
		}
	}
}
