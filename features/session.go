package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

//go:embed session.lua
var applySessionSource string

//go:embed item.lua
var applyItemSource string

//go:embed tally.lua
var applyTallySource string

var (
	applySessionScript = newApplierScript(applySessionSource)
	applyItemScript    = redis.NewScript(applyItemSource)
	applyTallyScript   = newApplierScript(applyTallySource)
)

// Bounds of the session state (see session.lua).
const (
	// SessionItems is how many item events a session keeps: enough for the
	// model's query (models.RecommendModel.QueryItems) and then some.
	SessionItems = 30
	// ItemSessions is how many of the most recent sessions a product's
	// index keeps for neighbour search.
	ItemSessions = 200
	// SessionTTL is how long an untouched session, and an untouched
	// product's session index, lives: a week of sessions are neighbours.
	SessionTTL = 7 * 24 * time.Hour

	// CoAdded is how many of the products a session added to its cart
	// before an add the live co-occurrence counts the add with: the
	// recent ones say what belongs together, and it bounds an add's
	// writes to CoAdded+2 tallies.
	CoAdded = 5

	// CountedAddsKept is how many of its latest cart adds a session
	// remembers the products of (the CoAdded before each) that the live
	// co-occurrence counted them with, so that a redelivered add is counted
	// with the same ones, after later events pushed what it saw out of the
	// session's items: as many adds back as an entity recognises an event by
	// its id (RecentIDs), far more than a dying worker leaves uncommitted
	// for one session.
	CountedAddsKept = RecentIDs

	// CoOccurrenceKept is how many co-added products a product's live
	// tally keeps (the most frequent).
	CoOccurrenceKept = 200
	// TallyTTL is how long an untouched live tally lives.
	TallyTTL = 30 * 24 * time.Hour
)

// sessionActions maps session event types to the script's action names.
var sessionActions = map[string]string{
	aisle.TypeSessionView:           "view",
	aisle.TypeSessionAddToCart:      "add",
	aisle.TypeSessionRemoveFromCart: "remove",
	aisle.TypeSessionSearch:         "search",
	aisle.TypeSessionCheckout:       "checkout",
}

// itemActions maps the script's item actions back to the model's.
var itemActions = map[string]models.SessionAction{
	"view":   models.ActionView,
	"add":    models.ActionAddToCart,
	"remove": models.ActionRemoveFromCart,
}

// SessionState is a session as the online store keeps it.
type SessionState struct {
	Owner   string // the user of its first event; "" when the session is unknown
	Session models.Session
}

// ApplySessions applies session.* events in two pipelined round trips:
// each event to its session, atomically with the session's bookkeeping like
// ApplyAvailability, then the events about a product to the product's index
// of sessions, which is idempotent, and each cart add to the live tallies
// that serve until a co-purchase fit exists: the store's popularity, and
// the co-occurrence of the added product and the (at most CoAdded) products
// the session added before it, both ways. Each tally is one entity with its
// own bookkeeping, so an add counts once however often it is delivered. A
// session belongs to the user of its first event: a later event of another
// user is skipped (applied false), so no one can take over or pollute
// someone else's session by reusing its id.
func (s *Store) ApplySessions(ctx context.Context, updates []aisle.Update) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	results, err := s.applyToSessions(ctx, updates)
	if err != nil {
		return nil, err
	}
	applied = make([]bool, len(updates))
	var items []call
	for i, r := range results {
		reply, ok := r.([]any)
		if !ok || len(reply) == 0 {
			return nil, fmt.Errorf("apply session events: unexpected reply %v", r)
		}
		result := reply[0]
		applied[i] = result == int64(1)
		// Applied now, or before (the index and tallies may not have been
		// written if the worker died in between): the session's own product
		// event.
		u := updates[i]
		se := u.Event.Session
		if se.ProductID == "" || (result != int64(1) && result != int64(0)) {
			continue
		}
		items = append(items, call{applyItemScript, []string{s.itemSessionsKey(se.ProductID)},
			[]any{u.Event.Time.UnixMilli(), se.SessionID, ItemSessions, SessionTTL.Milliseconds()}})
		if u.Event.Type == aisle.TypeSessionAddToCart {
			before := make([]any, 0, len(reply)-1)
			for _, p := range reply[1:] {
				before = append(before, p)
			}
			items = append(items, s.tallyCalls(u, se, before)...)
		}
	}
	if _, err := s.evalEach(ctx, items); err != nil {
		return nil, fmt.Errorf("apply session events to their products: %w", err)
	}
	return applied, nil
}

// applyToSessions is ApplySessions's first round trip: each event to its
// session (session.lua). It returns the scripts' replies.
func (s *Store) applyToSessions(ctx context.Context, updates []aisle.Update) ([]any, error) {
	calls := make([]call, len(updates))
	for i, u := range updates {
		ev := u.Event
		if ev == nil || ev.Session == nil {
			return nil, errors.New("apply sessions: not a session event")
		}
		se := ev.Session
		coAdded := 0
		if ev.Type == aisle.TypeSessionAddToCart {
			coAdded = CoAdded
		}
		args := append(markArgs("sessions", u),
			sessionActions[ev.Type], se.UserID, se.ProductID, ev.Time.UnixMilli(),
			SessionTTL.Milliseconds(), s.sessionChannel(bucketTag(se.SessionID)), se.SessionID, SessionItems, coAdded, CountedAddsKept)
		calls[i] = call{applySessionScript, []string{s.sessionKey(se.SessionID)}, args}
	}
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("apply session events: %w", err)
	}
	return results, nil
}

