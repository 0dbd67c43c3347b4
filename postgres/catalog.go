// Package catalog is Aisle's PostgreSQL adapter: retailers, stores, products
// and assortments, API keys and the availability priors. It is the only
// package that imports pgx; it translates driver errors into *aisle.Error
// codes (see formatError) so callers never see pgx types.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aisle/aisle/aisle"
)

// DefaultConnectTimeout bounds opening a connection when the database URL
// sets no connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// DB is the catalog database. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	ids  *idCache
	// assortments holds store assortments while the change feed is followed.
	assortments *assortmentCache
	// lastGood serves storefront reads while PostgreSQL is unreachable.
	lastGood *lastGood

	// Now returns the time written to created_at, revoked_at and fitted_at
	// columns. Tests replace it before use.
	Now func() time.Time
}

// Open connects to the database at databaseURL, creating the database when it
// does not exist yet, and applies pending migrations. Several processes may
// call Open on the same URL at once: creation tolerates the race and goose
// serializes migrations with an advisory lock. databaseURL must reach
// PostgreSQL itself; behind a pooler, use OpenPooled.
func Open(ctx context.Context, databaseURL string, log *slog.Logger) (*DB, error) {
	return OpenPooled(ctx, databaseURL, databaseURL, log)
}

// OpenPooled is Open for a databaseURL that may be a connection pooler in
// transaction mode (pgbouncer): what needs a session of its own, creating
// the database and migrating it under goose's session advisory lock, goes
// through directURL, which must reach PostgreSQL itself; every query goes
// through databaseURL.
func OpenPooled(ctx context.Context, databaseURL, directURL string, log *slog.Logger) (*DB, error) {
	if log == nil {
		return nil, errors.New("catalog: nil logger")
	}
	if err := Migrate(ctx, directURL, log); err != nil {
		return nil, err
	}
	cfg, err := poolConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %q: %w", cfg.ConnConfig.Database, err)
	}
	poolStats.Add(pool)
	return &DB{pool: pool, log: log, ids: newIDCache(), assortments: newAssortmentCache(), lastGood: newLastGood(), Now: time.Now}, nil
}

// poolConfig parses databaseURL for the query pool (see setQueryMode).
func poolConfig(databaseURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	setQueryMode(cfg.ConnConfig, databaseURL)
	if cfg.ConnConfig.ConnectTimeout == 0 { // connect_timeout not in the URL
		// Without a bound, a connection to an unreachable server (a network
		// partition) waits for the request's deadline, and no read can fall
		// back on remembered answers in time.
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// setQueryMode chooses how cfg's connections send queries.
//
// Queries run in pgx's cache_describe mode unless the URL chooses another
// (default_query_exec_mode=…), so that one configuration works both on
// PostgreSQL itself and through a pooler in transaction mode. pgx's default,
// cache_statement, prepares named statements on the server connection and
// reuses them later, but a transaction pooler (pgbouncer before 1.21) hands
// each transaction whichever server connection is free, where the statement
// does not exist. cache_describe remembers only each statement's parameter
// and result types, and then sends parse, bind and execute of the unnamed
// statement in one round trip, which a pooler never splits: the types stay
// exact (binary formats, arrays, JSON) at the cost of the server parsing
// each statement again. describe_exec splits describe and execute over two
// round trips and exec or simple_protocol guess parameter types from Go
// values, so neither is chosen.
func setQueryMode(cfg *pgx.ConnConfig, databaseURL string) {
	if !strings.Contains(databaseURL, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
}

// Close closes every connection. It is safe to call more than once.
func (db *DB) Close() {
	poolStats.Remove(db.pool)
	db.pool.Close()
}

// Ping checks that the database answers; for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// PostgreSQL error codes we translate (Appendix A of the PostgreSQL manual).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgInvalidCatalogName  = "3D000" // database does not exist
	pgDuplicateDatabase   = "42P04"
)

// formatError is the one place that turns driver errors into domain errors:
// no rows becomes ENOTFOUND ("<what> not found") and a unique violation
// ECONFLICT ("<what> already exists"). Any other error is wrapped with what
// for the logs and stays internal.
func formatError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return aisle.Errorf(aisle.ENOTFOUND, "%s not found", what)
	}
	if pgErrorCode(err) == pgUniqueViolation {
		return aisle.Errorf(aisle.ECONFLICT, "%s already exists", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pgErrorCode returns the SQLSTATE of a PostgreSQL error in err's chain, or "".
func pgErrorCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
