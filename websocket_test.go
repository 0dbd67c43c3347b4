package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// openWS upgrades to /graphql with a subprotocol and request headers, and
// sends nothing: the test speaks the protocol itself.
func (ts *testServer) openWS(subprotocol string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, strings.Replace(ts.url, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{subprotocol},
		HTTPHeader:   header,
	})
	if err == nil {
		ts.t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, res, err
}

// serverClose reads conn until it ends and returns the close frame the
// server sent (code -1 when it cut the connection without one), failing
// when the connection is still open after wait.
func serverClose(t *testing.T, conn *websocket.Conn, wait time.Duration) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		_, _, err := conn.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			t.Fatalf("the connection is still open after %s", wait)
		}
		return closeErrorOf(err)
	}
}

// closeErrorOf returns the close frame behind a read error, or code -1.
func closeErrorOf(err error) websocket.CloseError {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return websocket.CloseError{Code: -1, Reason: fmt.Sprint(err)}
	}
	return ce
}

// closedWith waits for a wsClient's connection to end and returns why.
func (c *wsClient) closedWith(wait time.Duration) (websocket.CloseError, error) {
	deadline := time.Now().Add(wait)
	for {
		if _, err := c.next(time.Until(deadline)); err != nil {
			if c.readErr == nil {
				return websocket.CloseError{}, err
			}
			return closeErrorOf(c.readErr), nil
		}
	}
}

const watchStore = `subscription($s: ID!) { availabilityChanged(storeId: $s) { productId } }`

