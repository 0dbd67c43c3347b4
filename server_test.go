package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// testServer is a whole Aisle process run in-process on loopback: its own
// PostgreSQL database, Redis key prefix, embedded broker and data directory.
type testServer struct {
	t       testing.TB
	main    *Main
	url     string // http://127.0.0.1:PORT
	stopped chan error
	cancel  context.CancelFunc
	logs    *proctest.SyncBuffer
}

// startServer runs Main like `aisle serve` with the given extra flags.
func startServer(t testing.TB, extraArgs ...string) *testServer {
	t.Helper()
	dbURL := postgrestest.NewDatabaseURL(t)
	if i := slices.Index(extraArgs, "--database-url"); i >= 0 && i+1 < len(extraArgs) {
		dbURL = extraArgs[i+1] // the direct URL must name the same database
	}
	prefix := featurestest.NewPrefix()
	// Opened before the server so that its cleanup, which deletes the
	// prefix's keys, runs after the server has stopped.
	featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	args := append([]string{
		"--http-addr", "127.0.0.1:0",
		"--database-url", dbURL,
		"--database-direct-url", postgrestest.DirectURL(t, dbURL),
		"--redis-url", featurestest.URL(),
		"--redis-prefix", prefix,
		"--embedded-kafka-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(),
		"--partitions", "2",
		"--web-dir", "web",
	}, extraArgs...)
	logs := &proctest.SyncBuffer{}
	m := NewMain(logs)
	if err := m.ParseFlags(args); err != nil {
		t.Fatalf("parse flags: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, main: m, stopped: make(chan error, 1), cancel: cancel, logs: logs}
	go func() { ts.stopped <- m.Run(ctx) }()
	select {
	case <-m.Started():
	case err := <-ts.stopped:
		t.Fatalf("server did not start: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start within 30s\nlogs:\n%s", logs.String())
	}
	ts.url = "http://" + m.HTTPListener.Addr().String()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("server did not stop cleanly: %v\nlogs:\n%s", err, logs.String())
		}
	})
	return ts
}

// stop is SIGTERM: cancel Run's context and wait for it to drain.
func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err, ok := <-ts.stopped:
		if !ok {
			return nil
		}
		close(ts.stopped)
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("Run did not return within 30s of cancellation")
	}
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// code returns the extensions.code of the only error, failing otherwise.
func (r gqlResponse) code(t *testing.T) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want exactly one error, got %+v (data %s)", r.Errors, r.Data)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// query posts a GraphQL request with an optional API key.
func (ts *testServer) query(key, query string, vars map[string]any) gqlResponse {
	ts.t.Helper()
	status, resp := ts.post(key, query, vars)
	if status != http.StatusOK && len(resp.Errors) == 0 {
		ts.t.Fatalf("HTTP %d without GraphQL errors", status)
	}
	return resp
}

func (ts *testServer) post(key, query string, vars map[string]any) (int, gqlResponse) {
	ts.t.Helper()
	res, out := ts.send(key, map[string]any{"query": query, "variables": vars})
	return res.StatusCode, out
}

// send posts body, encoded as JSON, to /graphql; the response's body is
// already read and decoded.
func (ts *testServer) send(key string, body any) (*http.Response, gqlResponse) {
	ts.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		ts.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, ts.url+"/graphql", bytes.NewReader(raw))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("POST /graphql: %v", err)
	}
	defer res.Body.Close()
	raw, err = io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		ts.t.Fatalf("HTTP %d, body is not GraphQL JSON: %v: %s", res.StatusCode, err, raw)
	}
	return res, out
}

// mustData runs a query that must succeed and decodes its data into v.
func (ts *testServer) mustData(key, query string, vars map[string]any, v any) {
	ts.t.Helper()
	resp := ts.query(key, query, vars)
	if len(resp.Errors) > 0 {
		ts.t.Fatalf("query failed: %+v", resp.Errors)
	}
	if err := json.Unmarshal(resp.Data, v); err != nil {
		ts.t.Fatalf("decode data %s: %v", resp.Data, err)
	}
}

