package streaming_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// A caller that gives up (a GraphQL client that disconnects) must fail its
// own publish only. franz-go fails every record buffered for a partition
// when the first record of a batch has its context cancelled, so with the
// caller's context on the record one client's cancellation failed the
// events of the others that shared its batch.
func TestPublishDoesNotFailWhenAnotherCallerGivesUp(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	p := mustProducer(t, b.Addrs())

	// The broker holds the first produce request until release, so the
	// next records wait in one batch behind it.
	cluster := b.Cluster()
	held, release := make(chan struct{}), make(chan struct{})
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.DropControl()
		close(held)
		cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	publish := func(ctx context.Context, id string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := p.Publish(ctx, pickEvent(id, aisle.TypePickFound, "s-1", "p-1", now), "")
			done <- err
		}()
		return done
	}
	buffered := func(n int64) func() bool { return func() bool { return p.BufferedRecords() == n } }

	first := publish(context.Background(), "e-first")
	<-held
	ctx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	cancelled := publish(ctx, "e-gives-up")
	waitFor(t, "the second record to be buffered", buffered(2))
	other := publish(context.Background(), "e-other")
	waitFor(t, "the third record to be buffered", buffered(3))
	giveUp()
	close(release)

	if err := <-first; err != nil {
		t.Fatalf("first publish: %v", err)
	}
	if err := <-other; err != nil {
		t.Fatalf("a publish that shared a batch with a cancelled one: %v", err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled publish: %v, want the caller's cancellation", err)
	}
	// The one whose caller gave up is written all the same.
	consumeAll(t, b.Addrs(), aisle.TopicPicking, 3)
}

// The dead-letter queue matches each result to its record by position: the
// results must come in the order of the records, not in the order the
// broker's partitions answered.
func TestProduceAnswersInTheOrderOfTheRecords(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 4)
	p := mustProducer(t, b.Addrs())
	for round := range 20 {
		recs := make([]*kgo.Record, 16)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: aisle.TopicDLQ, Key: []byte(fmt.Sprintf("k-%d-%d", round, i))}
		}
		results, err := p.Produce(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, res := range results {
			if res.Err != nil || res.Record != recs[i] {
				t.Fatalf("round %d: result %d is record %q (%v), want %q", round, i, res.Record.Key, res.Err, recs[i].Key)
			}
		}
	}
}
