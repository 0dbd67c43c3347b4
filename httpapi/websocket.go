package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
)

// Websocket defaults, used where Config leaves a setting zero.
const (
	DefaultMaxSubscriptionsPerConnection = 100
	DefaultMaxConnectionsPerKey          = 200
	// DefaultMaxSubscriptionsPerKey bounds the operations open at once
	// per API key, or per client address when anonymous, over all its
	// connections to one process: 200 connections × 100 subscriptions
	// would otherwise let one address hold 20,000 (about 366 MB).
	DefaultMaxSubscriptionsPerKey = 1000
	DefaultWebsocketPingInterval  = 15 * time.Second // a silent peer is dropped within 2–3 intervals
	DefaultWebsocketInitTimeout   = 10 * time.Second
)

// DefaultAllowedOrigins are the Origin patterns accepted besides the
// server's own origin: a GraphiQL or app served from this machine during
// development. Brackets are escaped because patterns use path.Match.
var DefaultAllowedOrigins = []string{"localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", `\[::1\]`, `\[::1\]:*`}

// graphql-transport-ws close codes
// (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md). The
// same codes end legacy graphql-ws connections where this file decides.
const (
	closeBadRequest       = 4400
	closeUnauthorized     = 4401
	closeForbidden        = 4403
	closeInitTimeout      = 4408
	closeSubscriberExists = 4409
	closeTooMany          = 4429 // too many connection_init, or connections for one key
)

const transportWSProtocol = "graphql-transport-ws"

// keyRecheckTimeout bounds one re-check of an open connection's key.
const keyRecheckTimeout = 5 * time.Second

// ValidateOriginPatterns reports a malformed --allowed-origins pattern at
// start-up rather than on the first browser connection.
func ValidateOriginPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("origin pattern %q: %w (escape [ and ] with \\)", p, err)
		}
	}
	return nil
}

// websockets wraps gqlgen's websocket transport where it deviates from
// graphql-transport-ws or lacks a limit: it checks the Origin, enforces
// the protocol's close codes, caps subscriptions per connection and
// connections per key, closes connections whose key is revoked, and pings
// graphql-transport-ws peers to drop dead ones. gqlgen keeps doing the
// GraphQL work.
type websockets struct {
	keys          auth.KeyLookup
	log           *slog.Logger
	origins       []string
	maxSubs       int
	maxConns      int
	maxOwnerSubs  int
	initTimeout   time.Duration
	recheckPeriod time.Duration
	pingInterval  time.Duration
	writeTimeout  time.Duration // a peer that reads nothing for this long is cut off
	limiter       RateLimiter   // nil: operations are not rate limited

	mu    sync.Mutex
	conns map[string]int // open connections by owner (rateKey: the key, or an anonymous client's address); per replica
	subs  map[string]int // open operations by owner, over all its connections; per replica
}

func newWebsockets(cfg Config) *websockets {
	ws := &websockets{
		keys:          cfg.Keys,
		log:           cfg.Log,
		origins:       cfg.AllowedOrigins,
		maxSubs:       cfg.MaxSubscriptionsPerConnection,
		maxConns:      cfg.MaxConnectionsPerKey,
		maxOwnerSubs:  cfg.MaxSubscriptionsPerKey,
		initTimeout:   cfg.WebsocketInitTimeout,
		recheckPeriod: cfg.KeyRecheckInterval,
		pingInterval:  cfg.WebsocketPingInterval,
		limiter:       cfg.RateLimiter,
		conns:         map[string]int{},
		subs:          map[string]int{},
	}
	if ws.origins == nil {
		ws.origins = DefaultAllowedOrigins
	}
	if ws.maxSubs == 0 {
		ws.maxSubs = DefaultMaxSubscriptionsPerConnection
	}
	if ws.maxConns == 0 {
		ws.maxConns = DefaultMaxConnectionsPerKey
	}
	if ws.maxOwnerSubs == 0 {
		ws.maxOwnerSubs = DefaultMaxSubscriptionsPerKey
	}
	if ws.initTimeout == 0 {
		ws.initTimeout = DefaultWebsocketInitTimeout
	}
	if ws.recheckPeriod == 0 {
		ws.recheckPeriod = auth.DefaultTTL
	}
	if ws.pingInterval == 0 {
		ws.pingInterval = DefaultWebsocketPingInterval
	}
	// The pong deadline is only re-armed after the next ping is written:
	// a peer that stops reading while results fill its socket buffers
	// would block that write, and the connection, forever.
	ws.writeTimeout = 2 * ws.pingInterval
	return ws
}

