package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// Each applied migration's duration is logged readably ("1.234ms"), not
// in nanoseconds.
func TestMigrateLogsReadableDurations(t *testing.T) {
	t.Parallel()
	// Migrations run on PostgreSQL itself, never through a pooler (behind
	// one, NewDatabaseURL's database is migrated already): a database of
	// the test's own there, not migrated yet.
	u, err := url.Parse(postgrestest.DirectURL(t, postgrestest.NewDatabaseURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	u.Path += "_migrate"
	t.Cleanup(func() { postgrestest.DropDatabase(t, u.String()) })
	var out bytes.Buffer
	if err := postgres.Migrate(context.Background(), u.String(), slog.New(slog.NewJSONHandler(&out, nil))); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var entry struct {
			Msg      string `json:"msg"`
			Duration any    `json:"duration"`
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Msg != "applied migration" {
			continue
		}
		applied++
		s, ok := entry.Duration.(string)
		if _, err := time.ParseDuration(s); !ok || err != nil {
			t.Errorf("duration %v (%T), want a readable duration such as 1.234ms", entry.Duration, entry.Duration)
		}
	}
	if applied == 0 {
		t.Fatalf("no applied migration logged:\n%s", out.String())
	}
}
