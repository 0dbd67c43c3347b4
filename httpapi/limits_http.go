package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

// RateLimiter decides whether the caller identified by key may run one more
// operation now, and if not, when it may retry. ratelimit.Limiter shares
// its counts between replicas through Redis.
type RateLimiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
}

// limitRequests applies the per-request limits of plain HTTP: the caller's
// rate (before the body is read, so a flood costs little) and the size of
// the body. Websocket upgrades pass: their operations are rate-limited one
// by one (wsConn.startOperation) and their messages bounded by the
// transport's read limit. The body must arrive within bodyTimeout: the
// server's ReadHeaderTimeout covers only the headers, and a context
// deadline does not interrupt a blocked read, so without it a client could
// trickle a body and hold a goroutine and its buffer for ever. The whole
// answer must be written within writeTimeout of the headers' arrival. It must run
// inside auth.Middleware, which identifies the caller, and withClientIP.
func limitRequests(limiter RateLimiter, maxBody int64, bodyTimeout, writeTimeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		if limiter != nil && r.Method != http.MethodOptions { // a CORS preflight is not an operation
			if ok, retryAfter := limiter.Allow(ctx, rateKey(ctx)); !ok {
				e := rateLimitError(retryAfter)
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(retryAfter)))
				writeJSON(w, http.StatusTooManyRequests, graphql.Response{Errors: gqlerror.List{e}})
				return
			}
		}
		// net/http clears both deadlines when it reads the next request.
		// The write deadline frees the connection, its goroutine and its
		// buffers from a client that never reads its answer.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
			e := limitError(limitRequestBytes, int(maxBody), "the request body is too large: the limit is %d bytes", maxBody)
			writeJSON(w, http.StatusRequestEntityTooLarge, graphql.Response{Errors: gqlerror.List{e}})
			return
		} else if err != nil {
			// The client went away, was too slow, or sent a broken chunked body.
			writeJSON(w, http.StatusBadRequest, graphql.Response{Errors: gqlerror.List{{
				Message:    "could not read the request body (sent too slowly, cut off, or malformed)",
				Extensions: map[string]any{"code": aisle.EINVALID},
			}}})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func rateLimitError(retryAfter time.Duration) *gqlerror.Error {
	limitRejections.WithLabelValues(limitRate).Inc()
	seconds := retrySeconds(retryAfter)
	return &gqlerror.Error{
		Message:    fmt.Sprintf("too many operations for this API key (or address, without a key): retry after %d s", seconds),
		Extensions: map[string]any{"code": aisle.ERATELIMITED, "retryAfter": seconds},
	}
}

// retrySeconds rounds up: Retry-After has whole seconds, and retrying
// early is refused again.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

type clientIPKey struct{}

// withClientIP puts the client's address in the request context for the
// limits (rateKey, GuardKeyLookups), which authentication already needs.
func withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, clientIP(r))))
	})
}

// rateKey is whom an operation counts against: its API key, or its client
// address for anonymous callers.
func rateKey(ctx context.Context) string {
	if p := aisle.PrincipalFromContext(ctx); p != nil && p.KeyID != "" {
		return "key:" + p.KeyID
	}
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return "ip:" + ip
}

// clientIP is the peer's address. X-Forwarded-For is not trusted: any
// client can set it, and would get a fresh allowance per made-up address.
// Behind a proxy every anonymous caller shares the proxy's allowance; give
// such clients keys.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