// tallyCalls count the cart add u, of se.ProductID after the products
// before, into the live tallies: the store's popularity, the product's
// co-occurrence with each of before, and each one's with the product.
func (s *Store) tallyCalls(u aisle.Update, se *aisle.SessionEvent, before []any) []call {
	tally := func(kind, id string, keep int, self bool, members ...any) call {
		own := "0"
		if self {
			own = "1"
		}
		args := append(markArgs(kind, u), keep, TallyTTL.Milliseconds(), own)
		return call{applyTallyScript, []string{s.key(kind, id), s.key(kind+"z", id)}, append(args, members...)}
	}
	calls := []call{
		tally("pop", se.StoreID, 0, false, se.ProductID),
		tally("co", se.ProductID, CoOccurrenceKept, true, before...),
	}
	for _, p := range before {
		calls = append(calls, tally("co", p.(string), CoOccurrenceKept, false, se.ProductID))
	}
	return calls
}

// Session reads a session's state; an unknown (or expired) session is the
// zero state.
func (s *Store) Session(ctx context.Context, sessionID string) (SessionState, error) {
	vals, err := s.rdb.HMGet(ctx, s.sessionKey(sessionID), "user", "items", "cart").Result()
	if err != nil {
		return SessionState{}, fmt.Errorf("read session %s: %w", sessionID, err)
	}
	var st SessionState
	if vals[0] == nil {
		return st, nil
	}
	st.Owner, _ = vals[0].(string)
	items, _ := vals[1].(string)
	if st.Session.Items, err = parseSessionItems(items); err != nil {
		return SessionState{}, fmt.Errorf("read session %s: %w", sessionID, err)
	}
	cart, _ := vals[2].(string)
	st.Session.Cart = strings.Fields(cart)
	return st, nil
}

// parseSessionItems decodes session.lua's "action:product:ms" entries.
func parseSessionItems(encoded string) ([]models.SessionItem, error) {
	entries := strings.Fields(encoded)
	out := make([]models.SessionItem, len(entries))
	for i, e := range entries {
		parts := strings.Split(e, ":")
		if len(parts) != 3 || itemActions[parts[0]] == 0 {
			return nil, fmt.Errorf("bad session item %q", e)
		}
		ms, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad session item %q: %w", e, err)
		}
		out[i] = models.SessionItem{ProductID: parts[1], Action: itemActions[parts[0]], AtMillis: ms}
	}
	return out, nil
}

// NeighbourSessions returns up to sample recent sessions that touched any
// of productIDs, other than sessionID, most recent first, each with its
// distinct items. It reads the perItem most recent sessions of each
// product's index, keeps the sample most recent (models.SampleNeighbours),
// and reads their items: two pipelined round trips.
func (s *Store) NeighbourSessions(ctx context.Context, sessionID string, productIDs []string, perItem, sample int) ([]models.NeighbourSession, error) {
	if len(productIDs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	ranges := make([]*redis.ZSliceCmd, len(productIDs))
	for i, p := range productIDs {
		ranges[i] = pipe.ZRevRangeWithScores(ctx, s.itemSessionsKey(p), 0, int64(perItem-1))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read session indexes: %w", err)
	}
	lists := make([][]models.SessionTime, len(ranges))
	for i, r := range ranges {
		for _, z := range r.Val() {
			id, _ := z.Member.(string)
			lists[i] = append(lists[i], models.SessionTime{ID: id, AtMillis: int64(z.Score)})
		}
	}
	ids := models.SampleNeighbours(lists, sessionID, sample)
	if len(ids) == 0 {
		return nil, nil
	}

	out := make([]models.NeighbourSession, len(ids))
	missing := s.neighbours.lookup(ids, out)
	if len(missing) > 0 {
		pipe = s.rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(missing))
		for j, i := range missing {
			gets[j] = pipe.HGet(ctx, s.sessionKey(ids[i]), "items")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read neighbour sessions: %w", err)
		}
		for j, i := range missing {
			items, err := parseSessionItems(gets[j].Val()) // an expired session reads as none
			if err != nil {
				return nil, fmt.Errorf("read neighbour session %s: %w", ids[i], err)
			}
			out[i] = models.NeighbourSession{ID: ids[i], Items: models.NeighbourItems(items)}
			s.neighbours.store(out[i])
		}
	}
	return slices.DeleteFunc(out, func(ns models.NeighbourSession) bool { return len(ns.Items) == 0 }), nil
}

// WatchSessions calls fn with the id of every session that changes, until
// ctx is done; then it returns nil. Like WatchAvailability it subscribes to
// every bucket's shard channel, subscribes again after an outage (changes
// during the outage are not announced) and fails only when the first
// subscription does.
//
// While its subscription is confirmed, NeighbourSessions serves neighbour
// sessions from an in-process cache that every announced change keeps
// coherent (see neighbourCache).
func (s *Store) WatchSessions(ctx context.Context, fn func(sessionID string)) error {
	return s.watchLoop(ctx, bucketChannels(s.scope+"changes:sessions"), watcher{
		subscribed: func(bool) { s.neighbours.use() },
		message: func(sessionID string) {
			s.neighbours.forget(sessionID)
			fn(sessionID)
		},
		left: s.neighbours.stop,
	})
}

func (s *Store) sessionKey(id string) string { return s.key("sess", id) }

func (s *Store) itemSessionsKey(productID string) string { return s.key("item", productID) }

// sessionChannel is the shard channel of session changes in the bucket
// whose hash tag is tag.
func (s *Store) sessionChannel(tag string) string { return s.scope + "changes:sessions:" + tag }