// createKey creates an API key the way `aisle keys create` does.
func (ts *testServer) createKey(role aisle.Role, retailerID, userID string) string {
	ts.t.Helper()
	var out bytes.Buffer
	args := []string{"create", "--database-url", ts.main.Config.DatabaseURL, "--role", string(role), "--name", "test " + string(role)}
	if retailerID != "" {
		args = append(args, "--retailer", retailerID)
	}
	if userID != "" {
		args = append(args, "--user", userID)
	}
	if err := runKeys(context.Background(), args, &out, io.Discard); err != nil {
		ts.t.Fatalf("keys create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1]
}

// testStore is a store of the demo catalog as the API lists it.
type testStore struct {
	ID         string
	RetailerID string
	Products   []string
}

// stores lists the first stores of the demo catalog with the first products
// of each (1..100 of each).
func (ts *testServer) stores(first, products int) []testStore {
	ts.t.Helper()
	var data struct {
		Stores struct {
			Edges []struct {
				Node struct {
					ID       string `json:"id"`
					Retailer struct {
						ID string `json:"id"`
					} `json:"retailer"`
					Products struct {
						Edges []struct {
							Node struct {
								ID string `json:"id"`
							} `json:"node"`
						} `json:"edges"`
					} `json:"products"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"stores"`
	}
	ts.mustData("", `query($first: Int!, $n: Int!) { stores(first: $first) { edges { node { id retailer { id } products(first: $n) { edges { node { id } } } } } } }`,
		map[string]any{"first": first, "n": products}, &data)
	out := make([]testStore, len(data.Stores.Edges))
	for i, e := range data.Stores.Edges {
		out[i] = testStore{ID: e.Node.ID, RetailerID: e.Node.Retailer.ID}
		for _, p := range e.Node.Products.Edges {
			out[i].Products = append(out[i].Products, p.Node.ID)
		}
	}
	return out
}

// store returns the first store of the demo catalog and n of its products.
func (ts *testServer) store(n int) (testStore, []string) {
	ts.t.Helper()
	s := ts.stores(1, n)[0]
	return s, s.Products
}

// wsClient speaks graphql-transport-ws.
type wsClient struct {
	t        testing.TB
	conn     *websocket.Conn
	ctx      context.Context
	messages chan wsMessage // every message but ping and pong, until the connection ends
	readErr  error          // why the connection ended, once messages is closed
}

func (ts *testServer) dialWS(initPayload map[string]any) (*wsClient, error) {
	ts.t.Helper()
	return ts.dialWSWithHeader(nil, initPayload)
}

// dialWSWithHeader is dialWS with headers on the upgrade request, where
// clients other than browsers may send their Authorization.
func (ts *testServer) dialWSWithHeader(header http.Header, initPayload map[string]any) (*wsClient, error) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	ts.t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, strings.Replace(ts.url, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPHeader:   header,
	})
	if err != nil {
		return nil, err
	}
	ts.t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: ts.t, conn: conn, ctx: ctx}
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": initPayload}); err != nil {
		return nil, err
	}
	var ack map[string]any
	if err := wsjson.Read(ctx, conn, &ack); err != nil {
		return nil, err
	}
	if ack["type"] != "connection_ack" {
		return nil, fmt.Errorf("want connection_ack, got %v", ack)
	}
	c.messages = make(chan wsMessage, 1024)
	go c.read()
	return c, nil
}

// read answers pings and queues the other messages, until the connection
// ends. Reading in one goroutine lets next wait with a timeout without
// cancelling a read, which would close the connection.
func (c *wsClient) read() {
	defer close(c.messages)
	for {
		var msg wsMessage
		if err := wsjson.Read(context.Background(), c.conn, &msg); err != nil {
			c.readErr = err
			return
		}
		switch msg.Type {
		case "ping":
			_ = wsjson.Write(context.Background(), c.conn, map[string]any{"type": "pong"})
		case "pong":
		default:
			c.messages <- msg
		}
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	err := wsjson.Write(c.ctx, c.conn, map[string]any{
		"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars},
	})
	if err != nil {
		c.t.Fatalf("subscribe: %v", err)
	}
}

type wsMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// next returns the next message that is not a ping or pong, waiting at
// most timeout; the connection stays open when it times out.
func (c *wsClient) next(timeout time.Duration) (wsMessage, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case msg, ok := <-c.messages:
		if !ok {
			return msg, fmt.Errorf("connection closed: %w", c.readErr)
		}
		return msg, nil
	case <-timer.C:
		return wsMessage{}, fmt.Errorf("no message within %s", timeout)
	}
}

// drain discards one message if one arrives within timeout and reports
// whether it did.
func (c *wsClient) drain(timeout time.Duration) bool {
	_, err := c.next(timeout)
	return err == nil
}
