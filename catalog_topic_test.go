package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming"
)

// writeFile writes a test input file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// importCatalog runs `aisle catalog import` against the server's broker.
func (ts *testServer) importCatalog(files ...string) (stdout string, err error) {
	ts.t.Helper()
	var out bytes.Buffer
	args := append([]string{"import", "--kafka-brokers", strings.Join(ts.main.KafkaBrokers, ",")}, files...)
	err = runCatalog(context.Background(), args, &out, &bytes.Buffer{})
	return out.String(), err
}

// catalogRows dumps every catalog table of a database, for comparisons.
func catalogRows(t *testing.T, url string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows := map[string][]string{}
	for table, sql := range map[string]string{
		"retailers":  `SELECT id, name, event_at FROM retailers`,
		"stores":     `SELECT id, retailer_id, name, address, lat, lon, timezone, event_at FROM stores`,
		"categories": `SELECT id, name FROM categories`,
		"products":   `SELECT id, category_id, name, brand, size, gtin, image_url, event_at FROM products`,
		"assortment": `SELECT store_id, product_id, price_cents, aisle, event_at FROM store_products`,
		"removals":   `SELECT store_id, product_id, removed_at FROM store_product_removals`,
	} {
		r, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			values, err := r.Values()
			if err != nil {
				t.Fatal(err)
			}
			rows[table] = append(rows[table], fmt.Sprint(values...))
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		slices.Sort(rows[table])
	}
	return rows
}

