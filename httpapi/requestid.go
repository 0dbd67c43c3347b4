package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
)

// RequestIDHeader carries a request's id in both directions: a caller (or a
// proxy in front of us) may set it to tie our logs to its own, and every
// answer carries the id its log lines have.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLength bounds a caller's id: it lands in every log line of
// the request.
const maxRequestIDLength = 64

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "". Every
// operation of a websocket connection has the connection's id.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives each request an id: the caller's X-Request-Id when it
// is well formed, else a new random one. It is sent back in the response
// header and kept in the context for the logs (see LogHandler).
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text() // 26 characters, 130 random bits
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// validRequestID accepts ids of letters, digits and - _ . : (UUIDs, trace
// ids, ULIDs), so a caller cannot put quotes, spaces or control characters
// into log lines or other systems' headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// maxLoggedOperationName bounds the operation name a log line carries; the
// client chooses it.
const maxLoggedOperationName = 128

// LogHandler wraps h so that every record logged with a request's context
// carries its request_id, and within a GraphQL operation its operation
// name (unless the record already names an operation).
func LogHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil { // slog allows it
		return h.Handler.Handle(ctx, r)
	}
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if name := operationName(ctx); name != "" && !hasAttr(r, "operation") {
		r.AddAttrs(slog.String("operation", name))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// operationName is the name of the GraphQL operation ctx runs, or "".
func operationName(ctx context.Context) string {
	if !graphql.HasOperationContext(ctx) {
		return ""
	}
	op := graphql.GetOperationContext(ctx)
	name := op.OperationName
	if op.Operation != nil && op.Operation.Name != "" {
		name = op.Operation.Name
	}
	if len(name) > maxLoggedOperationName {
		name = name[:maxLoggedOperationName]
	}
	return name
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
