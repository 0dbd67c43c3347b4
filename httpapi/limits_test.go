package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/aisle/aisle/graph"
)

var defaultLimits = operationLimits{maxDepth: maxDepth, maxAliases: maxAliases, maxComplexity: maxComplexity}

// measureOp validates query against our schema and measures it as the
// executor would: variables coerced first, then the limits.
func measureOp(t *testing.T, l operationLimits, query string, vars map[string]any) (int, string) {
	t.Helper()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		t.Fatalf("invalid test operation: %v", errs)
	}
	op := doc.Operations[0]
	coerced, err := validator.VariableValues(schema, op, vars)
	if err != nil {
		t.Fatalf("variables: %v", err)
	}
	cost, gqlErr := l.measure(op, coerced)
	if gqlErr != nil {
		if gqlErr.Extensions["code"] != codeLimitExceeded {
			t.Fatalf("error without code %s: %v", codeLimitExceeded, gqlErr)
		}
		return 0, gqlErr.Extensions["limit"].(string)
	}
	return cost, ""
}

func productIDs(n int) []any {
	ids := make([]any, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i)
	}
	return ids
}

// TestComplexityOfRealOperations prices the operations our clients and
// tests send. The expected costs are worked by hand from the rule of
// operationLimits: 1 per field, children × the list's size.
func TestComplexityOfRealOperations(t *testing.T) {
	t.Parallel()
	storesQuery := `query($first: Int!, $n: Int!) { stores(first: $first) { edges { node { id retailer { id } products(first: $n) { edges { node { id } } } } } } }`
	for _, tc := range []struct {
		reason string
		query  string
		vars   map[string]any
		cost   int
		limit  string // the limit it breaks, "" when it runs
	}{
		{
			// products = 1 + 3×(edges 1 + node 1 + id 1) = 10; store = 1 + id + retailer{id} 2 + 10 = 14;
			// stores = 1 + 1×(edges 1 + 14) = 16.
			reason: "the tests' store listing, sizes from variables",
			query:  storesQuery, vars: map[string]any{"first": 1, "n": 3}, cost: 16,
		},
		{
			reason: "the same sizes as literals cost the same",
			query:  `{ stores(first: 1) { edges { node { id retailer { id } products(first: 3) { edges { node { id } } } } } } }`, cost: 16,
		},
		{
			// stores defaults to 20 (schema), products to the catalog's 20:
			// products = 1 + 20×3 = 61; store = 1+1+2+61 = 65; stores = 1 + 20×66 = 1321.
			reason: "left-out sizes take the schema's or the catalog's default page size",
			query:  `{ stores { edges { node { id retailer { id } products { edges { node { id } } } } } } }`, cost: 1321,
		},
		{
			reason: "100 stores × 100 products is refused",
			query:  storesQuery, vars: map[string]any{"first": 100, "n": 100}, limit: limitComplexity,
		},
		{
			// 1 + 500 × 5 fields.
			reason: "availability of the documented maximum of 500 products, every field",
			query:  `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { storeId productId probability status updatedAt } }`,
			vars:   map[string]any{"s": "s-1", "p": productIDs(500)}, cost: 2501,
		},
		{
			reason: "two aliased availability lists of 500 are refused: aliases do not hide lists",
			query: `query($p: [ID!]!) {
			  a: availability(storeId: "s-1", productIds: $p) { storeId productId probability status updatedAt }
			  b: availability(storeId: "s-2", productIds: $p) { storeId productId probability status updatedAt } }`,
			vars: map[string]any{"p": productIDs(500)}, limit: limitComplexity,
		},
		{
			// 1 + 50 × (product{id name} 3 + score + reason).
			reason: "recommendations, size from first",
			query:  `{ recommendations(sessionId: "x", storeId: "s-1", first: 50) { product { id name } score reason } }`, cost: 251,
		},
		{
			// 1 + 10 × 5 with the schema's default first of 10.
			reason: "recommendations with the schema's default first",
			query:  `{ recommendations(sessionId: "x", storeId: "s-1") { product { id name } score reason } }`, cost: 51,
		},
		{
			reason: "an order's risk: reasons are small by contract and count once",
			query:  `{ orderRisk(orderId: "o-1") { orderId score decision reasons { feature description value contribution } modelVersion assessedAt fraud } }`,
			cost:   12,
		},
		{
			reason: "a subscription is measured like a query",
			query:  `subscription { recommendationsUpdated(sessionId: "x", storeId: "s-1", first: 50) { product { id } score } }`,
			cost:   151,
		},
		{
			// products = 1 + 20×(edges 1 + node 1 + id 1 + availability 3) = 121; store = 1 + 121.
			reason: "availability nested in a store's listing counts once per product of the page",
			query:  `{ store(id: "s-1") { products { edges { node { id availability { status probability } } } } } }`, cost: 122,
		},
		{
			// 1 + 100 × 3.
			reason: "products by ids counts per id asked",
			query:  `query($ids: [ID!]!) { products(ids: $ids) { id name brand } }`, vars: map[string]any{"ids": productIDs(100)}, cost: 301,
		},
		{
			// 1 + 10 × (product{id availability{status}} 4 + score + reason).
			reason: "replacements, size from first",
			query:  `{ replacements(storeId: "s-1", productId: "p-1", first: 10) { product { id availability { status } } score reason } }`, cost: 61,
		},
		{
			reason: "categories are a small list of scalars and count once",
			query:  `{ categories { id name productCount } }`, cost: 4,
		},
		{
			reason: "fragments are expanded where they are spread",
			query: `{ stores(first: 10) { edges { node { ...S } } } }
			  fragment S on Store { id products(first: 10) { edges { node { ...P } } } }
			  fragment P on Product { id name category }`,
			// P = 3; node = 4; edges = 5; products = 51; S = 52; node = 53; edges = 54; stores = 541.
			cost: 541,
		},
	} {
		cost, limit := measureOp(t, defaultLimits, tc.query, tc.vars)
		if cost != tc.cost || limit != tc.limit {
			t.Errorf("%s: cost %d, limit %q; want cost %d, limit %q", tc.reason, cost, limit, tc.cost, tc.limit)
		}
	}
}

