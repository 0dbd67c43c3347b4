package main

// Redis Cluster failover under load (issue 10): a stream worker writes to a
// 3-master cluster of the test's own while one master is killed with
// kill -9; its replica takes over and the stream goes on. The features are
// then compared with a clean replay of the same topics. Redis replicates
// asynchronously, so a write the master acknowledged just before it died
// may never have reached the replica: such a loss is allowed, but only on
// the failed master's slots and only as many as its last moments could
// hold, and the test counts and logs every one.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/proctest"
)

// clusterNodeTimeout is the test cluster's cluster-node-timeout: a master
// is declared failed, and its replica elected, about that long after it
// stops answering.
const clusterNodeTimeout = 2 * time.Second

// TestClusterFailover kills one master of a Redis Cluster with kill -9 in
// the middle of a steady load: its replica must take over, the worker must
// apply every event (nothing dead-lettered, the group catches up) and the
// features must equal a clean replay except for writes the dead master
// acknowledged and never replicated. ReplicaInSync is the failover as it
// happens; ReplicaBehind first cuts the replica off until its master has
// acknowledged writes it never receives, and proves that such losses are
// found and counted.
func TestClusterFailover(t *testing.T) {
	if !featurestest.Cluster() {
		t.Skip("runs in make test's cluster pass (AISLE_REDIS_CLUSTER=true): it starts Redis Clusters of its own with scripts/redis-cluster.sh on free ports and kills one of their masters")
	}
	bin := proctest.Build(t, ".")
	t.Run("ReplicaInSync", func(t *testing.T) { testClusterFailover(t, bin, 0) })
	// 16 KiB of the replication stream: some tens of events.
	t.Run("ReplicaBehind", func(t *testing.T) { testClusterFailover(t, bin, 16<<10) })
}

// testClusterFailover runs the load, kills the master serving slot 0 a
// quarter of the way through and compares the features with a clean replay.
// With unreplicated > 0 the replica is cut off first until its master has
// written that many bytes it will never receive, and some keys must be lost.
func testClusterFailover(t *testing.T, bin string, unreplicated int64) {
	cluster := startLocalCluster(t)
	// The rig's stores, snapshots and processes all take the URL from here.
	t.Setenv("REDIS_URL", cluster.url)
	r := newFaultRig(t, bin)
	// About 10 s of load, so that the failover falls in the middle of it.
	r.rate = 300
	group, prefix := r.newGroup(), r.newPrefix()
	worker := r.serve("worker", "stream", group, prefix)
	r.waitAssigned(group, 1)

	load := r.startLoad()
	load.waitSent(t, len(r.events)/4)
	victim := cluster.masterOf(t, 0)
	var behind int64
	if unreplicated > 0 {
		behind = cluster.cutReplicaFor(t, victim, unreplicated)
	} else {
		behind = cluster.replicationLag(t, victim)
	}
	victim.kill(t)
	killedAt, sent := time.Now(), load.sent.Load()
	if unreplicated > 0 {
		cluster.resume(t, victim.replica)
	}
	cluster.waitPromoted(t, victim.replica)
	t.Logf("killed master %s (slots %v) after %d of %d events, its replica %s %d bytes behind; %s took over after %s",
		victim.addr, victim.slots, sent, len(r.events), victim.replica, behind, victim.replica, time.Since(killedAt).Round(100*time.Millisecond))

	load.wait(t)
	r.waitCaughtUp(group)
	t.Logf("the worker applied every event %s after the kill; what it retried meanwhile: %s",
		time.Since(killedAt).Round(100*time.Millisecond), retriedErrors(worker.Logs()))
	wantNoDeadLetters(t, r.brokers)
	got, want, _ := r.cleanReplay(prefix)
	lost := differingFields(got, want)
	for _, key := range slices.Sorted(maps.Keys(lost)) {
		for _, source := range lossSources(key, got[key], want[key]) {
			if slot := cluster.keySlot(t, prefix+source); !victim.serves(slot) {
				t.Errorf("%s differs from the clean replay, yet the master of %s (slot %d) did not fail: not a failover loss", key, source, slot)
			}
		}
	}
	// Only what the replica had not received when its master died can be
	// lost: writes of the last moments, far fewer than a second of load.
	if len(lost) > r.rate {
		t.Errorf("%d keys differ from the clean replay, more than a second of load (%d events) could leave unreplicated", len(lost), r.rate)
	}
	if unreplicated > 0 && len(lost) == 0 {
		t.Errorf("the master acknowledged %d bytes of writes its replica never received, yet no key differs from the clean replay: losses go unseen", behind)
	}
	fields := 0
	for _, n := range lost {
		fields += n
	}
	t.Logf("after the failover %d of %d keys (%d fields) differ from a clean replay, all on the failed master's slots: writes it acknowledged and did not replicate%s",
		len(lost), len(want), fields, indent(featurestest.Diff(got, want)))
	t.Logf("features: %s", snapshotKeyCounts(want))
}

