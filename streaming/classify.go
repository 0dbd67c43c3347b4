package streaming

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// dependencyDown is how the stream workers tell an outage from a poison
// record. It holds when a step failed because something it depends on could
// not answer: a dependency unreachable, dropping connections or saying it
// cannot serve now (aisle.IsUnavailable: PostgreSQL starting up or out of
// connections, Redis loading or failing over…), a timeout anywhere (the
// step's own deadline or a driver's: the workers' context is never
// cancelled, so a deadline is always a dependency too slow to answer), or a
// Kafka error the protocol calls retriable. Such a step is retried for
// ever: the partition waits for the dependency. Any other error (a value
// PostgreSQL or Redis refuses, a Lua error, a record Kafka refuses) may
// be the record's, so the worker tries a bounded number of times and then
// isolates the records that fail.
func dependencyDown(err error) bool {
	return aisle.IsUnavailable(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries) ||
		kerr.IsRetriable(err)
}

// refusedByKafka reports whether the broker (or the client, checking the
// broker's limits) refuses a record for what it is, so that producing it
// again can never succeed.
func refusedByKafka(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidTimestamp} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
