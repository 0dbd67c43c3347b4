package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"

	"github.com/aisle/aisle/resolvers"
)

// repeat joins n copies of s, each %d in them replaced by the copy's index.
func repeat(n int, s string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = strings.ReplaceAll(s, "%d", strconv.Itoa(i))
	}
	return strings.Join(parts, " ")
}

// hostileDocuments are documents under the token and body limits that
// gqlparser's validation would take quadratic time over.
var hostileDocuments = []struct{ name, query string }{
	{"typename-4990", "{ " + repeat(4990, "__typename") + " }"},
	{"unknown-fields-4990", "{ " + repeat(4990, "f%d") + " }"},
	{"fragments-spread-into-one-set", "{ ...A ...B ...C } " +
		"fragment A on Query { " + repeat(1600, "__typename") + " } " +
		"fragment B on Query { " + repeat(1600, "__typename") + " } " +
		"fragment C on Query { " + repeat(1600, "__typename") + " }"},
	{"same-field-65-times-with-65-fields", "{ " + repeat(65, "store(id: \"s\") { "+repeat(65, "id")+" }") + " }"},
	{"aliases-99-with-49-fields", "{ " + repeat(99, "s%d: store(id: \"s\") { "+repeat(49, "id")+" }") + " }"},
	{"fragment-bomb", fragmentBomb(16)},
}

// costlyDocuments are the worst documents found that pass the checks
// before validation: validation or execution refuses them, within the CPU
// budget.
var costlyDocuments = []struct{ name, query string }{
	{"unknown-fields-20-sets-of-90", "{ " + repeat(20, `s%d: store(id: "s") { `+repeat(90, "u%d")+" }") + " }"},
	{"same-path-pairs-just-under", "{ " + repeat(18, `store(id: "s") { `+repeat(17, "id")+" }") + " }"},
}

// fragmentBomb spreads fragment F0 2^n times through n fragments.
func fragmentBomb(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{ store(id: "s-1") { ...F%d } } fragment F0 on Store { id name }`, n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " fragment F%d on Store { ...F%d ...F%d }", i, i-1, i-1)
	}
	return b.String()
}

type errorsResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func postGraphQL(t testing.TB, h http.Handler, body string) (*httptest.ResponseRecorder, errorsResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp errorsResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("HTTP %d %.300s: %v", rec.Code, rec.Body, err)
	}
	return rec, resp
}

func queryBody(t testing.TB, query string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testHandler() http.Handler {
	return New(Config{Resolver: &resolvers.Resolver{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestWideDocumentsAreRefusedBeforeValidation: a selection set whose
// fields (fragments expanded) pass 100 is refused with
// LIMIT_EXCEEDED before gqlparser's quadratic validation sees it, and an
// honest wide document (GraphiQL's introspection query) is not.
func TestWideDocumentsAreRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	h := testHandler()
	for _, doc := range hostileDocuments {
		if len(doc.query) > maxRequestBytes {
			t.Fatalf("%s: %d bytes, over the body limit", doc.name, len(doc.query))
		}
		rec, resp := postGraphQL(t, h, queryBody(t, doc.query))
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != codeLimitExceeded {
			t.Errorf("%s: HTTP %d %.300s, want one %s error", doc.name, rec.Code, rec.Body, codeLimitExceeded)
		}
	}
	_, resp := postGraphQL(t, h, queryBody(t, introspection.Query))
	if len(resp.Errors) != 0 {
		t.Errorf("GraphiQL's introspection query: %v", resp.Errors)
	}
	narrow := "{ " + repeat(maxSelectionFields, "__typename") + " }"
	if _, resp := postGraphQL(t, h, queryBody(t, narrow)); len(resp.Errors) != 0 {
		t.Errorf("%d fields in one set: %v", maxSelectionFields, resp.Errors)
	}
}

// TestErrorAnswersAreBounded: a document of many unknown fields, and a body
// that is not a GraphQL request, get answers far smaller than themselves.
func TestErrorAnswersAreBounded(t *testing.T) {
	t.Parallel()
	h := testHandler()
	// 90 unknown fields in each of 20 sets: 1,800 errors.
	query := "{ " + repeat(20, `s%d: store(id: "s") { `+repeat(90, "u%d")+" }") + " }"
	rec, resp := postGraphQL(t, h, queryBody(t, query))
	if len(resp.Errors) != maxErrors+1 || resp.Errors[maxErrors].Extensions["limit"] != limitErrors {
		t.Errorf("%d errors, the last %v; want %d and one saying how many more", len(resp.Errors), resp.Errors[len(resp.Errors)-1], maxErrors+1)
	}
	if rec.Body.Len() > 10<<10 {
		t.Errorf("a %d-byte document got %d bytes of errors", len(query), rec.Body.Len())
	}

	junk := `{"query": "{ __typename }", "variables": ` + strings.Repeat("[", 100_000) + `}`
	rec, resp = postGraphQL(t, h, junk)
	if rec.Code != http.StatusBadRequest || len(resp.Errors) != 1 || rec.Body.Len() > 1<<10 {
		t.Errorf("a malformed %d-byte body: HTTP %d, %d bytes: %.300s", len(junk), rec.Code, rec.Body.Len(), rec.Body)
	}
}

// BenchmarkHostileDocuments prices refusing each hostile document through
// the whole handler, and answering the costliest documents that pass the
// checks before validation (each iteration misses the query cache, as an
// attacker's fresh documents do).
func BenchmarkHostileDocuments(b *testing.B) {
	h := testHandler()
	for _, doc := range append(hostileDocuments, costlyDocuments...) {
		b.Run(doc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				// A comment makes every document new to the cache.
				postGraphQL(b, h, queryBody(b, fmt.Sprintf("#%d\n%s", i, doc.query)))
			}
		})
	}
}

// BenchmarkQueryBesideHostileDocuments is the load run of the hostile
// documents: a normal query's latency through the handler, alone and
// while 16 fresh hostile documents arrive at once every 100 ms (as the
// attack sent them: 16 at once). p50-ns and p99-ns are the normal query's.
func BenchmarkQueryBesideHostileDocuments(b *testing.B) {
	h := testHandler()
	normal := queryBody(b, "{ __typename }")
	for _, hostile := range []int{0, 16} {
		b.Run(fmt.Sprintf("hostile=%d", hostile), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					var burst sync.WaitGroup
					for i := range hostile {
						burst.Go(func() {
							doc := hostileDocuments[(n+i)%len(hostileDocuments)].query
							postGraphQL(b, h, queryBody(b, fmt.Sprintf("#%d-%d\n%s", i, n, doc)))
						})
					}
					burst.Wait()
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			})
			var latencies []time.Duration
			for b.Loop() {
				start := time.Now()
				postGraphQL(b, h, normal)
				latencies = append(latencies, time.Since(start))
			}
			cancel()
			wg.Wait()
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2]), "p50-ns")
			b.ReportMetric(float64(latencies[len(latencies)*99/100]), "p99-ns")
		})
	}
}
