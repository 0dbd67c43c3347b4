package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// openSeeded returns a seeded database with a fixed clock, and its URL.
func openSeeded(t *testing.T, now time.Time) (*postgres.DB, string) {
	t.Helper()
	url := postgrestest.NewDatabaseURL(t)
	db, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	db.Now = func() time.Time { return now }
	if _, err := db.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db, url
}

func TestKeys_CreateLookupRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	db, url := openSeeded(t, now)

	seenIDs := map[string]bool{}
	for _, tt := range []struct {
		role               aisle.Role
		retailerID, userID string
	}{
		{aisle.RoleCustomer, "", "u-42"},
		{aisle.RoleShopper, "", ""},
		{aisle.RoleRetailer, "r-2", ""},
		{aisle.RoleOps, "", ""},
		{aisle.RoleService, "", ""},
	} {
		name := string(tt.role) + " key"
		key, hash := auth.NewKey()
		_, err := db.CreateKey(ctx, hash, tt.role, tt.retailerID, tt.userID, name)
		if err != nil {
			t.Fatalf("%s: %v", tt.role, err)
		}
		if !strings.HasPrefix(key, "aisle_") || len(key) != 58 {
			t.Errorf("%s: key %q", tt.role, key)
		}
		p, err := db.PrincipalByKeyHash(ctx, auth.HashKey(key))
		if err != nil {
			t.Fatalf("%s: lookup: %v", tt.role, err)
		}
		if !strings.HasPrefix(p.KeyID, "k-") || seenIDs[p.KeyID] {
			t.Errorf("%s: key ID %q is not a new k-N", tt.role, p.KeyID)
		}
		seenIDs[p.KeyID] = true
		want := aisle.Principal{KeyID: p.KeyID, Name: name, Role: tt.role, UserID: tt.userID, RetailerID: tt.retailerID}
		if *p != want {
			t.Errorf("principal %+v, want %+v", *p, want)
		}
	}

	key, hash := auth.NewKey()
	_, err := db.CreateKey(ctx, hash, aisle.RoleShopper, "", "", "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.PrincipalByKeyHash(ctx, auth.HashKey(key))
	if err != nil {
		t.Fatal(err)
	}
	// Only the SHA-256 is stored: no column holds the key itself.
	conn := connect(t, url)
	var stored []byte
	var createdAt time.Time
	err = conn.QueryRow(ctx, `SELECT key_hash, created_at FROM api_keys WHERE id = $1`, p.KeyID).Scan(&stored, &createdAt)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(key)); !bytes.Equal(stored, sum[:]) {
		t.Errorf("stored hash %x is not the SHA-256 of the key", stored)
	}
	if n := count(t, conn, `SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0`, key); n != 0 {
		t.Errorf("the plaintext key is stored in %d rows", n)
	}
	if !createdAt.Equal(now) {
		t.Errorf("created_at %v, want the injected %v", createdAt, now)
	}

	if err := db.RevokeKey(ctx, p.KeyID); err != nil {
		t.Fatal(err)
	}
	_, err = db.PrincipalByKeyHash(ctx, auth.HashKey(key))
	wantCode(t, err, aisle.EUNAUTHENTICATED)
	if err := db.RevokeKey(ctx, p.KeyID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	wantCode(t, db.RevokeKey(ctx, "k-999999"), aisle.ENOTFOUND)

	_, err = db.PrincipalByKeyHash(ctx, auth.HashKey("aisle_unknown"))
	wantCode(t, err, aisle.EUNAUTHENTICATED)
}

func TestKeys_RoleBinding(t *testing.T) {
	t.Parallel()
	db, _ := openSeeded(t, time.Now())
	for _, tt := range []struct {
		reason                   string
		role                     aisle.Role
		retailerID, userID, name string
		code                     string
	}{
		{"customer without user", aisle.RoleCustomer, "", "", "k", aisle.EINVALID},
		{"customer with bad user ID", aisle.RoleCustomer, "", "u 1", "k", aisle.EINVALID},
		{"customer with retailer", aisle.RoleCustomer, "r-1", "u-1", "k", aisle.EINVALID},
		{"retailer without retailer", aisle.RoleRetailer, "", "", "k", aisle.EINVALID},
		{"retailer with user", aisle.RoleRetailer, "r-1", "u-1", "k", aisle.EINVALID},
		{"retailer unknown", aisle.RoleRetailer, "r-999", "", "k", aisle.ENOTFOUND},
		{"shopper with retailer", aisle.RoleShopper, "r-1", "", "k", aisle.EINVALID},
		{"shopper with bad user ID", aisle.RoleShopper, "", "sh:1", "k", aisle.EINVALID},
		{"ops with retailer", aisle.RoleOps, "r-1", "", "k", aisle.EINVALID},
		{"service with user", aisle.RoleService, "", "u-1", "k", aisle.EINVALID},
		{"anonymous", aisle.RoleAnonymous, "", "", "k", aisle.EINVALID},
		{"unknown role", aisle.Role("admin"), "", "", "k", aisle.EINVALID},
		{"no name", aisle.RoleOps, "", "", "", aisle.EINVALID},
		{"name too long", aisle.RoleOps, "", "", strings.Repeat("n", 201), aisle.EINVALID},
	} {
		_, hash := auth.NewKey()
		_, err := db.CreateKey(context.Background(), hash, tt.role, tt.retailerID, tt.userID, tt.name)
		if got := aisle.ErrorCode(err); got != tt.code || aisle.ErrorMessage(err) == "" {
			t.Errorf("%s: got %v, want %s", tt.reason, err, tt.code)
		}
	}
}

func TestAvailabilityPriors_SaveLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenDB(t)

	p, err := db.LoadAvailabilityPriors(ctx)
	if err != nil || !reflect.DeepEqual(p, models.DefaultAvailabilityPriors()) {
		t.Fatalf("nothing saved: %+v, %v; want the default priors", p, err)
	}

	first := models.AvailabilityPriors{Global: models.FoundRate{Found: 80, Total: 100}, Observations: 100}
	second := models.AvailabilityPriors{
		Global:       models.FoundRate{Found: 850, Total: 1000},
		Categories:   map[string]models.FoundRate{"Fresh Fruit": {Found: 90, Total: 100}},
		Products:     map[string]models.FoundRate{"p-1": {Found: 9, Total: 10}},
		Observations: 1000,
		FittedAt:     time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
	}
	// (Only fields unlikely to change are set: the document is the models
	// package's business; this test checks that it round-trips.)
	for _, saved := range []models.AvailabilityPriors{first, second} {
		if err := db.SaveAvailabilityPriors(ctx, saved); err != nil {
			t.Fatal(err)
		}
	}
	p, err = db.LoadAvailabilityPriors(ctx)
	if err != nil || !reflect.DeepEqual(p, second) {
		t.Fatalf("loaded %+v, %v; want the newest %+v", p, err, second)
	}
}