// transport returns gqlgen's websocket transport, configured and wrapped
// by ws. authenticate is the InitFunc that sets the principal.
func (ws *websockets) transport(authenticate transport.WebsocketInitFunc) graphql.Transport {
	readLimit := int64(maxWebsocketBytes)
	return websocketTransport{ws: ws, Websocket: transport.Websocket{
		Implementation: websocketImplementation{},
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			ctx, ack, err := authenticate(ctx, payload)
			if err != nil {
				return ctx, ack, err
			}
			if ctx, err = connFromContext(ctx).admit(ctx); err != nil {
				return ctx, nil, err
			}
			return ctx, ack, nil
		},
		// InitTimeout stays 0: wsConn times connection_init out itself,
		// with 4408 rather than gqlgen's 1002.
		KeepAlivePingInterval: wsKeepAlive,
		// PingPongInterval stays 0: wsConn pings from a timer, which
		// costs no goroutine per connection as gqlgen's ping loop does.
		PayloadReadLimit: &readLimit,
	}}
}

// websocketTransport is gqlgen's transport with a per-connection wsConn
// around each websocket.
type websocketTransport struct {
	transport.Websocket
	ws *websockets
}

type wsConnKey struct{}

func connFromContext(ctx context.Context) *wsConn { return ctx.Value(wsConnKey{}).(*wsConn) }

// Do refuses foreign origins, then serves one websocket until it ends and
// releases what the connection held.
func (t websocketTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if err := t.ws.checkOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]any{"errors": []any{map[string]any{
			"message": err.Error(), "extensions": map[string]string{"code": aisle.EFORBIDDEN},
		}}})
		return
	}
	c := &wsConn{ws: t.ws, active: map[string]struct{}{}}
	defer c.finish()
	t.Websocket.Do(w, r.WithContext(context.WithValue(r.Context(), wsConnKey{}, c)), exec)
}

// checkOrigin protects browser users from pages of other sites opening
// websockets to this API (cross-site websocket hijacking): browsers always
// send Origin, other clients need not. The rule is coder/websocket's
// (same host, or a pattern matching the Origin's host, or its
// scheme://host when the pattern has "://"), applied here so that a refusal
// is a clear 403 and the patterns are checked at start-up.
func (ws *websockets) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("websocket Origin %q is not a URL with a host, so it matches no --allowed-origins pattern", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, pattern := range ws.origins {
		target := u.Host
		if strings.Contains(pattern, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("websocket connections from Origin %q are not allowed (server option --allowed-origins)", origin)
}

// acquire takes one of owner's slots in counts (ws.conns or ws.subs),
// which allows at most max.
func (ws *websockets) acquire(counts map[string]int, owner string, max int) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if counts[owner] >= max {
		return false
	}
	counts[owner]++
	return true
}

// release gives back n of owner's slots in counts.
func (ws *websockets) release(counts map[string]int, owner string, n int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if counts[owner] -= n; counts[owner] <= 0 {
		delete(counts, owner)
	}
}

// websocketImplementation is gqlgen's coder/websocket adapter with a wsConn
// around each connection.
type websocketImplementation struct{}

func (websocketImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	inner, err := transport.CoderWebsocketImplementation{
		// checkOrigin has already run, with the configured patterns.
		AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true},
	}.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c := connFromContext(r.Context())
	c.start(inner)
	return c, nil
}

// wsConn is one websocket: it screens what the client sends before gqlgen
// reads it and watches what gqlgen sends, to enforce what gqlgen does not.
// Its timers stop in finish, when the connection's handler returns.
type wsConn struct {
	ws     *websockets
	inner  transport.WebsocketConn
	legacy bool // graphql-ws (subscriptions-transport-ws), not graphql-transport-ws

	mu        sync.Mutex
	initTimer *time.Timer
	initSeen  bool
	active    map[string]struct{} // operation ids the server has not ended yet
	owner     string              // whose connection slot this holds, once admitted
	recheck   *time.Timer
	pinger    *time.Timer // graphql-transport-ws pings, once admitted
	pongSeen  bool        // since the last ping
	finished  bool
}

// errClosedByPolicy ends gqlgen's read loop after wsConn has closed the
// connection with a protocol close code; gqlgen takes it for a peer close.
var errClosedByPolicy = fmt.Errorf("closed by the server: %w", transport.ErrWebsocketClosed)

