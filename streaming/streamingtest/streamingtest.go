// Package streamingtest starts embedded Kafka-protocol brokers for tests.
package streamingtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aisle/aisle/streaming"
)

// MustStartBroker starts an in-memory broker on a free local port with
// Aisle's topics (partitions each) and closes it when the test ends. Each
// call is its own cluster, so tests never share topics or groups.
func MustStartBroker(tb testing.TB, partitions int32) *streaming.Broker {
	tb.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	b, err := streaming.StartEmbeddedBroker(ctx, "127.0.0.1:0", "", partitions, log)
	if err != nil {
		tb.Fatalf("streamingtest: %v", err)
	}
	tb.Cleanup(b.Close)
	if err := streaming.EnsureTopics(ctx, b.Addrs(), partitions); err != nil {
		tb.Fatalf("streamingtest: %v", err)
	}
	return b
}
