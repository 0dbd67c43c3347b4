package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/resolvers"
)

// gqlgenGET and gqlgenPOST are the transports Aisle had before
// transport.go: gqlgen's own, GET refusing non-queries with 405, and
// request errors without "data" (requestErrorsWithoutData). They are what
// transport.go must answer byte for byte.
type gqlgenGET struct{ transport.GET }

func (t gqlgenGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if refuseGETOfNonQuery(w, r) {
		return
	}
	t.GET.Do(&requestErrorsWithoutData{ResponseWriter: w}, r, exec)
}

type gqlgenPOST struct{ transport.POST }

func (t gqlgenPOST) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.POST.Do(&requestErrorsWithoutData{ResponseWriter: w}, r, exec)
}

// requestErrorsWithoutData left "data" out of a 4xx answered as
// application/graphql-response+json by re-reading gqlgen's answer (one
// Write of one JSON object).
type requestErrorsWithoutData struct {
	http.ResponseWriter
	status int
}

func (w *requestErrorsWithoutData) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *requestErrorsWithoutData) Write(b []byte) (int, error) {
	if w.status < 400 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/graphql-response+json") {
		return w.ResponseWriter.Write(b)
	}
	var answer map[string]json.RawMessage
	if json.Unmarshal(b, &answer) != nil || string(answer["data"]) != "null" {
		return w.ResponseWriter.Write(b)
	}
	delete(answer, "data")
	trimmed, err := json.Marshal(answer)
	if err != nil {
		return w.ResponseWriter.Write(b)
	}
	if _, err := w.ResponseWriter.Write(trimmed); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *requestErrorsWithoutData) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestTransportsMatchGqlgens: generated requests (GET and POST, every
// Accept gqlgen tells apart, bodies that are not JSON or not a request,
// documents that do not parse or validate, variables of the wrong type,
// several operations, mutations over GET, subscriptions over HTTP,
// persisted operations by hash, resolver panics with partial data) get
// the same status, headers and body from two whole servers, one with
// transport.go and one with gqlgen's transports, in development, in
// production and with an allowlist of persisted operations.
func TestTransportsMatchGqlgens(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	persisted := &PersistedOperations{byHash: map[string]string{}}
	for _, doc := range []string{"{ __typename }", "mutation M { __typename }", "query Q($n: Int) { stores(first: $n) { edges { cursor } } }"} {
		persisted.byHash[sha256Hex(doc)] = doc
	}
	configs := map[string]Config{
		"development": {Resolver: &resolvers.Resolver{}, Log: log},
		"production":  {Resolver: &resolvers.Resolver{}, Log: log, Production: true},
		"persisted":   {Resolver: &resolvers.Resolver{}, Log: log, PersistedOperations: persisted},
	}
	rng := rand.New(rand.NewPCG(17, 2))
	statuses := map[string]bool{}
	// In a fixed order, so that the seeded generator gives every run the
	// same requests in each configuration (a map's order varies).
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		cfg := configs[name]
		ours := httptest.NewServer(newHandler(cfg, getQueries{}, postQueries{}))
		theirs := httptest.NewServer(newHandler(cfg, gqlgenGET{}, gqlgenPOST{}))
		t.Cleanup(ours.Close)
		t.Cleanup(theirs.Close)
		// 1,500 requests, and more (up to ten times as many) until every
		// answer below has occurred.
		for i := 0; i < 1500 || (!allStatuses(statuses) && i < 15000); i++ {
			req := generateRequest(rng, persisted)
			want, got := send(t, theirs.URL, req), send(t, ours.URL, req)
			if got != want {
				t.Fatalf("%s, case %d: %s %s %q (Content-Type %q, Accept %q)\ngqlgen's: %s\nours:     %s", name, i, req.method, req.query, req.body, req.contentType, req.accept, want, got)
			}
			statuses[want[:3]] = true
		}
	}
	// The comparison means something only if the requests reach every answer.
	for _, status := range transportStatuses {
		if !statuses[status] {
			t.Errorf("no request was answered %s: the generator misses a case", status)
		}
	}
}

// transportStatuses are the answers TestTransportsMatchGqlgens must reach.
var transportStatuses = []string{"200", "400", "405", "406", "415", "422"}

func allStatuses(seen map[string]bool) bool {
	for _, status := range transportStatuses {
		if !seen[status] {
			return false
		}
	}
	return true
}

type generatedRequest struct {
	method, query, body, contentType, accept string
}