func (c *wsConn) start(inner transport.WebsocketConn) {
	c.inner = inner
	c.legacy = inner.Subprotocol() != transportWSProtocol
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initTimer = time.AfterFunc(c.ws.initTimeout, func() {
		c.mu.Lock()
		late := !c.initSeen && !c.finished
		c.mu.Unlock()
		if late {
			c.closeWith(closeInitTimeout, "Connection initialisation timeout")
		}
	})
}

// admit runs after the key of connection_init is accepted: it takes a
// connection slot of the key (of the client IP when anonymous), refusing
// with 4429 when there is none, and schedules the revocation re-checks.
func (c *wsConn) admit(ctx context.Context) (context.Context, error) {
	p := aisle.PrincipalFromContext(ctx)
	owner, what := rateKey(ctx), "API key"
	if p.KeyID == "" {
		what = "anonymous client address"
	}
	if !c.ws.acquire(c.ws.conns, owner, c.ws.maxConns) {
		err := aisle.Errorf(aisle.ERATELIMITED, "too many websocket connections for this %s: at most %d", what, c.ws.maxConns)
		ctx = transport.WithWebsocketCloseCode(ctx, closeTooMany)
		return transport.AppendCloseReason(ctx, aisle.ErrorMessage(err)), err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owner = owner
	if p.KeyID != "" {
		c.recheck = time.AfterFunc(c.ws.recheckPeriod, func() { c.recheckKey(ctx) })
	}
	if !c.legacy {
		_ = c.SetReadDeadline(time.Now().Add(2 * c.ws.pingInterval))
		c.pinger = time.AfterFunc(c.ws.pingInterval, c.ping)
	}
	return ctx, nil
}

// ping runs every pingInterval on a graphql-transport-ws connection, from
// its timer rather than a goroutine of its own. Every interval the server
// pings; a peer is cut off 2 intervals after the first ping it leaves
// unanswered, at most 3 after its last pong, by the read deadline (which
// gqlgen clears on each pong), and that ends its subscriptions.
func (c *wsConn) ping() {
	c.mu.Lock()
	answered := c.pongSeen
	c.pongSeen = false
	finished := c.finished
	c.mu.Unlock()
	if finished {
		return
	}
	if err := c.write(map[string]string{"type": "ping"}); err != nil {
		return // the connection is ending; finish stops the timer
	}
	if answered {
		_ = c.SetReadDeadline(time.Now().Add(2 * c.ws.pingInterval))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		c.pinger.Reset(c.ws.pingInterval)
	}
}

// recheckKey closes the connection with 4403 once its key is revoked. It
// asks the same key Cache as HTTP requests, so most checks are a map
// lookup and the database sees one lookup per key per cache TTL, however
// many connections the key has. A revocation is seen within recheckPeriod
// plus the cache TTL. When keys cannot be checked the connection stays:
// a database outage must not drop every subscriber.
func (c *wsConn) recheckKey(ctx context.Context) {
	checkCtx, cancel := context.WithTimeout(ctx, keyRecheckTimeout)
	err := auth.Recheck(checkCtx, c.ws.keys)
	cancel()
	if aisle.ErrorCode(err) == aisle.EUNAUTHENTICATED {
		c.ws.log.InfoContext(ctx, "websocket: closing the connection of a revoked API key", "key_id", aisle.PrincipalFromContext(ctx).KeyID)
		c.closeWith(closeForbidden, "Forbidden: "+aisle.ErrorMessage(err))
		return
	}
	if err != nil && ctx.Err() == nil {
		c.ws.log.WarnContext(ctx, "websocket: cannot re-check the API key; keeping the connection", "error", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		c.recheck.Reset(c.ws.recheckPeriod)
	}
}

// finish releases the connection's slot and stops its timers.
func (c *wsConn) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	if c.recheck != nil {
		c.recheck.Stop()
	}
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if c.owner != "" {
		c.ws.release(c.ws.conns, c.owner, 1)
		c.ws.release(c.ws.subs, c.owner, len(c.active))
	}
	clear(c.active)
}

// closeWith starts the close handshake with code; later closes, gqlgen's
// included, are no-ops. It returns errClosedByPolicy for NextReader.
func (c *wsConn) closeWith(code int, reason string) error {
	const maxReason = 123 // bytes, RFC 6455
	if len(reason) > maxReason {
		// Cut at a rune boundary: a reason that is not UTF-8 makes
		// browsers fail the connection, hiding the code.
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	_ = c.inner.WriteClose(code, reason)
	return errClosedByPolicy
}

// clientMessage is the envelope of both protocols' client messages.
type clientMessage struct {
	ID      *string         `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// NextReader passes gqlgen the client's next message that it should see,
// answering or refusing the others.
func (c *wsConn) NextReader() (int, io.Reader, error) {
	for {
		typ, r, err := c.inner.NextReader()
		if err != nil {
			return typ, r, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return typ, nil, err
		}
		forward, err := c.screen(data)
		if err != nil {
			return typ, nil, err
		}
		if forward {
			return typ, bytes.NewReader(data), nil
		}
	}
}

// screen applies the rules gqlgen misses. graphql-transport-ws gets the
// protocol's close codes; for legacy graphql-ws, messages this file has no
// rule for go to gqlgen as they are.
func (c *wsConn) screen(data []byte) (forward bool, err error) {
	var msg clientMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		if c.legacy {
			return true, nil
		}
		return false, c.closeWith(closeBadRequest, "Invalid message received")
	}
	c.mu.Lock()
	initSeen := c.initSeen
	c.mu.Unlock()

	switch {
	case msg.Type == "connection_init":
		if initSeen && !c.legacy {
			return false, c.closeWith(closeTooMany, "Too many initialisation requests")
		}
		// gqlgen leaves the socket open when the payload is not an object.
		if !jsonObjectOrNull(msg.Payload) {
			return false, c.closeWith(closeBadRequest, "Invalid message received: connection_init payload must be an object")
		}
		c.mu.Lock()
		c.initSeen = true
		c.initTimer.Stop()
		c.mu.Unlock()
		return true, nil
	case c.legacy && msg.Type == "start":
		return c.startOperation(msg)
	case c.legacy:
		return true, nil
	case msg.Type == "subscribe":
		if !initSeen {
			return false, c.closeWith(closeUnauthorized, "Unauthorized")
		}
		if msg.ID == nil || *msg.ID == "" {
			return false, c.closeWith(closeBadRequest, "Invalid message received: subscribe needs an id")
		}
		if err := validSubscribePayload(msg.Payload); err != nil {
			return false, c.closeWith(closeBadRequest, "Invalid message received: "+err.Error())
		}
		return c.startOperation(msg)
	case msg.Type == "complete":
		if msg.ID == nil || *msg.ID == "" {
			return false, c.closeWith(closeBadRequest, "Invalid message received: complete needs an id")
		}
		return initSeen, nil // before the ack there is nothing to complete
	case msg.Type == "ping" && !initSeen:
		// The protocol allows pings at any time; gqlgen answers only
		// after the ack.
		return false, c.write(map[string]string{"type": "pong"})
	case msg.Type == "pong":
		c.mu.Lock()
		c.pongSeen = true
		c.mu.Unlock()
		return initSeen, nil
	case msg.Type == "ping":
		return true, nil
	default:
		return false, c.closeWith(closeBadRequest, fmt.Sprintf("Invalid message received: unexpected type %q", msg.Type))
	}
}

// startOperation admits a subscribe (start) when its id is free and the
// connection is under its cap. Over the cap the operation alone fails
// with RATE_LIMITED and the connection stays: the client can complete
// another operation and retry.
func (c *wsConn) startOperation(msg clientMessage) (forward bool, err error) {
	if msg.ID == nil {
		return true, nil // gqlgen answers a legacy start without id
	}
	id := *msg.ID
	c.mu.Lock()
	_, taken := c.active[id]
	full := len(c.active) >= c.ws.maxSubs
	owner := c.owner
	c.mu.Unlock()
	// The rate limit is checked here, before gqlgen parses and validates
	// the operation, so a caller over its rate costs no more than this.
	limited, retryAfter := false, time.Duration(0)
	if !taken && !full && c.ws.limiter != nil && owner != "" {
		ok, wait := c.ws.limiter.Allow(context.Background(), owner)
		limited, retryAfter = !ok, wait
	}
	ownerFull := false
	if !taken && !full && !limited {
		ownerFull = owner != "" && !c.ws.acquire(c.ws.subs, owner, c.ws.maxOwnerSubs)
	}
	if !taken && !full && !limited && !ownerFull {
		c.mu.Lock()
		if c.finished { // finish has released the slots already
			c.ws.release(c.ws.subs, owner, 1)
		} else {
			c.active[id] = struct{}{}
		}
		c.mu.Unlock()
	}
	var refusal string
	var extensions any = map[string]string{"code": aisle.ERATELIMITED}
	switch {
	case taken && !c.legacy:
		// An id is taken until the server's complete or error for it,
		// even after the client's complete: gqlgen reuses its map
		// slot and would mix up the two operations.
		return false, c.closeWith(closeSubscriberExists, "Subscriber for "+id+" already exists")
	case taken:
		refusal = "operation id " + id + " is already in use on this connection"
	case full:
		refusal = fmt.Sprintf("too many subscriptions on this connection: at most %d; complete one first", c.ws.maxSubs)
	case limited:
		e := rateLimitError(retryAfter)
		refusal, extensions = e.Message, e.Extensions
	case ownerFull:
		refusal = fmt.Sprintf("too many subscriptions for this API key (or address, without a key) over all its connections: at most %d; complete one first", c.ws.maxOwnerSubs)
	default:
		return true, nil
	}
	return false, c.write(map[string]any{"id": id, "type": "error", "payload": []any{map[string]any{
		"message": refusal, "extensions": extensions,
	}}})
}

// validSubscribePayload checks the field types the protocol gives a
// subscribe payload. A missing query is left to gqlgen, which answers it
// with an error message (persisted operations may send none).
func validSubscribePayload(payload json.RawMessage) error {
	var p struct {
		Query         *json.RawMessage `json:"query"`
		OperationName *json.RawMessage `json:"operationName"`
		Variables     json.RawMessage  `json:"variables"`
		Extensions    json.RawMessage  `json:"extensions"`
	}
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &p) != nil {
		return errors.New("subscribe payload must be an object")
	}
	var s string
	if p.Query != nil && json.Unmarshal(*p.Query, &s) != nil {
		return errors.New("query must be a string")
	}
	if p.OperationName != nil && string(*p.OperationName) != "null" && json.Unmarshal(*p.OperationName, &s) != nil {
		return errors.New("operationName must be a string or null")
	}
	if !jsonObjectOrNull(p.Variables) || !jsonObjectOrNull(p.Extensions) {
		return errors.New("variables and extensions must be objects or null")
	}
	return nil
}

// jsonObjectOrNull reports whether raw is absent, null or an object.
func jsonObjectOrNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null" || raw[0] == '{'
}

// nextSuffix and dataSuffix end the result messages of the two protocols.
var nextSuffix, dataSuffix = []byte(`"type":"next"}`), []byte(`"type":"data"}`)

// WriteJSON sends a server message, freeing the operation's id and slot
// when the message ends the operation.
func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Results are most messages: a top-level object whose last member is
	// "type":"next" (or legacy "data") ends nothing, so skip decoding it.
	if !bytes.HasSuffix(data, nextSuffix) && !bytes.HasSuffix(data, dataSuffix) {
		var msg struct{ ID, Type string }
		if json.Unmarshal(data, &msg) == nil && msg.ID != "" && (msg.Type == "complete" || msg.Type == "error") {
			c.mu.Lock()
			if _, ok := c.active[msg.ID]; ok {
				delete(c.active, msg.ID)
				c.ws.release(c.ws.subs, c.owner, 1)
			}
			c.mu.Unlock()
		}
	}
	return c.write(json.RawMessage(data))
}

// write sends v, cutting the connection off if the peer does not take it
// within writeTimeout.
func (c *wsConn) write(v any) error {
	stuck := time.AfterFunc(c.ws.writeTimeout, func() { _ = c.inner.Close() })
	defer stuck.Stop()
	return c.inner.WriteJSON(v)
}

func (c *wsConn) WriteClose(code int, reason string) error { return c.inner.WriteClose(code, reason) }
func (c *wsConn) Close() error                             { return c.inner.Close() }
func (c *wsConn) Subprotocol() string                      { return c.inner.Subprotocol() }

// SetReadLimit and SetReadDeadline pass gqlgen's payload limit and its
// clearing of the pong deadline through; without them neither would reach
// the connection.
func (c *wsConn) SetReadLimit(limit int64) {
	c.inner.(transport.WebsocketReadLimiter).SetReadLimit(limit)
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	return c.inner.(transport.WebsocketReadDeadliner).SetReadDeadline(t)
}

var (
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)
