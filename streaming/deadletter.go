package streaming

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// Headers of a dead-letter record. Aisle's come first; the original
// record's headers follow, except that those whose key starts with "aisle-"
// (a producer's, which must not pass for Aisle's) are renamed with the
// prefix "original-".
const (
	HeaderError     = "aisle-error"     // why the event was rejected
	HeaderTopic     = "aisle-topic"     // where it was read from
	HeaderPartition = "aisle-partition" // decimal
	HeaderOffset    = "aisle-offset"    // decimal
	// HeaderTruncated is set when the dead-letter record does not carry the
	// whole original: a comma-separated list of what was cut (key, value,
	// headers). The original sizes are then in the three size headers.
	HeaderTruncated   = "aisle-truncated"
	HeaderKeyBytes    = "aisle-key-bytes"     // size of the original key, decimal
	HeaderValueBytes  = "aisle-value-bytes"   // size of the original value
	HeaderHeaderBytes = "aisle-headers-bytes" // sum of the original headers' keys and values
)

// Bounds of a dead-letter record, so that its produce fits any broker's
// max.message.bytes (Kafka's default is 1 MB; the client's own batch limit
// is about the same): a DLQ produce that can never succeed would hold the
// partition for ever. Valid keys are entity ids (at most 257 bytes), valid
// values at most aisle.MaxEventBytes.
const (
	maxDLQKeyBytes    = 1 << 10
	maxDLQValueBytes  = aisle.MaxEventBytes
	maxDLQHeaderBytes = 16 << 10 // of the original headers kept
	maxDLQReasonBytes = 1 << 10
)

// originalHeaderPrefix marks a producer's own aisle-* header in a dead
// letter.
const originalHeaderPrefix = "original-"

// deadLetter builds the dead-letter record of a rejected one: Aisle's
// headers, then as much of the original as fits the bounds above.
func deadLetter(rj reject) *kgo.Record {
	key, value := rj.rec.Key, rj.rec.Value
	var truncated []string
	if len(key) > maxDLQKeyBytes {
		key = key[:maxDLQKeyBytes]
		truncated = append(truncated, "key")
	}
	if len(value) > maxDLQValueBytes {
		value = value[:maxDLQValueBytes]
		truncated = append(truncated, "value")
	}
	var kept []kgo.RecordHeader
	size, keptSize := 0, 0
	for _, h := range rj.rec.Headers {
		n := len(h.Key) + len(h.Value)
		size += n
		if keptSize+n > maxDLQHeaderBytes {
			continue
		}
		keptSize += n
		if strings.HasPrefix(strings.ToLower(h.Key), "aisle-") {
			h.Key = originalHeaderPrefix + h.Key
		}
		kept = append(kept, h)
	}
	if len(kept) < len(rj.rec.Headers) {
		truncated = append(truncated, "headers")
	}
	headers := aisleHeaders(rj, truncated, size)
	return &kgo.Record{Topic: aisle.TopicDLQ, Key: key, Value: value, Headers: append(headers, kept...)}
}

// deadLetterStub is the dead letter of a record whose bounded copy the
// broker still refused (a DLQ topic with a small max.message.bytes): Aisle's
// headers alone, saying that everything was cut.
func deadLetterStub(rj reject) *kgo.Record {
	size := 0
	for _, h := range rj.rec.Headers {
		size += len(h.Key) + len(h.Value)
	}
	return &kgo.Record{Topic: aisle.TopicDLQ, Headers: aisleHeaders(rj, []string{"key", "value", "headers"}, size)}
}

func aisleHeaders(rj reject, truncated []string, headerBytes int) []kgo.RecordHeader {
	reason := rj.reason
	if len(reason) > maxDLQReasonBytes {
		reason = strings.ToValidUTF8(reason[:maxDLQReasonBytes], "") + "…"
	}
	headers := []kgo.RecordHeader{
		{Key: HeaderError, Value: []byte(reason)},
		{Key: HeaderTopic, Value: []byte(rj.rec.Topic)},
		{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(rj.rec.Partition), 10)},
		{Key: HeaderOffset, Value: strconv.AppendInt(nil, rj.rec.Offset, 10)},
	}
	if len(truncated) > 0 {
		headers = append(headers,
			kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(strings.Join(truncated, ","))},
			kgo.RecordHeader{Key: HeaderKeyBytes, Value: strconv.AppendInt(nil, int64(len(rj.rec.Key)), 10)},
			kgo.RecordHeader{Key: HeaderValueBytes, Value: strconv.AppendInt(nil, int64(len(rj.rec.Value)), 10)},
			kgo.RecordHeader{Key: HeaderHeaderBytes, Value: strconv.AppendInt(nil, int64(headerBytes), 10)},
		)
	}
	return headers
}