func TestGraphiQLIntrospectionPassesTheLimits(t *testing.T) {
	t.Parallel()
	if _, limit := measureOp(t, defaultLimits, introspection.Query, nil); limit != "" {
		t.Fatalf("the introspection query breaks the %s limit", limit)
	}
}

func TestDepthLimit(t *testing.T) {
	t.Parallel()
	// Our schema has no cycles; only introspection's ofType nests deep.
	nested := func(depth int) string {
		// __schema types = 2 fields; each ofType adds one; name is the leaf.
		return "{ __schema { types { " + strings.Repeat("ofType { ", depth-3) + "name" + strings.Repeat(" }", depth-3) + " } } }"
	}
	if _, limit := measureOp(t, defaultLimits, nested(maxDepth), nil); limit != "" {
		t.Errorf("an operation %d deep breaks the %s limit", maxDepth, limit)
	}
	if _, limit := measureOp(t, defaultLimits, nested(maxDepth+1), nil); limit != limitDepth {
		t.Errorf("an operation %d deep: limit %q, want %q", maxDepth+1, limit, limitDepth)
	}
	// Fragments do not reset the depth.
	l := defaultLimits
	l.maxDepth = 4
	query := `{ stores { edges { ...E } } } fragment E on StoreEdge { node { ... on Store { products { edges { node { id } } } } } }`
	if _, limit := measureOp(t, l, query, nil); limit != limitDepth {
		t.Errorf("a deep operation hidden in fragments: limit %q, want %q", limit, limitDepth)
	}
}

func TestAliasLimit(t *testing.T) {
	t.Parallel()
	aliased := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " s%d: store(id: \"s-%d\") { id }", i, i)
		}
		return b.String() + " }"
	}
	if _, limit := measureOp(t, defaultLimits, aliased(maxAliases), nil); limit != "" {
		t.Errorf("%d aliases break the %s limit", maxAliases, limit)
	}
	if _, limit := measureOp(t, defaultLimits, aliased(maxAliases+1), nil); limit != limitAliases {
		t.Errorf("%d aliases: limit %q, want %q", maxAliases+1, limit, limitAliases)
	}
	// 2 aliased stores spreading a fragment of 10 aliases: 22 in all,
	// though the document spells only 12.
	var fragment strings.Builder
	for i := range 10 {
		fmt.Fprintf(&fragment, " n%d: name", i)
	}
	query := `{ a: store(id: "s-1") { ...F } b: store(id: "s-2") { ...F } } fragment F on Store {` + fragment.String() + ` }`
	if _, limit := measureOp(t, defaultLimits, query, nil); limit != limitAliases {
		t.Errorf("aliases in a fragment spread twice: limit %q, want %q", limit, limitAliases)
	}
}

// TestFragmentBombIsStopped: each fragment spreads the one before twice, so
// the document is short and its expansion 2^16 fields long. The walk must
// stop at the limit rather than visit them all.
func TestFragmentBombIsStopped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{ store(id: "s-1") { ...F16 } } fragment F0 on Store { id name }`)
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&b, " fragment F%d on Store { ...F%d ...F%d }", i, i-1, i-1)
	}
	if _, limit := measureOp(t, defaultLimits, b.String(), nil); limit != limitComplexity {
		t.Fatalf("limit %q, want %q", limit, limitComplexity)
	}
}

func TestAsIntReadsEveryEncoding(t *testing.T) {
	t.Parallel()
	for _, v := range []any{7, int64(7), float64(7), json.Number("7")} {
		if n, ok := asInt(v); !ok || n != 7 {
			t.Errorf("asInt(%T %v) = %d, %v", v, v, n, ok)
		}
	}
}

// BenchmarkMeasure prices the walk that every operation pays on top of
// gqlgen's own validation.
func BenchmarkMeasure(b *testing.B) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for _, bc := range []struct{ name, query string }{
		{"introspection", introspection.Query},
		{"stores-with-products", `{ stores(first: 20) { edges { node { id name retailer { id name } products(first: 20) { edges { node { id name category } } } } } } }`},
	} {
		doc, errs := gqlparser.LoadQuery(schema, bc.query)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := defaultLimits.measure(doc.Operations[0], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSlowBodyIsCutOff sends headers promising a body, then a trickle that
// stalls: the server answers a clear error instead of waiting for ever.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	srv := httptest.NewServer(limitRequests(nil, 1<<20, 200*time.Millisecond, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "too slowly") || reached.Load() {
		t.Errorf("stalled body: HTTP %d %s (handler reached: %v), want 400 saying it was sent too slowly", res.StatusCode, body, reached.Load())
	}
}

// TestClientThatNeverReadsIsCutOff: a client that sends a request and
// never reads the answer loses its connection once the write deadline
// passes, freeing the handler and its buffers.
func TestClientThatNeverReadsIsCutOff(t *testing.T) {
	t.Parallel()
	writeErr := make(chan error, 1)
	srv := httptest.NewServer(limitRequests(nil, 1<<20, time.Minute, 300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 16 << 10 { // 1 GiB: more than any socket buffers
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("1 GiB written to a client that reads nothing")
		}
	case <-time.After(time.Minute):
		t.Fatal("the handler is still writing to a client that reads nothing after a minute")
	}
}
