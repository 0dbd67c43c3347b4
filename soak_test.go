package main

// The cluster soak (issue 16): the whole system on clusters of everything,
// on this machine, under a mixed load while one of each kind of process
// dies. `make soak` runs it for a few minutes, CI for a short while
// (AISLE_SOAK_DURATION); without that variable it is skipped.
//
// 3 stream workers and 2 API replicas (processes of the aisle binary), a
// Redis Cluster of 3 masters and 3 replicas, an in-process Kafka cluster of
// 3 brokers, and PostgreSQL through pgbouncer when make soak's environment
// points the tests there (postgrestest.DirectEnv). The load publishes
// events at a fixed rate, queries availability on both replicas at a fixed
// rate (open loop) and holds a subscription on each. A quarter of the way
// through a worker is killed with kill -9 and restarted; at half way a
// Redis master; at three quarters a broker is removed, then re-added. The
// report: throughput, query latency p50/p99, errors by code, and the
// features against a clean replay of the same topics.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// soakRate is the events per second the soak publishes.
const soakRate = 300

// soakQueryRate is the availability queries per second, over both replicas.
const soakQueryRate = 40

func TestSoak(t *testing.T) {
	duration, err := time.ParseDuration(os.Getenv("AISLE_SOAK_DURATION"))
	if err != nil || duration <= 0 {
		t.Skip("the cluster soak runs with AISLE_SOAK_DURATION set (make soak; make test runs a short one)")
	}
	bin := proctest.Build(t, ".")
	redisCluster := startLocalCluster(t)
	t.Setenv("REDIS_URL", redisCluster.url)
	t.Setenv("AISLE_REDIS_CLUSTER", "true")
	brokers := streamingtest.MustStartCluster(t, 3, faultPartitions)
	r := newFaultRigOn(t, bin, brokers.Addrs())
	r.events = soakEvents(r.events, int(duration.Seconds()*soakRate))
	r.rate = soakRate
	direct := []string{"--database-direct-url", postgrestest.DirectURL(t, r.dbURL)}
	_, pooled := os.LookupEnv(postgrestest.DirectEnv)

	group, prefix := r.newGroup(), r.newPrefix()
	workers := []*proctest.Proc{}
	for i := 1; i <= 3; i++ {
		workers = append(workers, r.serve(fmt.Sprintf("worker-%d", i), "stream", group, prefix, direct...))
	}
	r.waitAssigned(group, 3)
	apis := []*proctest.Proc{r.serve("api-1", "api", group, prefix, direct...), r.serve("api-2", "api", group, prefix, direct...)}

	queries := startSoakQueries(t, r, apis)
	var subscribed []*wsClient
	for _, api := range apis {
		subscribed = append(subscribed, r.subscribeAvailability(api))
	}
	received := countSoakMessages(subscribed)

	start := time.Now()
	load := r.startLoad()
	n := len(r.events)
	within := duration + faultWait

	waitSoakSent(t, load, n/4, within)
	queries.faultBegins()
	workers[0].Kill()
	t.Logf("kill -9 %s after %d of %d events", workers[0].Name, load.sent.Load(), n)
	r.waitAssigned(group, 2)
	workers[0] = r.serve("worker-1.2", "stream", group, prefix, direct...)
	r.waitAssigned(group, 3)

	waitSoakSent(t, load, n/2, within)
	victim := redisCluster.masterOf(t, 0)
	restart := processCommand(t, victim)
	victim.kill(t)
	t.Logf("kill -9 Redis master %s (slots %v) after %d events", victim.addr, victim.slots, load.sent.Load())
	redisCluster.waitPromoted(t, victim.replica)
	if out, err := exec.Command(restart[0], restart[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("restart %s (%v): %v\n%s", victim.addr, restart, err, out)
	}
	t.Logf("%s took over; %s restarted (it rejoins as a replica)", victim.replica, victim.addr)

	waitSoakSent(t, load, 3*n/4, within)
	addrs, err := r.admin.Brokers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := brokers.RemoveNode(1); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed Kafka broker 1 (%s) after %d events", addrs[1], load.sent.Load())
	waitSoakSent(t, load, 3*n/4+n/10, within)
	added, err := brokers.AddNode(addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-added it as broker %d after %d events", added, load.sent.Load())

	load.waitWithin(t, within)
	published := time.Since(start)
	waitCaughtUp(t, r.admin, group, faultWait)
	applied := time.Since(start)
	stats := queries.stop()

	records := r.endOffsets().Total()
	got, want, _ := r.cleanReplay(prefix)
	differing := differingFields(got, want)
	outside := 0
	for key := range differing {
		if !victim.serves(redisCluster.keySlot(t, prefix+key)) {
			outside++
			t.Errorf("%s differs from the clean replay, yet its master did not fail", key)
		}
	}
	if records != int64(n) {
		t.Errorf("the event topics hold %d records, want the %d events published", records, n)
	}

	t.Logf("soak report (%s, PostgreSQL through pgbouncer: %v):", duration, pooled)
	t.Logf("  events: %d published in %s (%.0f/s offered at %d/s), all applied %s after the start (%.0f/s)",
		n, published.Round(time.Millisecond), float64(n)/published.Seconds(), soakRate, applied.Round(time.Millisecond), float64(n)/applied.Seconds())
	t.Logf("  queries: %d at %d/s offered; latency p50 %s, p99 %s; results by code %v",
		stats.count, soakQueryRate, stats.p50.Round(10*time.Microsecond), stats.p99.Round(10*time.Microsecond), stats.codes)
	t.Logf("  baseline, the %d queries sent before the first kill: p50 %s, p99 %s; whole run / baseline: p50 %.2fx, p99 %.2fx",
		stats.calmCount, stats.calmP50.Round(10*time.Microsecond), stats.calmP99.Round(10*time.Microsecond),
		float64(stats.p50)/float64(stats.calmP50), float64(stats.p99)/float64(stats.calmP99))
	t.Logf("  subscriptions: %d availability changes received on %d subscriptions", received(), len(subscribed))
	t.Logf("  against a clean replay: %d of %d keys differ (%d outside the killed Redis master's slots); features %s",
		len(differing), len(want), outside, snapshotKeyCounts(want))
	for _, api := range apis {
		errors := 0
		for _, line := range strings.Split(api.Logs(), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) && errors < 3 {
				t.Logf("  %s logged: %s", api.Name, line)
				errors++
			}
		}
	}
	if len(differing) > 0 {
		t.Logf("  the differing keys are writes the killed master acknowledged and had not replicated when it died (Redis replicates asynchronously)")
	}
}

// soakEvents repeats events until there are total, each repetition with
// ids of its own so that none is a redelivery of another.
func soakEvents(events []aisle.Event, total int) []aisle.Event {
	out := slices.Clone(events)
	for round := 1; len(out) < total; round++ {
		for _, ev := range events {
			if len(out) == total {
				break
			}
			ev.ID = fmt.Sprintf("%s.r%d", ev.ID, round)
			out = append(out, ev)
		}
	}
	return out
}

// processCommand returns the command line of the Redis node, to start it
// again after killing it.
func processCommand(t *testing.T, m *clusterMaster) []string {
	t.Helper()
	pid := infoField(t, m.node, "server", "process_id")
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		t.Fatalf("command line of %s: %v", m.addr, err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	// redis-server rewrites its argv to "redis-server host:port [cluster]":
	// started again as scripts/redis-cluster.sh starts it, in the directory
	// it ran in, where its nodes.conf makes it the same node.
	if len(args) < 3 {
		cwd, err := os.Readlink("/proc/" + pid + "/cwd")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := strings.Cut(m.addr, ":")
		args = []string{"redis-server", "--port", port, "--bind", "127.0.0.1", "--daemonize", "yes",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(clusterNodeTimeout.Milliseconds()),
			"--save", "", "--appendonly", "no", "--dir", cwd,
			"--pidfile", cwd + "/redis.pid", "--logfile", cwd + "/redis.log"}
	}
	return args
}

func waitSoakSent(t *testing.T, l *faultLoad, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.sent.Load() < int64(n) {
		select {
		case err := <-l.done:
			l.done <- err
			t.Fatalf("the load stopped after %d events, before %d: %v", l.sent.Load(), n, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events published after %s, want %d", l.sent.Load(), within, n)
		}
	}
}

// countSoakMessages counts the messages the subscriptions receive until
// their connections close; the returned function reads the count.
func countSoakMessages(clients []*wsClient) func() int64 {
	var mu sync.Mutex
	var count int64
	for _, c := range clients {
		go func() {
			for msg := range c.messages {
				if msg.Type == "next" {
					mu.Lock()
					count++
					mu.Unlock()
				}
			}
		}()
	}
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return count
	}
}

// soakQueries asks the replicas for availability at soakQueryRate, each
// query sent on schedule whether or not the previous ones answered.
type soakQueries struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	// latency of every query, and of those sent before the first fault:
	// the baseline of the same run on the same machine.
	latency, calm []time.Duration
	codes         map[string]int
	faulted       bool
}

type soakStats struct {
	count, calmCount int
	p50, p99         time.Duration
	calmP50, calmP99 time.Duration
	codes            map[string]int
}

func startSoakQueries(t *testing.T, r *faultRig, apis []*proctest.Proc) *soakQueries {
	t.Helper()
	shelves := r.storeProducts()
	stores := slices.Sorted(maps.Keys(shelves))
	var urls []string
	for _, api := range apis {
		urls = append(urls, r.url(api)+"/graphql")
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &soakQueries{cancel: cancel, codes: map[string]int{}}
	client := &http.Client{Timeout: 10 * time.Second}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		tick := time.NewTicker(time.Second / soakQueryRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			store := stores[i%len(stores)]
			products := shelves[store]
			body, _ := json.Marshal(map[string]any{
				"query":     `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { probability status } }`,
				"variables": map[string]any{"s": store, "p": products[:min(len(products), 10)]},
			})
			url := urls[i%len(urls)]
			q.wg.Add(1)
			go func() {
				defer q.wg.Done()
				q.mu.Lock()
				calm := !q.faulted
				q.mu.Unlock()
				began := time.Now()
				code := soakQuery(client, url, body)
				took := time.Since(began)
				q.mu.Lock()
				q.latency = append(q.latency, took)
				if calm {
					q.calm = append(q.calm, took)
				}
				q.codes[code]++
				q.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { cancel(); q.wg.Wait() })
	return q
}

// soakQuery sends one query and names its outcome: OK, the GraphQL error
// code, HTTP_<status> or TRANSPORT.
func soakQuery(client *http.Client, url string, body []byte) string {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return "TRANSPORT"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP_%d", resp.StatusCode)
	}
	var out struct {
		Errors []struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "BAD_RESPONSE"
	}
	if len(out.Errors) > 0 {
		return out.Errors[0].Extensions.Code
	}
	return "OK"
}

// faultBegins marks the end of the calm baseline.
func (q *soakQueries) faultBegins() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faulted = true
}

func (q *soakQueries) stop() soakStats {
	q.cancel()
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	all, calm := slices.Sorted(slices.Values(q.latency)), slices.Sorted(slices.Values(q.calm))
	return soakStats{
		count: len(all), p50: percentile(all, 0.5), p99: percentile(all, 0.99),
		calmCount: len(calm), calmP50: percentile(calm, 0.5), calmP99: percentile(calm, 0.99),
		codes: maps.Clone(q.codes),
	}
}

// percentile returns the p-th (0..1] of sorted durations, 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Ceil(p*float64(len(sorted))))-1]
}