var (
	transportDocuments = []string{
		"{ __typename }", "query Q { __typename }", "mutation M { __typename }", "{ nope }", "{", "{ nope<> }", "",
		"query A { __typename } query B { __typename }",
		"query Q($n: Int) { stores(first: $n) { edges { cursor } } }", // the resolver panics: partial data
		`{ __typename s: store(id: "s-1") { id } }`,
		"subscription { riskAlerts(minScore: 0) { score } }",
		"{ a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } } }",
	}
	transportVariables  = []string{"", `{"n": 2}`, `{"n": 1.5}`, `{"n": "x"}`, `{"n": `, `null`, `[]`, `{"n": "<&>\u2028"}`}
	transportExtensions = []string{"", `{"persistedQuery": {"version": 1, "sha256Hash": "%s"}}`, `{"persistedQuery": 1}`, `{"x": `, `{}`}
	transportAccepts    = []string{"", "*/*", "application/*", "application/json", "application/graphql-response+json",
		"application/graphql-response+json, application/json;q=0.9", "text/html", "text/html, application/graphql-response+json", "garbage;;", "application/json; charset=utf-8"}
	transportBodies = []string{"", "{", "[]", `{"query": 1}`, `{"query": "{ __typename }"} trailing`, `{"query": "<script>&"`, "\u2028", `"x"`}
)

func generateRequest(rng *rand.Rand, persisted *PersistedOperations) generatedRequest {
	req := generatedRequest{method: http.MethodPost, contentType: "application/json", accept: pick(rng, transportAccepts...)}
	doc := pick(rng, transportDocuments...)
	variables := pick(rng, transportVariables...)
	extensions := pick(rng, transportExtensions...)
	if strings.Contains(extensions, "%s") {
		hash := sha256Hex(doc)
		if rng.IntN(3) == 0 {
			hash = sha256Hex("unknown")
		}
		extensions = fmt.Sprintf(extensions, hash)
		if _, listed := persisted.byHash[hash]; listed && rng.IntN(2) == 0 {
			doc = "" // by hash alone
		}
	}
	operationName := pick(rng, "", "", "Q", "A", "nope")
	switch rng.IntN(10) {
	case 0, 1, 2: // GET
		req.method, req.contentType = http.MethodGet, ""
		q := url.Values{}
		// In a fixed order: the generator's draws must not follow a map's.
		for _, kv := range [][2]string{{"query", doc}, {"variables", variables}, {"extensions", extensions}, {"operationName", operationName}} {
			if kv[1] != "" || rng.IntN(4) == 0 {
				q.Set(kv[0], kv[1])
			}
		}
		req.query = q.Encode()
		if rng.IntN(20) == 0 {
			req.query += "&%zz" // does not parse
		}
	case 3: // a body that is not a request
		req.body = pick(rng, transportBodies...)
	case 4:
		req.contentType = pick(rng, "application/json; charset=utf-8", "text/plain", "")
		fallthrough
	default:
		fields := []string{fmt.Sprintf(`"query": %q`, doc)}
		if variables != "" {
			fields = append(fields, `"variables": `+variables)
		}
		if extensions != "" {
			fields = append(fields, `"extensions": `+extensions)
		}
		if operationName != "" {
			fields = append(fields, fmt.Sprintf(`"operationName": %q`, operationName))
		}
		rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		req.body = "{" + strings.Join(fields, ", ") + "}"
	}
	return req
}

// send makes req to the server at base and returns its status, headers
// (but Date) and body.
func send(t *testing.T, base string, req generatedRequest) string {
	t.Helper()
	target := base + "/graphql"
	if req.query != "" {
		target += "?" + req.query
	}
	r, err := http.NewRequest(req.method, target, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(RequestIDHeader, "r-1")
	for k, v := range map[string]string{"Content-Type": req.contentType, "Accept": req.accept} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	var header strings.Builder
	if err := resp.Header.Write(&header); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %v %q\n%s", resp.StatusCode, resp.TransferEncoding, header.String(), body)
}

// TestResponsesAreWrittenAsEncodingJSONWouldWriteThem: writeResponse gives
// encoding/json's bytes for generated answers (errors with paths,
// locations and extensions, data as gqlgen writes it with <, >, &, U+2028,
// invalid UTF-8, spaces in strings, whitespace between tokens; labels,
// paths, hasNext, extensions), with "data" and without (as the answers
// without data were written before transport.go).
func TestResponsesAreWrittenAsEncodingJSONWouldWriteThem(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 3))
	for i := range 5000 {
		resp := generateResponse(rng)
		for _, withData := range []bool{true, false} {
			want := encodingJSONAnswer(t, resp, withData)
			var got bytes.Buffer
			writeResponse(&got, resp, withData)
			if got.String() != want {
				t.Fatalf("case %d (with data %v): %#v\nencoding/json: %s\nwriteResponse: %s", i, withData, resp, want, got.String())
			}
		}
	}
	// Data that is not JSON fails as in gqlgen's transports.
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "unable to marshal") {
			t.Errorf("empty data: panic %v, want gqlgen's", p)
		}
	}()
	writeResponse(io.Discard, &graphql.Response{Data: json.RawMessage{}}, true)
}

