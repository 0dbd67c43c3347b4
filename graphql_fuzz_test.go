package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

// fuzzCodes are the extensions.code values a client may see: ours, and
// those gqlgen gives to errors about the document itself.
var fuzzCodes = []string{
	aisle.EUNAUTHENTICATED, aisle.EFORBIDDEN, aisle.ENOTFOUND, aisle.EINVALID,
	aisle.ECONFLICT, aisle.EUNAVAILABLE, aisle.ERATELIMITED,
	"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "LIMIT_EXCEEDED",
	"PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED",
}

// internalText is what only internals write: driver, client and runtime
// errors. A message may still say it when the request did.
var internalText = []string{
	"SQLSTATE", "pgx", "pq:", "sql:", "redis", "kafka", "kgo", "goroutine ", "panic",
	"runtime error", ".go:", "dial tcp", "connection refused", "deadline exceeded",
}

// FuzzGraphQL posts any document and variables, as any kind of caller, to a
// whole in-process server (its real resolvers, services, PostgreSQL, Redis
// and broker) started once per fuzzing process. Seeds are real operations of
// the schema and hostile documents (testdata/fuzz/FuzzGraphQL). Whatever
// arrives, the answer is never a 5xx, always GraphQL JSON, and every error
// carries one of fuzzCodes, is not INTERNAL (a fuzzed request reaching an
// unexpected failure is a bug) and says nothing of the internals. Variables
// that are not JSON are posted as the whole body.
func FuzzGraphQL(f *testing.F) {
	ts := startServer(f)
	keys := []string{
		"", // anonymous
		ts.createKey(aisle.RoleService, "", ""),
		ts.createKey(aisle.RoleOps, "", ""),
		ts.createKey(aisle.RoleCustomer, "", "u-fuzz"),
		ts.createKey(aisle.RoleShopper, "", "sh-fuzz"),
		ts.createKey(aisle.RoleRetailer, ts.stores(1, 1)[0].RetailerID, ""),
	}
	client := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, document string, variables []byte, caller uint8) {
		body := variables
		if json.Valid(variables) {
			var err error
			body, err = json.Marshal(map[string]any{"query": document, "variables": json.RawMessage(variables)})
			if err != nil {
				t.Fatal(err)
			}
		}
		req, err := http.NewRequest(http.MethodPost, ts.url+"/graphql", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key := keys[int(caller)%len(keys)]; key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST /graphql: %v", err)
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		if res.StatusCode >= 500 {
			t.Fatalf("HTTP %d: %s", res.StatusCode, raw)
		}
		var out struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("HTTP %d, the answer is not GraphQL JSON: %v: %.500s", res.StatusCode, err, raw)
		}
		if res.StatusCode != http.StatusOK && len(out.Errors) == 0 {
			t.Fatalf("HTTP %d without errors: %.500s", res.StatusCode, raw)
		}
		for _, e := range out.Errors {
			code, _ := e.Extensions["code"].(string)
			if !slices.Contains(fuzzCodes, code) {
				t.Fatalf("error code %q is not one of ours: %+v", code, e)
			}
			for _, s := range internalText {
				if strings.Contains(strings.ToLower(e.Message), strings.ToLower(s)) && !bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(s))) {
					t.Fatalf("error message shows internals (%q): %q", s, e.Message)
				}
			}
		}
	})
}
