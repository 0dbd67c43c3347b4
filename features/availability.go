package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

//go:embed availability.lua
var applyAvailabilitySource string

// applyAvailabilityScript applies one availability event (see availability.lua).
var applyAvailabilityScript = newApplierScript(applyAvailabilitySource)

// Fields of an availability hash.
const (
	fieldVer       = "ver"           // version: grows with every change (see availability.lua)
	fieldFound     = "found"         // decayed pick.found count, valued at at_ms
	fieldNotFound  = "not_found"     // decayed pick.not_found + pick.replaced count
	fieldAt        = "at_ms"         // latest pick event time, unix ms
	fieldFeedQty   = "feed_qty"      // latest retailer feed level
	fieldFeedAt    = "feed_at_ms"    // its event time, unix ms
	fieldLastFound = "last_found"    // the latest pick's outcome: "1" found, "0" not
	fieldCountedAt = "counted_at_ms" // when feed_qty was counted, unix ms
	// since when the level has stood at feed_qty (the first count of the
	// run of equal latest counts), unix ms
	fieldLevelSince = "level_since_ms"
)

// stateFields is the order in which reads (HMGET) ask for the fields of an
// availability hash and change messages carry them; availability.lua
// publishes them in this order too.
var stateFields = []string{fieldVer, fieldFound, fieldNotFound, fieldAt, fieldFeedQty, fieldFeedAt, fieldLastFound, fieldCountedAt, fieldLevelSince}

// Health of the change subscription: after changesPingAfter without a
// message the watcher pings Redis, and a ping unanswered for as long means
// the connection is dead, even if TCP has not noticed.
const changesPingAfter = 5 * time.Second

// Delays between attempts to subscribe again after a failure.
const (
	resubscribeMinDelay = 100 * time.Millisecond
	resubscribeMaxDelay = 5 * time.Second
)

// ApplyAvailability applies inventory.level and pick.* events in one
// pipelined round trip, then records the resulting states in their stores'
// at-risk indexes in a second one (see atrisk.go). Each event is applied atomically together with its
// bookkeeping in the store-product's hash, so applying the same event again
// (an offset at or below the hash's mark of its partition, or one of its
// last RecentIDs event ids) changes nothing.
// Event times are kept to the millisecond. Updates from one partition must
// be given in offset order. applied[i] reports whether updates[i] was new.
// On error nothing is reported and the caller may retry the whole slice:
// what was already applied is skipped. The levels of snapshots are applied
// like any other; what their completion implies is ApplyInventory's.
func (s *Store) ApplyAvailability(ctx context.Context, updates []aisle.Update) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	now := time.Now()
	calls := make([]call, len(updates))
	for i, u := range updates {
		if calls[i], err = s.availabilityCall(u, levelSnapshotTag(u.Event), now); err != nil {
			return nil, err
		}
	}
	return s.applyAvailabilityCalls(ctx, updates, calls)
}

// applyAvailabilityCalls runs the availability.lua calls of updates and
// indexes the states they leave (see ApplyAvailability).
func (s *Store) applyAvailabilityCalls(ctx context.Context, updates []aisle.Update, calls []call) (applied []bool, err error) {
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("apply availability events: %w", err)
	}
	applied = make([]bool, len(updates))
	states := make([]indexedState, len(updates))
	for i, r := range results {
		flag, st, err := parseApplyResult(r)
		if err != nil {
			return nil, fmt.Errorf("apply availability event %s: %w", updates[i].Event.ID, err)
		}
		applied[i] = flag
		states[i] = indexedState{sp: updates[i].Event.StoreProduct(), state: st}
	}
	if err := s.indexAtRisk(ctx, states); err != nil {
		return nil, err
	}
	return applied, nil
}

// parseApplyResult reads availability.lua's answer: {applied, state}.
func parseApplyResult(r any) (applied bool, st state, err error) {
	vals, ok := r.([]any)
	if !ok || len(vals) != 2 {
		return false, st, fmt.Errorf("unexpected script result %v", r)
	}
	flag, _ := vals[0].(int64)
	payload, _ := vals[1].(string)
	st, err = parseStateMessage(payload)
	return flag == 1, st, err
}