// encodingJSONAnswer is what gqlgen's transports wrote, then without
// "data" as requestErrorsWithoutData wrote it.
func encodingJSONAnswer(t *testing.T, resp *graphql.Response, withData bool) string {
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if withData {
		return string(b)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	delete(fields, "data")
	b, err = json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var responseStrings = []string{"p-1", "", "two words", `quo"te`, `back\slash`, "tab\tnew\nline", "\x00\x1f", "ünïcødé ✓", "\u2028\u2029", "<script>&amp;", "emoji 🛒", "bad \xff\xfe utf-8", "\xe2\x80", "\xe2\x80\xa8x"}

func generateResponse(rng *rand.Rand) *graphql.Response {
	resp := &graphql.Response{}
	for range rng.IntN(3) {
		e := &gqlerror.Error{Message: pick(rng, responseStrings...)}
		if rng.IntN(2) == 0 {
			e.Path = ast.Path{ast.PathName(pick(rng, responseStrings...)), ast.PathIndex(rng.IntN(3))}
			e.Locations = []gqlerror.Location{{Line: 1, Column: rng.IntN(40)}}
		}
		if rng.IntN(2) == 0 {
			e.Extensions = map[string]any{"code": pick(rng, responseStrings...), "n": rng.IntN(5), "retry": rng.Float64()}
		}
		resp.Errors = append(resp.Errors, e)
	}
	if rng.IntN(8) > 0 {
		var data bytes.Buffer
		writeData(rng, &data, 0)
		resp.Data = data.Bytes()
	}
	if rng.IntN(6) == 0 {
		resp.Label = pick(rng, responseStrings...)
	}
	if rng.IntN(6) == 0 {
		resp.Path = ast.Path{ast.PathName("a<b"), ast.PathIndex(2)}
	}
	if rng.IntN(6) == 0 {
		hasNext := rng.IntN(2) == 0
		resp.HasNext = &hasNext
	}
	if rng.IntN(4) == 0 {
		resp.Extensions = map[string]any{pick(rng, responseStrings...): pick(rng, responseStrings...), "z": []int{1, 2}}
	}
	return resp
}

// writeData writes a JSON value as gqlgen's marshalers do (strings by
// graphql.MarshalString, no HTML escaping), now and then with whitespace
// between tokens.
func writeData(rng *rand.Rand, w *bytes.Buffer, depth int) {
	space := func() {
		if rng.IntN(40) == 0 {
			w.WriteString(pick(rng, " ", "\n", "\t ", "\r\n"))
		}
	}
	space()
	defer space()
	kind := rng.IntN(7)
	if depth > 3 {
		kind %= 4
	}
	switch kind {
	case 0:
		graphql.MarshalString(pick(rng, responseStrings...)).MarshalGQL(w)
	case 1:
		w.WriteString(pick(rng, "0", "-1.5e-7", "12345678901234567890", "3.14"))
	case 2:
		w.WriteString(pick(rng, "true", "false"))
	case 3:
		w.WriteString("null")
	case 4, 5:
		w.WriteByte('{')
		for i := range rng.IntN(4) {
			if i > 0 {
				w.WriteByte(',')
			}
			space()
			graphql.MarshalString(pick(rng, responseStrings...)).MarshalGQL(w)
			space()
			w.WriteByte(':')
			writeData(rng, w, depth+1)
		}
		w.WriteByte('}')
	default:
		w.WriteByte('[')
		for i := range rng.IntN(4) {
			if i > 0 {
				w.WriteByte(',')
			}
			writeData(rng, w, depth+1)
		}
		w.WriteByte(']')
	}
}

// BenchmarkWriteResponse writes availability(100 products)'s answer, as
// the plan writes it, with encoding/json (gqlgen's transports) and with
// writeResponse.
//
//	go test -run '^$' -bench WriteResponse -benchmem ./httpapi/
func BenchmarkWriteResponse(b *testing.B) {
	var data bytes.Buffer
	data.WriteString(`{"availability":[`)
	for i := range 100 {
		if i > 0 {
			data.WriteByte(',')
		}
		fmt.Fprintf(&data, `{"productId":"p-%05d","probability":0.8731,"status":"IN_STOCK","updatedAt":"2026-12-02T17:00:00.123Z","carried":true}`, i)
	}
	data.WriteString(`]}`)
	resp := &graphql.Response{Data: data.Bytes()}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := json.Marshal(resp)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Discard.Write(out)
		}
	})
	b.Run("writeResponse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeResponse(io.Discard, resp, true)
		}
	})
}

// sortedErrors is an answer with its errors in sorted order, every other
// byte as it was: gqlgen resolves root fields concurrently, so their
// errors come in either order.
func sortedErrors(t *testing.T, answer string) string {
	t.Helper()
	head, body, _ := strings.Cut(answer, "\n")
	var fields struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatalf("answer %s: %v", answer, err)
	}
	errs := make([]string, len(fields.Errors))
	for i, e := range fields.Errors {
		errs[i] = string(e)
	}
	written := strings.Join(errs, ",")
	slices.Sort(errs)
	return head + "\n" + strings.Replace(body, written, strings.Join(errs, ","), 1)
}
