package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aisle/aisle/aisle"
)

// clientMessage is the envelope of both protocols' client messages.
type clientMessage struct {
	ID      *string         `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	invalid bool            // not a JSON object (legacy graphql-ws only gets this far)
}

// screen applies the protocols' rules and runs the operations;
// graphql-transport-ws gets the protocol's close codes. What it forwards,
// serve handles.
func (c *wsConn) screen(data []byte) (msg clientMessage, forward bool, err error) {
	if err := json.Unmarshal(data, &msg); err != nil {
		if c.legacy {
			return clientMessage{invalid: true}, true, nil
		}
		return msg, false, c.closeWith(closeBadRequest, "Invalid message received")
	}
	c.mu.Lock()
	initSeen := c.initSeen
	c.mu.Unlock()

	switch {
	case msg.Type == "connection_init":
		if initSeen && !c.legacy {
			return msg, false, c.closeWith(closeTooMany, "Too many initialisation requests")
		}
		// gqlgen left the socket open when the payload was not an object.
		if !jsonObjectOrNull(msg.Payload) {
			return msg, false, c.closeWith(closeBadRequest, "Invalid message received: connection_init payload must be an object")
		}
		c.mu.Lock()
		c.initSeen = true
		if c.initTimer != nil { // legacy clients may init again
			c.initTimer.Stop()
			c.initTimer = nil // not kept for the connection's life
		}
		c.mu.Unlock()
		return msg, true, nil
	case c.legacy && msg.Type == "start":
		forward, err := c.startOperation(msg)
		return msg, forward, err
	case c.legacy && msg.Type == "stop":
		return msg, false, c.stopOperation(msg)
	case c.legacy:
		return msg, true, nil
	case msg.Type == "subscribe":
		if !initSeen {
			return msg, false, c.closeWith(closeUnauthorized, "Unauthorized")
		}
		if msg.ID == nil || *msg.ID == "" {
			return msg, false, c.closeWith(closeBadRequest, "Invalid message received: subscribe needs an id")
		}
		if err := validSubscribePayload(msg.Payload); err != nil {
			return msg, false, c.closeWith(closeBadRequest, "Invalid message received: "+err.Error())
		}
		forward, err := c.startOperation(msg)
		return msg, forward, err
	case msg.Type == "complete":
		if msg.ID == nil || *msg.ID == "" {
			return msg, false, c.closeWith(closeBadRequest, "Invalid message received: complete needs an id")
		}
		return msg, false, c.stopOperation(msg) // before the ack there is nothing to complete
	case msg.Type == "ping" && !initSeen:
		// The protocol allows pings at any time, before the ack too.
		return msg, false, c.write(serverMessage{Payload: msg.Payload, Type: "pong"})
	case msg.Type == "pong":
		c.mu.Lock()
		c.pongSeen = true
		c.mu.Unlock()
		return msg, initSeen, nil
	case msg.Type == "ping":
		return msg, true, nil
	default:
		return msg, false, c.closeWith(closeBadRequest, fmt.Sprintf("Invalid message received: unexpected type %q", msg.Type))
	}
}

// startOperation admits a subscribe (start) when its id is free and the
// connection is under its cap, and runs it (wsop.go). Over the cap the
// operation alone fails with RATE_LIMITED and the connection stays: the
// client can complete another operation and retry.
func (c *wsConn) startOperation(msg clientMessage) (forward bool, err error) {
	c.mu.Lock()
	opCtx := c.opCtx
	c.mu.Unlock()
	if opCtx == nil {
		return true, nil // a legacy start before the ack: serve refuses it
	}
	if msg.ID == nil {
		return false, c.write(serverMessage{Type: "error", Payload: json.RawMessage(`[{"message":"start needs an id"}]`)})
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
	var op *wsOperation
	if !taken && !full && !limited && !ownerFull {
		ctx, cancel := context.WithCancel(opCtx)
		c.mu.Lock()
		if c.finished { // finish has released the slots already
			c.ws.release(c.ws.subs, owner, 1)
			cancel()
		} else {
			c.active[id] = cancel
			op = &wsOperation{c: c, id: id, ctx: ctx, cancel: cancel}
		}
		c.mu.Unlock()
	}
	var refusal string
	var extensions any = map[string]string{"code": aisle.ERATELIMITED}
	switch {
	case taken && !c.legacy:
		// An id is taken until the server's complete or error for it,
		// even after the client's complete: until then the operation
		// may still send under it, mixing up the two.
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
	case op != nil:
		// Off the read loop: parsing and the resolver's first reads
		// neither hold up the connection's other messages nor grow the
		// stack of its resting goroutine.
		go op.run(msg.Payload)
		return false, nil
	default:
		return false, nil // the connection is ending
	}
	return false, c.write(map[string]any{"id": id, "type": "error", "payload": []any{map[string]any{
		"message": refusal, "extensions": extensions,
	}}})
}

// stopOperation ends the operation the client completes (legacy: stops);
// the server's complete follows when it has ended. An unknown id is
// ignored: the operation may have ended already.
func (c *wsConn) stopOperation(msg clientMessage) error {
	if msg.ID == nil {
		return nil
	}
	c.mu.Lock()
	cancel := c.active[*msg.ID]
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
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
