package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aisle/aisle/resolvers"
)

// TestPanicsDoNotLeak serves with a Resolver whose catalog is missing, so
// the real store resolver panics on a nil pointer: the client gets a
// generic INTERNAL error, the log gets the panic and its stack.
func TestPanicsDoNotLeak(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := New(Config{Resolver: &resolvers.Resolver{}, Log: slog.New(slog.NewJSONHandler(&logs, nil))})

	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query": "{ store(id: \"s-1\") { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	var resp struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("HTTP %d %s: %v", rec.Code, rec.Body, err)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Message != "internal error" || resp.Errors[0].Extensions["code"] != "INTERNAL" {
		t.Errorf("got %s, want one INTERNAL error saying only \"internal error\"", rec.Body)
	}
	for _, secret := range []string{"panic", "nil pointer", "goroutine", ".go:"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("the client sees %q: %s", secret, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "nil pointer dereference") || !strings.Contains(logs.String(), "stack") {
		t.Errorf("the log lacks the panic and its stack:\n%s", logs.String())
	}
}

// TestMalformedArgumentsAreTheCallersInput: a Time argument that does not
// parse is the caller's mistake, told as such, not an internal error.
func TestMalformedArgumentsAreTheCallersInput(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := New(Config{Resolver: &resolvers.Resolver{}, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	for _, body := range []string{
		`{"query": "mutation { updateInventory(input: {storeId: \"s-1\", productId: \"p-1\", quantity: 1, time: \"yesterday\"}) { eventId } }"}`,
		`{"query": "mutation($t: Time) { updateInventory(input: {storeId: \"s-1\", productId: \"p-1\", quantity: 1, time: $t}) { eventId } }", "variables": {"t": "yesterday"}}`,
	} {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"code":"BAD_USER_INPUT"`) || !strings.Contains(rec.Body.String(), "RFC3339") {
			t.Errorf("%s: got %s, want BAD_USER_INPUT saying what a Time looks like", body, rec.Body)
		}
	}
}
