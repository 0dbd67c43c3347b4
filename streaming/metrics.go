package streaming

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Rejection kinds, the values of the reason label of eventsRejected.
const (
	rejectDecode        = "decode"         // not JSON
	rejectInvalid       = "invalid"        // JSON, but not a valid event for its topic
	rejectUnknownEntity = "unknown_entity" // valid, about a store or product we do not know
	rejectApply         = "apply"          // valid, but an applier kept refusing it (a value the database refuses)
)

var (
	eventsConsumed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_stream_events_consumed_total",
		Help: "Records read by the stream workers, by topic and event type (\"invalid\" when undecodable).",
	}, []string{"topic", "type"})
	eventsRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_stream_events_rejected_total",
		Help: "Records sent to the dead-letter queue, by topic, reason kind (decode, invalid, unknown_entity, apply) and event type (\"invalid\" when the record did not decode, so a producer cannot mint label values).",
	}, []string{"topic", "reason", "type"})
	eventsApplied = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_stream_events_applied_total",
		Help: "Valid events applied by each of a topic's appliers (result=applied) or skipped by it as already applied or not its business (result=duplicate).",
	}, []string{"topic", "applier", "result"})
	batchSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "aisle_stream_batch_duration_seconds",
		Help:    "Time to process one partition batch, from decoding to marking its offsets.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	processingSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "aisle_stream_processing_latency_seconds",
		Help:    "Time from a record's Kafka timestamp to the end of its topic's applier writes, for records some applier applied (not redelivered duplicates): what the pipeline adds, broker included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. 33s
	}, []string{"topic"})
	freshnessSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aisle_feature_freshness_seconds",
		Help: "Feature freshness: time of a successful applier write minus the event's own time, per applier. Includes the producer's delay before Kafka; replays of old events land in the top buckets.",
		// 1ms .. about 70 minutes.
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
	}, []string{"applier"})
	fetchErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_stream_fetch_errors_total",
		Help: "Errors returned by Kafka fetches.",
	})
	stepRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_stream_retries_total",
		Help: "Failed attempts of a batch step that was retried, by step (catalog, dlq, or the applier's name).",
	}, []string{"step"})
	eventsPublished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_events_published_total",
		Help: "Events published through the API producer, by topic and result (ok, error).",
	}, []string{"topic", "result"})
)
