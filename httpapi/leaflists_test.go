package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/postgres"
)

// TestObjectListsMatchTheExecutor is the differential test of the planned
// object lists: generated selections over availability, recommendations
// and stores with their nested product lists (aliases, inline and named
// fragments, @include/@skip on fields and fragments, __typename, nested
// objects and lists, fields with a resolver or a method) over generated values (nulls, unusual strings,
// floats JSON cannot hold, zero times, resolver errors) must give the same
// status, headers and bytes through gqlgen's executor alone and POST
// transport as through the server's: objectLists and postQueries (only the
// order of errors of two root fields is normalised: gqlgen resolves root
// fields concurrently, so that order varies from the executor alone too).
// The resolvers here return the generated values directly: what is under
// test is the writing of a resolver's result, which needs no storage.
func TestObjectListsMatchTheExecutor(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	data := &listData{}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: listResolvers{data: data}})
	executor := handler.New(schema)
	executor.AddTransport(transport.POST{})
	planned := handler.New(schema)
	planned.AddTransport(postQueries{}) // the server's, which writes the plan's data without re-reading it
	planned.Use(newObjectLists(schema.Schema(), listResolvers{data: data}))

	before := testutil.ToFloat64(objectListAnswers.WithLabelValues("planned"))
	const cases = 3000
	for i := range cases {
		data.generate(rng)
		query := generateQuery(rng)
		body := fmt.Sprintf(`{"query": %q, "variables": {"yes": true, "no": false}}`, query)
		want, got := answer(executor, body), answer(planned, body)
		if got != want && sortedErrors(t, got) != sortedErrors(t, want) {
			t.Fatalf("case %d: the planned answer differs from the executor's\nquery: %s\nexecutor: %s\nplanned:  %s", i, query, want, got)
		}
	}
	// The comparison means something only if the plan wrote most answers.
	if n := testutil.ToFloat64(objectListAnswers.WithLabelValues("planned")) - before; n < cases/3 {
		t.Errorf("the plan wrote %.0f lists in %d cases: the generator hardly reaches it", n, cases)
	}
	if n := data.plannedCalls.Load(); n < cases/40 {
		t.Errorf("plans called Product.availability %d times in %d cases: the generator hardly reaches nested availability", n, cases)
	}
}

func answer(h http.Handler, body string) string {
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return fmt.Sprint(rec.Code, " ", rec.Header(), "\n", rec.Body.String())
}

// generateQuery writes one operation over availability and recommendations.
func generateQuery(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("query Q($yes: Boolean!, $no: Boolean!) { __typename @include(if: $yes) @skip(if: $no) ")
	fragments := map[string]string{}
	if rng.IntN(4) > 0 {
		fmt.Fprintf(&b, "%s: availability(storeId: \"s\", productIds: [\"p\"]) { %s } ", pick(rng, "availability", "a", "b"), generateSelection(rng, availabilityFields, "ItemAvailability", fragments, 0))
	}
	if rng.IntN(3) > 0 {
		fmt.Fprintf(&b, "recommendations(sessionId: \"x\", storeId: \"s\") { %s } ", generateSelection(rng, recommendationFields, "Recommendation", fragments, 0))
	}
	if rng.IntN(3) == 0 {
		fmt.Fprintf(&b, "stores(first: 3) { edges { %s node { %s } } pageInfo { hasNextPage endCursor } } ", pick(rng, "", "cursor", "__typename cursor"), generateSelection(rng, storeFields, "Store", fragments, 0))
	}
	b.WriteString("}")
	for name, f := range fragments {
		fmt.Fprintf(&b, " fragment %s", name)
		b.WriteString(f)
	}
	return b.String()
}

var (
	availabilityFields   = []string{"storeId", "productId", "carried", "probability", "status", "updatedAt", "__typename"}
	recommendationFields = []string{"score", "reason", "__typename", "product"}
	storeFields          = []string{"id", "name", "address", "timezone", "__typename", "location", "retailer", "products", "name", "id"}
	productFields        = []string{"id", "name", "category", "brand", "size", "gtin", "imageUrl", "priceCents", "__typename", "availability"}
)

