// Package catalogtest gives tests a real, private PostgreSQL database.
package postgrestest

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

	"github.com/aisle/aisle/postgres"
)

// DefaultURL is used when DATABASE_URL is not set. Only the server part of
// either URL matters: each test gets its own database on that server.
const DefaultURL = "postgres://postgres@localhost:5432/postgres?sslmode=disable"

// StartCommand starts the local PostgreSQL cluster on a machine like CI's.
const StartCommand = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

// DirectEnv names the variable that, when set, says DATABASE_URL is a
// connection pooler in transaction mode (pgbouncer) and gives the server part
// of a URL reaching PostgreSQL itself: test databases are then created,
// migrated and dropped through it, and queried through the pooler (the
// pooler must serve every database, pgbouncer's "*" entry). It is not
// DATABASE_DIRECT_URL, which would name one database for every server a
// test starts.
const DirectEnv = "AISLE_TEST_DIRECT_DATABASE_URL"

// NewDatabaseURL returns the URL of a uniquely named database on the server
// of DATABASE_URL (or DefaultURL). The database does not exist yet
// (postgres.Open creates it), except behind a pooler (DirectEnv), where it
// has been created and migrated through the direct server already; it is
// dropped when the test ends. DATABASE_URL must be a URL (postgres://…),
// not a keyword/value string.
func NewDatabaseURL(tb testing.TB) string {
	tb.Helper()
	u := serverURL(tb, "DATABASE_URL", DefaultURL)
	name := "aisle_test_" + randomHex(6)
	u.Path = "/" + name
	mustReach(tb, u)
	direct, pooled := directServer(tb)
	if !pooled {
		tb.Cleanup(func() { dropDatabase(tb, u, name) })
		return u.String()
	}
	mustReach(tb, direct)
	direct.Path = "/" + name
	tb.Cleanup(func() { dropDatabase(tb, direct, name) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := postgres.Migrate(ctx, direct.String(), slog.New(slog.DiscardHandler)); err != nil {
		tb.Fatalf("catalogtest: create database %s directly: %v", name, err)
	}
	// Tests' own connections (pgx.Connect on this URL) need a query mode
	// that survives the pooler too: the one catalog chooses itself.
	q := u.Query()
	q.Set("default_query_exec_mode", "cache_describe")
	u.RawQuery = q.Encode()
	return u.String()
}

// DirectURL returns the URL reaching the database of databaseURL (one of
// NewDatabaseURL's) on PostgreSQL itself, for what needs a session of its
// own (LISTEN): databaseURL itself unless DATABASE_URL is a pooler.
func DirectURL(tb testing.TB, databaseURL string) string {
	tb.Helper()
	direct, pooled := directServer(tb)
	if !pooled {
		return databaseURL
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		tb.Fatalf("catalogtest: %v", err)
	}
	direct.Path = u.Path
	return direct.String()
}

// directServer returns the server of DirectEnv, and whether it is set.
func directServer(tb testing.TB) (*url.URL, bool) {
	tb.Helper()
	if os.Getenv(DirectEnv) == "" {
		return nil, false
	}
	return serverURL(tb, DirectEnv, ""), true
}

// serverURL parses the URL in the environment variable name (fallback when
// unset).
func serverURL(tb testing.TB, name, fallback string) *url.URL {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		s = fallback
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		tb.Fatalf("catalogtest: %s %q is not a postgres:// URL", name, s)
	}
	return u
}

// MustOpenDB opens (creating and migrating) a fresh database from
// NewDatabaseURL. It is closed and dropped when the test ends.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := NewDatabaseURL(tb)
	db, err := postgres.OpenPooled(ctx, dbURL, DirectURL(tb, dbURL), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("catalogtest: open test database: %v", err)
	}
	// Cleanups run last-in first-out: the pool closes before the drop.
	tb.Cleanup(db.Close)
	return db
}

// MustOpenSeededDB is MustOpenDB with the demo catalog seeded (see
// postgres.SeedDemo): stores s-1…s-24 of retailers r-1…r-4, products
// p-1…p-2100 in 30 categories.
func MustOpenSeededDB(tb testing.TB) *postgres.DB {
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
	u, err := url.Parse(DirectURL(tb, databaseURL))
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
