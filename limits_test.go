package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// wantLimit checks that a response refuses the request for limit.
func wantLimit(t *testing.T, status int, resp gqlResponse, wantStatus int, limit string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: HTTP %d, want %d", limit, status, wantStatus)
	}
	if code := resp.code(t); code != "LIMIT_EXCEEDED" || resp.Errors[0].Extensions["limit"] != limit {
		t.Errorf("%s: got %+v, want code LIMIT_EXCEEDED and extensions.limit %q", limit, resp.Errors[0], limit)
	}
}

// TestGraphQLLimits sends one operation over each limit of the shape of a
// request, and checks that honest operations near them still run.
func TestGraphQLLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	// A page of 20 stores with 20 products each is the largest listing the
	// limits promise to serve (complexity 1,321).
	if stores := ts.stores(20, 20); len(stores) == 0 {
		t.Fatal("no stores")
	}

	status, resp := ts.post("", "{ "+strings.Repeat("__typename ", 6000)+"}", nil)
	wantLimit(t, status, resp, http.StatusUnprocessableEntity, "tokens")
	if msg := resp.Errors[0].Message; !strings.Contains(msg, "5000 tokens") {
		t.Errorf("tokens: message %q does not say the limit", msg)
	}

	deep := "{ __schema { types { " + strings.Repeat("ofType { ", 18) + "name" + strings.Repeat(" }", 18) + " } } }"
	status, resp = ts.post("", deep, nil)
	wantLimit(t, status, resp, http.StatusUnprocessableEntity, "depth")

	var aliased strings.Builder
	aliased.WriteString("{")
	for i := range 21 {
		fmt.Fprintf(&aliased, " s%d: store(id: \"s-%d\") { id }", i, i)
	}
	status, resp = ts.post("", aliased.String()+" }", nil)
	wantLimit(t, status, resp, http.StatusUnprocessableEntity, "aliases")

	status, resp = ts.post("", `query($n: Int!) { stores(first: $n) { edges { node { id products(first: $n) { edges { node { id } } } } } } }`,
		map[string]any{"n": 100})
	wantLimit(t, status, resp, http.StatusUnprocessableEntity, "complexity")

	res, resp := ts.send("", map[string]any{"query": "{ __typename }", "variables": map[string]any{"pad": strings.Repeat("x", 2<<20)}})
	wantLimit(t, res.StatusCode, resp, http.StatusRequestEntityTooLarge, "request_bytes")

	metrics := get(t, ts.url+"/metrics")
	for _, limit := range []string{"tokens", "depth", "aliases", "complexity", "request_bytes"} {
		if !strings.Contains(metrics, `aisle_graphql_limit_rejections_total{limit="`+limit+`"}`) {
			t.Errorf("/metrics does not count rejections by the %s limit", limit)
		}
	}
	// The error metric counts what callers are told, after the token
	// limit's rewrite of gqlgen's parse error.
	if !strings.Contains(metrics, `aisle_graphql_errors_total{code="LIMIT_EXCEEDED",operation="invalid"}`) {
		t.Error("/metrics does not count LIMIT_EXCEEDED among the GraphQL errors of invalid operations")
	}
}