// availabilityCall builds the Lua call for u, applied at about now;
// snapshotTag is the level's snapshot as availability.lua's ARGV[14] says it.
func (s *Store) availabilityCall(u aisle.Update, snapshotTag string, now time.Time) (call, error) {
	ev := u.Event
	if ev == nil || (ev.Inventory == nil && ev.Pick == nil) {
		return call{}, errors.New("apply availability: not an inventory or picking event")
	}
	var kind string
	var quantity int64
	var countedAt time.Time
	switch {
	case ev.Inventory != nil:
		kind, quantity, countedAt = "feed", *ev.Inventory.Quantity, ev.Inventory.CountedTime(ev.Time)
	case ev.Type == aisle.TypePickFound:
		kind = "found"
	default: // pick.not_found, pick.replaced: the item was not on the shelf
		kind = "not_found"
	}
	sp := ev.StoreProduct()
	args := append(markArgs("availability", u),
		kind,
		ev.Time.UnixMilli(),
		quantity,
		s.model.PickDecayPerSecond(),
		s.ttl.Milliseconds(),
		s.changesChannel(bucketTag(sp.String())),
		sp.String(),
		now.UnixMicro(),
		countedAt.UnixMilli(),
		snapshotTag,
	)
	return call{applyAvailabilityScript, []string{s.availabilityKey(sp)}, args}, nil
}

// Availability returns the evidence of each store-product; one without data
// gets the zero value. While WatchAvailability runs, states are served from
// the near cache when it has them (see WithNearCache); the rest are read in
// one pipelined round trip. Without it every call reads Redis.
func (s *Store) Availability(ctx context.Context, sps []aisle.StoreProduct) ([]models.AvailabilityEvidence, error) {
	if len(sps) == 0 {
		return nil, nil
	}
	out := make([]models.AvailabilityEvidence, len(sps))
	r := s.near.lookup(sps, out)
	if len(r.sps) == 0 {
		return out, nil
	}
	read, err := s.readStates(ctx, r.sps)
	s.near.settle(r, read, out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readStates reads the availability hashes of sps in one pipeline.
func (s *Store) readStates(ctx context.Context, sps []aisle.StoreProduct) ([]state, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(sps))
	for i, sp := range sps {
		cmds[i] = pipe.HMGet(ctx, s.availabilityKey(sp), stateFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read availability: %w", err)
	}
	out := make([]state, len(sps))
	for i, cmd := range cmds {
		st, err := parseState(cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("read availability of %s: %w", sps[i], err)
		}
		out[i] = st
	}
	return out, nil
}

// parseState decodes the values of stateFields. Missing fields (nil) leave
// the zero value; a hash written before versions existed has version 0.
func parseState(vals []any) (st state, err error) {
	ver, found, notFound, at, feedQty, feedAt, lastFound, countedAt, levelSince := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8]
	if ver != nil {
		if st.ver, err = parseInt(fieldVer, ver); err != nil {
			return st, err
		}
	}
	e := &st.evidence
	if at != nil {
		var atMS int64
		if atMS, err = parseInt(fieldAt, at); err != nil {
			return st, err
		}
		e.At = time.UnixMilli(atMS).UTC()
		if e.Found, err = parseFloat(fieldFound, found); err != nil {
			return st, err
		}
		if e.NotFound, err = parseFloat(fieldNotFound, notFound); err != nil {
			return st, err
		}
		// A hash written before last_found existed reads as not found.
		e.LastFound = lastFound == "1"
	}
	if feedAt != nil {
		var feedAtMS int64
		if feedAtMS, err = parseInt(fieldFeedAt, feedAt); err != nil {
			return st, err
		}
		e.FeedAt = time.UnixMilli(feedAtMS).UTC()
		if e.FeedQuantity, err = parseInt(fieldFeedQty, feedQty); err != nil {
			return st, err
		}
		// A hash written before counts had their own time leaves it zero:
		// the model takes FeedAt then.
		if countedAt != nil {
			var countedAtMS int64
			if countedAtMS, err = parseInt(fieldCountedAt, countedAt); err != nil {
				return st, err
			}
			e.CountedAt = time.UnixMilli(countedAtMS).UTC()
		}
		// So does a hash written before levels kept their start.
		if levelSince != nil {
			var sinceMS int64
			if sinceMS, err = parseInt(fieldLevelSince, levelSince); err != nil {
				return st, err
			}
			e.LevelSince = time.UnixMilli(sinceMS).UTC()
		}
	}
	return st, nil
}

// parseChange decodes a change message of availability.lua: the values of
// stateFields, empty when absent, then "store:product", all separated by
// "|". Ids may contain "|" but not ":", so the store-product comes last.
func parseChange(payload string) (aisle.StoreProduct, state, error) {
	parts := strings.SplitN(payload, "|", len(stateFields)+1)
	if len(parts) != len(stateFields)+1 {
		return aisle.StoreProduct{}, state{}, fmt.Errorf("change message %q: want %d fields", payload, len(stateFields)+1)
	}
	storeID, productID, ok := strings.Cut(parts[len(stateFields)], ":")
	if !ok || storeID == "" || productID == "" {
		return aisle.StoreProduct{}, state{}, fmt.Errorf("change message %q: no store:product", payload)
	}
	st, err := parseStateMessage(strings.Join(parts[:len(stateFields)], "|"))
	if err != nil {
		return aisle.StoreProduct{}, state{}, fmt.Errorf("change message %q: %w", payload, err)
	}
	if st.ver <= 0 {
		return aisle.StoreProduct{}, state{}, fmt.Errorf("change message %q: no version", payload)
	}
	return aisle.StoreProduct{StoreID: storeID, ProductID: productID}, st, nil
}

// parseStateMessage decodes the values of stateFields separated by "|",
// empty when absent, as availability.lua writes them.
func parseStateMessage(payload string) (state, error) {
	parts := strings.Split(payload, "|")
	if len(parts) != len(stateFields) {
		return state{}, fmt.Errorf("state %q: want %d fields", payload, len(stateFields))
	}
	vals := make([]any, len(stateFields))
	for i, p := range parts {
		if p != "" {
			vals[i] = p
		}
	}
	return parseState(vals)
}

func parseInt(field string, v any) (int64, error) {
	s, _ := v.(string)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s %q: %w", field, s, err)
	}
	return n, nil
}