func TestWebsocketCloseCodes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--ws-init-timeout", "1s")
	store, _ := ts.store(1)
	key := ts.createKey(aisle.RoleService, "", "")

	init := map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}}
	longID := "x" + strings.Repeat("é", 70)
	subscribe := func(id string) map[string]any {
		return map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": watchStore, "variables": map[string]any{"s": store.ID}}}
	}
	for _, tc := range []struct {
		name     string
		protocol string
		send     []any // a string is sent as is, anything else as JSON
		code     websocket.StatusCode
		reason   string
	}{
		{"bad JSON", "graphql-transport-ws", []any{`{"type":`}, 4400, "Invalid message"},
		{"bad JSON after connection_ack", "graphql-transport-ws", []any{init, `{"type":`}, 4400, "Invalid message"},
		{"unknown type", "graphql-transport-ws", []any{init, map[string]any{"type": "hello"}}, 4400, `unexpected type "hello"`},
		{"a server message from the client", "graphql-transport-ws", []any{init, map[string]any{"id": "1", "type": "next"}}, 4400, `unexpected type "next"`},
		{"subscribe without id", "graphql-transport-ws", []any{init, map[string]any{"type": "subscribe", "payload": map[string]any{"query": "{ __typename }"}}}, 4400, "needs an id"},
		{"subscribe payload not an object", "graphql-transport-ws", []any{init, map[string]any{"id": "1", "type": "subscribe", "payload": "{ __typename }"}}, 4400, "must be an object"},
		{"query not a string", "graphql-transport-ws", []any{init, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": 1}}}, 4400, "query must be a string"},
		{"init payload not an object", "graphql-transport-ws", []any{map[string]any{"type": "connection_init", "payload": "x"}}, 4400, "must be an object"},
		{"legacy init payload not an object", "graphql-ws", []any{map[string]any{"type": "connection_init", "payload": "x"}}, 4400, "must be an object"},
		{"subscribe before connection_ack", "graphql-transport-ws", []any{subscribe("1")}, 4401, "Unauthorized"},
		{"unknown key", "graphql-transport-ws", []any{map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer aisle_not-a-key"}}}, 4403, "malformed API key"},
		{"no connection_init", "graphql-transport-ws", nil, 4408, "Connection initialisation timeout"},
		{"legacy no connection_init", "graphql-ws", nil, 4408, "Connection initialisation timeout"},
		{"subscriber id in use", "graphql-transport-ws", []any{init, subscribe("1"), subscribe("1")}, 4409, "Subscriber for 1 already exists"},
		// The reason is cut to 123 bytes, at a rune boundary.
		{"long non-ASCII subscriber id in use", "graphql-transport-ws", []any{init, subscribe(longID), subscribe(longID)}, 4409, "Subscriber for xé"},
		{"second connection_init", "graphql-transport-ws", []any{init, init}, 4429, "Too many initialisation requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, _, err := ts.openWS(tc.protocol, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, msg := range tc.send {
				if s, ok := msg.(string); ok {
					err = conn.Write(ctx, websocket.MessageText, []byte(s))
				} else {
					err = wsjson.Write(ctx, conn, msg)
				}
				if err != nil {
					t.Fatalf("send %v: %v", msg, err)
				}
			}
			got := serverClose(t, conn, 5*time.Second)
			if got.Code != tc.code || !strings.Contains(got.Reason, tc.reason) || !utf8.ValidString(got.Reason) {
				t.Errorf("closed with %d %q, want %d mentioning %q in UTF-8", got.Code, got.Reason, tc.code, tc.reason)
			}
		})
	}

	// The protocol allows a ping before connection_init; gqlgen alone
	// closed the connection for it.
	t.Run("ping before connection_init", func(t *testing.T) {
		t.Parallel()
		conn, _, err := ts.openWS("graphql-transport-ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var pong wsMessage
		if err := wsjson.Write(ctx, conn, map[string]any{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
		if err := wsjson.Read(ctx, conn, &pong); err != nil || pong.Type != "pong" {
			t.Fatalf("got %+v, %v; want a pong", pong, err)
		}
	})
}

// A peer that stops reading never answers the server's pings: the server
// drops it within 3 ping intervals and frees its connection slot and
// subscriptions. A peer that answers stays. Not parallel: it counts the
// process's live subscriptions.
func TestWebsocketDropsDeadPeers(t *testing.T) {
	const interval, slack = 500 * time.Millisecond, time.Second
	ts := startServer(t, "--ws-ping-interval", interval.String(), "--max-connections-per-key", "1")
	store, _ := ts.store(1)
	deadKey := ts.createKey(aisle.RoleService, "", "")
	liveKey := ts.createKey(aisle.RoleOps, "", "")
	base := liveSubscriptions(t, ts)

	live, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + liveKey})
	if err != nil {
		t.Fatal(err)
	}
	live.subscribe("1", watchStore, map[string]any{"s": store.ID})

	dead, _, err := ts.openWS("graphql-transport-ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack wsMessage
	if err := wsjson.Write(ctx, dead, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + deadKey}}); err != nil {
		t.Fatal(err)
	}
	if err := wsjson.Read(ctx, dead, &ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("no ack: %+v %v", ack, err)
	}
	if err := wsjson.Write(ctx, dead, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": watchStore, "variables": map[string]any{"s": store.ID}}}); err != nil {
		t.Fatal(err)
	}
	silent := time.Now()
	eventually(t, 5*time.Second, func() string {
		if n := liveSubscriptions(t, ts); n != base+2 {
			return fmt.Sprintf("%v live subscriptions, want %v", n, base+2)
		}
		return ""
	})

	// Not reading for 4 intervals, then reading its pings without
	// answering: the server must cut the connection 3 intervals after
	// the silence began (slack for a loaded test machine).
	time.Sleep(4 * interval)
	pings := 0
	for {
		var msg wsMessage
		readCtx, cancel := context.WithDeadline(context.Background(), silent.Add(3*interval+slack))
		err := wsjson.Read(readCtx, dead, &msg)
		timedOut := readCtx.Err() != nil
		cancel()
		if err == nil {
			if msg.Type == "ping" {
				pings++
			}
			continue
		}
		if timedOut {
			t.Fatalf("a peer silent for %s is still connected (%d pings unanswered)", time.Since(silent).Round(time.Millisecond), pings)
		}
		break
	}
	if pings == 0 {
		t.Error("the server never pinged the silent peer")
	}

	eventually(t, 5*time.Second, func() string {
		if n := liveSubscriptions(t, ts); n != base+1 {
			return fmt.Sprintf("the dropped peer's subscription lives on: %v live subscriptions, want %v", n, base+1)
		}
		return ""
	})
	// The slot of the one connection the key may have is free again.
	eventually(t, 5*time.Second, func() string {
		c, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + deadKey})
		if err != nil {
			return "the dropped peer's connection slot is still taken: " + err.Error()
		}
		c.conn.CloseNow()
		return ""
	})
	select {
	case msg, ok := <-live.messages:
		if !ok {
			t.Fatalf("a peer answering pings was dropped: %v", live.readErr)
		}
		t.Fatalf("unexpected message %+v", msg)
	default:
	}
}

