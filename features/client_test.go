package features_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/models"
)

// The hint of an unreachable Redis names the configured address's port,
// not the default's, in the command that starts one server or the
// repository's local cluster there.
func TestUnreachableRedisHintNamesTheConfiguredPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cluster bool
		command string
	}{
		{false, "--port 1 "},
		{true, "scripts/redis-cluster.sh start 1"},
	} {
		_, err := features.Open(context.Background(), "redis://127.0.0.1:1/0", featurestest.NewPrefix(), models.DefaultAvailabilityModel(), features.WithCluster(tc.cluster))
		if err == nil {
			t.Fatalf("Open of a Redis on port 1 (cluster %t): no error", tc.cluster)
		}
		if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1 ") || !strings.Contains(msg, tc.command) || strings.Contains(msg, "6379") {
			t.Errorf("error %q (cluster %t), want the address 127.0.0.1:1 and %q, never 6379", msg, tc.cluster, tc.command)
		}
	}
}

// go-redis's own log lines come out as JSON lines of the process's log.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	var out proctest.SyncBuffer
	features.LogRedisThrough(slog.New(slog.NewJSONHandler(&out, nil)))
	rdb, err := features.NewClient(featurestest.URL(), featurestest.Cluster())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	key := featurestest.NewPrefix() + "log-test"
	// go-redis logs that it rounds a sub-millisecond expiry up.
	if err := rdb.Set(context.Background(), key, "v", 500*time.Microsecond).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Del(context.Background(), key)
	found := false
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(out.String())), []byte("\n")) {
		var entry map[string]any
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if msg, _ := entry["msg"].(string); strings.Contains(msg, "truncating to 1ms") {
			found = true
		}
	}
	if !found {
		t.Errorf("go-redis's line is not in the log: %q", out.String())
	}
}
