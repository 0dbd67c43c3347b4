package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var eventSeq int

// catalogEvent builds a validated catalog event at t0 + minutes.
func catalogEvent(t *testing.T, eventType string, minutes int, data any) *aisle.Decoded {
	t.Helper()
	eventSeq++
	d, err := aisle.BuildEvent(fmt.Sprint("e-", eventSeq), eventType, t0.Add(time.Duration(minutes)*time.Minute), t0.Add(24*time.Hour), data)
	if err != nil {
		t.Fatalf("build %s: %v", eventType, err)
	}
	return d
}

// mustOpenAt opens the database at url, closed when the test ends.
func mustOpenAt(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func mustApply(t *testing.T, db *postgres.DB, events ...*aisle.Decoded) []bool {
	t.Helper()
	applied, err := db.ApplyEvents(context.Background(), events)
	if err != nil {
		t.Fatalf("ApplyEvents: %v", err)
	}
	return applied
}

// baseCatalog is one retailer, one store and two products.
func baseCatalog(t *testing.T) []*aisle.Decoded {
	return []*aisle.Decoded{
		catalogEvent(t, aisle.TypeRetailerUpserted, 0, aisle.RetailerUpserted{RetailerID: "r-a", Name: "Acme"}),
		catalogEvent(t, aisle.TypeStoreUpserted, 0, aisle.StoreUpserted{StoreID: "s-a", RetailerID: "r-a", Name: "Acme Downtown",
			Address: ptr("1 Main St"), Lat: ptr(41.88), Lon: ptr(-87.63), Timezone: ptr("America/Chicago")}),
		catalogEvent(t, aisle.TypeProductUpserted, 0, aisle.ProductUpserted{ProductID: "p-a", Name: "Oat Milk 1 qt", Category: "Milk & Cream",
			Brand: ptr("Oatly"), Size: ptr("1 qt"), GTIN: ptr("7394376616037"), ImageURL: ptr("https://img.example/p-a.jpg")}),
		catalogEvent(t, aisle.TypeProductUpserted, 0, aisle.ProductUpserted{ProductID: "p-b", Name: "Whole Milk", Category: "Milk & Cream"}),
		catalogEvent(t, aisle.TypeAssortmentUpserted, 0, aisle.Assortment{StoreID: "s-a", ProductID: "p-a", PriceCents: ptr(int64(499)), Aisle: ptr("7")}),
	}
}

func TestApplyEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.NewDatabaseURL(t)
	db := mustOpenAt(t, url)
	conn := connect(t, url)

	base := baseCatalog(t)
	if applied := mustApply(t, db, base...); fmt.Sprint(applied) != "[true true true true true]" {
		t.Fatalf("first apply: %v, want all applied", applied)
	}
	// Redelivery changes nothing.
	if applied := mustApply(t, db, base...); fmt.Sprint(applied) != "[false false false false false]" {
		t.Fatalf("redelivery: %v, want nothing applied", applied)
	}
	var name, category, brand, gtin, image, zone, addr, aisleName string
	var lat, lon float64
	var price int64
	row := conn.QueryRow(ctx, `SELECT p.name, c.id || '|' || c.name, p.brand, p.gtin, p.image_url FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = 'p-a'`)
	if err := row.Scan(&name, &category, &brand, &gtin, &image); err != nil {
		t.Fatal(err)
	}
	if name != "Oat Milk 1 qt" || category != "milk-cream|Milk & Cream" || brand != "Oatly" || gtin != "7394376616037" || image != "https://img.example/p-a.jpg" {
		t.Errorf("product p-a = %q %q %q %q %q", name, category, brand, gtin, image)
	}
	if err := conn.QueryRow(ctx, `SELECT address, lat, lon, timezone FROM stores WHERE id = 's-a'`).Scan(&addr, &lat, &lon, &zone); err != nil {
		t.Fatal(err)
	}
	if addr != "1 Main St" || lat != 41.88 || lon != -87.63 || zone != "America/Chicago" {
		t.Errorf("store s-a = %q %v %v %q", addr, lat, lon, zone)
	}
	if err := conn.QueryRow(ctx, `SELECT price_cents, aisle FROM store_products WHERE store_id = 's-a' AND product_id = 'p-a'`).Scan(&price, &aisleName); err != nil {
		t.Fatal(err)
	}
	if price != 499 || aisleName != "7" {
		t.Errorf("assortment = %d %q", price, aisleName)
	}

	// Last writer wins by event time, whatever the arrival order; on a tie
	// the first applied wins.
	newer := catalogEvent(t, aisle.TypeProductUpserted, 10, aisle.ProductUpserted{ProductID: "p-a", Name: "Oat Milk 32 oz", Category: "Plant Milk"})
	older := catalogEvent(t, aisle.TypeProductUpserted, 5, aisle.ProductUpserted{ProductID: "p-a", Name: "Oat Milk (old)", Category: "Milk & Cream"})
	tie := catalogEvent(t, aisle.TypeProductUpserted, 10, aisle.ProductUpserted{ProductID: "p-a", Name: "Oat Milk (tie)", Category: "Milk & Cream"})
	if applied := mustApply(t, db, newer, older, tie); fmt.Sprint(applied) != "[true false false]" {
		t.Errorf("reordered upserts: %v, want only the newest applied", applied)
	}
	if applied := mustApply(t, db, older); applied[0] {
		t.Error("an older upsert applied after a newer one")
	}
	if err := conn.QueryRow(ctx, `SELECT p.name, c.name, coalesce(p.brand, '') FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = 'p-a'`).Scan(&name, &category, &brand); err != nil {
		t.Fatal(err)
	}
	if name != "Oat Milk 32 oz" || category != "Plant Milk" || brand != "" {
		t.Errorf("after newer upsert p-a = %q in %q brand %q; want the whole newer product", name, category, brand)
	}

	// A removal leaves a tombstone: an older upsert does not resurrect the
	// row, a newer one does and clears the tombstone.
	remove := catalogEvent(t, aisle.TypeAssortmentRemoved, 20, aisle.Assortment{StoreID: "s-a", ProductID: "p-a"})
	stale := catalogEvent(t, aisle.TypeAssortmentUpserted, 15, aisle.Assortment{StoreID: "s-a", ProductID: "p-a", PriceCents: ptr(int64(1))})
	if applied := mustApply(t, db, remove, stale); fmt.Sprint(applied) != "[true false]" {
		t.Errorf("removal then older upsert: %v", applied)
	}
	if n := count(t, conn, `SELECT count(*) FROM store_products WHERE store_id = 's-a' AND product_id = 'p-a'`); n != 0 {
		t.Errorf("removed assortment still has %d rows", n)
	}
	if applied := mustApply(t, db, catalogEvent(t, aisle.TypeAssortmentRemoved, 19, aisle.Assortment{StoreID: "s-a", ProductID: "p-a"})); applied[0] {
		t.Error("an older removal applied after a newer one")
	}
	readd := catalogEvent(t, aisle.TypeAssortmentUpserted, 30, aisle.Assortment{StoreID: "s-a", ProductID: "p-a", PriceCents: ptr(int64(550))})
	if applied := mustApply(t, db, readd); !applied[0] {
		t.Error("a newer upsert did not bring the product back")
	}
	if n := count(t, conn, `SELECT count(*) FROM store_products WHERE store_id = 's-a' AND product_id = 'p-a' AND price_cents = 550`); n != 1 {
		t.Errorf("re-added assortment: %d rows at 550", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM store_product_removals`); n != 0 {
		t.Errorf("%d tombstones left after the re-add", n)
	}
	// Upsert and removal of one assortment in one batch: the later wins.
	if applied := mustApply(t, db,
		catalogEvent(t, aisle.TypeAssortmentRemoved, 41, aisle.Assortment{StoreID: "s-a", ProductID: "p-b"}),
		catalogEvent(t, aisle.TypeAssortmentUpserted, 40, aisle.Assortment{StoreID: "s-a", ProductID: "p-b"}),
	); fmt.Sprint(applied) != "[true false]" {
		t.Errorf("removal and older upsert in one batch: %v", applied)
	}

	// A category whose id another name already has gets an id of its own.
	mustApply(t, db, catalogEvent(t, aisle.TypeProductUpserted, 50, aisle.ProductUpserted{ProductID: "p-c", Name: "Cream", Category: "Milk Cream"}))
	if n := count(t, conn, `SELECT count(*) FROM categories WHERE name IN ('Milk & Cream', 'Milk Cream')`); n != 2 {
		t.Errorf("categories with colliding ids: %d, want 2", n)
	}
}

// TestFollowChanges: a change applied by one process reaches the caches of
// another through the change feed, not after a TTL.
func TestFollowChanges(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := postgrestest.NewDatabaseURL(t)
	writer, server := mustOpenAt(t, url), mustOpenAt(t, url)

	mustApply(t, writer, append(baseCatalog(t),
		catalogEvent(t, aisle.TypeRetailerUpserted, 0, aisle.RetailerUpserted{RetailerID: "r-b", Name: "Bestco"}))...)

	listening := make(chan struct{}, 1)
	done := make(chan error)
	direct := postgrestest.DirectURL(t, url) // LISTEN needs a session: never through a pooler
	go func() { done <- server.FollowChanges(ctx, direct, func() { listening <- struct{}{} }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FollowChanges: %v", err)
		}
	}()
	<-listening
	// The server remembers s-a's retailer and p-a's category.
	if r, err := server.StoreRetailer(ctx, "s-a"); err != nil || r != "r-a" {
		t.Fatalf("StoreRetailer = %q, %v", r, err)
	}
	if c, err := server.ProductCategories(ctx, []string{"p-a"}); err != nil || c["p-a"] != "Milk & Cream" {
		t.Fatalf("ProductCategories = %v, %v", c, err)
	}
	if z, err := server.StoreLocations(ctx, []string{"s-a", "s-unknown"}); err != nil || len(z) != 1 || z["s-a"].String() != "America/Chicago" {
		t.Fatalf("StoreLocations = %v, %v; want s-a's America/Chicago alone", z, err)
	}

	mustApply(t, writer,
		catalogEvent(t, aisle.TypeStoreUpserted, 5, aisle.StoreUpserted{StoreID: "s-a", RetailerID: "r-b", Name: "Bestco Downtown", Timezone: ptr("America/New_York")}),
		catalogEvent(t, aisle.TypeProductUpserted, 5, aisle.ProductUpserted{ProductID: "p-a", Name: "Oat Milk", Category: "Plant Milk"}))
	// A bound on "never", not a latency claim: without the feed the cache
	// would keep the old answers for ever. Polled: the caches announce no
	// event of their own.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := server.StoreRetailer(ctx, "s-a")
		if err != nil {
			t.Fatal(err)
		}
		c, err := server.ProductCategories(ctx, []string{"p-a"})
		if err != nil {
			t.Fatal(err)
		}
		z, err := server.StoreLocations(ctx, []string{"s-a"})
		if err != nil {
			t.Fatal(err)
		}
		if r == "r-b" && c["p-a"] == "Plant Milk" && z["s-a"].String() == "America/New_York" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the change the server still says s-a is %q's in %v and p-a is in %q: the change feed did not reach its caches", r, z["s-a"], c["p-a"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
