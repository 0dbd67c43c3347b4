package features

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// slotChecker is a go-redis hook that records every script call whose keys
// (and change channel) do not all carry one hash tag: calls Redis Cluster
// refuses (CROSSSLOT), or whose SPUBLISH it refuses.
type slotChecker struct {
	mu      sync.Mutex
	scripts int
	bad     []string
}

func (c *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.check(cmd)
		return next(ctx, cmd)
	}
}

func (c *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.check(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *slotChecker) check(cmd redis.Cmder) {
	args := cmd.Args()
	if name := cmd.Name(); name != "evalsha" && name != "eval" {
		return
	}
	n, _ := strconv.Atoi(fmt.Sprint(args[2]))
	tags := map[string]bool{}
	for _, k := range args[3 : 3+n] {
		tags[hashTag(fmt.Sprint(k))] = true
	}
	for _, a := range args[3+n:] {
		if s, ok := a.(string); ok && strings.Contains(s, "changes:") {
			tags[hashTag(s)] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scripts++
	if len(tags) != 1 {
		c.bad = append(c.bad, fmt.Sprint(args[3:]))
	}
}

// hashTag is what Redis Cluster hashes of a key: the first {…} with
// something in it, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// Finding: every script touched keys of several slots (the entity, a
// dedup key per event, the global offsets hash), which Redis Cluster
// refuses. Each script call now touches one hash tag, its change channel
// included, for every applier and both orders of a label and its order.
func TestEveryScriptCallTouchesOneSlot(t *testing.T) {
	t.Parallel()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://localhost:6379/0"
	}
	var b [8]byte
	rand.Read(b[:])
	prefix := "aisle-test-" + hex.EncodeToString(b[:]) + ":"
	ctx := context.Background()
	s, err := Open(ctx, url, prefix, models.DefaultAvailabilityModel(), WithCluster(os.Getenv("AISLE_REDIS_CLUSTER") == "true"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.DeleteAll(context.Background()); err != nil {
			t.Error(err)
		}
		s.Close()
	})
	checker := &slotChecker{}
	s.rdb.AddHook(checker)

	now := time.Now()
	at := now.Add(-time.Minute)
	event := func(id, typ string, data any) *aisle.Decoded {
		d, err := aisle.BuildEvent(id, typ, at, now, data)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	amount, qty, fraud := int64(1000), int64(3), true
	order := func(id, orderID string) *aisle.Decoded {
		return event(id, aisle.TypeOrderPlaced, aisle.OrderPlaced{OrderID: orderID, UserID: "u-1", StoreID: "s-1", AmountCents: &amount,
			CardFingerprint: "card-1", DeviceID: "dev-1", IP: "10.0.0.1", AddressHash: "addr-1", Items: []aisle.OrderItem{{ProductID: "p-1", Quantity: 1}}})
	}
	label := func(id, orderID string) *aisle.Decoded {
		return event(id, aisle.TypeOrderLabeled, aisle.OrderLabeled{OrderID: orderID, Fraud: &fraud})
	}
	origin := func(topic string, offset int64) aisle.Origin {
		return aisle.Origin{Topic: topic, Partition: 1, Offset: offset}
	}
	steps := []struct {
		apply  func(context.Context, []aisle.Update) ([]bool, error)
		update aisle.Update
	}{
		{s.ApplyAvailability, aisle.Update{Event: event("e-1", aisle.TypePickFound, aisle.Pick{StoreID: "s-1", ProductID: "p-1", ShopperID: "sh-1", OrderID: "o-0"}), Origin: origin(aisle.TopicPicking, 1)}},
		{s.ApplyAvailability, aisle.Update{Event: event("e-2", aisle.TypeInventoryLevel, aisle.InventoryLevel{StoreID: "s-1", ProductID: "p-1", Quantity: &qty}), Origin: origin(aisle.TopicInventory, 1)}},
		{s.ApplySessions, aisle.Update{Event: event("e-3", aisle.TypeSessionView, aisle.SessionEvent{SessionID: "sess-1", UserID: "u-1", StoreID: "s-1", ProductID: "p-1"}), Origin: origin(aisle.TopicSessions, 1)}},
		{s.ApplyVelocity, aisle.Update{Event: order("e-4", "o-1"), Origin: origin(aisle.TopicOrders, 1)}},
		{s.ApplyVelocity, aisle.Update{Event: event("e-5", aisle.TypePaymentFailed, aisle.PaymentFailed{OrderID: "o-2", UserID: "u-1", CardFingerprint: "card-1", DeviceID: "dev-1", IP: "10.0.0.1"}), Origin: origin(aisle.TopicOrders, 2)}},
		{s.ApplyLabels, aisle.Update{Event: label("e-6", "o-1"), Origin: origin(aisle.TopicLabels, 1)}}, // after its order
		{s.ApplyLabels, aisle.Update{Event: label("e-7", "o-3"), Origin: origin(aisle.TopicLabels, 2)}}, // before its order
		{s.ApplyVelocity, aisle.Update{Event: order("e-8", "o-3"), Origin: origin(aisle.TopicOrders, 3)}},
	}
	for i, st := range steps {
		applied, err := st.apply(ctx, []aisle.Update{st.update})
		if err != nil || !applied[0] {
			t.Fatalf("step %d (%s): applied %v, %v", i, st.update.Event.Type, applied, err)
		}
	}
	if checker.scripts < len(steps) {
		t.Fatalf("saw %d script calls, want at least %d", checker.scripts, len(steps))
	}
	for _, b := range checker.bad {
		t.Errorf("a script call on several hash tags: %s", b)
	}
}