// deadLetterReasons returns the aisle-error header of every dead letter.
func deadLetterReasons(t *testing.T, brokers []string) []string {
	t.Helper()
	var reasons []string
	err := streaming.ReadRecords(context.Background(), brokers, []string{aisle.TopicDLQ}, nil, func(_ string, r *kgo.Record) error {
		for _, h := range r.Headers {
			if h.Key == streaming.HeaderError {
				reasons = append(reasons, string(h.Value))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(reasons)
	return reasons
}

const storeQuery = `query($id: ID!) { store(id: $id) { name retailer { id } products(first: 10) { edges { node { id name category } } } } }`

type storeAnswer struct {
	Store *struct {
		Name     string
		Retailer struct{ ID string }
		Products struct {
			Edges []struct {
				Node struct{ ID, Name, Category string }
			}
		}
	}
}

// TestCatalogTopic: a marketplace's catalog goes from import files through
// aisle.catalog to the API; bad lines are reported with their numbers,
// events naming unknown entities are dead-lettered, caches follow changes,
// and replaying the topic onto a fresh database gives the same rows. The
// server runs in production mode, whose empty database must stay empty
// (no demo data).
func TestCatalogTopic(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--env", "production")
	dbURL := ts.main.Config.DatabaseURL
	if rows := catalogRows(t, dbURL); len(rows["retailers"])+len(rows["stores"])+len(rows["products"])+len(rows["assortment"]) != 0 {
		t.Fatalf("a production server seeded its empty database: %v", rows)
	}

	jsonl := writeFile(t, "catalog.jsonl", `{"type":"retailer.upserted","data":{"retailer_id":"r-a","name":"Acme"}}
{"type":"retailer.upserted","data":{"retailer_id":"r-b","name":"Bestco"}}
{"type":"store.upserted","data":{"store_id":"s-a","retailer_id":"r-a","name":"Acme Downtown","lat":41.88,"lon":-87.63,"timezone":"America/Chicago"}}
{"type":"store.upserted","data":{"store_id":"s-x","retailer_id":"r-a","name":"Broken","lat":100,"lon":0}}
not json

{"type":"product.upserted","data":{"product_id":"p-a","name":"Oat Milk","category":"Plant Milk","gtin":"7394376616037"}}
{"type":"product.upserted","data":{"product_id":"p-b","name":"Soy Milk","category":"Plant Milk"}}
{"type":"shelf.moved","data":{}}
{"type":"assortment.upserted","data":{"store_id":"s-a","product_id":"p-a","price_cents":399}}
{"type":"assortment.upserted","data":{"store_id":"s-a","product_id":"p-b"}}
{"type":"assortment.removed","time":"2020-01-01T00:00:00Z","data":{"store_id":"s-a","product_id":"p-a"}}
{"type":"assortment.removed","data":{"store_id":"s-a","product_id":"p-b"}}
{"type":"store.upserted","data":{"store_id":"s-ghost","retailer_id":"r-ghost","name":"Nobody's"}}
{"type":"assortment.upserted","data":{"store_id":"s-a","product_id":"p-ghost"}}
`)
	out, err := ts.importCatalog(jsonl)
	if err == nil || err.Error() != "3 lines rejected" {
		t.Fatalf("import error %v, want 3 lines rejected\n%s", err, out)
	}
	for _, want := range []string{
		"published 11 events to aisle.catalog, rejected 3 lines",
		"catalog.jsonl:4: lat 100 is not between -90 and 90",
		"catalog.jsonl:5: not a catalog line",
		`catalog.jsonl:9: type "shelf.moved" is not a catalog event type`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import summary lacks %q:\n%s", want, out)
		}
	}

	// The store shows p-a (the removal of p-a is older than its upsert),
	// not p-b (removed after it was added).
	eventually(t, 10*time.Second, func() string {
		var got storeAnswer
		ts.mustData("", storeQuery, map[string]any{"id": "s-a"}, &got)
		if got.Store == nil || got.Store.Retailer.ID != "r-a" || len(got.Store.Products.Edges) != 1 ||
			got.Store.Products.Edges[0].Node != (struct{ ID, Name, Category string }{"p-a", "Oat Milk", "Plant Milk"}) {
			return fmt.Sprintf("store s-a = %+v", got.Store)
		}
		return ""
	})
	if got, want := deadLetterReasons(t, ts.main.KafkaBrokers), []string{"unknown product p-ghost", "unknown retailer r-ghost"}; !slices.Equal(got, want) {
		t.Errorf("dead letters %q, want %q", got, want)
	}

	// r-b may not push inventory at r-a's store; once s-a moves to r-b (a
	// CSV import), it may: the server's cache of store owners follows the
	// change feed.
	rb := ts.createKey(aisle.RoleRetailer, "r-b", "")
	const inventory = `mutation { updateInventory(input: {storeId: "s-a", productId: "p-a", quantity: 3}) { eventId } }`
	if code := ts.query(rb, inventory, nil).code(t); code != aisle.EFORBIDDEN {
		t.Fatalf("r-b at r-a's store: %s, want FORBIDDEN", code)
	}
	stores := writeFile(t, "stores.csv", "store_id,retailer_id,name,address,lat,lon,timezone\ns-a,r-b,Bestco Downtown,1 Main St,41.88,-87.63,America/Chicago\n")
	if out, err := ts.importCatalog(stores); err != nil {
		t.Fatalf("import stores.csv: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, func() string {
		if resp := ts.query(rb, inventory, nil); len(resp.Errors) > 0 {
			return fmt.Sprintf("r-b at its new store: %+v", resp.Errors)
		}
		return ""
	})

	// Replaying aisle.catalog onto a fresh database rebuilds the same rows.
	fresh := postgrestest.NewDatabaseURL(t)
	var replayOut bytes.Buffer
	err = runReplay(context.Background(), []string{"--topics", aisle.TopicCatalog, "--database-url", fresh,
		"--kafka-brokers", strings.Join(ts.main.KafkaBrokers, ","), "--redis-url", featurestest.URL(), "--redis-prefix", featurestest.NewPrefix()}, &replayOut, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, replayOut.String())
	}
	want, got := catalogRows(t, dbURL), catalogRows(t, fresh)
	for table := range want {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("replayed %s:\n%q\nwant\n%q", table, got[table], want[table])
		}
	}
	if len(want["stores"]) != 1 || len(want["removals"]) != 1 {
		t.Errorf("catalog %v, want one store and one tombstone", want)
	}
}

// countRows runs a count query on the server's database.
func (ts *testServer) countRows(sql string, args ...any) int {
	ts.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ts.main.Config.DatabaseURL)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		ts.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestSeedDemoCommand: `aisle seed demo` publishes the demo catalog to
// aisle.catalog, where the stream applies it like any catalog; a second
// run changes nothing; with AISLE_ENV=production it refuses.
func TestSeedDemoCommand(t *testing.T) {
	t.Parallel()
	err := runSeed(context.Background(), []string{"demo", "--env", "production", "--kafka-brokers", "127.0.0.1:1"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "refused with AISLE_ENV=production") {
		t.Fatalf("seed demo in production: %v, want a refusal", err)
	}

	ts := startServer(t, "--env", "production")
	seed := func() {
		var out bytes.Buffer
		if err := runSeed(context.Background(), []string{"demo", "--kafka-brokers", strings.Join(ts.main.KafkaBrokers, ",")}, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("seed demo: %v\n%s", err, out.String())
		}
	}
	seed()
	eventually(t, 30*time.Second, func() string {
		if n := ts.countRows(`SELECT count(*) FROM store_products`); n != 39063 {
			return fmt.Sprintf("%d store products applied, want the demo's 39,063", n)
		}
		return ""
	})
	before := catalogRows(t, ts.main.Config.DatabaseURL)
	if len(before["stores"]) != 24 || len(before["products"]) != 2100 || len(before["categories"]) != 30 {
		t.Fatalf("demo catalog: %d stores, %d products, %d categories", len(before["stores"]), len(before["products"]), len(before["categories"]))
	}
	seed()
	// The second run's events are the first's (same ids and times): once
	// a marker published after them is applied, nothing may have changed.
	marker := writeFile(t, "marker.jsonl", `{"type":"retailer.upserted","data":{"retailer_id":"r-marker","name":"Marker"}}`+"\n")
	if out, err := ts.importCatalog(marker); err != nil {
		t.Fatalf("import marker: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, func() string {
		if ts.countRows(`SELECT count(*) FROM retailers WHERE id = 'r-marker'`) != 1 {
			return "the marker is not applied yet"
		}
		return ""
	})
	after := catalogRows(t, ts.main.Config.DatabaseURL)
	after["retailers"] = slices.DeleteFunc(after["retailers"], func(r string) bool { return strings.HasPrefix(r, "r-marker") })
	for table := range before {
		if !slices.Equal(before[table], after[table]) {
			t.Errorf("seeding again changed %s", table)
		}
	}
}