// generateSelection writes a selection set of 1..5 elements over fields of
// typ; "product" and "availability" nest.
func generateSelection(rng *rand.Rand, fields []string, typ string, fragments map[string]string, depth int) string {
	var parts []string
	for range 1 + rng.IntN(5) {
		field := fields[rng.IntN(len(fields))]
		if (field == "location" || field == "retailer") && rng.IntN(3) > 0 {
			field = "name" // the field sends the list to the executor: not too often
		}
		sel := field
		switch field {
		case "product":
			sel += " { " + generateSelection(rng, productFields, "Product", fragments, depth+1) + " }"
		case "availability": // a resolver the plan calls (plannedResolvers)
			sel += " { " + generateSelection(rng, availabilityFields, "ItemAvailability", fragments, depth+1) + " }"
		case "location":
			sel += " { lat lon }" // a method of postgres.Store: the executor's
		case "retailer":
			sel += " { id name }" // a resolver: the executor's
		case "products":
			sel += "(first: 2) { edges { cursor node { " + generateSelection(rng, productFields, "Product", fragments, depth+1) + " } } }"
		}
		if rng.IntN(4) == 0 && field != "__typename" {
			sel = field + "Alias: " + sel // one alias per field name, so merges stay valid
		}
		switch rng.IntN(10) {
		case 0:
			sel += " @include(if: $yes)"
		case 1:
			sel += " @include(if: $no)"
		case 2:
			sel += " @skip(if: $yes)"
		case 3:
			sel += " @skip(if: $no)"
		}
		if depth < 2 {
			switch rng.IntN(8) {
			case 0:
				sel = fmt.Sprintf("... on %s { %s }", typ, sel)
			case 1:
				sel = fmt.Sprintf("... @include(if: %s) { %s }", pick(rng, "$yes", "$no"), sel)
			case 2:
				name := fmt.Sprintf("F%d", len(fragments))
				fragments[name] = fmt.Sprintf(" on %s { %s }", typ, sel)
				sel = "..." + name + pick(rng, "", " @skip(if: $no)", " @skip(if: $yes)")
			}
		}
		parts = append(parts, sel)
	}
	return strings.Join(parts, " ")
}

func pick(rng *rand.Rand, options ...string) string { return options[rng.IntN(len(options))] }

// listData is what the resolvers return for one case.
type listData struct {
	items    []*graph.ItemAvailability
	recs     []*graph.Recommendation
	stores   []*graph.StoreEdge
	products []*graph.ProductEdge // every store's
	err      error
	// availability is Product.availability's answer for each product.
	availability map[*postgres.Product]availabilityAnswer
	plannedCalls atomic.Int64 // Product.availability calls made by a plan
}

type availabilityAnswer struct {
	item *graph.ItemAvailability
	err  error
}

func (d *listData) generate(rng *rand.Rand) {
	d.err = nil
	d.availability = map[*postgres.Product]availabilityAnswer{}
	if rng.IntN(30) == 0 {
		d.err = errors.New("the resolver failed")
	}
	d.items = make([]*graph.ItemAvailability, rng.IntN(6))
	for i := range d.items {
		if rng.IntN(40) == 0 {
			continue // a null in a list of non-null items: an error
		}
		d.items[i] = &graph.ItemAvailability{
			StoreID: generateString(rng), ProductID: generateString(rng), Carried: rng.IntN(2) == 0,
			Probability: generateFloat(rng), Status: graph.AllAvailabilityStatus[rng.IntN(len(graph.AllAvailabilityStatus))],
			UpdatedAt: generateTime(rng),
		}
	}
	d.recs = make([]*graph.Recommendation, rng.IntN(4))
	for i := range d.recs {
		d.recs[i] = &graph.Recommendation{Score: generateFloat(rng), Reason: generateString(rng)}
		if rng.IntN(30) > 0 { // else a null product!
			d.recs[i].Product = d.generateProduct(rng)
		}
	}
	d.stores = make([]*graph.StoreEdge, rng.IntN(4))
	for i := range d.stores {
		d.stores[i] = &graph.StoreEdge{Cursor: generateString(rng), Node: &postgres.Store{ID: generateString(rng), Name: generateString(rng),
			Address: optional(rng, generateString(rng)), Timezone: optional(rng, "Europe/Paris"), Lat: optional(rng, 48.85), Lon: optional(rng, generateFloat(rng))}}
		if rng.IntN(30) == 0 {
			d.stores[i].Node = nil // a null node where the schema says non-null
		}
	}
	d.products = make([]*graph.ProductEdge, rng.IntN(5))
	for i := range d.products {
		d.products[i] = &graph.ProductEdge{Cursor: generateString(rng), Node: d.generateProduct(rng)}
	}
}

// generateProduct makes a product and its Product.availability answer: an
// item, a null (outside a store) or an error.
func (d *listData) generateProduct(rng *rand.Rand) *postgres.Product {
	p := &postgres.Product{ID: generateString(rng), Name: generateString(rng), Category: generateString(rng),
		Brand: optional(rng, generateString(rng)), Size: optional(rng, generateString(rng)), GTIN: optional(rng, "0123"),
		ImageURL: optional(rng, "https://img/x?a=1&b=<2>"), PriceCents: optional(rng, rng.IntN(100000)-50)}
	var answer availabilityAnswer
	switch rng.IntN(20) {
	case 0:
		answer.err = errors.New("availability failed")
	case 1, 2:
	default:
		answer.item = &graph.ItemAvailability{StoreID: generateString(rng), ProductID: p.ID, Carried: rng.IntN(2) == 0,
			Probability: generateFloat(rng), Status: graph.AllAvailabilityStatus[rng.IntN(len(graph.AllAvailabilityStatus))],
			UpdatedAt: generateTime(rng)}
	}
	d.availability[p] = answer
	return p
}

