package streaming_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// TestEnsureTopicsReplicationFactor: topics get the replication factor
// asked for, and one the cluster cannot meet is a clear error, not a topic
// with fewer replicas.
func TestEnsureTopicsReplicationFactor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := streaming.StartEmbeddedCluster(ctx, 3, 2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := streaming.EnsureTopics(ctx, b.Addrs(), 2, 4); err == nil || !strings.Contains(err.Error(), "4 replicas per partition") {
		t.Errorf("EnsureTopics with 4 replicas on 3 brokers: %v, want an error saying so", err)
	}
	if err := streaming.EnsureTopics(ctx, b.Addrs(), 2, 2); err != nil {
		t.Fatal(err)
	}
	admin := streamingtest.MustAdmin(t, b.Addrs())
	for _, topic := range streaming.Topics() {
		replicas, err := admin.Replicas(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(streaming.PartitionsOf(topic, 2)); len(replicas) != want {
			t.Errorf("%s has %d partitions, want %d", topic, len(replicas), want)
		}
		for p, n := range replicas {
			if n != 2 {
				t.Errorf("%s/%d has %d replicas, want 2", topic, p, n)
			}
		}
	}
}
