// Package auth turns API keys into principals. Both credential paths, the
// HTTP Authorization header (Middleware) and the websocket connection_init
// payload (WebsocketInit), go through Authenticate; wrap the key store in a
// Cache and pass the same Cache to both.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/aisle/aisle/aisle"
)

// KeyLookup finds the principal of a live API key by its hash (HashKey).
// It returns an EUNAUTHENTICATED *aisle.Error for unknown or revoked keys;
// postgres.DB implements it, and Cache wraps any KeyLookup.
type KeyLookup interface {
	PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error)
}

// Authenticate returns the principal of an Authorization value: Anonymous
// when it is empty, the key's principal for "Bearer KEY" with a live key.
// It is the one credential path of Middleware and WebsocketInit. Errors:
// EUNAUTHENTICATED when the value is malformed or the key unknown or
// revoked; EUNAVAILABLE when keys could not be checked (Cache logs why).
func Authenticate(ctx context.Context, keys KeyLookup, authorization string) (*aisle.Principal, error) {
	p, _, err := authenticate(ctx, keys, authorization)
	return p, err
}

// authenticate is Authenticate that also returns the key's hash (nil for
// anonymous), which withPrincipal keeps for Recheck.
func authenticate(ctx context.Context, keys KeyLookup, authorization string) (*aisle.Principal, []byte, error) {
	if authorization == "" {
		return aisle.Anonymous, nil, nil
	}
	scheme, key, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return nil, nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "malformed Authorization: want \"Bearer KEY\"")
	}
	if !wellFormed(key) {
		return nil, nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "malformed API key")
	}
	hash := HashKey(key)
	p, err := lookup(ctx, keys, hash)
	if err != nil {
		return nil, nil, err
	}
	return p, hash, nil
}

// lookup asks keys for the principal of hash, hiding why keys could not be
// checked (Cache logs it). A refused key and a client sending too many of
// them (ERATELIMITED) are told as they are.
func lookup(ctx context.Context, keys KeyLookup, hash []byte) (*aisle.Principal, error) {
	p, err := keys.PrincipalByKeyHash(ctx, hash)
	if err != nil {
		if code := aisle.ErrorCode(err); code == aisle.EUNAUTHENTICATED || code == aisle.ERATELIMITED {
			return nil, err
		}
		return nil, aisle.Errorf(aisle.EUNAVAILABLE, "cannot check API keys right now; retry later")
	}
	return p, nil
}

// keyHashKey is the context key of the hash of the key a principal came
// from, so a long-lived connection can be re-checked after a revocation.
type keyHashKey struct{}

// withPrincipal returns ctx carrying p and the hash of its key.
func withPrincipal(ctx context.Context, p *aisle.Principal, hash []byte) context.Context {
	return context.WithValue(aisle.NewContextWithPrincipal(ctx, p), keyHashKey{}, hash)
}

// Recheck reports whether the key behind ctx's principal (set by Middleware
// or WebsocketInit) is still live: nil for a live key and for anonymous
// callers, EUNAUTHENTICATED once the key is revoked, EUNAVAILABLE when keys
// cannot be checked. Through a Cache it costs a map lookup until the key's
// entry expires, so a revocation is seen at most one TTL after the entry
// was last refreshed.
func Recheck(ctx context.Context, keys KeyLookup) error {
	hash, _ := ctx.Value(keyHashKey{}).([]byte)
	if hash == nil {
		return nil
	}
	_, err := lookup(ctx, keys, hash)
	return err
}

// Middleware puts the caller's principal in each request's context
// (aisle.PrincipalFromContext): Anonymous without an Authorization header.
// A bad key is answered with 401 and a GraphQL-shaped error, never passed
// on, so a client that sends a key never silently runs as anonymous.
func Middleware(keys KeyLookup, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		var p *aisle.Principal
		var hash []byte
		var err error
		if len(values) > 1 {
			err = aisle.Errorf(aisle.EUNAUTHENTICATED, "more than one Authorization header")
		} else {
			p, hash, err = authenticate(r.Context(), keys, r.Header.Get("Authorization"))
		}
		if err != nil {
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p, hash)))
	})
}

// RateLimitedError is a KeyLookup's refusal of a client that sends too
// many unknown keys: an ERATELIMITED *aisle.Error (Err) and when to retry,
// which Middleware sends as Retry-After.
type RateLimitedError struct {
	Err        *aisle.Error
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Err.Error() }
func (e *RateLimitedError) Unwrap() error { return e.Err }

// writeError answers like a GraphQL server would:
// {"errors":[{"message":…,"extensions":{"code":…}}]}.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	switch aisle.ErrorCode(err) {
	case aisle.EUNAUTHENTICATED:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="aisle", error="invalid_token"`)
	case aisle.ERATELIMITED:
		status = http.StatusTooManyRequests
		if limited := (*RateLimitedError)(nil); errors.As(err, &limited) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(limited.RetryAfter.Seconds())))))
		}
	}
	type gqlError struct {
		Message    string            `json:"message"`
		Extensions map[string]string `json:"extensions"`
	}
	body := struct {
		Errors []gqlError `json:"errors"`
	}{[]gqlError{{aisle.ErrorMessage(err), map[string]string{"code": aisle.ErrorCode(err)}}}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) // the client is told by the status if this fails
}

// graphql-transport-ws close codes for a rejected connection_init: a bad
// key, or a client sending too many bad ones.
const (
	websocketForbidden = 4403
	websocketTooMany   = 4429
)

// WebsocketInit returns the gqlgen InitFunc of the websocket transport. It
// reads "Authorization" (any case) from the connection_init payload and
// authenticates it like Middleware does the header. Without one, the
// connection keeps the principal of the upgrade request (browsers cannot
// set headers on websockets, other clients may). A bad key rejects the
// connection with close code 4403.
func WebsocketInit(keys KeyLookup) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		authorization, found, err := payloadAuthorization(payload)
		if err == nil && found {
			var p *aisle.Principal
			var hash []byte
			if p, hash, err = authenticate(ctx, keys, authorization); err == nil {
				ctx = withPrincipal(ctx, p, hash)
			}
		}
		if err != nil {
			// gqlgen sends err's text to the client and closes with
			// the code and reason found in the returned context.
			code := websocketForbidden
			if aisle.ErrorCode(err) == aisle.ERATELIMITED {
				code = websocketTooMany
			}
			ctx = transport.WithWebsocketCloseCode(ctx, code)
			ctx = transport.AppendCloseReason(ctx, aisle.ErrorMessage(err))
			return ctx, nil, err
		}
		return ctx, nil, nil
	}
}

// payloadAuthorization finds the Authorization entry of a connection_init
// payload, matching the name case-insensitively as HTTP does.
func payloadAuthorization(payload transport.InitPayload) (value string, found bool, err error) {
	for k, v := range payload {
		if !strings.EqualFold(k, "Authorization") {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return "", false, aisle.Errorf(aisle.EUNAUTHENTICATED, "connection_init Authorization must be a string")
		}
		if found && s != value {
			return "", false, aisle.Errorf(aisle.EUNAUTHENTICATED, "connection_init has conflicting Authorization entries")
		}
		value, found = s, true
	}
	return value, found, nil
}
