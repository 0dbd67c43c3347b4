// Package catalogtest gives tests a real, private PostgreSQL database.
package catalogtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/catalog"
)

// DefaultURL is used when DATABASE_URL is not set. Only the server part of
// either URL matters: each test gets its own database on that server.
const DefaultURL = "postgres://postgres@localhost:5432/postgres?sslmode=disable"

// StartCommand starts the local PostgreSQL cluster on a machine like CI's.
const StartCommand = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

// NewDatabaseURL returns the URL of a uniquely named database on the server
// of DATABASE_URL (or DefaultURL). The database does not exist yet
// (catalog.Open creates it); it is dropped when the test ends. DATABASE_URL
// must be a URL (postgres://…), not a keyword/value string.
func NewDatabaseURL(tb testing.TB) string {
	tb.Helper()
	serverURL := os.Getenv("DATABASE_URL")
	if serverURL == "" {
		serverURL = DefaultURL
	}
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme == "" {
		tb.Fatalf("catalogtest: DATABASE_URL %q is not a postgres:// URL", serverURL)
	}
	mustReach(tb, u)
	name := "aisle_test_" + randomHex(6)
	u.Path = "/" + name
	tb.Cleanup(func() { dropDatabase(tb, u, name) })
	return u.String()
}

// MustOpenDB opens (creating and migrating) a fresh database from
// NewDatabaseURL. It is closed and dropped when the test ends.
func MustOpenDB(tb testing.TB) *catalog.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := catalog.Open(ctx, NewDatabaseURL(tb), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("catalogtest: open test database: %v", err)
	}
	// Cleanups run last-in first-out: the pool closes before the drop.
	tb.Cleanup(db.Close)
	return db
}

// MustOpenSeededDB is MustOpenDB with the demo catalog seeded (see
// catalog.SeedDemo): stores s-1…s-24 of retailers r-1…r-4, products
// p-1…p-2100 in 30 categories.
func MustOpenSeededDB(tb testing.TB) *catalog.DB {
	tb.Helper()
	db := MustOpenDB(tb)
	seeded, err := db.SeedDemo(context.Background())
	if err != nil {
		tb.Fatalf("catalogtest: seed demo catalog: %v", err)
	}
	if !seeded {
		tb.Fatalf("catalogtest: fresh database was not empty")
	}
	return db
}

// mustReach fails the test with the command that starts PostgreSQL when the
// server does not answer.
func mustReach(tb testing.TB, server *url.URL) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, maintenanceURL(server))
	if err != nil {
		tb.Fatalf("catalogtest: PostgreSQL at %s is not reachable (%v).\nStart it with:\n\t%s\nor point DATABASE_URL at a server.",
			server.Redacted(), err, StartCommand)
	}
	conn.Close(ctx)
}

// DropDatabase drops the database of databaseURL (one of NewDatabaseURL's)
// at once, disconnecting its users: for tests of what clients see when a
// server's database is gone.
func DropDatabase(tb testing.TB, databaseURL string) {
	tb.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		tb.Fatalf("catalogtest: %v", err)
	}
	dropDatabase(tb, u, strings.TrimPrefix(u.Path, "/"))
}

// dropDatabase removes a test database, disconnecting anyone still on it.
func dropDatabase(tb testing.TB, server *url.URL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, maintenanceURL(server))
	if err != nil {
		tb.Errorf("catalogtest: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Errorf("catalogtest: drop database %s: %v", name, err)
	}
}

// maintenanceURL points server's URL at the "postgres" database.
func maintenanceURL(server *url.URL) string {
	u := *server
	u.Path = "/postgres"
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
