package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/live"
)

// wsOperation is one operation a websocket client started (subscribe, or
// legacy start). wsConn runs it rather than gqlgen's transport, which
// holds a goroutine blocked on every subscription's channel for as long
// as it lasts (8 KiB of stack each). A subscription fed by the live hub
// (live.Stream, live.StreamTransitions) holds none: the hub signals each
// value it puts into the channel, and only then does a goroutine start to
// receive it, write it and end. Other operations (queries, mutations,
// subscriptions whose resolver has a goroutine of its own) are read by a
// goroutine until they end, as gqlgen does.
type wsOperation struct {
	c      *wsConn
	id     string
	ctx    context.Context // ended by cancel: the client's complete, the connection's end, or the operation's
	cancel context.CancelFunc
	rc     *graphql.OperationContext

	mu        sync.Mutex
	responses graphql.ResponseHandler // set once dispatched; signals wait for it
	signals   int                     // values (or the close) signalled and not yet received
	draining  bool                    // a goroutine is receiving them
	over      bool                    // the last response has been taken
}

// serverMessage is the envelope of both protocols' server messages, with
// gqlgen's field order (wsConn.WriteJSON relies on "type" being last).
type serverMessage struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
}

// run parses, validates and dispatches the operation; it is the only
// goroutine of a hub-fed subscription until its first value.
func (op *wsOperation) run(payload json.RawMessage) {
	start := graphql.Now()
	ctx := graphql.StartOperationTrace(op.ctx)
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		op.sendErrors(&gqlerror.Error{Message: "invalid json"})
		op.end()
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	exec := op.c.exec
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			op.sendErrors(resp.Errors...)
		} else {
			op.send(&graphql.Response{Errors: errs})
		}
		op.end()
		return
	}
	op.rc = rc
	ctx, signalled := live.WithReadySignal(graphql.WithOperationContext(ctx, rc), op.signal)
	responses, ctx, ok := op.dispatch(ctx)
	if !ok {
		op.end()
		return
	}
	if !signalled() {
		for op.next(responses, ctx) {
		}
		op.end()
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.ctx, op.responses = ctx, responses
	op.drainLocked()
}

// dispatch runs the operation's resolvers up to its stream; ok is false
// when it panicked (the client has the error).
func (op *wsOperation) dispatch(ctx context.Context) (responses graphql.ResponseHandler, _ context.Context, ok bool) {
	defer op.recoverPanic(ctx, &ok)
	responses, ctx = op.c.exec.DispatchOperation(ctx, op.rc)
	return responses, ctx, true
}

// signal is the hub's: one more value, or the channel's close, can be
// received. It runs under the hub's lock, so it only counts and starts a
// goroutine.
func (op *wsOperation) signal() {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.signals++
	op.drainLocked()
}

// drainLocked starts the goroutine that receives what was signalled,
// unless one runs or the operation is not dispatched yet; op.mu is held.
func (op *wsOperation) drainLocked() {
	if op.responses == nil || op.signals == 0 || op.draining || op.over {
		return
	}
	op.draining = true
	go op.drain()
}

// drain receives and sends one response per signal, in order, and ends
// when none is left. Its write waits for the peer (at most the write
// timeout), and until it returns the hub keeps newer values for this
// subscription, with its limit on how many.
func (op *wsOperation) drain() {
	for {
		op.mu.Lock()
		if op.signals == 0 || op.over {
			op.draining = false
			op.mu.Unlock()
			return
		}
		op.signals--
		op.mu.Unlock()
		if !op.next(op.responses, op.ctx) {
			op.mu.Lock()
			op.over, op.draining = true, false
			op.mu.Unlock()
			op.end()
			return
		}
	}
}

// next sends the operation's next response and reports whether more may
// follow.
func (op *wsOperation) next(responses graphql.ResponseHandler, ctx context.Context) (more bool) {
	defer op.recoverPanic(ctx, &more)
	resp := responses(ctx)
	if resp == nil {
		return false
	}
	op.send(resp)
	return true
}

// recoverPanic answers a panic of the operation's resolvers with an error
// message, as gqlgen's transport does, and sets *ok to false.
func (op *wsOperation) recoverPanic(ctx context.Context, ok *bool) {
	r := recover()
	if r == nil {
		return
	}
	*ok = false
	err := op.rc.Recover(ctx, r)
	var gqlErr *gqlerror.Error
	if !errors.As(err, &gqlErr) {
		gqlErr = &gqlerror.Error{}
		if err != nil {
			gqlErr.Message = err.Error()
		}
	}
	op.sendErrors(gqlErr)
}

// end completes the operation for the client and releases its context.
func (op *wsOperation) end() {
	_ = op.c.WriteJSON(serverMessage{ID: op.id, Type: "complete"})
	op.cancel()
}

func (op *wsOperation) send(resp *graphql.Response) {
	payload, err := json.Marshal(resp)
	if err != nil {
		op.sendErrors(&gqlerror.Error{Message: "cannot encode the response: " + err.Error()})
		return
	}
	typ := "next"
	if op.c.legacy {
		typ = "data"
	}
	_ = op.c.WriteJSON(serverMessage{Payload: payload, ID: op.id, Type: typ})
}

func (op *wsOperation) sendErrors(errs ...*gqlerror.Error) {
	payload, err := json.Marshal(errs)
	if err != nil {
		payload = []byte(`[{"message":"cannot encode the error"}]`)
	}
	_ = op.c.WriteJSON(serverMessage{Payload: payload, ID: op.id, Type: "error"})
}
