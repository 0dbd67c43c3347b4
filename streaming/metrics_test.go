package streaming_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/promtest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// The consumer's metrics say what happened to each record: rejects by
// topic, reason and type, lag per owned partition (gone once the partition
// is revoked), processing latency and feature freshness of the records
// applied (not of duplicates). Not parallel: the
// metrics are process-wide and other tests use the same topics.
func TestConsumerMetrics(t *testing.T) {
	b := streamingtest.MustStartBroker(t, 1)
	fs := featurestest.MustOpen(t)
	brokers := b.Addrs()
	at := time.Now().Add(-time.Second)
	streamingtest.Produce(t, brokers,
		record(aisle.TopicPicking, "s-1:p-1", []byte(`{"id": `)),
		record(aisle.TopicPicking, "s-9:p-1", mustJSON(pickEvent("m-2", aisle.TypePickNotFound, "s-9", "p-1", at))),
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("m-3", aisle.TypePickFound, "s-1", "p-1", at))),
		record(aisle.TopicPicking, "s-1:p-2", mustJSON(pickEvent("m-4", aisle.TypePickFound, "s-1", "p-2", at))),
		// A redelivery (same event id): consumed, but applied by no one, so
		// it adds no latency or freshness sample.
		record(aisle.TopicPicking, "s-1:p-1", mustJSON(pickEvent("m-3", aisle.TypePickFound, "s-1", "p-1", at))),
	)
	picking := map[string]string{"topic": aisle.TopicPicking}
	lag := map[string]string{"topic": aisle.TopicPicking, "partition": "0"}
	before := promtest.Gather(t)
	delta := func(after promtest.Metrics, name string, labels map[string]string) float64 {
		b, _ := before.Value(name, labels)
		a, _ := after.Value(name, labels)
		return a - b
	}

	cfg := consumerConfig(t, brokers, fs, "g-metrics")
	c, err := streaming.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err == nil {
		t.Error("Ready before Run = nil, want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the consumer to join its group", func() bool { return c.Ready() == nil })
	waitFor(t, "the lag of aisle.picking/0 to reach 0", func() bool {
		v, ok := promtest.Gather(t).Value("aisle_stream_consumer_lag_records", lag)
		return ok && v == 0
	})

	m := promtest.Gather(t)
	for _, want := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"aisle_stream_events_rejected_total", map[string]string{"topic": aisle.TopicPicking, "reason": "decode", "type": "invalid"}, 1},
		{"aisle_stream_events_rejected_total", map[string]string{"topic": aisle.TopicPicking, "reason": "unknown_entity", "type": aisle.TypePickNotFound}, 1},
		{"aisle_stream_events_consumed_total", map[string]string{"topic": aisle.TopicPicking, "type": aisle.TypePickFound}, 3},
		{"aisle_stream_processing_latency_seconds", picking, 2},
		{"aisle_feature_freshness_seconds", map[string]string{"applier": "availability"}, 2},
	} {
		if got := delta(m, want.name, want.labels); got != want.delta {
			t.Errorf("%s%v rose by %v, want %v", want.name, want.labels, got, want.delta)
		}
	}
	// The events are timed a second before they were produced, so each took
	// at least that long to reach Redis, and (on a loaded machine) well
	// under a minute.
	for _, h := range []struct {
		name   string
		labels map[string]string
	}{
		{"aisle_feature_freshness_seconds", map[string]string{"applier": "availability"}},
	} {
		b, _ := before.Sum(h.name, h.labels)
		a, _ := m.Sum(h.name, h.labels)
		if mean := (a - b) / 2; mean < 1 || mean > 60 {
			t.Errorf("%s%v: mean of the new samples %.3fs, want 1s..60s", h.name, h.labels, mean)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the deferred wait
	if v, ok := promtest.Gather(t).Value("aisle_stream_consumer_lag_records", lag); ok {
		t.Errorf("lag of the revoked partition is still reported (%v), want the series deleted", v)
	}
	if err := c.Ready(); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Ready after Run returned = %v, want not running", err)
	}
}
