package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
)

// wsConn is one websocket: it speaks graphql-transport-ws or legacy
// graphql-ws (wsserve.go, wsscreen.go), runs the client's operations with
// gqlgen's executor (wsop.go) and enforces the limits. It has one
// goroutine, its read loop; its timers stop in finish, when that ends.
type wsConn struct {
	ws   *websockets
	exec graphql.GraphExecutor // runs the operations (wsop.go)
	// authenticate reads connection_init's key (auth.WebsocketInit)
	authenticate transport.WebsocketInitFunc
	inner        transport.WebsocketConn
	legacy       bool // graphql-ws (subscriptions-transport-ws), not graphql-transport-ws
	// accepted is closed once the websocket is accepted: the upgrade's
	// handler may return (serveDetached).
	accepted chan struct{}

	mu        sync.Mutex
	initTimer *time.Timer
	initSeen  bool
	active    map[string]context.CancelFunc // operations the server has not ended yet, by id
	owner     string                        // whose connection slot this holds, once admitted
	opCtx     context.Context               // the operations' parent: the connection's, with its principal, once admitted
	recheck   *time.Timer
	pinger    *time.Timer // graphql-transport-ws pings (legacy: keep-alives), once admitted
	pongSeen  bool        // since the last ping
	finished  bool
}

// errClosedByPolicy ends the read loop after wsConn has closed the
// connection with a protocol close code.
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
func (c *wsConn) admit(ctx context.Context) error {
	p := aisle.PrincipalFromContext(ctx)
	owner, what := rateKey(ctx), "API key"
	if p.KeyID == "" {
		what = "anonymous client address"
	}
	if !c.ws.acquire(c.ws.conns, owner, c.ws.maxConns) {
		return aisle.Errorf(aisle.ERATELIMITED, "too many websocket connections for this %s: at most %d", what, c.ws.maxConns)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owner, c.opCtx = owner, ctx
	if p.KeyID != "" {
		c.recheck = time.AfterFunc(c.ws.recheckPeriod, func() { c.recheckKey(ctx) })
	}
	if c.legacy {
		c.pinger = time.AfterFunc(wsKeepAlive, c.keepAlive)
	} else {
		_ = c.SetReadDeadline(time.Now().Add(2 * c.ws.pingInterval))
		c.pinger = time.AfterFunc(c.ws.pingInterval, c.ping)
	}
	return nil
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

// finish ends the connection's operations, releases its slots and stops
// its timers.
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
	for _, cancel := range c.active {
		cancel()
	}
	clear(c.active)
}

// closeWith starts the close handshake with code; later closes are
// no-ops. It returns errClosedByPolicy for nextMessage.
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

// SetReadDeadline sets the deadline by which the peer must send a
// message (a pong clears it).
func (c *wsConn) SetReadDeadline(t time.Time) error {
	return c.inner.(transport.WebsocketReadDeadliner).SetReadDeadline(t)
}