// liveSubscriptions sums aisle_live_subscriptions over the hubs.
func liveSubscriptions(t *testing.T, ts *testServer) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(get(t, ts.url+"/metrics"), "\n") {
		if rest, ok := strings.CutPrefix(line, "aisle_live_subscriptions{"); ok {
			_, value, _ := strings.Cut(rest, "} ")
			n, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			sum += n
		}
	}
	return sum
}

func TestWebsocketOrigins(t *testing.T) {
	t.Parallel()
	custom := startServer(t, "--allowed-origins", "app.example.com, https://*.example.org")
	defaults := startServer(t)
	for _, tc := range []struct {
		ts     *testServer
		origin string
		ok     bool
	}{
		{defaults, "", true}, // not a browser
		{defaults, defaults.url, true},
		{defaults, "http://localhost:5173", true},
		{defaults, "http://127.0.0.1:3000", true},
		{defaults, "https://evil.example", false},
		{defaults, "null", false},
		{custom, "", true},
		{custom, custom.url, true},
		{custom, "https://app.example.com", true},
		{custom, "https://shop.example.org", true},
		{custom, "http://shop.example.org", false},
		{custom, "http://localhost:5173", false},
		{custom, "https://app.example.com.evil.example", false},
	} {
		header := http.Header{}
		if tc.origin != "" {
			header.Set("Origin", tc.origin)
		}
		conn, res, err := tc.ts.openWS("graphql-transport-ws", header)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Origin %q (allowed %v) refused: %v", tc.origin, tc.ts == defaults, err)
		case !tc.ok && (err == nil || res == nil || res.StatusCode != http.StatusForbidden):
			t.Errorf("Origin %q: got %v %v, want 403", tc.origin, res, err)
		case !tc.ok:
			body, _ := io.ReadAll(res.Body)
			if !bytes.Contains(body, []byte("--allowed-origins")) {
				t.Errorf("Origin %q: 403 body %q does not say what to change", tc.origin, body)
			}
		default:
			conn.CloseNow()
		}
	}
}

// After `aisle keys revoke`, HTTP refuses the key within the key cache TTL
// and its open websockets close with 4403 within twice that; other keys'
// connections stay.
func TestRevokedKeyLosesAccess(t *testing.T) {
	t.Parallel()
	// Slack covers a loaded test machine; without re-checks the
	// websocket would stay open however long the test waited.
	const ttl, slack = time.Second, time.Second
	ts := startServer(t, "--key-cache-ttl", ttl.String())
	store, _ := ts.store(1)
	revoked := ts.createKey(aisle.RoleService, "", "")
	kept := ts.createKey(aisle.RoleOps, "", "")
	const query = `{ stores(first: 1) { edges { cursor } } }`

	doomed, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + revoked})
	if err != nil {
		t.Fatal(err)
	}
	doomed.subscribe("1", watchStore, map[string]any{"s": store.ID})
	other, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + kept})
	if err != nil {
		t.Fatal(err)
	}
	other.subscribe("1", watchStore, map[string]any{"s": store.ID})
	if status, resp := ts.post(revoked, query, nil); status != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("before revocation: HTTP %d %+v", status, resp.Errors)
	}

	var out bytes.Buffer
	if err := runKeys(context.Background(), []string{"revoke", "--database-url", ts.main.Config.DatabaseURL, "--name", "test service"}, &out, io.Discard); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	revokedAt := time.Now()
	if !strings.HasPrefix(out.String(), "revoked k-") {
		t.Errorf("keys revoke printed %q", out.String())
	}

	for {
		status, _ := ts.post(revoked, query, nil)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Since(revokedAt) > ttl+slack {
			t.Fatalf("HTTP still answers %d to a key revoked %s ago (key cache TTL %s)", status, time.Since(revokedAt), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}

	got, err := doomed.closedWith(2*ttl + slack)
	if err != nil {
		t.Fatalf("the revoked key's websocket is open %s after revocation: %v", time.Since(revokedAt), err)
	}
	if elapsed := time.Since(revokedAt); got.Code != 4403 || elapsed > 2*ttl+slack {
		t.Errorf("closed with %d %q after %s; want 4403 within %s", got.Code, got.Reason, elapsed, 2*ttl)
	}
	if !strings.Contains(ts.logs.String(), "revoked API key") {
		t.Error("the revocation close is not logged")
	}
	if _, err := other.closedWith(ttl); err == nil {
		t.Errorf("another key's websocket was closed: %v", other.readErr)
	}
	if _, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + revoked}); closeErrorOf(err).Code != 4403 {
		t.Errorf("a new websocket with the revoked key: %v, want closed 4403", err)
	}
}

