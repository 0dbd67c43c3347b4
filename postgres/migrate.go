package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/aisle/aisle/migrations"
)

// maintenanceDatabase is where CREATE DATABASE runs; it exists in every
// PostgreSQL cluster.
const maintenanceDatabase = "postgres"

// Migrate creates the database named in databaseURL when it is missing and
// applies every pending migration from the embedded migrations.FS. It is what
// `aisle migrate` runs and what Open runs first.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	if log == nil {
		return errors.New("catalog: nil logger")
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	// Called with a pooler's URL (Open's callers that have only one), it
	// finds nothing pending and takes no lock, if queries survive the pooler.
	setQueryMode(cfg, databaseURL)
	if err := ensureDatabase(ctx, cfg, log); err != nil {
		return err
	}

	// goose speaks database/sql; the pgx stdlib driver opened from the same
	// config gives it one, closed again once the migrations are done.
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	// Other processes starting at the same time wait on a session advisory
	// lock, polled every second for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("create migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate database %q: %w", cfg.Database, err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "applied migration", "database", cfg.Database,
			"file", r.Source.Path, "duration", r.Duration.Round(time.Microsecond).String())
	}
	return nil
}

// ensureDatabase creates cfg's database unless it already exists. It first
// tries the database itself so that an existing database needs no access to
// the maintenance database, and treats "already exists" as success because
// another process may create it at the same moment.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	if pgErrorCode(err) != pgInvalidCatalogName {
		return fmt.Errorf("connect to database %q: %w", cfg.Database, err)
	}

	maintenance := cfg.Copy()
	maintenance.Database = maintenanceDatabase
	conn, err = pgx.ConnectConfig(ctx, maintenance)
	if err != nil {
		return fmt.Errorf("connect to database %q to create %q: %w", maintenanceDatabase, cfg.Database, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize()); err != nil {
		if code := pgErrorCode(err); code == pgDuplicateDatabase || code == pgUniqueViolation {
			return nil // another process created it first
		}
		return fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
	log.InfoContext(ctx, "created database", "database", cfg.Database)
	return nil
}