func generateString(rng *rand.Rand) string {
	return pick(rng, "p-1", "", `quo"te`, `back\slash`, "tab\tnew\nline", "\x00\x1f", "ünïcødé ✓", "\u2028\u2029", "<script>&", "emoji 🛒")
}

func generateFloat(rng *rand.Rand) float64 {
	switch rng.IntN(12) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return 0
	case 3:
		return 1e21
	case 4:
		return 1e-7
	case 5:
		return -0.5
	}
	return rng.Float64()
}

func generateTime(rng *rand.Rand) *time.Time {
	var t time.Time
	switch rng.IntN(6) {
	case 0:
		return nil
	case 1: // zero: the generated code's null
	case 2:
		t = time.Date(2026, 12, 2, 17, 0, 0, 123456789, time.FixedZone("x", 3600))
	default:
		t = time.Unix(1764694800+rng.Int64N(1e6), rng.Int64N(1e9)).UTC()
	}
	return &t
}

func optional[T any](rng *rand.Rand, v T) *T {
	if rng.IntN(3) == 0 {
		return nil
	}
	return &v
}

// listResolvers answer availability, recommendations, stores,
// Store.retailer, Store.products and Product.availability from listData;
// nothing else is queried.
type listResolvers struct {
	graph.ResolverRoot // nil: only the methods below are called
	data               *listData
}

func (r listResolvers) Query() graph.QueryResolver     { return listQuery{data: r.data} }
func (r listResolvers) Product() graph.ProductResolver { return listProduct{data: r.data} }
func (r listResolvers) Store() graph.StoreResolver     { return listStore{data: r.data} }

type listQuery struct {
	graph.QueryResolver // nil: only the methods below are called
	data                *listData
}

func (q listQuery) Availability(context.Context, string, []string) ([]*graph.ItemAvailability, error) {
	return q.data.items, q.data.err
}

func (q listQuery) Recommendations(context.Context, string, string, *int) ([]*graph.Recommendation, error) {
	return q.data.recs, q.data.err
}

func (q listQuery) Stores(context.Context, *int, *string) (*graph.StoreConnection, error) {
	end := "c-end"
	return &graph.StoreConnection{Edges: q.data.stores, PageInfo: &graph.PageInfo{HasNextPage: len(q.data.stores) > 2, EndCursor: &end}}, nil
}

type listStore struct {
	graph.StoreResolver // nil: only the methods below are called
	data                *listData
}

func (listStore) Retailer(_ context.Context, s *postgres.Store) (*postgres.Retailer, error) {
	return &postgres.Retailer{ID: "r-" + s.ID, Name: "Retailer"}, nil
}

func (st listStore) Products(context.Context, *postgres.Store, *int, *string, *string, *string) (*graph.ProductConnection, error) {
	return &graph.ProductConnection{Edges: st.data.products, PageInfo: &graph.PageInfo{}}, nil
}

type listProduct struct{ data *listData }

func (lp listProduct) Availability(ctx context.Context, p *postgres.Product) (*graph.ItemAvailability, error) {
	if graphql.GetFieldContext(ctx).Field.Name != "availability" {
		lp.data.plannedCalls.Add(1) // called by a plan, with its list's context
	}
	answer := lp.data.availability[p]
	return answer.item, answer.err
}

// BenchmarkObjectLists answers availability(100 products) with 5 fields,
// as BENCHMARKS.md §1 reads it, through the executor alone and planned:
// the CPU and allocations of executing and writing the answer (no HTTP,
// no storage).
//
//	go test -run '^$' -bench ObjectLists -benchmem ./httpapi/
func BenchmarkObjectLists(b *testing.B) {
	data := &listData{items: make([]*graph.ItemAvailability, 100)}
	at := time.Date(2026, 12, 2, 17, 0, 0, 123000000, time.UTC)
	for i := range data.items {
		data.items[i] = &graph.ItemAvailability{StoreID: "s-1", ProductID: fmt.Sprintf("p-%05d", i), Carried: true, Probability: 0.8731, Status: graph.AvailabilityStatusInStock, UpdatedAt: &at}
	}
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: listResolvers{data: data}})
	body := `{"query": "query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { productId probability status updatedAt carried } }", "variables": {"s": "s-1", "p": ["p-00001"]}}`
	for _, path := range []string{"executor", "planned"} {
		b.Run(path, func(b *testing.B) {
			h := handler.New(schema)
			h.AddTransport(postQueries{})
			h.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
			if path == "planned" {
				h.Use(newObjectLists(schema.Schema(), listResolvers{data: data}))
			}
			b.ReportAllocs()
			for b.Loop() {
				if out := answer(h, body); !strings.HasPrefix(out, "200 map[Content-Type:[application/json]]\n"+`{"data":{"availability":[{"productId":"p-00000"`) {
					b.Fatalf("answer: %.200s", out)
				}
			}
		})
	}
}