func TestWebsocketCaps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--max-subscriptions-per-connection", "2", "--max-connections-per-key", "2")
	store, _ := ts.store(1)
	auth := map[string]any{"Authorization": "Bearer " + ts.createKey(aisle.RoleService, "", "")}
	vars := map[string]any{"s": store.ID}

	t.Run("subscriptions per connection", func(t *testing.T) {
		// A key of its own, so this connection takes none of the slots
		// the next subtest counts.
		ws, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + ts.createKey(aisle.RoleOps, "", "")})
		if err != nil {
			t.Fatal(err)
		}
		ws.subscribe("a", watchStore, vars)
		ws.subscribe("b", watchStore, vars)
		ws.subscribe("c", watchStore, vars)
		msg, err := ws.next(5 * time.Second)
		var errs []gqlError
		if err != nil || msg.Type != "error" || msg.ID != "c" || json.Unmarshal(msg.Payload, &errs) != nil || len(errs) != 1 {
			t.Fatalf("third subscription got %+v %v, want an error message", msg, err)
		}
		if errs[0].Extensions["code"] != aisle.ERATELIMITED || !strings.Contains(errs[0].Message, "at most 2") {
			t.Errorf("third subscription: %+v, want %s saying the cap", errs[0], aisle.ERATELIMITED)
		}
		// Completing one frees its place; the connection stayed usable.
		if err := wsjson.Write(ws.ctx, ws.conn, map[string]any{"id": "a", "type": "complete"}); err != nil {
			t.Fatal(err)
		}
		if msg, err := ws.next(5 * time.Second); err != nil || msg.Type != "complete" || msg.ID != "a" {
			t.Fatalf("after completing a: %+v %v", msg, err)
		}
		ws.subscribe("d", `{ stores(first: 1) { edges { cursor } } }`, nil)
		if msg, err := ws.next(5 * time.Second); err != nil || msg.Type != "next" || msg.ID != "d" {
			t.Fatalf("an operation after completing one got %+v %v, want its result", msg, err)
		}
	})

	// Legacy graphql-ws clients meet the same cap, with the same error.
	t.Run("legacy subscriptions per connection", func(t *testing.T) {
		conn, _, err := ts.openWS("graphql-ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		send := []map[string]any{{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + ts.createKey(aisle.RoleOps, "", "")}}}
		for _, id := range []string{"a", "b", "c"} {
			send = append(send, map[string]any{"id": id, "type": "start", "payload": map[string]any{"query": watchStore, "variables": vars}})
		}
		for _, msg := range send {
			if err := wsjson.Write(ctx, conn, msg); err != nil {
				t.Fatal(err)
			}
		}
		for {
			var msg wsMessage
			if err := wsjson.Read(ctx, conn, &msg); err != nil {
				t.Fatalf("no error for the third legacy subscription: %v", err)
			}
			if msg.Type == "error" {
				if msg.ID != "c" || !strings.Contains(string(msg.Payload), aisle.ERATELIMITED) {
					t.Fatalf("got %+v, want a %s error for c", msg, aisle.ERATELIMITED)
				}
				break
			}
		}
		conn.CloseNow()
	})

	t.Run("connections per key and per anonymous client", func(t *testing.T) {
		for _, payload := range []map[string]any{auth, nil} {
			var open []*wsClient
			for range 2 {
				c, err := ts.dialWS(payload)
				if err != nil {
					t.Fatalf("connection within the cap: %v", err)
				}
				open = append(open, c)
			}
			_, err := ts.dialWS(payload)
			if ce := closeErrorOf(err); ce.Code != 4429 || !strings.Contains(ce.Reason, "at most 2") {
				t.Fatalf("third connection (key %v): %v, want closed 4429 saying the cap", payload != nil, err)
			}
			// Closing one frees its slot.
			open[0].conn.Close(websocket.StatusNormalClosure, "")
			eventually(t, 5*time.Second, func() string {
				c, err := ts.dialWS(payload)
				if err != nil {
					return "no slot after closing a connection: " + err.Error()
				}
				c.conn.CloseNow()
				return ""
			})
			for _, c := range open {
				c.conn.CloseNow()
			}
		}
	})
}

