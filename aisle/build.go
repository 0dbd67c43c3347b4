package aisle

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// APISource names the API as the producer of the events its mutations
// publish.
const APISource = "aisle-api"

// NewEventID returns a random, unique event id.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "e-" + hex.EncodeToString(b[:])
}

// BuildEvent makes the envelope of an event the API publishes (at zero
// means now) and validates it with DecodeEvent, as the stream workers will,
// so the API never publishes an event the pipeline would reject.
func BuildEvent(id, eventType string, at, now time.Time, data any) (*Decoded, error) {
	if at.IsZero() {
		at = now
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, Errorf(EINVALID, "%s data cannot be encoded: %s", eventType, err)
	}
	value, err := json.Marshal(Event{ID: id, Type: eventType, Time: at.UTC(), Source: APISource, Data: raw})
	if err != nil {
		return nil, Errorf(EINVALID, "%s event cannot be encoded: %s", eventType, err)
	}
	return DecodeEvent(value, "", now)
}

// UnknownReference says which of the stores or products the event names
// is among the unknown ones ("unknown store s-9"), "" when none is.
func (d *Decoded) UnknownReference(unknownStores, unknownProducts map[string]bool) string {
	stores, products := d.References()
	for _, id := range stores {
		if unknownStores[id] {
			return "unknown store " + id
		}
	}
	for _, id := range products {
		if unknownProducts[id] {
			return "unknown product " + id
		}
	}
	return ""
}