func parseFloat(field string, v any) (float64, error) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s %q: %w", field, s, err)
	}
	return f, nil
}

// WatchAvailability calls fn with every store-product whose availability
// changes, until ctx is done; then it returns nil. It subscribes to the
// shard channels of every bucket (one connection, or one per master of a
// cluster) and subscribes again after a Redis outage. Changes made while
// it was not subscribed (during the outage, or just after it, before the
// stream workers' writes were announced to a subscriber) are never
// announced: resubscribed, when not nil, runs each time Redis confirms the
// subscription, so that the caller can read again what it watches. fn and
// resubscribed run on the caller's goroutine and should not block for long;
// when fn runs, Availability already returns the announced state or a newer
// one.
//
// While its subscription is confirmed, WatchAvailability keeps the near
// cache coherent, and Availability uses it: every announced change updates
// the cached state, and the cache is emptied and left unused whenever the
// subscription is not known to deliver every change (before it is
// confirmed, when it breaks, when it is confirmed again).
//
// It returns an error only when the first subscription fails, so that a
// Redis outage at start is reported.
func (s *Store) WatchAvailability(ctx context.Context, fn func(aisle.StoreProduct), resubscribed func()) error {
	return s.watchLoop(ctx, bucketChannels(s.scope+"changes:availability"), watcher{
		subscribed: func(again bool) {
			// Changes made before this confirmation (say, while go-redis
			// reconnected) may never be announced.
			if again {
				s.near.reset(resetSubscribed)
			} else {
				s.near.join()
			}
			if resubscribed != nil {
				resubscribed()
			}
		},
		message: func(payload string) {
			sp, st, err := parseChange(payload)
			if err != nil {
				// Only availability.lua publishes here; a message it did not
				// write (another version's?) hides a change we cannot apply.
				s.near.reset(resetBadMessage)
				return
			}
			s.near.notify(sp, st)
			fn(sp)
		},
		left: s.near.leave,
	})
}

func (s *Store) availabilityKey(sp aisle.StoreProduct) string { return s.key("avail", sp.String()) }

// changesChannel is the shard channel of availability changes in the
// bucket whose hash tag is tag.
func (s *Store) changesChannel(tag string) string { return s.scope + "changes:availability:" + tag }
