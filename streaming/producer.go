package streaming

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// PublishTimeout bounds how long Publish waits for the broker to acknowledge
// an event, so an API call fails clearly instead of hanging when Kafka is down.
const PublishTimeout = 5 * time.Second

// maxPublishBackoff bounds the producer's wait between attempts to reach
// the broker, so that Publish fails soon after PublishTimeout.
const maxPublishBackoff = 500 * time.Millisecond

// Producer writes records to Kafka and waits for their acknowledgement.
// It is safe for concurrent use.
type Producer struct {
	cl  *kgo.Client
	log *slog.Logger
}

// NewProducer returns a producer for the cluster at brokers. It does not
// connect until the first record is produced.
func NewProducer(brokers []string, log *slog.Logger) (*Producer, error) {
	if log == nil {
		log = slog.Default()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		// Every produce is awaited, so lingering would only add latency;
		// records produced while a request is in flight still batch.
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(PublishTimeout),
		// Without this, a record that was written to a connection the broker
		// then dropped (broker down, network cut) can be neither cancelled
		// nor timed out until the broker answers again, and Publish hangs
		// for minutes: idempotency refuses to guess whether it landed. We
		// give up after PublishTimeout instead. The cost is the usual
		// at-least-once ambiguity: a record that did land before the cut
		// is reported as failed, and a caller's retry may add it twice.
		// Events that carry a stable id (order.placed) are deduplicated by
		// the stream workers; others may then count twice.
		kgo.AllowIdempotentProduceCancellation(),
		// A timed-out record is only failed when the client next tries the
		// broker, and franz-go's default backoff grows to 5 s, which made a
		// publish to an unreachable broker take up to PublishTimeout + 5 s.
		// Short retries keep it near PublishTimeout.
		kgo.RetryBackoffFn(func(fails int) time.Duration {
			return min(time.Duration(fails+1)*100*time.Millisecond, maxPublishBackoff)
		}),
		// After an outage the client must refresh its metadata before it
		// produces again; franz-go's default minimum age of 5 s between
		// refreshes made the first publish after the broker came back wait
		// that long.
		kgo.MetadataMinAge(maxPublishBackoff),
		kgo.WithLogger(kgoLogger{log}),
	)
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl, log: log}, nil
}

// Publish validates ev as the stream workers will (EINVALID when it would be
// rejected), writes it to its topic (aisle.TopicFor) and waits until the
// broker has it. key is the record key; when empty, the event's entity
// (aisle.Decoded.Key) is. A broker that does not acknowledge within
// PublishTimeout gives EUNAVAILABLE. When ctx ends first, Publish returns
// its error, and the event may still be written.
func (p *Producer) Publish(ctx context.Context, ev aisle.Event, key string) (aisle.Receipt, error) {
	value, err := json.Marshal(ev)
	if err != nil {
		return aisle.Receipt{}, aisle.Errorf(aisle.EINVALID, "event cannot be encoded: %s", err)
	}
	topic, err := aisle.TopicFor(ev.Type)
	if err != nil {
		return aisle.Receipt{}, err
	}
	d, err := aisle.DecodeEvent(value, topic, time.Now())
	if err != nil {
		return aisle.Receipt{}, err
	}
	if key == "" {
		key = d.Key()
	}

	results, err := p.produce(ctx, []*kgo.Record{{Topic: topic, Key: []byte(key), Value: value}})
	if err != nil {
		return aisle.Receipt{}, fmt.Errorf("publish event %s: %w", ev.ID, err)
	}
	rec, err := results.First()
	if err != nil {
		eventsPublished.WithLabelValues(topic, "error").Inc()
		p.log.Warn("publish event", "topic", topic, "event_id", ev.ID, "err", err)
		return aisle.Receipt{}, aisle.Errorf(aisle.EUNAVAILABLE, "the event bus is unavailable, try again later")
	}
	eventsPublished.WithLabelValues(topic, "ok").Inc()
	return aisle.Receipt{EventID: ev.ID, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}, nil
}

// PublishEvents writes already validated events (aisle.BuildEvent) to their
// topics, keyed by their entities, in order, and waits until the broker has
// all of them: bulk imports and bulk mutations produce in batches. A broker
// that does not acknowledge within PublishTimeout gives EUNAVAILABLE; some
// of the events may then have been written, and since the catalog applies
// last-writer-wins by event time, publishing them again is harmless. It
// returns the events' ids, in order.
func (p *Producer) PublishEvents(ctx context.Context, events []*aisle.Decoded) ([]string, error) {
	receipts, err := p.PublishBatch(ctx, events)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(receipts))
	for i, r := range receipts {
		ids[i] = r.EventID
	}
	return ids, nil
}

// PublishBatch is PublishEvents answering where each event was written.
func (p *Producer) PublishBatch(ctx context.Context, events []*aisle.Decoded) ([]aisle.Receipt, error) {
	recs := make([]*kgo.Record, len(events))
	for i, d := range events {
		value, err := json.Marshal(d.Event)
		if err != nil {
			return nil, aisle.Errorf(aisle.EINVALID, "event cannot be encoded: %s", err)
		}
		topic, err := aisle.TopicFor(d.Type)
		if err != nil {
			return nil, err
		}
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(d.Key()), Value: value}
	}
	results, err := p.produce(ctx, recs)
	if err != nil {
		return nil, fmt.Errorf("publish %d events: %w", len(recs), err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			eventsPublished.WithLabelValues(r.Record.Topic, "error").Inc()
		} else {
			eventsPublished.WithLabelValues(r.Record.Topic, "ok").Inc()
		}
	}
	if failed > 0 {
		p.log.Warn("publish events", "events", len(recs), "failed", failed, "err", results.FirstErr())
		return nil, aisle.Errorf(aisle.EUNAVAILABLE, "the event bus is unavailable, try again later")
	}
	receipts := make([]aisle.Receipt, len(recs))
	for i, r := range recs {
		receipts[i] = aisle.Receipt{EventID: events[i].ID, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	return receipts, nil
}

// Ping checks that a broker answers, for readiness probes: without one,
// Publish can only fail.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping kafka: %w", err)
	}
	return nil
}

// produce writes records and waits until the broker has answered for all
// of them (each one's result, in the order of recs) or ctx ends (ctx's
// error; the records may still be written).
//
// The records do not carry ctx: franz-go fails every record buffered for a
// partition when the first record of a batch has its context cancelled, so
// one caller that gave up (a client that disconnected) would fail the other
// callers' events that shared its batch. kgo.RecordDeliveryTimeout bounds
// how long a record can wait instead.
func (p *Producer) produce(ctx context.Context, recs []*kgo.Record) (kgo.ProduceResults, error) {
	var (
		mu      sync.Mutex
		results = make(kgo.ProduceResults, len(recs))
		waiting = len(recs)
		done    = make(chan struct{})
	)
	recordCtx := context.WithoutCancel(ctx)
	for i, r := range recs {
		p.cl.Produce(recordCtx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			results[i] = kgo.ProduceResult{Record: r, Err: err}
			if waiting--; waiting == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
		return results, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close releases the producer's connections. Publish calls must have returned.
func (p *Producer) Close() { p.cl.Close() }

// kgoLogger passes franz-go's client warnings and errors to slog.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}
