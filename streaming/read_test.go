package streaming_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// readRecord is one record as ReadTopics reported it.
type readRecord struct {
	topic     string
	partition int32
	offset    int64
}

// ReadTopics reads every record present at the call exactly once, bad ones
// included, and nothing produced after the call.
func TestReadTopics(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 3)
	brokers := b.Addrs()
	want := map[string]string{} // value → topic
	var recs []*kgo.Record
	for i := range 60 {
		topic, value := aisle.TopicPicking, mustJSON(pickEvent(fmt.Sprint("e-", i), aisle.TypePickFound, "s-1", fmt.Sprint("p-", i), now))
		switch i % 3 {
		case 1:
			topic, value = aisle.TopicInventory, mustJSON(inventoryEvent(fmt.Sprint("f-", i), "s-1", fmt.Sprint("p-", i), int64(i), now))
		case 2:
			value = fmt.Appendf(nil, "not json %d", i) // raw values, valid or not
		}
		want[string(value)] = topic
		recs = append(recs, record(topic, fmt.Sprint("k-", i), value))
	}
	streamingtest.Produce(t, brokers, recs...)

	seen := map[readRecord]string{}
	late := 0
	err := streaming.ReadTopics(context.Background(), brokers, streaming.Topics(), testLogger(t),
		func(topic string, partition int32, offset int64, value []byte, _ time.Time) error {
			if late == 0 {
				// Producers keep writing during the read; ReadTopics must
				// neither wait for nor return these.
				for i := range 10 {
					streamingtest.Produce(t, brokers, record(aisle.TopicPicking, fmt.Sprint("k-", i), []byte(fmt.Sprint("late ", i))))
					late++
				}
			}
			rr := readRecord{topic, partition, offset}
			if _, dup := seen[rr]; dup {
				t.Errorf("record %+v read twice", rr)
			}
			seen[rr] = string(value)
			return nil
		})
	if err != nil {
		t.Fatalf("ReadTopics: %v", err)
	}
	if len(seen) != len(want) {
		t.Errorf("read %d records, want %d", len(seen), len(want))
	}
	perPartition := map[readRecord]int64{} // (topic, partition) → records read
	for rr, value := range seen {
		if want[value] != rr.topic {
			t.Errorf("read %q from %s, produced to %q", value, rr.topic, want[value])
		}
		perPartition[readRecord{topic: rr.topic, partition: rr.partition}]++
	}
	ends := endOffsets(t, brokers, aisle.TopicPicking, aisle.TopicInventory)
	for tp, n := range perPartition {
		// Offsets 0..n-1 were all read once; the end has moved on by the
		// late records only on the picking topic.
		for o := range n {
			if _, ok := seen[readRecord{tp.topic, tp.partition, o}]; !ok {
				t.Errorf("%s/%d: offset %d not read", tp.topic, tp.partition, o)
			}
		}
		end, _ := ends.Lookup(tp.topic, tp.partition)
		if tp.topic == aisle.TopicInventory && end.Offset != n {
			t.Errorf("%s/%d: read %d records of %d", tp.topic, tp.partition, n, end.Offset)
		}
	}
	for _, v := range seen {
		if strings.HasPrefix(v, "late ") {
			t.Errorf("read %q, produced after the call", v)
		}
	}
}

func TestReadTopicsStops(t *testing.T) {
	t.Parallel()
	b := streamingtest.MustStartBroker(t, 1)
	brokers := b.Addrs()
	for i := range 5 {
		streamingtest.Produce(t, brokers, record(aisle.TopicPicking, "k", []byte(fmt.Sprint("v", i))))
	}
	nothing := func(string, int32, int64, []byte, time.Time) error { return nil }

	// The callback's error stops the read and comes back.
	stopHere := errors.New("enough")
	calls := 0
	err := streaming.ReadTopics(context.Background(), brokers, []string{aisle.TopicPicking}, testLogger(t),
		func(string, int32, int64, []byte, time.Time) error {
			calls++
			if calls == 2 {
				return stopHere
			}
			return nil
		})
	if !errors.Is(err, stopHere) || calls != 2 {
		t.Errorf("callback error: ReadTopics returned %v after %d calls, want %v after 2", err, calls, stopHere)
	}

	// Empty topics are read at once.
	if err := streaming.ReadTopics(context.Background(), brokers, []string{aisle.TopicDLQ, aisle.TopicInventory}, testLogger(t), nothing); err != nil {
		t.Errorf("empty topics: %v", err)
	}

	// A missing topic is named.
	err = streaming.ReadTopics(context.Background(), brokers, []string{aisle.TopicPicking, "aisle.nope"}, testLogger(t), nothing)
	if err == nil || !strings.Contains(err.Error(), "topic aisle.nope does not exist") {
		t.Errorf("missing topic: %v", err)
	}

	// A cancelled context ends the read.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := streaming.ReadTopics(ctx, brokers, []string{aisle.TopicPicking}, testLogger(t), nothing); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: ReadTopics returned %v, want context.Canceled", err)
	}
}
