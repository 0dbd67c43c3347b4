package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// Every line logged with a request's context carries its id, and inside a
// GraphQL operation its name, once.
func TestLogHandlerAddsRequestIDAndOperation(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	var served string
	h := withRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := graphql.WithOperationContext(r.Context(), &graphql.OperationContext{
			OperationName: "",
			Operation:     &ast.OperationDefinition{Name: "Checkout", Operation: ast.Mutation},
		})
		log.InfoContext(ctx, "one")
		log.ErrorContext(ctx, "two", "operation", "Named") // the caller's own attribute wins
		log.Info("three")                                  // no context: nothing added
		served = RequestID(r.Context())
	}))
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set(RequestIDHeader, "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if served != "abc-123" || rec.Header().Get(RequestIDHeader) != "abc-123" {
		t.Fatalf("request id in context %q, in response %q, want abc-123", served, rec.Header().Get(RequestIDHeader))
	}

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	want := []map[string]any{
		{"msg": "one", "request_id": "abc-123", "operation": "Checkout", "component": "test"},
		{"msg": "two", "request_id": "abc-123", "operation": "Named"},
		{"msg": "three", "request_id": nil, "operation": nil},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), buf.Bytes())
	}
	for i, w := range want {
		var line map[string]any
		if err := json.Unmarshal(lines[i], &line); err != nil {
			t.Fatalf("log line %s: %v", lines[i], err)
		}
		for k, v := range w {
			if line[k] != v {
				t.Errorf("log line %s: %s = %v, want %v", lines[i], k, line[k], v)
			}
		}
		// Decoding keeps the last of duplicated keys; count them in the text.
		if n := bytes.Count(lines[i], []byte(`"operation":`)); n > 1 {
			t.Errorf("log line %s has %d operation keys", lines[i], n)
		}
	}
}
