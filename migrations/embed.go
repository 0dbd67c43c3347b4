// Package migrations holds Aisle's PostgreSQL schema as goose SQL migrations,
// embedded in the binary so that `aisle migrate` and `aisle serve` need no
// files on disk. postgres.Migrate applies them.
package migrations

import "embed"

// FS holds the migration files, named NNNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
