package streaming_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	p := mustProducer(t, b.Addrs())
	ctx := context.Background()

	ev := pickEvent("e-1", aisle.TypePickReplaced, "s-1", "p-1", now)
	ev.Data = json.RawMessage(`{"store_id":"s-1","product_id":"p-1","shopper_id":"sh-1","order_id":"o-1","replacement_product_id":"p-2"}`)
	receipt, err := p.Publish(ctx, ev, "")
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if receipt.EventID != "e-1" || receipt.Topic != aisle.TopicPicking || receipt.Offset != 0 {
		t.Fatalf("receipt %+v", receipt)
	}
	inv, err := p.Publish(ctx, inventoryEvent("f-1", "s-1", "p-1", 5, now), "custom-key")
	if err != nil || inv.Topic != aisle.TopicInventory {
		t.Fatalf("Publish inventory: %+v, %v", inv, err)
	}

	recs := consumeAll(t, b.Addrs(), aisle.TopicPicking, 1)
	if got := recs[0]; string(got.Key) != "s-1:p-1" || got.Partition != receipt.Partition {
		t.Fatalf("record key %q partition %d, want the store:product key on partition %d", got.Key, got.Partition, receipt.Partition)
	}
	d, err := aisle.DecodeEvent(recs[0].Value, aisle.TopicPicking, now)
	if err != nil || d.ID != "e-1" || !d.Time.Equal(now) || d.Pick.ReplacementProductID != "p-2" {
		t.Fatalf("record value decodes to %+v, %v", d, err)
	}
	if recs := consumeAll(t, b.Addrs(), aisle.TopicInventory, 1); string(recs[0].Key) != "custom-key" {
		t.Fatalf("inventory record key %q, want the given key", recs[0].Key)
	}
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	p := mustProducer(t, b.Addrs())
	for name, ev := range map[string]aisle.Event{
		"unknown type":    pickEvent("e-1", "pick.lost", "s-1", "p-1", now),
		"missing id":      pickEvent("", aisle.TypePickFound, "s-1", "p-1", now),
		"future":          pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", time.Now().Add(time.Hour)),
		"missing product": pickEvent("e-1", aisle.TypePickFound, "s-1", "", now),
	} {
		if _, err := p.Publish(context.Background(), ev, ""); aisle.ErrorCode(err) != aisle.EINVALID {
			t.Errorf("%s: Publish returned %v, want %s", name, err, aisle.EINVALID)
		}
	}
	if ends := endOffsets(t, b.Addrs(), aisle.TopicPicking); ends[aisle.TopicPicking][0].Offset != 0 {
		t.Fatalf("invalid events were written: end offset %d", ends[aisle.TopicPicking][0].Offset)
	}
}

func TestPublishFailsClearlyWhenKafkaIsDown(t *testing.T) {
	t.Parallel()
	p, err := streaming.NewProducer([]string{"127.0.0.1:1"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The caller waits longer than the producer's own bound, so that the
	// failure is the producer giving up, not the caller.
	ctx, cancel := context.WithTimeout(context.Background(), 10*streaming.PublishTimeout)
	defer cancel()
	_, err = p.Publish(ctx, pickEvent("e-1", aisle.TypePickFound, "s-1", "p-1", now), "")
	if aisle.ErrorCode(err) != aisle.EUNAVAILABLE || ctx.Err() != nil {
		t.Fatalf("Publish to a closed port: %v (caller's context: %v), want %s from the producer itself", err, ctx.Err(), aisle.EUNAVAILABLE)
	}
}
