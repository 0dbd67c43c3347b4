package aisle

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// MaxIdempotencyKeyLength bounds a client's idempotency key.
const MaxIdempotencyKeyLength = 128

// EventIDFor returns the id of the item-th event a call publishes. Without
// an idempotency key it is random. With one it is derived from the caller's
// API key, the mutation and the idempotency key, so a call retried after a
// lost answer publishes the events of the first attempt again, with the
// same ids, and the stream applies them once; two callers, or two
// mutations, using the same key never share an id.
func EventIDFor(p *Principal, mutation string, idempotencyKey *string, item int) (string, error) {
	if idempotencyKey == nil {
		return NewEventID(), nil
	}
	if err := ValidateIdempotencyKey(idempotencyKey); err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range []string{p.KeyID, string(p.Role), mutation, *idempotencyKey, strconv.Itoa(item)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "e-" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// ValidateIdempotencyKey accepts no key, or 1 to MaxIdempotencyKeyLength
// printable characters.
func ValidateIdempotencyKey(key *string) error {
	if key != nil && (*key == "" || len(*key) > MaxIdempotencyKeyLength || !utf8.ValidString(*key) || strings.ContainsFunc(*key, unicode.IsControl)) {
		return Errorf(EINVALID, "idempotencyKey must be 1 to %d printable characters", MaxIdempotencyKeyLength)
	}
	return nil
}
