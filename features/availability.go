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

// applyAvailabilityScript is immutable: go-redis only derives its SHA1.
var applyAvailabilityScript = redis.NewScript(applyAvailabilitySource)

// Fields of an availability hash.
const (
	fieldFound    = "found"      // decayed pick.found count, valued at at_ms
	fieldNotFound = "not_found"  // decayed pick.not_found + pick.replaced count
	fieldAt       = "at_ms"      // latest pick event time, unix ms
	fieldFeedQty  = "feed_qty"   // latest retailer feed level
	fieldFeedAt   = "feed_at_ms" // its event time, unix ms
)

// Origin says where an event was read from. The offset watermark it feeds
// makes a replay of already applied records a no-op even when their event
// ids have expired from the dedup keys.
type Origin struct {
	Topic string // "" for events that did not come from Kafka: dedup by event id only
	// TopicID is the broker's id of the topic (hex), if known. It is part of
	// the watermark, so a deleted and recreated topic (whose offsets restart
	// at 0, e.g. after wiping the embedded broker's data) is not mistaken
	// for a replay.
	TopicID   string
	Partition int32
	Offset    int64
}

// field is the watermark's field in the offsets hash.
func (o Origin) field() string {
	f := o.Topic + "/" + strconv.FormatInt(int64(o.Partition), 10)
	if o.TopicID != "" {
		f += "/" + o.TopicID
	}
	return f
}

// AvailabilityUpdate is one inventory or picking event to apply.
type AvailabilityUpdate struct {
	Event  *aisle.Decoded
	Origin Origin
}

// ApplyAvailability applies inventory.level and pick.* events in one
// pipelined round trip. Each event is applied atomically together with its
// dedup key and offset watermark, so applying the same event again (same id,
// or an offset at or below the partition's watermark) changes nothing.
// Event times are kept to the millisecond. Updates from one partition must
// be given in offset order. applied[i] reports whether updates[i] was new.
// On error nothing is reported and the caller may retry the whole slice:
// what was already applied is skipped.
func (s *Store) ApplyAvailability(ctx context.Context, updates []AvailabilityUpdate) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	args := make([][]any, len(updates))
	keys := make([][]string, len(updates))
	for i, u := range updates {
		keys[i], args[i], err = s.availabilityCall(u)
		if err != nil {
			return nil, err
		}
	}

	applied = make([]bool, len(updates))
	pending := make([]int, len(updates))
	for i := range pending {
		pending[i] = i
	}
	// A second pass is needed only when Redis lost its script cache (a
	// restart) between two batches: reload and rerun the calls that failed.
	for pass := 0; pass < 2; pass++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(pending))
		for j, i := range pending {
			cmds[j] = applyAvailabilityScript.EvalSha(ctx, pipe, keys[i], args[i]...)
		}
		_, _ = pipe.Exec(ctx) // errors are per command, read below

		var noScript []int
		for j, i := range pending {
			n, err := cmds[j].Int64()
			switch {
			case err == nil:
				applied[i] = n == 1
			case redis.HasErrorPrefix(err, "NOSCRIPT"):
				noScript = append(noScript, i)
			default:
				return nil, fmt.Errorf("apply availability events: %w", err)
			}
		}
		if len(noScript) == 0 {
			return applied, nil
		}
		if err := applyAvailabilityScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("reload availability script: %w", err)
		}
		pending = noScript
	}
	return nil, errors.New("apply availability events: redis keeps forgetting the script")
}

// availabilityCall builds the keys and arguments of the Lua call for u.
func (s *Store) availabilityCall(u AvailabilityUpdate) ([]string, []any, error) {
	ev := u.Event
	if ev == nil || (ev.Inventory == nil && ev.Pick == nil) {
		return nil, nil, errors.New("apply availability: not an inventory or picking event")
	}
	var kind string
	var quantity int64
	switch {
	case ev.Inventory != nil:
		kind, quantity = "feed", *ev.Inventory.Quantity
	case ev.Type == aisle.TypePickFound:
		kind = "found"
	default: // pick.not_found, pick.replaced: the item was not on the shelf
		kind = "not_found"
	}
	sp := ev.StoreProduct()
	field := ""
	if u.Origin.Topic != "" {
		field = u.Origin.field()
	}
	keys := []string{s.availabilityKey(sp), s.seenKey(ev.ID), s.offsetsKey()}
	args := []any{
		kind,
		ev.Time.UnixMilli(),
		quantity,
		s.model.PickDecayPerSecond(),
		s.ttl.Milliseconds(),
		s.seenTTL.Milliseconds(),
		field,
		u.Origin.Offset,
		s.changesChannel(),
		sp.String(),
	}
	return keys, args, nil
}

// Availability reads the evidence of each store-product in one pipelined
// round trip. A store-product without data gets the zero value.
func (s *Store) Availability(ctx context.Context, sps []aisle.StoreProduct) ([]models.AvailabilityEvidence, error) {
	if len(sps) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(sps))
	for i, sp := range sps {
		cmds[i] = pipe.HMGet(ctx, s.availabilityKey(sp), fieldFound, fieldNotFound, fieldAt, fieldFeedQty, fieldFeedAt)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read availability: %w", err)
	}
	out := make([]models.AvailabilityEvidence, len(sps))
	for i, cmd := range cmds {
		e, err := parseEvidence(cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("read availability of %s: %w", sps[i], err)
		}
		out[i] = e
	}
	return out, nil
}

// parseEvidence decodes HMGET found, not_found, at_ms, feed_qty, feed_at_ms.
// Missing fields (nil) leave the zero value.
func parseEvidence(vals []any) (e models.AvailabilityEvidence, err error) {
	if vals[2] != nil {
		var atMS int64
		if atMS, err = parseInt(fieldAt, vals[2]); err != nil {
			return e, err
		}
		e.At = time.UnixMilli(atMS).UTC()
		if e.Found, err = parseFloat(fieldFound, vals[0]); err != nil {
			return e, err
		}
		if e.NotFound, err = parseFloat(fieldNotFound, vals[1]); err != nil {
			return e, err
		}
	}
	if vals[4] != nil {
		var feedAtMS int64
		if feedAtMS, err = parseInt(fieldFeedAt, vals[4]); err != nil {
			return e, err
		}
		e.FeedAt = time.UnixMilli(feedAtMS).UTC()
		if e.FeedQuantity, err = parseInt(fieldFeedQty, vals[3]); err != nil {
			return e, err
		}
	}
	return e, nil
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
// changes, until ctx is done; then it returns nil. It holds one pub/sub
// connection, which go-redis re-establishes after a Redis outage (changes
// made during the outage are not announced). fn runs on the caller's
// goroutine and should not block for long.
func (s *Store) WatchAvailability(ctx context.Context, fn func(aisle.StoreProduct)) error {
	ps := s.rdb.Subscribe(ctx, s.changesChannel())
	defer ps.Close()
	// Wait for the subscription so that a Redis outage at start is reported.
	if _, err := ps.Receive(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscribe to availability changes: %w", err)
	}
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return errors.New("availability changes: subscription closed")
			}
			storeID, productID, ok := strings.Cut(msg.Payload, ":")
			if !ok {
				continue // not ours: only the Lua script publishes here, as store:product
			}
			fn(aisle.StoreProduct{StoreID: storeID, ProductID: productID})
		}
	}
}

func (s *Store) availabilityKey(sp aisle.StoreProduct) string {
	return s.prefix + "avail:" + sp.StoreID + ":" + sp.ProductID
}

func (s *Store) changesChannel() string { return s.prefix + "changes:availability" }