// TestSubscriptionsPerAddressAcrossConnections: an anonymous address's
// operations are capped over all its connections, not only per connection
// (200 connections × 100 subscriptions let one address hold 20,000), and
// completing one frees its place.
func TestSubscriptionsPerAddressAcrossConnections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--max-subscriptions-per-connection", "3", "--max-connections-per-key", "3", "--max-subscriptions-per-key", "3")
	store, _ := ts.store(1)
	vars := map[string]any{"s": store.ID}
	var conns []*wsClient
	for range 2 {
		c, err := ts.dialWS(nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	refusal := func(c *wsClient, id string) []gqlError {
		t.Helper()
		for {
			msg, err := c.next(5 * time.Second)
			if err != nil {
				t.Fatalf("no error for %s: %v", id, err)
			}
			var errs []gqlError
			if msg.Type == "error" && msg.ID == id && json.Unmarshal(msg.Payload, &errs) == nil && len(errs) == 1 {
				return errs
			}
		}
	}
	conns[0].subscribe("a", watchStore, vars)
	conns[0].subscribe("b", watchStore, vars)
	// Operations on one connection are admitted in order: once a query
	// sent after a and b completes, both hold their places.
	const query = `{ stores(first: 1) { edges { cursor } } }`
	completed := func(c *wsClient, id string) string {
		for {
			msg, err := c.next(5 * time.Second)
			if err != nil {
				return err.Error()
			}
			if msg.ID == id && msg.Type == "error" {
				return "refused: " + string(msg.Payload)
			}
			if msg.ID == id && msg.Type == "complete" {
				return ""
			}
		}
	}
	conns[0].subscribe("q", query, nil)
	if err := completed(conns[0], "q"); err != "" {
		t.Fatalf("a query beside two subscriptions: %s", err)
	}
	conns[1].subscribe("c", watchStore, vars)
	conns[1].subscribe("d", watchStore, vars)
	if errs := refusal(conns[1], "d"); errs[0].Extensions["code"] != aisle.ERATELIMITED || !strings.Contains(errs[0].Message, "over all its connections: at most 3") {
		t.Fatalf("fourth subscription of the address: %+v, want %s saying the cap over all connections", errs[0], aisle.ERATELIMITED)
	}
	// Closing a connection gives its subscriptions back.
	conns[0].conn.Close(websocket.StatusNormalClosure, "")
	eventually(t, 5*time.Second, func() string {
		conns[1].subscribe("e", query, nil)
		return completed(conns[1], "e")
	})
}

// Bad websocket settings stop the server at start-up with an error naming
// the flag or variable.
func TestWebsocketFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--max-subscriptions-per-connection", "0"}, nil, "--max-subscriptions-per-connection"},
		{[]string{"--max-connections-per-key", "-1"}, nil, "--max-connections-per-key"},
		{nil, map[string]string{"AISLE_MAX_CONNECTIONS_PER_KEY": "many"}, "AISLE_MAX_CONNECTIONS_PER_KEY"},
		{[]string{"--allowed-origins", "app.example.com,[::1"}, nil, "--allowed-origins"},
		{nil, map[string]string{"AISLE_ALLOWED_ORIGINS": "a[b"}, "--allowed-origins"},
		{[]string{"--ws-ping-interval", "0s"}, nil, "--ws-ping-interval"},
		{[]string{"--ws-init-timeout", "-1s"}, nil, "--ws-init-timeout"},
		{nil, map[string]string{"AISLE_KEY_CACHE_TTL": "soon"}, "AISLE_KEY_CACHE_TTL"},
		{[]string{"--stall-threshold", "0s"}, nil, "--stall-threshold"},
		{[]string{"--stall-threshold", "-1m"}, nil, "--stall-threshold"},
		{nil, map[string]string{"AISLE_STALL_THRESHOLD": "soon"}, "AISLE_STALL_THRESHOLD"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := NewMain(io.Discard).ParseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseFlags(%q) with %v = %v, want an error naming %s", tc.args, tc.env, err, tc.want)
			}
		})
	}
	m := NewMain(io.Discard)
	t.Setenv("AISLE_MAX_SUBSCRIPTIONS_PER_CONNECTION", "7")
	t.Setenv("AISLE_ALLOWED_ORIGINS", "a.example, b.example")
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.MaxSubscriptionsPerConnection != 7 || len(c.AllowedOrigins) != 2 || c.MaxConnectionsPerKey != 200 {
		t.Errorf("from the environment: %d subscriptions, origins %q, %d connections", c.MaxSubscriptionsPerConnection, c.AllowedOrigins, c.MaxConnectionsPerKey)
	}
}

