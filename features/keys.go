package features

import (
	"crypto/sha256"
	"github.com/aisle/aisle/aisle"
	"hash/fnv"
	"strconv"
	"strings"
)

// Key layout. Every key is the store's prefix, a kind, a hash tag and the
// entity's id:
//
//	{prefix}avail:{b}{store}:{product}  availability hash
//	{prefix}atrisk:{b}{store}           a store's at-risk index (sorted set, see atrisk.go)
//	{prefix}atriskver:{b}{store}        the versions of the states it indexed
//	{prefix}sess:{b}{session}           session hash
//	{prefix}item:{b}{product}           a product's recent sessions (sorted set)
//	{prefix}pop:{b}{store}, popz:…      live popularity: bookkeeping hash, cart adds (sorted set)
//	{prefix}co:{b}{product}, coz:…      live co-occurrence: bookkeeping hash, adds together (sorted set)
//	{prefix}fv:{b}{kind}:{id}           fraud velocity of a user, card, device, IP, address or store
//	{prefix}fo:{b}{order}               order record (the entities a label updates)
//	{prefix}fl:{b}{order}               the order's label
//
// where {b} is the entity's bucket in braces, "{0}" to "{255}": the hash tag
// that Redis Cluster places by, the same for every key one script touches
// (fo and fl share the order's, a tally's two keys their entity's). The effectively-once bookkeeping lives in
// the entity's hash (see applied.lua); nothing is kept per event.
//
// Change notifications of a bucket go to a shard channel in the bucket's
// slot ({scope}changes:availability:{b}, {scope}changes:sessions:{b}), which
// the scripts publish to with SPUBLISH: Redis 7 lets a script publish only
// in its keys' slot. Subscribers listen on all Buckets channels of a kind.

// Buckets is how many hash tags the keys are spread over: a cluster places
// whole buckets, so it is also the finest unit of balance between masters.
// Changing it changes every key (see the README's "Migrating an existing
// Redis").
const Buckets = 256

// RecentIDs is how many event digests an entity hash keeps (applied.lua):
// the same event produced twice is recognised while fewer than RecentIDs
// other events reached that entity in between. A redelivered record is
// recognised by its offset however old it is. RecentIDs × 8 bytes stays
// within Redis's hash-max-listpack-value (64), which keeps small hashes in
// their compact encoding.
const RecentIDs = 8

// bucketTag is the hash tag of an entity id, with its braces.
func bucketTag(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return "{" + strconv.Itoa(int(h.Sum32()%Buckets)) + "}"
}

// entityKey is the key of kind's entity id, tagged with its bucket.
func (s *Store) key(kind, id string) string {
	return s.prefix + kind + ":" + bucketTag(id) + id
}

// KeyName is the key, without the store's prefix, of kind's entity id
// ("avail" and "store:product", "sess", "item", "fo", "fl"), for tests that
// look at snapshots.
func KeyName(kind, id string) string { return kind + ":" + bucketTag(id) + id }

// digest identifies an event for one applier's "@ids" (applied.lua): 8 bytes
// of SHA-256 of the applier's name and the event id, so that the same id on
// another applier's events is another digest, and ids cannot be made to
// collide on purpose.
func digest(applier, eventID string) string {
	sum := sha256.Sum256([]byte(applier + "\x00" + eventID))
	return string(sum[:8])
}

// field is the mark field of o's partition in an entity hash (applied.lua);
// "" for an event that did not come from Kafka, which the scripts then
// recognise by its digest only.
func markField(o aisle.Origin) string {
	if o.Topic == "" {
		return ""
	}
	f := "@" + o.Topic + "/" + strconv.FormatInt(int64(o.Partition), 10)
	if o.TopicID != "" {
		f += "/" + o.TopicID[:min(8, len(o.TopicID))]
	}
	return f
}

// ParseMark returns the topic and partition of an entity hash's mark field
// (see markField), and false for any other field.
func ParseMark(field string) (topic string, partition int32, ok bool) {
	rest, ok := strings.CutPrefix(field, "@")
	if !ok {
		return "", 0, false
	}
	topic, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", 0, false
	}
	p, _, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return "", 0, false
	}
	return topic, int32(n), true
}

// markArgs are the first arguments of every applier script (applied.lua).
func markArgs(applier string, u aisle.Update) []any {
	return []any{markField(u.Origin), u.Origin.Offset, digest(applier, u.Event.ID), RecentIDs}
}

// IsBookkeeping reports whether an entity hash's field is effectively-once
// bookkeeping rather than state.
func IsBookkeeping(field string) bool { return strings.HasPrefix(field, "@") }
