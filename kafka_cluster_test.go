package main

// A multi-broker Kafka (issue 16): stream workers on a cluster of three
// brokers whose partition leaders move and one of which leaves and comes
// back while events arrive. The producer and the workers must follow the
// leaders: nothing lost, nothing applied twice, which the fault tests'
// clean replay shows.

import (
	"context"
	"testing"

	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// TestKafkaCluster runs two stream workers on a 3-broker cluster; under
// load every partition's leader moves, broker 1 is removed (its partitions
// go to the others), then re-added on its address and the leaders move
// again. The topics must hold each event exactly once and the features
// must equal a clean replay.
func TestKafkaCluster(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, ".")
	cluster := streamingtest.MustStartCluster(t, 3, faultPartitions)
	r := newFaultRigOn(t, bin, cluster.Addrs())
	ctx := context.Background()
	brokers, err := r.admin.Brokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 3 {
		t.Fatalf("the cluster has brokers %v, want 3", brokers)
	}
	const removed = int32(1)

	group, prefix := r.newGroup(), r.newPrefix()
	r.serve("worker-1", "stream", group, prefix)
	r.serve("worker-2", "stream", group, prefix)
	r.waitAssigned(group, 2)

	load := r.startLoad()
	n := len(r.events)
	load.waitSent(t, n/4)
	cluster.ShuffleLeaders()
	t.Logf("moved every partition's leader after %d of %d events", load.sent.Load(), n)
	load.waitSent(t, n/2)
	if err := cluster.RemoveNode(removed); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed broker %d (%s) after %d events", removed, brokers[removed], load.sent.Load())
	load.waitSent(t, 3*n/4)
	added, err := cluster.AddNode(brokers[removed])
	if err != nil {
		t.Fatal(err)
	}
	cluster.ShuffleLeaders()
	t.Logf("re-added the broker on %s as broker %d and moved the leaders again after %d events", brokers[removed], added, load.sent.Load())
	load.wait(t)

	// Retried produce requests are deduplicated by the broker (the
	// producer is idempotent): each event is one record.
	if got := r.endOffsets().Total(); got != int64(n) {
		t.Errorf("the event topics hold %d records, want the %d events published", got, n)
	}
	r.waitCaughtUp(group)
	r.assertSameAsCleanReplay(prefix)
}
