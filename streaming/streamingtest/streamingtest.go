// Package streamingtest starts embedded Kafka-protocol brokers for tests.
package streamingtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming"
)

// MustStartBroker starts an in-memory broker on a free local port with
// Aisle's topics (partitions each) and closes it when the test ends. Each
// call is its own cluster, so tests never share topics or groups.
func MustStartBroker(tb testing.TB, partitions int32) *streaming.Broker {
	tb.Helper()
	b, err := streaming.StartEmbeddedBroker(context.Background(), "127.0.0.1:0", "", partitions, slog.New(slog.DiscardHandler))
	return mustEnsureTopics(tb, b, err, partitions, 1)
}

// MustStartCluster is MustStartBroker for a cluster of nodes brokers (node
// ids 0..nodes-1), whose topics have a replica on each.
func MustStartCluster(tb testing.TB, nodes int, partitions int32) *streaming.Broker {
	tb.Helper()
	b, err := streaming.StartEmbeddedCluster(context.Background(), nodes, partitions, slog.New(slog.DiscardHandler))
	return mustEnsureTopics(tb, b, err, partitions, int16(nodes))
}

func mustEnsureTopics(tb testing.TB, b *streaming.Broker, err error, partitions int32, replicas int16) *streaming.Broker {
	tb.Helper()
	if err != nil {
		tb.Fatalf("streamingtest: %v", err)
	}
	tb.Cleanup(b.Close)
	if err := streaming.EnsureTopics(context.Background(), b.Addrs(), partitions, replicas); err != nil {
		tb.Fatalf("streamingtest: %v", err)
	}
	return b
}

// Offsets are offsets by topic and partition.
type Offsets map[string]map[int32]int64

// Admin reads a consumer group's progress on a cluster, for tests that
// wait for workers to catch up or check what they committed.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// MustAdmin connects to brokers; the client is closed when the test ends.
func MustAdmin(tb testing.TB, brokers []string) *Admin {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		tb.Fatalf("streamingtest: %v", err)
	}
	tb.Cleanup(cl.Close)
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}
}

// EndOffsets returns the next offset of every partition of Aisle's event
// topics: how many records each holds.
func (a *Admin) EndOffsets(ctx context.Context) (Offsets, error) {
	listed, err := a.adm.ListEndOffsets(ctx, aisle.EventTopics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := Offsets{}
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		out.set(o.Topic, o.Partition, o.Offset)
	})
	return out, firstErr
}

// Committed returns the offsets group committed (partitions it never
// committed are absent).
func (a *Admin) Committed(ctx context.Context, group string) (Offsets, error) {
	resps, err := a.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if err := resps.Error(); err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	out := Offsets{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 { // -1: nothing committed
			out.set(o.Topic, o.Partition, o.At)
		}
	})
	return out, nil
}

// Brokers returns the host:port of each broker of the cluster by node id.
func (a *Admin) Brokers(ctx context.Context) (map[int32]string, error) {
	meta, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker metadata: %w", err)
	}
	out := map[int32]string{}
	for _, b := range meta.Brokers {
		out[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	return out, nil
}

// Replicas returns how many replicas each partition of topic has.
func (a *Admin) Replicas(ctx context.Context, topic string) (map[int32]int, error) {
	meta, err := a.adm.Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	td, ok := meta.Topics[topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("metadata of %s: missing (%v)", topic, td.Err)
	}
	out := map[int32]int{}
	for p, pd := range td.Partitions {
		out[p] = len(pd.Replicas)
	}
	return out, nil
}

// Lag returns how many records of the event topics group has not
// committed yet.
func (a *Admin) Lag(ctx context.Context, group string) (int64, error) {
	end, err := a.EndOffsets(ctx)
	if err != nil {
		return 0, err
	}
	committed, err := a.Committed(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	for topic, ps := range end {
		for p, e := range ps {
			lag += e - committed[topic][p]
		}
	}
	return lag, nil
}

// Assignment returns, for each member of group, how many partitions it is
// assigned; empty while the group rebalances or has no members.
func (a *Admin) Assignment(ctx context.Context, group string) (map[string]int, error) {
	described, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	g := described[group]
	if g.Err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	out := map[string]int{}
	if g.State != "Stable" {
		return out, nil
	}
	for _, m := range g.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				out[m.MemberID] += len(t.Partitions)
			}
		}
	}
	return out, nil
}

func (o Offsets) set(topic string, partition int32, offset int64) {
	if o[topic] == nil {
		o[topic] = map[int32]int64{}
	}
	o[topic][partition] = offset
}

// Total is the sum of the offsets.
func (o Offsets) Total() int64 {
	var sum int64
	for _, ps := range o {
		for _, off := range ps {
			sum += off
		}
	}
	return sum
}

// Produce writes records as they are, bad ones included, through one
// client so that each partition keeps their order, and waits for them.
func Produce(tb testing.TB, brokers []string, recs ...*kgo.Record) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		tb.Fatalf("produce: %v", err)
	}
}
