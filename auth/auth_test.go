package auth_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

func newCache(t *testing.T, keys auth.KeyLookup) *auth.Cache {
	t.Helper()
	c, err := auth.NewCache(keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testKey is a key and its ID.
type testKey struct{ Key, ID string }

func createKey(t *testing.T, db *postgres.DB, role aisle.Role, retailerID, userID string) testKey {
	t.Helper()
	ctx := context.Background()
	key, hash := auth.NewKey()
	_, err := db.CreateKey(ctx, hash, role, retailerID, userID, "test "+string(role))
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.PrincipalByKeyHash(ctx, auth.HashKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return testKey{Key: key, ID: p.KeyID}
}

// serve runs one request through the middleware and returns the status, the
// principal the handler saw (nil when it was not called) and the decoded
// error body.
func serve(t *testing.T, keys auth.KeyLookup, authorization ...string) (int, *aisle.Principal, errorBody) {
	t.Helper()
	var seen *aisle.Principal
	h := auth.Middleware(keys, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = aisle.PrincipalFromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	for _, v := range authorization {
		req.Header.Add("Authorization", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body errorBody
	if rec.Code != http.StatusOK {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("error Content-Type %q", ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("error body %q: %v", rec.Body.String(), err)
		}
	}
	return rec.Code, seen, body
}

type errorBody struct {
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

func (b errorBody) code() string {
	if len(b.Errors) != 1 || b.Errors[0].Message == "" {
		return ""
	}
	return b.Errors[0].Extensions.Code
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	customer := createKey(t, db, aisle.RoleCustomer, "", "u-7")
	retailer := createKey(t, db, aisle.RoleRetailer, "r-1", "")
	revoked := createKey(t, db, aisle.RoleShopper, "", "")
	if err := db.RevokeKey(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := auth.NewKey()
	a := newCache(t, db)

	t.Run("no header is anonymous", func(t *testing.T) {
		t.Parallel()
		status, p, _ := serve(t, a)
		if status != http.StatusOK || p != aisle.Anonymous {
			t.Fatalf("status %d, principal %+v; want 200, anonymous", status, p)
		}
	})
	t.Run("valid keys", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			header string
			want   aisle.Principal
		}{
			{"Bearer " + customer.Key, aisle.Principal{KeyID: customer.ID, Name: "test customer", Role: aisle.RoleCustomer, UserID: "u-7"}},
			{"bearer  " + retailer.Key + " ", aisle.Principal{KeyID: retailer.ID, Name: "test retailer", Role: aisle.RoleRetailer, RetailerID: "r-1"}},
		} {
			status, p, _ := serve(t, a, tt.header)
			if status != http.StatusOK || p == nil || *p != tt.want {
				t.Errorf("%q: status %d, principal %+v; want 200, %+v", tt.header, status, p, tt.want)
			}
		}
	})
	t.Run("rejected", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			reason  string
			headers []string
		}{
			{"unknown key", []string{"Bearer " + unknown}},
			{"revoked key", []string{"Bearer " + revoked.Key}},
			{"not a key", []string{"Bearer hunter2"}},
			{"no scheme", []string{customer.Key}},
			{"basic auth", []string{"Basic dXNlcjpwYXNz"}},
			{"scheme only", []string{"Bearer"}},
			{"two headers", []string{"Bearer " + customer.Key, "Bearer " + retailer.Key}},
		} {
			status, p, body := serve(t, a, tt.headers...)
			if status != http.StatusUnauthorized || p != nil || body.code() != aisle.EUNAUTHENTICATED {
				t.Errorf("%s: status %d, handler saw %v, body %+v; want 401 %s", tt.reason, status, p, body, aisle.EUNAUTHENTICATED)
			}
		}
	})
}

// A key that cannot be checked is not treated as anonymous or invalid: the
// request fails as unavailable.
func TestMiddleware_DatabaseDown(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	key := createKey(t, db, aisle.RoleOps, "", "")
	db.Close()
	status, p, body := serve(t, newCache(t, db), "Bearer "+key.Key)
	if status != http.StatusServiceUnavailable || p != nil || body.code() != aisle.EUNAVAILABLE {
		t.Fatalf("status %d, principal %v, body %+v; want 503 %s", status, p, body, aisle.EUNAVAILABLE)
	}
}

func TestWebsocketInit(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	shopper := createKey(t, db, aisle.RoleShopper, "", "")
	ops := createKey(t, db, aisle.RoleOps, "", "")
	unknown, _ := auth.NewKey()
	// The principal the upgrade request's header gave, if any.
	httpCtx := aisle.NewContextWithPrincipal(context.Background(), &aisle.Principal{KeyID: "from-header", Role: aisle.RoleService})

	initFunc := auth.WebsocketInit(newCache(t, db))
	for _, tt := range []struct {
		reason  string
		ctx     context.Context
		payload transport.InitPayload
		wantKey string // KeyID of the resulting principal; "" for anonymous
		wantErr bool
	}{
		{"Authorization", context.Background(), transport.InitPayload{"Authorization": "Bearer " + shopper.Key}, shopper.ID, false},
		{"lower case", context.Background(), transport.InitPayload{"authorization": "Bearer " + ops.Key}, ops.ID, false},
		{"upper case", context.Background(), transport.InitPayload{"AUTHORIZATION": "Bearer " + ops.Key}, ops.ID, false},
		{"payload key replaces header", httpCtx, transport.InitPayload{"Authorization": "Bearer " + shopper.Key}, shopper.ID, false},
		{"no payload is anonymous", context.Background(), nil, "", false},
		{"no payload keeps header", httpCtx, transport.InitPayload{"other": 1}, "from-header", false},
		{"unknown key", context.Background(), transport.InitPayload{"Authorization": "Bearer " + unknown}, "", true},
		{"malformed", httpCtx, transport.InitPayload{"Authorization": "Token x"}, "", true},
		{"not a string", context.Background(), transport.InitPayload{"Authorization": 42}, "", true},
		{"conflicting", context.Background(), transport.InitPayload{"Authorization": "Bearer " + shopper.Key, "authorization": "Bearer " + ops.Key}, "", true},
	} {
		ctx, ack, err := initFunc(tt.ctx, tt.payload)
		if ack != nil {
			t.Errorf("%s: unexpected ack payload %v", tt.reason, ack)
		}
		if ctx == nil {
			t.Fatalf("%s: nil context (gqlgen reads the close reason from it)", tt.reason)
		}
		if tt.wantErr {
			if aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
				t.Errorf("%s: error %v, want %s", tt.reason, err, aisle.EUNAUTHENTICATED)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.reason, err)
			continue
		}
		if got := aisle.PrincipalFromContext(ctx).KeyID; got != tt.wantKey {
			t.Errorf("%s: principal key %q, want %q", tt.reason, got, tt.wantKey)
		}
	}
}

// A revoked key is refused once its cache entry expires, at most TTL after
// the revocation.
func TestCache_RevocationWithinTTL(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	key := createKey(t, db, aisle.RoleShopper, "", "")
	cache := newCache(t, db)
	now := time.Now()
	cache.Now = func() time.Time { return now }

	if status, p, _ := serve(t, cache, "Bearer "+key.Key); status != http.StatusOK || p.KeyID != key.ID {
		t.Fatalf("before revocation: status %d, principal %+v", status, p)
	}
	if err := db.RevokeKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(auth.DefaultTTL)
	if status, _, body := serve(t, cache, "Bearer "+key.Key); status != http.StatusUnauthorized || body.code() != aisle.EUNAUTHENTICATED {
		t.Fatalf("one TTL after revocation: status %d, body %+v; want 401", status, body)
	}
}

// Recheck sees a revocation once the key's cache entry expires, whichever
// credential path (header or connection_init) gave the principal.
func TestRecheck(t *testing.T) {
	t.Parallel()
	db := postgrestest.MustOpenSeededDB(t)
	fromHeader := createKey(t, db, aisle.RoleShopper, "", "")
	fromInit := createKey(t, db, aisle.RoleOps, "", "")
	cache := newCache(t, db)
	now := time.Now()
	cache.Now = func() time.Time { return now }

	var headerCtx context.Context
	h := auth.Middleware(cache, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { headerCtx = r.Context() }))
	req := httptest.NewRequest(http.MethodGet, "/graphql", nil)
	req.Header.Set("Authorization", "Bearer "+fromHeader.Key)
	h.ServeHTTP(httptest.NewRecorder(), req)
	initCtx, _, err := auth.WebsocketInit(cache)(context.Background(), transport.InitPayload{"Authorization": "Bearer " + fromInit.Key})
	if err != nil || headerCtx == nil {
		t.Fatalf("authenticate: %v (header context %v)", err, headerCtx)
	}
	for name, ctx := range map[string]context.Context{"header": headerCtx, "connection_init": initCtx, "anonymous": context.Background()} {
		if err := auth.Recheck(ctx, cache); err != nil {
			t.Errorf("%s: live key rechecked as %v", name, err)
		}
	}

	for _, k := range []testKey{fromHeader, fromInit} {
		if err := db.RevokeKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(auth.DefaultTTL)
	for name, ctx := range map[string]context.Context{"header": headerCtx, "connection_init": initCtx} {
		if err := auth.Recheck(ctx, cache); aisle.ErrorCode(err) != aisle.EUNAUTHENTICATED {
			t.Errorf("%s: revoked key rechecked as %v, want %s", name, err, aisle.EUNAUTHENTICATED)
		}
	}
	if err := auth.Recheck(context.Background(), cache); err != nil {
		t.Errorf("anonymous: %v", err)
	}
}
