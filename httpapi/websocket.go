package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"

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

// websockets is the websocket transport of /graphql, in place of
// gqlgen's (which holds two goroutines per connection and one per
// subscription, and the upgrade's net/http goroutine and buffers): it
// checks the Origin, speaks both protocols with graphql-transport-ws's
// close codes, caps subscriptions per connection and per key and
// connections per key, closes connections whose key is revoked, and pings
// graphql-transport-ws peers to drop dead ones. gqlgen's executor does
// the GraphQL work.
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

	// closing ends every connection when an HTTP server serving them
	// shuts down (see serveDetached); shutdownHooked holds the servers
	// told to.
	closing        context.Context
	closeAll       context.CancelFunc
	shutdownHooked map[*http.Server]bool
}

func newWebsockets(cfg Config) *websockets {
	ws := &websockets{
		keys:           cfg.Keys,
		log:            cfg.Log,
		origins:        cfg.AllowedOrigins,
		maxSubs:        cfg.MaxSubscriptionsPerConnection,
		maxConns:       cfg.MaxConnectionsPerKey,
		maxOwnerSubs:   cfg.MaxSubscriptionsPerKey,
		initTimeout:    cfg.WebsocketInitTimeout,
		recheckPeriod:  cfg.KeyRecheckInterval,
		pingInterval:   cfg.WebsocketPingInterval,
		limiter:        cfg.RateLimiter,
		conns:          map[string]int{},
		subs:           map[string]int{},
		shutdownHooked: map[*http.Server]bool{},
	}
	ws.closing, ws.closeAll = context.WithCancel(context.Background())
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

// transport returns the websocket transport: wsConn speaks both
// protocols itself (wsserve.go) and runs the operations with gqlgen's
// executor (wsop.go). authenticate is the InitFunc that sets the
// principal, as it would be gqlgen's.
func (ws *websockets) transport(authenticate transport.WebsocketInitFunc) graphql.Transport {
	return websocketTransport{ws: ws, authenticate: authenticate}
}

// websocketTransport serves websocket upgrades of /graphql.
type websocketTransport struct {
	ws           *websockets
	authenticate transport.WebsocketInitFunc
}

type wsConnKey struct{}

func connFromContext(ctx context.Context) *wsConn { return ctx.Value(wsConnKey{}).(*wsConn) }

// Supports takes the requests gqlgen's websocket transport would.
func (websocketTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

// Do refuses foreign origins, then serves one websocket until it ends and
// releases what the connection held.
func (t websocketTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if err := t.ws.checkOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]any{"errors": []any{map[string]any{
			"message": err.Error(), "extensions": map[string]string{"code": aisle.EFORBIDDEN},
		}}})
		return
	}
	c := &wsConn{ws: t.ws, exec: exec, authenticate: t.authenticate, active: map[string]context.CancelFunc{}, accepted: make(chan struct{})}
	// The value is set here rather than on the connection's goroutine: a
	// frame copying the request would rest on its stack (see wsidle.go).
	r = r.WithContext(context.WithValue(r.Context(), wsConnKey{}, c))
	t.ws.serveDetached(w, r, c.accepted, c.serveAndFinish)
}

// serveDetached runs serve, which upgrades the request to a websocket and
// serves it until it ends, on a goroutine of its own, and returns once the
// connection is accepted (closes accepted) or serve has returned. net/http's goroutine
// then ends, and with it the 16 KiB stack it grew serving the upgrade,
// the connection's 4 KiB read and write buffers, the request and the
// response, none of which a websocket needs. The connection's context
// keeps the request's values; it ends when an http.Server that served
// through ws shuts down (which does not wait for hijacked connections,
// hence RegisterOnShutdown) or when serve returns.
func (ws *websockets) serveDetached(w http.ResponseWriter, r *http.Request, accepted <-chan struct{}, serve func(*smallBuffers, *http.Request)) {
	ws.closeOnShutdown(r)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(ws.closing, cancel)
	served := make(chan struct{})
	go func() {
		defer close(served)
		defer stop()
		defer cancel()
		// net/http recovers a handler's panic and closes its
		// connection; off its goroutine, this does.
		defer func() {
			if p := recover(); p != nil {
				ws.log.Error("websocket: panic serving a connection", "panic", p, "stack", string(debug.Stack()))
			}
		}()
		serve(&smallBuffers{ResponseWriter: w}, r.WithContext(ctx))
	}()
	select {
	case <-accepted:
	case <-served:
	}
}

// closeOnShutdown has the server serving r end ws's connections when it
// shuts down.
func (ws *websockets) closeOnShutdown(r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.shutdownHooked[srv] {
		ws.shutdownHooked[srv] = true
		srv.RegisterOnShutdown(ws.closeAll)
	}
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

// Buffer sizes of a websocket after the upgrade, instead of net/http's
// 4 KiB each; every connection holds both for its life. Client messages
// are a few hundred bytes, and coder/websocket reads a larger one through
// the read buffer in pieces. The write buffer holds a frame's header and
// a typical result (an availabilityChanged message is about 200 bytes),
// so that most take one write to the socket; a larger one takes two, the
// rest of it going to the socket directly.
const (
	wsReadBufferBytes  = 256
	wsWriteBufferBytes = 512
)

// smallBuffers is a ResponseWriter whose Hijack hands coder/websocket
// small buffers of its own instead of the net/http connection's, which
// would stay with the websocket for its whole life. It keeps how the
// read loop waits between messages (wsidle.go).
type smallBuffers struct {
	http.ResponseWriter
	// idle waits until the socket has bytes to read; nil: the read loop
	// waits in coder/websocket.
	idle func() error
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent before the 101 answer reached it, or that
	// net/http's background read took: a client may send connection_init
	// as soon as the answer is flushed, which Hijack does.
	var early *bytes.Reader
	src := conn
	if n := brw.Reader.Buffered(); n > 0 {
		sent, _ := brw.Reader.Peek(n)
		early = bytes.NewReader(bytes.Clone(sent))
		src = earlyConn{Conn: conn, early: early}
	}
	r := bufio.NewReaderSize(src, wsReadBufferBytes)
	w.idle = socketIdleWait(conn, r, early)
	return src, bufio.NewReadWriter(r, bufio.NewWriterSize(src, wsWriteBufferBytes)), nil
}

// Unwrap lets http.ResponseController reach the writer's other methods.
func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// earlyConn is a hijacked connection whose client sent bytes before the
// upgrade was answered: they are read first. (coder/websocket would keep
// bytes left in the read buffer in a reader of its own, which the read
// loop's wait could not see.)
type earlyConn struct {
	net.Conn
	early *bytes.Reader
}

func (c earlyConn) Read(p []byte) (int, error) {
	if c.early.Len() > 0 {
		return c.early.Read(p)
	}
	return c.Conn.Read(p)
}
