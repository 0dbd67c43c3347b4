package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

// Close codes and reasons gqlgen's transport used where no protocol rule
// of wsscreen.go applies; clients see the same.
const (
	closeNormal        = int(websocket.StatusNormalClosure)
	closeProtocolError = int(websocket.StatusProtocolError)
	closeTerminated    = "terminated"
)

// serveAndFinish serves the websocket, then releases what it held.
func (c *wsConn) serveAndFinish(w *smallBuffers, r *http.Request) {
	defer c.finish()
	c.serve(w, r)
}

// serve accepts the websocket and speaks the protocol its client chose
// (graphql-transport-ws, or the legacy graphql-ws) until the connection
// ends. The loop is the connection's only goroutine: it waits for a
// message with w.idle (wsidle.go), where it rests, reads it whole and
// hands it to receive.
func (c *wsConn) serve(w *smallBuffers, r *http.Request) {
	inner, err := accept(w, r)
	if err != nil {
		return // Accept has answered the request
	}
	// Neither w nor r from here on: w would keep net/http's response,
	// and with it the connection's 4 KiB read and write buffers, r the
	// request's headers, for the websocket's life.
	ctx, idle := r.Context(), w.idle
	c.start(inner)
	close(c.accepted)
	defer inner.Close()
	inner.(transport.WebsocketReadLimiter).SetReadLimit(maxWebsocketBytes)
	// The connection's context ends when the server shuts down.
	stop := context.AfterFunc(ctx, func() { c.closeWith(closeNormal, closeTerminated) })
	defer stop()
	for {
		if idle != nil && idle() != nil {
			return
		}
		if !c.readMessage(ctx) {
			return
		}
	}
}

// accept upgrades r to a websocket. It is a function of its own so that
// its large locals are not part of serve's resting frame.
func accept(w http.ResponseWriter, r *http.Request) (transport.WebsocketConn, error) {
	return transport.CoderWebsocketImplementation{
		// checkOrigin has already run, with the configured patterns.
		AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true},
	}.Accept(w, r, transport.WebsocketAcceptOptions{
		// gqlgen's order: a client offering both gets graphql-ws.
		Subprotocols: []string{"graphql-ws", transportWSProtocol},
	})
}

// readMessage reads the next message and hands it to receive; it reports
// whether the connection goes on.
func (c *wsConn) readMessage(ctx context.Context) bool {
	_, message, err := c.inner.NextReader()
	if err != nil {
		return false
	}
	data, err := io.ReadAll(message)
	if err != nil {
		return false
	}
	return c.receive(ctx, data)
}

// receive screens one client message (wsscreen.go) and acts on what
// screening lets through; it reports whether the connection goes on.
func (c *wsConn) receive(ctx context.Context, data []byte) bool {
	msg, forward, err := c.screen(data)
	if err != nil {
		return false
	}
	return !forward || c.handle(ctx, msg)
}

// handle acts on a client message wsscreen.go let through and reports
// whether the connection goes on.
func (c *wsConn) handle(ctx context.Context, msg clientMessage) bool {
	c.mu.Lock()
	acked := c.opCtx != nil
	c.mu.Unlock()
	switch {
	case msg.invalid && !acked: // legacy only: not JSON, or not an object
		c.sendConnectionError("invalid json")
		c.closeWith(closeProtocolError, "decoding error")
		return false
	case msg.invalid:
		c.closeWith(closeNormal, closeTerminated)
		return false
	case msg.Type == "connection_init" && !acked:
		return c.initialise(ctx, msg.Payload)
	case c.legacy && msg.Type == "connection_terminate":
		c.closeWith(closeNormal, closeTerminated)
		return false
	case !c.legacy && msg.Type == "ping":
		return c.write(serverMessage{Payload: msg.Payload, Type: "pong"}) == nil
	case !c.legacy && msg.Type == "pong":
		_ = c.SetReadDeadline(time.Time{})
		return true
	default:
		c.sendConnectionError("unexpected message " + msg.Type)
		c.closeWith(closeProtocolError, "unexpected message")
		return false
	}
}

// initialise authenticates connection_init's payload and admits the
// connection (wsConn.admit), then acknowledges it; a refusal closes it
// with 4403 (a bad key) or 4429 (too many connections or attempts, by
// the error's code), as auth.WebsocketInit's context tells gqlgen's
// transport.
func (c *wsConn) initialise(ctx context.Context, payload json.RawMessage) bool {
	var initPayload transport.InitPayload
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &initPayload); err != nil {
			c.closeWith(closeBadRequest, "Invalid message received: connection_init payload must be an object")
			return false
		}
	}
	ctx, _, err := c.authenticate(ctx, initPayload)
	if err == nil {
		err = c.admit(ctx)
	}
	if err != nil {
		c.sendConnectionError(err.Error())
		code := closeForbidden
		if aisle.ErrorCode(err) == aisle.ERATELIMITED {
			code = closeTooMany
		}
		c.closeWith(code, aisle.ErrorMessage(err))
		return false
	}
	if err := c.write(serverMessage{Type: "connection_ack"}); err != nil {
		return false
	}
	if c.legacy {
		return c.write(serverMessage{Type: "ka"}) == nil
	}
	return true
}

// keepAlive sends legacy graphql-ws clients "ka" every wsKeepAlive, from
// the connection's timer.
func (c *wsConn) keepAlive() {
	if err := c.write(serverMessage{Type: "ka"}); err != nil {
		return // the connection is ending; finish stops the timer
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		c.pinger.Reset(wsKeepAlive)
	}
}

// sendConnectionError tells a legacy graphql-ws client why the server
// ends the connection; graphql-transport-ws has only the close reason.
func (c *wsConn) sendConnectionError(message string) {
	if !c.legacy {
		return
	}
	payload, err := json.Marshal(&gqlerror.Error{Message: message})
	if err != nil {
		panic(fmt.Sprintf("encode a gqlerror: %v", err)) // a struct of strings always encodes
	}
	_ = c.write(serverMessage{Payload: payload, Type: "connection_error"})
}
