package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/resolvers"
)

// TestUnclearAnswersAreClear: each answer a caller could not act on now
// has a code and says what to do.
func TestUnclearAnswersAreClear(t *testing.T) {
	t.Parallel()
	h := testHandler()
	type answer struct {
		reason, body string
		status       int
		code, says   string
	}
	for _, tc := range []answer{
		{
			reason: "a NUL in an ID reached PostgreSQL, which failed it as INTERNAL",
			body:   `{"query": "query($s: ID!) { store(id: $s) { id } }", "variables": {"s": "s\u0000x"}}`,
			status: http.StatusOK, code: aisle.EINVALID, says: "control character",
		},
		{
			reason: "an ID with a character no identifier may have is checked by the ID scalar, before any resolver",
			body:   `{"query": "query($s: ID!) { store(id: $s) { id } }", "variables": {"s": "s:x"}}`,
			status: http.StatusOK, code: aisle.EINVALID, says: "forbidden character",
		},
		{
			reason: "two aliases of one subscription field pass gqlparser's check, and gqlgen failed them as INTERNAL",
			body:   `{"query": "subscription { a: riskAlerts(minScore: 0) { score } b: riskAlerts(minScore: 0) { score } }"}`,
			status: http.StatusOK, code: aisle.EINVALID, says: "exactly one root field",
		},
		{
			reason: "gqlparser said \"cannot use value 0 as Int\" of a variable of 1.5",
			body:   `{"query": "query($n: Int) { stores(first: $n) { edges { cursor } } }", "variables": {"n": 1.5}}`,
			status: http.StatusUnprocessableEntity, code: "GRAPHQL_VALIDATION_FAILED", says: "$n must be a whole number",
		},
		{
			reason: "gqlgen said \"operation  not found\" of a document of two operations and no operationName",
			body:   `{"query": "query A { __typename } query B { __typename }"}`,
			status: http.StatusUnprocessableEntity, code: aisle.EINVALID, says: "operationName",
		},
	} {
		rec, resp := postGraphQL(t, h, tc.body)
		if rec.Code != tc.status || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tc.code || !strings.Contains(resp.Errors[0].Message, tc.says) {
			t.Errorf("%s: HTTP %d %s; want %d, one %s error saying %q", tc.reason, rec.Code, rec.Body, tc.status, tc.code, tc.says)
		}
	}

	get := httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape("mutation { __typename }"), nil)
	plain := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query": "{ __typename }"}`))
	plain.Header.Set("Content-Type", "text/plain")
	for _, tc := range []struct {
		reason string
		req    *http.Request
		status int
	}{
		{"a mutation over GET (gqlgen: 406 without a code)", get, http.StatusMethodNotAllowed},
		{"a POST that is not JSON (gqlgen: 400 \"transport not supported\" without a code)", plain, http.StatusUnsupportedMediaType},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), `"code":"BAD_USER_INPUT"`) {
			t.Errorf("%s: HTTP %d %s, want %d with code BAD_USER_INPUT", tc.reason, rec.Code, rec.Body, tc.status)
		}
	}
}

// TestProductionValidationHidesTheSchemaFromAnonymousCallers: validation
// messages name an input type's fields; in production only callers with a
// key see them.
func TestProductionValidationHidesTheSchemaFromAnonymousCallers(t *testing.T) {
	t.Parallel()
	liveKey, liveHash := auth.NewKey()
	h := New(Config{Resolver: &resolvers.Resolver{}, Production: true, Keys: guardedCache(t, &keyStore{live: string(liveHash)}),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	body := queryBody(t, `mutation { assessOrder(input: {}) { score } }`)
	rec, resp := postGraphQL(t, h, body)
	if len(resp.Errors) == 0 || strings.Contains(rec.Body.String(), "orderId") || resp.Errors[0].Message != messageHidden {
		t.Errorf("anonymous, production: %s; want every message %q", rec.Body, messageHidden)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+liveKey)
	keyed := httptest.NewRecorder()
	h.ServeHTTP(keyed, req)
	if !strings.Contains(keyed.Body.String(), "AssessOrderInput.orderId") {
		t.Errorf("with a key, production: %s; want the missing fields named", keyed.Body)
	}
}

// TestRequestErrorsHaveNoData: a document that never ran is answered
// without "data" to clients that accept application/graphql-response+json
// (gqlgen writes "data": null), over POST and GET; an operation that ran
// keeps its data.
func TestRequestErrorsHaveNoData(t *testing.T) {
	t.Parallel()
	h := testHandler()
	post := func(query string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query": `+strconv.Quote(query)+`}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, tc := range []struct {
		reason   string
		req      *http.Request
		wantData bool
	}{
		{"a document that does not parse, over POST", post("{"), false},
		{"a document that does not validate, over POST", post("{ nope }"), false},
		{"a document that does not parse, over GET", httptest.NewRequest(http.MethodGet, "/graphql?query=%7B", nil), false},
		{"an operation that ran", post("{ __typename }"), true},
	} {
		tc.req.Header.Set("Accept", "application/graphql-response+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req)
		var answer map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s: %v in %s", tc.reason, err, rec.Body)
		}
		if _, hasData := answer["data"]; hasData != tc.wantData || (!tc.wantData && answer["errors"] == nil) {
			t.Errorf("%s: HTTP %d %s; want data present %v", tc.reason, rec.Code, rec.Body, tc.wantData)
		}
	}
}