// lossSources returns the keys whose lost writes can explain that key
// differs from a clean replay: the key itself, or for a store's at-risk
// index, which scores the states of availability hashes in other slots,
// the hashes of the products it scores differently.
func lossSources(key string, got, want map[string]string) []string {
	name, bucketed, ok := strings.Cut(key, ":")
	if name != "atrisk" || !ok {
		return []string{key}
	}
	_, storeID, _ := strings.Cut(bucketed, "}")
	products := slices.Collect(maps.Keys(got))
	products = slices.AppendSeq(products, maps.Keys(want))
	slices.Sort(products)
	var sources []string
	for _, product := range slices.Compact(products) {
		if got[product] != want[product] {
			sources = append(sources, features.KeyName("avail", storeID+":"+product))
		}
	}
	return sources
}

// differingFields returns, for each key in which two snapshots differ, in
// how many fields (a key only one of them has counts all its fields).
func differingFields(got, want map[string]map[string]string) map[string]int {
	out := map[string]int{}
	for key, g := range got {
		w := want[key]
		for f, v := range g {
			if wv, ok := w[f]; !ok || wv != v {
				out[key]++
			}
		}
		for f := range w {
			if _, ok := g[f]; !ok {
				out[key]++
			}
		}
	}
	for key, w := range want {
		if _, ok := got[key]; !ok {
			out[key] += len(w)
		}
	}
	return out
}

// retriedErrors summarises the errors in a process's JSON log lines: how
// many lines carried each.
func retriedErrors(logs string) string {
	counts := map[string]int{}
	for line := range strings.SplitSeq(logs, "\n") {
		var l struct{ Err string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Err != "" {
			counts[l.Err]++
		}
	}
	if len(counts) == 0 {
		return "nothing"
	}
	var parts []string
	for _, err := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d× %q", counts[err], err))
	}
	return strings.Join(parts, "; ")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return ":\n\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// localCluster is a Redis Cluster of 3 masters and 3 replicas started by
// scripts/redis-cluster.sh for one test, stopped when it ends.
type localCluster struct {
	url  string
	rdb  *redis.ClusterClient
	pids map[string]int // of the nodes signalled, by address
}

func startLocalCluster(t *testing.T) *localCluster {
	t.Helper()
	base := freeClusterPorts(t)
	env := append(os.Environ(),
		"AISLE_REDIS_CLUSTER_DIR="+t.TempDir(),
		"AISLE_REDIS_CLUSTER_NODE_TIMEOUT="+strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10))
	script := func(command string) *exec.Cmd {
		cmd := exec.Command("./scripts/redis-cluster.sh", command, strconv.Itoa(base))
		cmd.Env = env
		return cmd
	}
	start := script("start")
	var stderr bytes.Buffer
	start.Stderr = &stderr
	out, err := start.Output()
	// Stopped even after a failed start, which may leave nodes running.
	stop := script("stop")
	t.Cleanup(func() {
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("stop the test's Redis Cluster: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("scripts/redis-cluster.sh start %d: %v\n%s", base, err, stderr.String())
	}
	url := strings.TrimSpace(string(out))
	rdb, err := features.NewClient(url, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return &localCluster{url: url, rdb: rdb.(*redis.ClusterClient), pids: map[string]int{}}
}

// freeClusterPorts returns a port base whose six ports and their cluster
// bus ports (+10000) were free a moment ago, all below the kernel's
// ephemeral range: there the outgoing connections of the tests running
// alongside took a port between the check and the start (CI: "bind:
// Address already in use").
func freeClusterPorts(t *testing.T) int {
	t.Helper()
	const lowest = 10_000
	highest := ephemeralPortsFrom() - 10_000 - 6 // the last bus port stays below the range
	if highest <= lowest {
		t.Fatalf("no room for a cluster's ports between %d and the ephemeral range", lowest)
	}
	free := func(port int) bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	for range 100 {
		base := lowest + rand.IntN(highest-lowest)
		ok := true
		for i := range 6 {
			ok = ok && free(base+i) && free(base+i+10_000)
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no six free ports (and their +10000 bus ports) between %d and %d", lowest, highest+10_005)
	return 0
}

// ephemeralPortsFrom is the first port of the range the kernel gives
// outgoing connections (Linux's ip_local_port_range), 32768 where it
// cannot be read.
func ephemeralPortsFrom() int {
	from := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &from)
	}
	return from
}

// clusterMaster is a master, the slots it serves and its replica.
type clusterMaster struct {
	addr    string
	slots   [][2]int64 // ranges of slots, first and last
	replica string
	node    redis.UniversalClient
}

// masterOf returns the master serving slot.
func (c *localCluster) masterOf(t *testing.T, slot int64) *clusterMaster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ranges, err := c.rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var m *clusterMaster
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			if len(r.Nodes) != 2 {
				t.Fatalf("slots %d-%d are served by %d nodes, want a master and its replica", r.Start, r.End, len(r.Nodes))
			}
			m = &clusterMaster{addr: r.Nodes[0].Addr, replica: r.Nodes[1].Addr}
		}
	}
	if m == nil {
		t.Fatalf("no master serves slot %d", slot)
	}
	for _, r := range ranges {
		if r.Nodes[0].Addr == m.addr {
			m.slots = append(m.slots, [2]int64{int64(r.Start), int64(r.End)})
		}
	}
	m.node = c.node(t, m.addr)
	return m
}

