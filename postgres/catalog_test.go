package postgres_test

import (
	"context"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/migrations"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

func ptr[T any](v T) *T { return &v }

// connect opens a raw connection for assertions the API does not expose.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := aisle.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// Processes starting together all open the same missing database: one
// creates it, goose's lock serializes the migrations, and a second
// migration run changes nothing.
func TestOpen_CreatesAndMigratesConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.NewDatabaseURL(t)
	log := slog.New(slog.DiscardHandler)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := postgres.Open(ctx, url, log)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
	}
	if err := postgres.Migrate(ctx, url, log); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}

	conn := connect(t, url)
	var version int64
	if err := conn.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	// Migration files are named NNNNN_description.sql.
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var newest int64
	for _, f := range files {
		v, err := strconv.ParseInt(f[:strings.IndexByte(f, '_')], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		newest = max(newest, v)
	}
	if version != newest {
		t.Errorf("schema version %d, want %d", version, newest)
	}
	// Each migration is recorded once although four processes ran them.
	if n := count(t, conn, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`); n != len(files) {
		t.Errorf("%d applied migrations recorded, want %d", n, len(files))
	}
	if n := count(t, conn, `SELECT count(*) FROM pg_indexes WHERE indexname = 'products_name_trgm_idx'`); n != 1 {
		t.Errorf("trigram index missing although pg_trgm is available")
	}
}

func TestOpen_NilLogger(t *testing.T) {
	t.Parallel()
	if _, err := postgres.Open(context.Background(), "postgres://localhost/x", nil); err == nil {
		t.Fatal("Open with nil logger succeeded")
	}
}

// Processes starting together on an empty catalog seed it exactly once.
func TestSeedDemo_OnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenDB(t)

	var wg sync.WaitGroup
	var mu sync.Mutex
	seededCount := 0
	for range 4 {
		wg.Go(func() {
			seeded, err := db.SeedDemo(ctx)
			if err != nil {
				t.Errorf("SeedDemo: %v", err)
			}
			if seeded {
				mu.Lock()
				seededCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if seededCount != 1 {
		t.Fatalf("seeded %d times, want 1", seededCount)
	}
	sc, err := db.SimulationCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Stores) != 24 || len(sc.Categories) != 2100 {
		t.Errorf("after concurrent seeding: %d stores, %d products; want 24, 2100", len(sc.Stores), len(sc.Categories))
	}
}

func TestSeedDemo_Contents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.NewDatabaseURL(t)
	db, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seeded, err := db.SeedDemo(ctx); err != nil || !seeded {
		t.Fatalf("SeedDemo = %v, %v; want true", seeded, err)
	}
	if seeded, err := db.SeedDemo(ctx); err != nil || seeded {
		t.Fatalf("second SeedDemo = %v, %v; want false", seeded, err)
	}

	conn := connect(t, url)
	for _, tt := range []struct {
		sql      string
		min, max int
	}{
		{`SELECT count(*) FROM retailers`, 3, 3 + 1},
		{`SELECT count(*) FROM stores`, 20, 24},
		{`SELECT count(*) FROM categories`, 30, 30},
		{`SELECT count(*) FROM products`, 2000, 2100},
		{`SELECT count(DISTINCT name) FROM products`, 2100, 2100},
		// Every category is used and every store carries 60–95% of the catalog.
		{`SELECT count(DISTINCT category_id) FROM products`, 30, 30},
		{`SELECT min(n) FROM (SELECT count(*) n FROM store_products GROUP BY store_id) x`, 2100 * 60 / 100, 2100},
		{`SELECT max(n) FROM (SELECT count(*) n FROM store_products GROUP BY store_id) x`, 0, 2100 * 95 / 100},
		{`SELECT count(*) FROM stores s WHERE NOT EXISTS (SELECT 1 FROM store_products sp WHERE sp.store_id = s.id)`, 0, 0},
	} {
		if n := count(t, conn, tt.sql); n < tt.min || n > tt.max {
			t.Errorf("%s = %d, want %d..%d", tt.sql, n, tt.min, tt.max)
		}
	}
	// Assortments depend on the retailer: FreshCo stores carry more than ValueMart's.
	freshCo := count(t, conn, `SELECT count(*) FROM store_products sp JOIN stores s ON s.id = sp.store_id WHERE s.retailer_id = 'r-1'`)
	valueMart := count(t, conn, `SELECT count(*) FROM store_products sp JOIN stores s ON s.id = sp.store_id WHERE s.retailer_id = 'r-3'`)
	if freshCo <= valueMart {
		t.Errorf("FreshCo carries %d store-products, ValueMart %d; want FreshCo > ValueMart", freshCo, valueMart)
	}
}

// TestSeededCatalog runs the read-only tests against one shared seeded
// database.
func TestSeededCatalog(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	for name, test := range map[string]func(*testing.T, *postgres.DB){
		"Stores/WalkAllPages":            testStoresWalk,
		"Stores/DefaultPageSize":         testStoresDefault,
		"Stores/InvalidArguments":        testStoresInvalid,
		"Store":                          testStore,
		"StoreProducts/WalkAssortment":   testStoreProductsWalk,
		"StoreProducts/Search":           testStoreProductsSearch,
		"StoreProducts/InvalidArguments": testStoreProductsInvalid,
		"RetailersByIDs":                 testRetailersByIDs,
		"ProductsByIDs":                  testProductsByIDs,
		"MissingStoreProducts":           testMissingStoreProducts,
		"ProductCategories":              testProductCategories,
		"SimulationCatalog":              testSimulationCatalog,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, db)
		})
	}
}

func testStoresWalk(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	var names, ids []string
	var after *string
	for page := 0; ; page++ {
		p, err := db.Stores(ctx, ptr(5), after)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasPreviousPage != (page > 0) {
			t.Errorf("page %d: HasPreviousPage = %v", page, p.HasPreviousPage)
		}
		for _, e := range p.Edges {
			names = append(names, e.Node.Name)
			ids = append(ids, e.Node.ID)
		}
		if !p.HasNextPage {
			if len(p.Edges) == 0 || len(p.Edges) > 5 {
				t.Errorf("last page has %d edges", len(p.Edges))
			}
			break
		}
		if len(p.Edges) != 5 {
			t.Fatalf("page %d has %d edges, want 5", page, len(p.Edges))
		}
		if *p.StartCursor() != p.Edges[0].Cursor || *p.EndCursor() != p.Edges[4].Cursor {
			t.Errorf("page %d: start/end cursors do not match the edges", page)
		}
		after = p.EndCursor()
	}
	if len(ids) != 24 {
		t.Fatalf("walked %d stores, want 24: %v", len(ids), ids)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 24 {
		t.Errorf("a store appeared twice: %v", ids)
	}
	if !slices.IsSorted(names) {
		t.Errorf("stores not ordered by name: %v", names)
	}
}

func testStoresDefault(t *testing.T, db *postgres.DB) {
	p, err := db.Stores(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Edges) != postgres.DefaultPageSize || !p.HasNextPage || p.HasPreviousPage {
		t.Fatalf("default page: %d edges, next %v, previous %v; want 20, true, false", len(p.Edges), p.HasNextPage, p.HasPreviousPage)
	}
	// The whole list fits in one page of 100.
	p, err = db.Stores(context.Background(), ptr(100), ptr(""))
	if err != nil || len(p.Edges) != 24 || p.HasNextPage {
		t.Fatalf("page of 100: %d edges, next %v, %v", len(p.Edges), p.HasNextPage, err)
	}
	// After the last store: an empty page without cursors.
	p, err = db.Stores(context.Background(), ptr(1), p.EndCursor())
	if err != nil || len(p.Edges) != 0 || p.HasNextPage || p.StartCursor() != nil || p.EndCursor() != nil {
		t.Fatalf("page after the end: %+v, %v", p, err)
	}
}

func testStoresInvalid(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	products, err := db.StoreProducts(ctx, "s-1", ptr(1), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		reason string
		first  *int
		after  *string
	}{
		{"first 0", ptr(0), nil},
		{"first negative", ptr(-5), nil},
		{"first 101", ptr(101), nil},
		{"garbage cursor", nil, ptr("not-a-cursor!")},
		{"product cursor", nil, products.EndCursor()},
	} {
		_, err := db.Stores(ctx, tt.first, tt.after)
		if aisle.ErrorCode(err) != aisle.EINVALID || aisle.ErrorMessage(err) == "" {
			t.Errorf("%s: got %v, want %s with a message", tt.reason, err, aisle.EINVALID)
		}
	}
}

func testStore(t *testing.T, db *postgres.DB) {
	s, err := db.Store(context.Background(), "s-1")
	if err != nil {
		t.Fatal(err)
	}
	// The demo catalog gives every store an address, a location and a time zone.
	if s.ID != "s-1" || s.Name != "FreshCo Downtown" || s.RetailerID != "r-1" || s.Address == nil || s.Lat == nil || s.Lon == nil || s.Timezone == nil {
		t.Errorf("Store(s-1) = %+v, want FreshCo Downtown of r-1 with its address, location and time zone", *s)
	}
	_, err = db.Store(context.Background(), "s-999")
	wantCode(t, err, aisle.ENOTFOUND)
	if msg := aisle.ErrorMessage(err); msg != `store "s-999" not found` {
		t.Errorf("message %q", msg)
	}
}

func testStoreProductsWalk(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	sc, err := db.SimulationCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := sc.Stores[0] // s-1
	var got, names []string
	var after *string
	for {
		p, err := db.StoreProducts(ctx, want.StoreID, ptr(100), after, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Edges {
			got = append(got, e.Node.ID)
			names = append(names, e.Node.Name)
			if e.Node.Category != sc.Categories[e.Node.ID] {
				t.Errorf("%s: category %q, want %q", e.Node.ID, e.Node.Category, sc.Categories[e.Node.ID])
			}
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor()
	}
	if !slices.IsSorted(names) {
		t.Errorf("products not ordered by name")
	}
	slices.Sort(got)
	if !slices.Equal(got, want.ProductIDs) {
		t.Errorf("walked %d products, assortment has %d", len(got), len(want.ProductIDs))
	}
}

func testStoreProductsSearch(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	// The names of everything s-2 carries, to compute the expected answers.
	sc, err := db.SimulationCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sc.Stores, func(a postgres.Assortment) bool { return a.StoreID == "s-2" })
	products, errs := db.ProductsByIDs(ctx, sc.Stores[i].ProductIDs)
	if errs != nil {
		t.Fatal(errs)
	}
	matching := func(q string) []string {
		var ids []string
		for _, p := range products {
			if strings.Contains(strings.ToLower(p.Name), strings.ToLower(q)) {
				ids = append(ids, p.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	search := func(q string, first int) []string {
		var ids []string
		var after *string
		for {
			p, err := db.StoreProducts(ctx, "s-2", ptr(first), after, ptr(q), nil)
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			ids = append(ids, nodeIDs(p)...)
			if !p.HasNextPage {
				break
			}
			after = p.EndCursor()
		}
		slices.Sort(ids)
		return ids
	}

	for _, tt := range []struct {
		query string
		found bool
	}{
		{"whole MILK", true},
		{"Greek", true},
		{"ch", true},
		{"  Oz ", true}, // trimmed
		{"%", true},     // literally: "80% Lean Ground Beef"
		{"_", false},    // literally, not "any character"
		{`\`, false},
		{"no such product", false},
	} {
		want := matching(strings.TrimSpace(tt.query))
		if (len(want) > 0) != tt.found {
			t.Fatalf("test data: %d products of s-2 match %q", len(want), tt.query)
		}
		if got := search(tt.query, 7); !slices.Equal(got, want) {
			t.Errorf("search %q: got %d products, want %d", tt.query, len(got), len(want))
		}
	}
}

func nodeIDs(p postgres.Page[postgres.Product]) []string {
	ids := make([]string, len(p.Edges))
	for i, e := range p.Edges {
		ids[i] = e.Node.ID
	}
	return ids
}

func testStoreProductsInvalid(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	stores, err := db.Stores(ctx, ptr(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.StoreProducts(ctx, "s-999", nil, nil, nil, nil)
	wantCode(t, err, aisle.ENOTFOUND)
	for _, tt := range []struct {
		reason   string
		first    *int
		after    *string
		query    *string
		category *string
	}{
		{"first 0", ptr(0), nil, nil, nil},
		{"first 1000", ptr(1000), nil, nil, nil},
		{"garbage cursor", nil, ptr("%%%"), nil, nil},
		{"store cursor", nil, stores.EndCursor(), nil, nil},
		{"query too long", nil, nil, ptr(strings.Repeat("x", postgres.MaxQueryLength+1)), nil},
		{"category with NUL", nil, nil, nil, ptr("fruit\x00")},
		{"empty category", nil, nil, nil, ptr("")},
	} {
		_, err := db.StoreProducts(ctx, "s-1", tt.first, tt.after, tt.query, tt.category)
		if aisle.ErrorCode(err) != aisle.EINVALID {
			t.Errorf("%s: got %v, want %s", tt.reason, err, aisle.EINVALID)
		}
	}
}

func testRetailersByIDs(t *testing.T, db *postgres.DB) {
	got, errs := db.RetailersByIDs(context.Background(), []string{"r-2", "r-x", "r-1", "r-2"})
	if len(got) != 4 || len(errs) != 4 {
		t.Fatalf("got %d values, %d errors; want 4, 4", len(got), len(errs))
	}
	want := []*postgres.Retailer{{"r-2", "Harvest Market"}, nil, {"r-1", "FreshCo"}, {"r-2", "Harvest Market"}}
	for i := range want {
		switch {
		case want[i] == nil:
			if got[i] != nil || aisle.ErrorCode(errs[i]) != aisle.ENOTFOUND {
				t.Errorf("#%d: got %v, %v; want nil, %s", i, got[i], errs[i], aisle.ENOTFOUND)
			}
		case got[i] == nil || *got[i] != *want[i] || errs[i] != nil:
			t.Errorf("#%d: got %v, %v; want %v", i, got[i], errs[i], want[i])
		}
	}

	got, errs = db.RetailersByIDs(context.Background(), []string{"r-3"})
	if errs != nil || len(got) != 1 || got[0].Name != "ValueMart" {
		t.Errorf("all found: got %v, %v; want ValueMart and no errors", got, errs)
	}
}

func testProductsByIDs(t *testing.T, db *postgres.DB) {
	got, errs := db.ProductsByIDs(context.Background(), []string{"p-2100", "p-1", "nope"})
	if len(got) != 3 || len(errs) != 3 {
		t.Fatalf("got %d values, %d errors; want 3, 3", len(got), len(errs))
	}
	for i, want := range []postgres.Product{
		{ID: "p-2100", Name: "Pure Essentials Moisturizing Body Wash 30 oz", Category: "Personal Care"},
		{ID: "p-1", Name: "Coastal Farms Bananas 2 lb", Category: "Fresh Fruit"},
	} {
		// The demo catalog gives every product a brand and a size.
		if p := got[i]; p == nil || p.ID != want.ID || p.Name != want.Name || p.Category != want.Category || p.Brand == nil || p.Size == nil {
			t.Errorf("#%d = %+v, want %+v with a brand and a size", i, p, want)
		}
	}
	if got[2] != nil || aisle.ErrorCode(errs[2]) != aisle.ENOTFOUND || errs[0] != nil || errs[1] != nil {
		t.Errorf("errors %v", errs)
	}
}

func testMissingStoreProducts(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	known := []aisle.StoreProduct{{StoreID: "s-1", ProductID: "p-1"}, {StoreID: "s-24", ProductID: "p-2100"}, {StoreID: "s-3", ProductID: "p-77"}}
	for range 2 { // cold, then cached
		missing, err := db.MissingStoreProducts(ctx, known)
		if err != nil || len(missing) != 0 {
			t.Fatalf("known IDs: %v, %v; want none missing", missing, err)
		}
	}
	missing, err := db.MissingStoreProducts(ctx, append(known,
		aisle.StoreProduct{StoreID: "s-x", ProductID: "p-1"},
		aisle.StoreProduct{StoreID: "s-1", ProductID: "p-x"},
		aisle.StoreProduct{StoreID: "s-y", ProductID: "p-y"},
	))
	if err != nil {
		t.Fatal(err)
	}
	want := map[aisle.StoreProduct]string{
		{StoreID: "s-x", ProductID: "p-1"}: "unknown store s-x",
		{StoreID: "s-1", ProductID: "p-x"}: "unknown product p-x",
		{StoreID: "s-y", ProductID: "p-y"}: "unknown store s-y",
	}
	if len(missing) != len(want) {
		t.Fatalf("missing = %v, want %v", missing, want)
	}
	for sp, reason := range want {
		if missing[sp] != reason {
			t.Errorf("%v: reason %q, want %q", sp, missing[sp], reason)
		}
	}
}

func testProductCategories(t *testing.T, db *postgres.DB) {
	got, err := db.ProductCategories(context.Background(), []string{"p-1", "p-71", "p-x", "p-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"p-1": "Fresh Fruit", "p-71": "Fresh Vegetables"}
	if len(got) != len(want) || got["p-1"] != want["p-1"] || got["p-71"] != want["p-71"] {
		t.Errorf("ProductCategories = %v, want %v", got, want)
	}
}

func testSimulationCatalog(t *testing.T, db *postgres.DB) {
	sc, err := db.SimulationCatalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Stores) != 24 || len(sc.Categories) != 2100 {
		t.Fatalf("%d stores, %d categories; want 24, 2100", len(sc.Stores), len(sc.Categories))
	}
	total := 0
	for _, s := range sc.Stores {
		if len(s.ProductIDs) == 0 || !slices.IsSorted(s.ProductIDs) || !strings.HasPrefix(s.RetailerID, "r-") {
			t.Errorf("store %s: %d products (sorted %v), retailer %q", s.StoreID, len(s.ProductIDs), slices.IsSorted(s.ProductIDs), s.RetailerID)
		}
		for _, id := range s.ProductIDs {
			if sc.Categories[id] == "" {
				t.Errorf("store %s carries %s which has no category", s.StoreID, id)
			}
		}
		total += len(s.ProductIDs)
	}
	if total != 39063 {
		t.Errorf("%d store-products, want 39063", total)
	}
}

// Once seen, IDs are validated from memory: the check keeps working without
// the database. A product added later is found because misses are not cached.
func TestMissingStoreProducts_CacheAndLateAdditions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.NewDatabaseURL(t)
	db, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}

	late := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-late"}
	missing, err := db.MissingStoreProducts(ctx, []aisle.StoreProduct{late})
	if err != nil || missing[late] != "unknown product p-late" {
		t.Fatalf("before insert: %v, %v", missing, err)
	}
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, `INSERT INTO products (id, category_id, name) VALUES ('p-late', 'fresh-fruit', 'Late Mango 1 ct')`); err != nil {
		t.Fatal(err)
	}
	sps := make([]aisle.StoreProduct, 0, 100)
	for i := range 99 {
		sps = append(sps, aisle.StoreProduct{StoreID: "s-" + strconv.Itoa(1+i%24), ProductID: "p-" + strconv.Itoa(1+i*21)})
	}
	sps = append(sps, late)
	if missing, err := db.MissingStoreProducts(ctx, sps); err != nil || len(missing) != 0 {
		t.Fatalf("after insert: %v, %v; want none missing", missing, err)
	}

	db.Close()
	if missing, err := db.MissingStoreProducts(ctx, sps); err != nil || len(missing) != 0 {
		t.Fatalf("cached, database closed: %v, %v; want none missing", missing, err)
	}
	if cats, err := db.ProductCategories(ctx, []string{"p-late"}); err != nil || cats["p-late"] != "Fresh Fruit" {
		t.Fatalf("cached category: %v, %v", cats, err)
	}
	// s-1 belongs to r-1 in the demo catalog (TestSeededCatalog pins it).
	if retailer, err := db.StoreRetailer(ctx, "s-1"); err != nil || retailer != "r-1" {
		t.Fatalf("cached store owner: %q, %v; want r-1", retailer, err)
	}
	// An unseen ID needs the database, which is closed: an error, not a guess.
	if _, err := db.MissingStoreProducts(ctx, []aisle.StoreProduct{{StoreID: "s-1", ProductID: "p-unseen"}}); err == nil {
		t.Fatal("unseen ID with the database closed: no error")
	}
}

// BenchmarkMissingStoreProducts measures the hot-path check of a
// 100-product availability query whose IDs are all cached.
func BenchmarkMissingStoreProducts(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(b)
	sps := make([]aisle.StoreProduct, 100)
	for i := range sps {
		sps[i] = aisle.StoreProduct{StoreID: "s-5", ProductID: "p-" + strconv.Itoa(1+i*20)}
	}
	if missing, err := db.MissingStoreProducts(ctx, sps); err != nil || len(missing) != 0 {
		b.Fatalf("warm-up: %v, %v", missing, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.MissingStoreProducts(ctx, sps); err != nil {
			b.Fatal(err)
		}
	}
}