// TestWebsocketMessageLimit: a websocket message over the read limit ends
// the connection (which close code it gets is websocket.go's business).
func TestWebsocketMessageLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c, err := ts.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The operation limits hold over websockets too: an error for the
	// operation, and the connection stays open.
	var aliased strings.Builder
	for i := range 21 {
		fmt.Fprintf(&aliased, " s%d: score", i)
	}
	c.subscribe("aliased", `subscription { recommendationsUpdated(sessionId: "x", storeId: "s-1") {`+aliased.String()+` } }`, nil)
	msg, err := c.next(10 * time.Second)
	if err != nil || msg.ID != "aliased" || msg.Type != "error" || !strings.Contains(string(msg.Payload), `"limit":"aliases"`) {
		t.Fatalf("21 aliases over a websocket: %+v %v, want an error for the operation", msg, err)
	}
	c.subscribe("small", `subscription { recommendationsUpdated(sessionId: "x", storeId: "s-1") { score } }`, nil)
	if _, err := c.next(10 * time.Second); err != nil {
		t.Fatalf("a small message was not answered: %v", err)
	}
	// The server closes as soon as the limit is passed, so the rest of the
	// client's frame meets a closed socket: a write that ends in a reset
	// has seen the connection end too.
	err = wsjson.Write(c.ctx, c.conn, map[string]any{"id": "big", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription($p: [ID!]) { availabilityChanged(storeId: "s-1", productIds: $p) { status } }`,
		"variables": map[string]any{"p": []string{strings.Repeat("p", 100<<10)}},
	}})
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("writing a message over the limit: %v, want it written or the connection reset", err)
		}
		t.Logf("the connection was reset while the message was written: %v", err)
		return
	}
	for {
		msg, err := c.next(10 * time.Second)
		if err != nil {
			if !strings.Contains(err.Error(), "connection closed") {
				t.Fatalf("want the connection closed after a message over the limit, got %v", err)
			}
			t.Logf("closed with status %d", websocket.CloseStatus(c.readErr))
			return
		}
		if msg.ID == "big" {
			t.Fatalf("a message over the limit was answered: %+v", msg)
		}
	}
}

// TestProductionSwitchesOffDeveloperAids compares the same requests in
// development and in production.
func TestProductionSwitchesOffDeveloperAids(t *testing.T) {
	t.Parallel()
	dev := startServer(t)
	prod := startServer(t, "--env", "production")

	if status, body := getStatus(t, prod.url+"/", nil); status != http.StatusNotFound || !strings.Contains(body, "off in production") {
		t.Errorf("production GET /: HTTP %d %q, want 404 saying GraphiQL is off", status, body)
	}
	if status, _ := getStatus(t, dev.url+"/", nil); status == http.StatusNotFound {
		t.Error("development GET /: 404, want GraphiQL (or a page saying what it lacks)")
	}

	const introspect = `{ __schema { queryType { name } } }`
	if resp := dev.query("", introspect, nil); len(resp.Errors) > 0 {
		t.Errorf("development introspection: %+v", resp.Errors)
	}
	for _, q := range []string{introspect, `{ ...F } fragment F on Query { t: __type(name: "Store") { name } }`} {
		if resp := prod.query("", q, nil); resp.code(t) != aisle.EFORBIDDEN || !strings.Contains(resp.Errors[0].Message, "introspection is off") {
			t.Errorf("production introspection %s: got data %s errors %+v, want it refused", q, resp.Data, resp.Errors)
		}
	}
	if resp := prod.query("", `{ __typename }`, nil); len(resp.Errors) > 0 {
		t.Errorf("production __typename, which clients need: %+v", resp.Errors)
	}

	for _, typo := range []string{
		`{ store(id: "s-1") { nam } }`,   // a field
		`{ store(idd: "s-1") { name } }`, // an argument
		`mutation { reportPick(input: {storeId: "s-1", productId: "p-1", orderId: "o-1", outcome: FOUDN}) { eventId } }`, // an enum value
		`{ store(id: "s-1") { ...f } } fragment f on Stor { name }`,                                                      // a type
	} {
		if resp := dev.query("", typo, nil); len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, "Did you mean") {
			t.Errorf("development %s: %+v, want a suggestion", typo, resp.Errors)
		}
		resp := prod.query("", typo, nil)
		if len(resp.Errors) == 0 {
			t.Errorf("production %s: no error, want a validation error without suggestions", typo)
		}
		for _, e := range resp.Errors {
			if strings.Contains(e.Message, "Did you mean") || e.Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
				t.Errorf("production %s: %+v, want validation errors without suggestions", typo, resp.Errors)
			}
		}
	}
}

func TestLimitFlagsAreValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "prod"}, "must be development or production"},
		{[]string{"--rate-limit", "-1"}, "must not be negative"},
		{[]string{"--persisted-operations", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"--persisted-operations", write("bad.json", `["{ __typename }"]`)}, "want a JSON object"},
		{[]string{"--persisted-operations", write("empty.json", `{}`)}, "empty"},
		{[]string{"--persisted-operations", write("stale.json", `{"`+sha256Hex("{ a }")+`": "{ b }"}`)}, "hashes to"},
	} {
		err := NewMain(io.Discard).ParseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestRateLimitIsSharedAcrossReplicas runs two API replicas on one Redis
// prefix: the calls of one client to either spend one allowance, over HTTP
// and over websockets.
func TestRateLimitIsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	limits := []string{"--rate-limit", "1", "--rate-burst", "3"}
	a := startServer(t, limits...)
	b := startServer(t, append(limits, "--redis-prefix", a.main.Config.RedisPrefix)...)

	start := time.Now()
	allowed := 0
	refusedBy := map[string]bool{}
	for i := range 8 {
		ts, name := a, "a"
		if i%2 == 1 {
			ts, name = b, "b"
		}
		res, resp := ts.send("", map[string]any{"query": "{ __typename }"})
		if res.StatusCode == http.StatusOK && len(resp.Errors) == 0 {
			allowed++
			continue
		}
		refusedBy[name] = true
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || resp.code(t) != aisle.ERATELIMITED {
			t.Fatalf("replica %s: HTTP %d Retry-After %q %+v, want 429 with Retry-After and %s",
				name, res.StatusCode, res.Header.Get("Retry-After"), resp.Errors, aisle.ERATELIMITED)
		}
	}
	// The burst, plus one per second that passed; two replicas with their
	// own allowances would have let all 8 through.
	if most := 3 + int(time.Since(start).Seconds()); allowed < 3 || allowed > most {
		t.Fatalf("allowed %d of 8 across two replicas, want 3..%d", allowed, most)
	}
	if elapsed := time.Since(start); elapsed < time.Second && (!refusedBy["a"] || !refusedBy["b"]) {
		t.Errorf("refused by %v, want both replicas to refuse once the shared allowance is spent", refusedBy)
	}
	if !strings.Contains(get(t, b.url+"/metrics"), `aisle_graphql_limit_rejections_total{limit="rate"}`) {
		t.Error("/metrics does not count rate-limit rejections")
	}

	// The upgrade is free; each subscribe counts.
	c, err := a.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("10 subscribes in a row were all let through")
		}
		c.subscribe(fmt.Sprint(i), `subscription { recommendationsUpdated(sessionId: "x", storeId: "s-1") { score } }`, nil)
		msg, err := c.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// Refused before execution: a graphql-transport-ws error message
		// for that operation, the connection stays.
		var errs []gqlError
		if msg.Type == "error" && msg.ID == fmt.Sprint(i) && json.Unmarshal(msg.Payload, &errs) == nil &&
			len(errs) == 1 && errs[0].Extensions["code"] == aisle.ERATELIMITED && errs[0].Extensions["retryAfter"] != nil {
			c.subscribe("after", `subscription { recommendationsUpdated(sessionId: "x", storeId: "s-1") { score } }`, nil)
			if _, err := c.next(10 * time.Second); err != nil {
				t.Fatalf("the connection did not stay usable after a rate-limited subscribe: %v", err)
			}
			return
		}
	}
}

// TestPersistedOperationsAllowlist runs a server that runs one document.
func TestPersistedOperationsAllowlist(t *testing.T) {
	t.Parallel()
	const listed = `query First($n: Int!) { stores(first: $n) { edges { node { id } } } }`
	hash := sha256Hex(listed)
	file := filepath.Join(t.TempDir(), "operations.json")
	raw, _ := json.Marshal(map[string]string{hash: listed})
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, "--persisted-operations", file)
	persisted := func(hash string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
	}
	vars := map[string]any{"n": 1}

	for _, tc := range []struct {
		reason string
		body   map[string]any
		code   string // "" when it runs
	}{
		{"the hash alone runs the listed document", map[string]any{"extensions": persisted(hash), "variables": vars}, ""},
		{"the listed document runs", map[string]any{"query": listed, "variables": vars}, ""},
		{"the listed document with its hash runs", map[string]any{"query": listed, "extensions": persisted(hash), "variables": vars}, ""},
		{"another document is refused", map[string]any{"query": `{ stores(first: 1) { edges { node { id } } } }`}, aisle.EFORBIDDEN},
		{"an unknown hash is not found", map[string]any{"extensions": persisted(sha256Hex("{ __typename }"))}, "PERSISTED_QUERY_NOT_FOUND"},
		{"a hash that is not the document's is refused", map[string]any{"query": listed, "extensions": persisted(sha256Hex("x")), "variables": vars}, aisle.EINVALID},
	} {
		_, resp := ts.send("", tc.body)
		if tc.code == "" {
			if len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), `"edges"`) {
				t.Errorf("%s: data %s errors %+v", tc.reason, resp.Data, resp.Errors)
			}
			continue
		}
		if code := resp.code(t); code != tc.code {
			t.Errorf("%s: code %s (%s), want %s", tc.reason, code, resp.Errors[0].Message, tc.code)
		}
	}
	if !strings.Contains(get(t, ts.url+"/metrics"), `aisle_graphql_limit_rejections_total{limit="persisted_operations"}`) {
		t.Error("/metrics does not count allowlist rejections")
	}
}

// TestInternalErrorsDoNotLeak drops the server's database under it: the
// client is told no more than that something failed, the log has the detail.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	u, err := url.Parse(ts.main.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	postgrestest.DropDatabase(t, ts.main.Config.DatabaseURL)

	resp := ts.query("", `{ store(id: "s-gone") { id name } }`, nil)
	if len(resp.Errors) != 1 {
		t.Fatalf("want one error, got %+v", resp.Errors)
	}
	e := resp.Errors[0]
	shown, _ := json.Marshal(e)
	// A clear "the catalog is unavailable" may come one day; the database's
	// name, the driver's words and addresses must never.
	for _, secret := range []string{name, "SQLSTATE", "pgx", "failed to connect", "127.0.0.1", "goroutine"} {
		if strings.Contains(string(shown), secret) {
			t.Errorf("the client sees %q: %s", secret, shown)
		}
	}
	if code := e.Extensions["code"]; code != aisle.EINTERNAL && code != aisle.EUNAVAILABLE {
		t.Errorf("code %v, want %s or %s", code, aisle.EINTERNAL, aisle.EUNAVAILABLE)
	}
	if !strings.Contains(ts.logs.String(), name) {
		t.Errorf("the log lacks the failure's detail (database %s):\n%s", name, ts.logs.String())
	}
}

// TestRefusedKeysAreRateLimitedByAddress: authentication comes before the
// per-key rate limit, so made-up keys count against their address: past
// its allowance it is refused without looking the keys up, over HTTP and
// websockets alike, while a key the server has already checked still works.
func TestRefusedKeysAreRateLimitedByAddress(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--rate-limit", "1", "--rate-burst", "3")
	good := ts.createKey(aisle.RoleService, "", "")
	if status, resp := ts.post(good, "{ __typename }", nil); status != http.StatusOK || len(resp.Errors) != 0 {
		t.Fatalf("a live key: HTTP %d %+v", status, resp.Errors)
	}

	madeUp := func() string { key, _ := auth.NewKey(); return key }
	refused := 0
	for {
		res, resp := ts.send(madeUp(), map[string]any{"query": "{ __typename }"})
		if res.StatusCode == http.StatusUnauthorized {
			if refused++; refused > 10 {
				t.Fatal("10 made-up keys from one address were each looked up; want RATE_LIMITED once its allowance (burst 3) is spent")
			}
			continue
		}
		if res.StatusCode != http.StatusTooManyRequests || resp.code(t) != aisle.ERATELIMITED || !strings.Contains(resp.Errors[0].Message, "retry after") {
			t.Fatalf("made-up key %d: HTTP %d %+v, want 429 %s saying when to retry", refused+1, res.StatusCode, resp.Errors, aisle.ERATELIMITED)
		}
		break
	}
	if refused < 3 {
		t.Errorf("rate limited after %d refused keys, want the burst of 3 first", refused)
	}

	_, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + madeUp()})
	if ce := closeErrorOf(err); ce.Code != 4429 || !strings.Contains(ce.Reason, "retry after") {
		t.Errorf("connection_init with a made-up key from a limited address: %v, want close 4429 saying when to retry", err)
	}
	if status, resp := ts.post(good, "{ __typename }", nil); status != http.StatusOK || len(resp.Errors) != 0 {
		t.Errorf("the live key, already checked, from the limited address: HTTP %d %+v, want it served", status, resp.Errors)
	}
	if !strings.Contains(get(t, ts.url+"/metrics"), `aisle_graphql_limit_rejections_total{limit="refused_keys"}`) {
		t.Error("/metrics does not count refusals of addresses sending bad keys")
	}
}

// TestMetricsAreOffThePublicPortInProduction: /metrics names every
// operation, limit and dependency; in production it is not on the API's
// port, and --metrics-addr serves it to operators on their own listener.
func TestMetricsAreOffThePublicPortInProduction(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--env", "production", "--metrics-addr", "127.0.0.1:0")
	res, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API port in production: HTTP %d, want 404", res.StatusCode)
	}
	if body := get(t, "http://"+ts.main.MetricsListener.Addr().String()+"/metrics"); !strings.Contains(body, "# TYPE aisle_") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("--metrics-addr /metrics lacks Aisle's metrics:\n%.500s", body)
	}
}