func (m *clusterMaster) serves(slot int64) bool {
	return slices.ContainsFunc(m.slots, func(r [2]int64) bool { return r[0] <= slot && slot <= r[1] })
}

// kill sends SIGKILL to the master's process and waits until it is gone.
func (m *clusterMaster) kill(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pid, err := strconv.Atoi(infoField(t, m.node, "server", "process_id"))
	if err != nil {
		t.Fatalf("process id of %s: %v", m.addr, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (%s): %v", pid, m.addr, err)
	}
	eventually(t, faultWait, func() string {
		if m.node.Ping(ctx).Err() == nil {
			return m.addr + " still answers after kill -9"
		}
		return ""
	})
}

// node returns a client of the one node at addr.
func (c *localCluster) node(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	rdb, err := features.NewClient("redis://"+addr, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// replicationLag returns how many bytes of its replication stream the
// master has written that its replica has not yet applied.
func (c *localCluster) replicationLag(t *testing.T, m *clusterMaster) int64 {
	t.Helper()
	// The replica first: read the other way round, the master's offset
	// would be older than the replica's.
	replica, err2 := strconv.ParseInt(infoField(t, c.node(t, m.replica), "replication", "slave_repl_offset"), 10, 64)
	master, err1 := strconv.ParseInt(infoField(t, m.node, "replication", "master_repl_offset"), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("replication offsets of %s and %s: %v, %v", m.addr, m.replica, err1, err2)
	}
	return master - replica
}

// cutReplicaFor cuts the master's replica off, as a network partition
// would, and waits until the master has written at least bytes of
// replication stream since: writes it acknowledged that the replica cannot
// have. It returns how many bytes it wrote. The replica is stopped
// (SIGSTOP, resumed when the test ends if not before) and its connection
// closed by the master (CLIENT KILL), so that it cannot reconnect; merely
// stopping it is not enough, as the kernel keeps what the master sent it
// and hands it over when it runs again, even after the master died.
func (c *localCluster) cutReplicaFor(t *testing.T, m *clusterMaster, bytes int64) int64 {
	t.Helper()
	offset := func() int64 {
		n, err := strconv.ParseInt(infoField(t, m.node, "replication", "master_repl_offset"), 10, 64)
		if err != nil {
			t.Fatalf("replication offset of %s: %v", m.addr, err)
		}
		return n
	}
	c.signal(t, m.replica, syscall.SIGSTOP)
	t.Cleanup(func() { c.resume(t, m.replica) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.node.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("disconnect the replica of %s: %v", m.addr, err)
	}
	from := offset()
	var written int64
	eventually(t, faultWait, func() string {
		if written = offset() - from; written < bytes {
			return fmt.Sprintf("%s wrote %d bytes of replication stream since its replica was cut off, want %d", m.addr, written, bytes)
		}
		return ""
	})
	return written
}

// resume sends SIGCONT to the node at addr (a no-op when it runs).
func (c *localCluster) resume(t *testing.T, addr string) { c.signal(t, addr, syscall.SIGCONT) }

// signal sends sig to the process of the node at addr, whose id it
// remembers from the first call (a stopped node answers nothing).
func (c *localCluster) signal(t *testing.T, addr string, sig syscall.Signal) {
	t.Helper()
	pid, ok := c.pids[addr]
	if !ok {
		var err error
		if pid, err = strconv.Atoi(infoField(t, c.node(t, addr), "server", "process_id")); err != nil {
			t.Fatalf("process id of %s: %v", addr, err)
		}
		c.pids[addr] = pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %s to %d (%s): %v", sig, pid, addr, err)
	}
}

// waitPromoted waits until the replica at addr is a master and the cluster
// serves every slot again.
func (c *localCluster) waitPromoted(t *testing.T, addr string) {
	t.Helper()
	node := c.node(t, addr)
	eventually(t, faultWait, func() string {
		if role := infoField(t, node, "replication", "role"); role != "master" {
			return addr + " is still a " + role + " after its master was killed"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := node.ClusterInfo(ctx).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return fmt.Sprintf("the cluster is not ok yet: %v %s", err, info)
		}
		return ""
	})
}

// keySlot returns the cluster slot of key.
func (c *localCluster) keySlot(t *testing.T, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := c.rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

// infoField returns one field of an INFO section of a node ("" when the
// node does not answer).
func infoField(t *testing.T, node redis.UniversalClient, section, field string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := node.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