// keys revoke takes an ID or a name, not both, and says when nothing matched.
func TestKeysRevokeArguments(t *testing.T) {
	t.Parallel()
	dbURL := postgrestest.NewDatabaseURL(t) // keys create makes and migrates it
	revoke := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runKeys(context.Background(), append([]string{"revoke", "--database-url", dbURL}, args...), &out, io.Discard)
		return out.String(), err
	}
	var created bytes.Buffer
	if err := runKeys(context.Background(), []string{"create", "--database-url", dbURL, "--role", "ops", "--name", "ci"}, &created, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := revoke(); err == nil {
		t.Error("revoke with neither ID nor --name succeeded")
	}
	if _, err := revoke("--name", "ci", "k-1"); err == nil {
		t.Error("revoke with both ID and --name succeeded")
	}
	if _, err := revoke("k-999"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("revoke of an unknown ID: %v, want not found", err)
	}
	if out, err := revoke("--name", "ci"); err != nil || !strings.HasPrefix(out, "revoked k-") {
		t.Fatalf("revoke --name ci: %q %v", out, err)
	}
	if _, err := revoke("--name", "ci"); err == nil || !strings.Contains(err.Error(), "no live API key") {
		t.Errorf("second revoke --name ci: %v, want no live key", err)
	}
}

// A subscription fed by the live hub holds no goroutine between values:
// the hub signals each value and a goroutine sends it and ends
// (httpapi/wsop.go). gqlgen's transport kept one blocked on each
// subscription's channel, 8 KiB of stack per subscription.
func TestHubSubscriptionsHoldNoGoroutine(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(1)
	key := ts.createKey(aisle.RoleService, "", "")
	ws, err := ts.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Goroutines waiting on a subscription's channel, of any server in
	// this process: other tests' count too, hence a difference and a
	// margin below.
	waiting := func() int {
		var dump bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&dump, 2); err != nil {
			t.Fatal(err)
		}
		return strings.Count(dump.String(), "graphql.ResolveFieldStream")
	}
	before := waiting()
	const subscriptions = 40
	for i := range subscriptions {
		ws.subscribe(strconv.Itoa(i), `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { productId } }`,
			map[string]any{"s": store.ID, "p": []string{products[0]}})
	}
	// Every subscription is running once each has pushed a change.
	pushed := map[string]bool{}
	eventually(t, 30*time.Second, func() string {
		ts.reportPick(key, store.ID, products[0], "FOUND")
		for {
			msg, err := ws.next(300 * time.Millisecond)
			if err != nil {
				break
			}
			if msg.Type == "next" {
				pushed[msg.ID] = true
			}
		}
		if len(pushed) < subscriptions {
			return fmt.Sprintf("%d of %d subscriptions pushed a change", len(pushed), subscriptions)
		}
		return ""
	})
	// The goroutines that sent the last values may still be ending.
	eventually(t, 10*time.Second, func() string {
		if added := waiting() - before; added >= subscriptions/2 {
			return fmt.Sprintf("%d more goroutines wait on subscription channels after %d availabilityChanged subscriptions", added, subscriptions)
		}
		return ""
	})
}
