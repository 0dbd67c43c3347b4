package main

// Process faults (issue 5, item 4): stream workers killed with kill -9 and
// servers stopped with SIGTERM, as real processes of the aisle binary that
// share one broker, database and Redis. Each test proves that nothing was
// lost or counted twice by comparing the features in Redis with those of a
// clean replay: a fresh worker, under a new consumer group and key prefix,
// that consumed the same topics once, without faults.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/internal/promtest"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

const (
	faultPartitions = 6
	// faultSessionTimeout is the smallest session timeout the broker (kfake,
	// like Kafka) accepts: a killed worker's partitions move after it.
	faultSessionTimeout = 6 * time.Second
	// faultWait bounds every wait of these tests: start-up, a rebalance
	// after a kill, catching up. Far above what they take; only a fault
	// makes a test wait that long.
	faultWait = 45 * time.Second
	// faultRate is the load's events per second: a few seconds of load, so
	// that the faults hit workers in the middle of it.
	faultRate = 1000
)

// TestFaultProcess builds the binary once for the process fault tests.
func TestFaultProcess(t *testing.T) {
	bin := proctest.Build(t, ".")
	t.Run("KillWorkerMidLoad", func(t *testing.T) { t.Parallel(); testKillWorkerMidLoad(t, bin) })
	t.Run("KillOneOfTwoWorkers", func(t *testing.T) { t.Parallel(); testKillOneOfTwoWorkers(t, bin) })
	t.Run("SIGTERMDrains", func(t *testing.T) { t.Parallel(); testSIGTERMDrains(t, bin) })
}

// testKillWorkerMidLoad kills a stream worker with kill -9 while events
// arrive, restarts it, and checks that the features equal a clean replay:
// the events it had applied but not committed are redelivered to the new
// worker and must be skipped, not counted again.
func testKillWorkerMidLoad(t *testing.T, bin string) {
	r := newFaultRig(t, bin)
	group, prefix := r.newGroup(), r.newPrefix()
	w1 := r.serve("worker-1", "stream", group, prefix)
	r.waitAssigned(group, 1)

	load := r.startLoad()
	load.waitSent(t, len(r.events)/2)
	// The kill must leave records applied but not committed, or the check
	// of the skipped duplicates below holds with nothing redelivered. It is
	// made the moment some are seen; should a commit slip in between, so
	// that nothing was left after all, another worker takes over and is
	// killed in the same way.
	var redelivered int64
	for attempt, w := 1, w1; ; attempt++ {
		r.waitUncommitted(w.Name, group, prefix)
		w.Kill()
		sent := load.sent.Load()
		redelivered = r.settledUncommitted(group, prefix)
		t.Logf("killed %s after %d of %d events were published; %d records applied but not committed, to be redelivered",
			w.Name, sent, len(r.events), redelivered)
		if redelivered > 0 {
			break
		}
		if attempt == 3 {
			t.Fatalf("%d workers killed while records were applied but not committed, yet each had committed all it applied when it died: nothing was redelivered, so the dedup check would test nothing", attempt)
		}
		w = r.serve(fmt.Sprintf("worker-1.%d", attempt+1), "stream", group, prefix)
		r.waitAssigned(group, 1)
	}

	// Role all rather than stream only so that its /metrics can be read: a
	// stream-only process serves no HTTP.
	w2 := r.serve("worker-2", "all", group, prefix)
	load.wait(t)
	r.waitCaughtUp(group)
	// The records worker-1 wrote but did not commit came again, and were
	// skipped, except those it was killed in the middle of: an event that
	// changes several entities is one script call per entity (an order's
	// record, then its entities; a label, then its counts; a session, then
	// the product's index), and its redelivery completes it and counts as
	// applied. The clean replay proves that nothing counted twice.
	var skipped float64
	metrics := r.metrics(w2)
	for _, applier := range redisAppliers {
		skipped += metrics.Total("aisle_stream_events_applied_total", map[string]string{"applier": applier, "result": "duplicate"})
	}
	if skipped > float64(redelivered) || skipped == 0 {
		t.Errorf("worker-2 skipped %v events as already applied, want at most the %d redelivered, and some", skipped, redelivered)
	}
	t.Logf("worker-2 skipped %v of the %d redelivered records; it completed the others", skipped, redelivered)
	r.assertSameAsCleanReplay(prefix)
}

// testKillOneOfTwoWorkers runs two stream workers and two API replicas on
// one broker, kills one worker with kill -9 under load, and checks that its
// partitions move to the other, that the features equal a clean replay and
// that both replicas answer the same as an API over the replay.
func testKillOneOfTwoWorkers(t *testing.T, bin string) {
	r := newFaultRig(t, bin)
	group, prefix := r.newGroup(), r.newPrefix()
	w1 := r.serve("worker-1", "stream", group, prefix)
	r.serve("worker-2", "stream", group, prefix)
	before := r.waitAssigned(group, 2)
	api1 := r.serve("api-1", "api", group, prefix)
	api2 := r.serve("api-2", "api", group, prefix)

	load := r.startLoad()
	load.waitSent(t, len(r.events)/3)
	w1.Kill()
	killedAt, sent := time.Now(), load.sent.Load()
	after := r.waitAssigned(group, 1)
	moved := 0
	for survivor, n := range after {
		moved = n - before[survivor]
	}
	t.Logf("killed worker-1 after %d of %d events; partitions per member before %v, after %v (%d moved) within %s",
		sent, len(r.events), slices.Sorted(maps.Values(before)), slices.Sorted(maps.Values(after)), moved, time.Since(killedAt).Round(100*time.Millisecond))

	load.wait(t)
	r.waitCaughtUp(group)
	replayPrefix := r.assertSameAsCleanReplay(prefix)

	replayAPI := r.serve("api-replay", "api", r.newGroup(), replayPrefix)
	want := r.availabilityAnswers(replayAPI)
	for _, api := range []*proctest.Proc{api1, api2} {
		got := r.availabilityAnswers(api)
		if diff := diffAvailability(got, want); diff != "" {
			t.Errorf("%s answers differently from an API over the clean replay: %s", api.Name, diff)
		}
	}
	statuses := map[string]int{}
	for _, a := range want {
		statuses[a.Status]++
	}
	t.Logf("both replicas answer like the replay's API for %d shelves: %v", len(want), statuses)
}

// testSIGTERMDrains stops `aisle serve` with SIGTERM under load and with a
// live subscription: it must exit 0 within the drain timeout, having
// finished its writes and committed exactly what it wrote, and close the
// subscription's websocket with a close frame. A restarted server then
// re-applies nothing.
func testSIGTERMDrains(t *testing.T, bin string) {
	r := newFaultRig(t, bin)
	group, prefix := r.newGroup(), r.newPrefix()
	const drainTimeout = 15 * time.Second
	s1 := r.serve("server-1", "all", group, prefix, "--drain-timeout", drainTimeout.String())
	r.waitAssigned(group, 1)
	ws := r.subscribeAvailability(s1)

	load := r.startLoad()
	load.waitSent(t, len(r.events)/2)
	if msg, err := ws.next(faultWait); err != nil || msg.Type != "next" {
		t.Fatalf("no availability change reached the subscription under load: %+v, %v", msg, err)
	}
	if err := s1.Terminate(); err != nil {
		t.Fatal(err)
	}
	termAt, sent := time.Now(), load.sent.Load()
	code, err := s1.Wait(drainTimeout + 5*time.Second)
	if err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	// A drain past --drain-timeout exits 1 ("drain timed out"), so exit
	// code 0 says it finished within it.
	took := time.Since(termAt)
	if code != 0 {
		t.Fatalf("after SIGTERM, exit code %d after %s; want 0, a drain within the drain timeout %s", code, took, drainTimeout)
	}
	if !strings.Contains(s1.Logs(), "drained cleanly") {
		t.Errorf("server-1 did not log a clean drain")
	}

	// The subscription ends with a close frame (maybe after its last
	// messages and a complete), not with the connection cut.
	for {
		msg, err := ws.next(5 * time.Second)
		if err == nil {
			if msg.Type != "next" && msg.Type != "complete" {
				t.Fatalf("after SIGTERM the subscription got %+v", msg)
			}
			continue
		}
		if status := websocket.CloseStatus(err); status == -1 {
			t.Fatalf("the websocket ended without a close frame: %v", err)
		} else {
			t.Logf("websocket closed with status %d (%s)", status, status)
		}
		break
	}

	// In-flight writes finished and their offsets are committed: every
	// partition's committed offset is one past the last event written to
	// Redis from it (all events are valid, so none went to the DLQ instead).
	committed := r.committed(group)
	marks := r.watermarks(prefix)
	for topic, ps := range marks {
		for p, mark := range ps {
			if c := committed[topic][p]; c != mark+1 {
				t.Errorf("%s/%d: Redis has events up to offset %d, the group committed %d (want %d)", topic, p, mark, c, mark+1)
			}
		}
	}
	t.Logf("SIGTERM after %d of %d events; exit 0 after %s; %d records committed",
		sent, len(r.events), took.Round(10*time.Millisecond), committed.Total())

	s2 := r.serve("server-2", "all", group, prefix)
	load.wait(t)
	r.waitCaughtUp(group)
	metrics := r.metrics(s2)
	end := r.endOffsets()
	// Nothing is read twice: the restarted server consumed exactly the
	// records after the commits of the first, and skipped none as seen.
	consumed := metrics.Total("aisle_stream_events_consumed_total", nil)
	if want := end.Total() - committed.Total(); consumed != float64(want) {
		t.Errorf("server-2 consumed %v records, want the %d after server-1's commits", consumed, want)
	}
	for _, applier := range redisAppliers {
		if dup := metrics.Total("aisle_stream_events_applied_total", map[string]string{"applier": applier, "result": "duplicate"}); dup != 0 {
			t.Errorf("server-2's %s applier skipped %v events as already applied; want 0 after a clean drain", applier, dup)
		}
	}
	if err := s2.Terminate(); err != nil {
		t.Fatal(err)
	}
	if code, err := s2.Wait(drainTimeout + 5*time.Second); err != nil || code != 0 {
		t.Errorf("server-2 after SIGTERM: exit code %d, %v", code, err)
	}
	r.assertSameAsCleanReplay(prefix)
}

// redisAppliers are the appliers that write features to Redis, whose
// "duplicate" results are events skipped as already applied. (The Postgres
// appliers also count events that are not their business as skipped.)
var redisAppliers = []string{"availability", "sessions", "velocity", "label_risk"}

// faultRig is one test's world: its own broker, database and Redis prefixes,
// and the events its load publishes.
type faultRig struct {
	t       *testing.T
	bin     string
	brokers []string
	dbURL   string
	admin   *streamingtest.Admin
	events  []aisle.Event
	rate    int // events per second of the load
}

func newFaultRig(t *testing.T, bin string) *faultRig {
	t.Helper()
	return newFaultRigOn(t, bin, streamingtest.MustStartBroker(t, faultPartitions).Addrs())
}

// newFaultRigOn is newFaultRig on the cluster at brokers.
func newFaultRigOn(t *testing.T, bin string, brokers []string) *faultRig {
	t.Helper()
	dbURL := postgrestest.NewDatabaseURL(t)
	ctx := context.Background()
	// Created and seeded here, once, rather than by the first of several
	// processes starting at the same time.
	db, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := simulationCatalog(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return &faultRig{
		t:       t,
		bin:     bin,
		brokers: brokers,
		dbURL:   dbURL,
		admin:   streamingtest.MustAdmin(t, brokers),
		events:  faultEvents(t, cat, time.Now()),
		rate:    faultRate,
	}
}

// faultEvents is the load: a deterministic mix of every applier's events
// (shelf picks and feeds, shopping sessions and their orders, the
// checkout's orders, declines and fraud labels), interleaved so that every
// topic is in flight when a fault strikes. All are valid and happened
// before now.
func faultEvents(t *testing.T, cat simulate.Catalog, now time.Time) []aisle.Event {
	t.Helper()
	shelves := cat.Sample(30)
	shelves.Stores = shelves.Stores[:8]
	now = now.UTC()
	// Shelves are busy in the simulated daytime: yesterday's morning.
	yesterday := now.Truncate(24*time.Hour).AddDate(0, 0, -1)
	records, err := simulate.Generate(shelves, simulate.Config{Seed: 5, Start: yesterday.Add(8 * time.Hour)}, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Moved to end a minute ago, so that the API answers of the picks
	// have not yet decayed to the priors.
	shift := now.Add(-time.Minute).Sub(records[len(records)-1].Event.Time)
	var avail []aisle.Event
	for _, r := range records {
		r.Event.Time = r.Event.Time.Add(shift)
		avail = append(avail, r.Event)
	}
	shopping, err := simulate.GenerateShopping(cat, simulate.ShoppingConfig{
		Seed: 5, Start: yesterday, Customers: 100, Missions: 30, SessionsPerDay: 1,
	}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Nine days of checkout, so that the orders of the first days have
	// their labels (they come a week later).
	checkout, err := simulate.FraudHistory(simulate.FraudWorld{
		Seed: 5, Customers: 60, OrdersPerDay: 0.5, HighAmountCents: 30_000, ScenarioScale: 0.3, Stores: shelves.Stores,
	}, 9, now)
	if err != nil {
		t.Fatal(err)
	}
	events := interleaveEvents(avail, shopping, checkout)
	seen := map[string]bool{}
	for _, ev := range events {
		if seen[ev.ID] {
			t.Fatalf("event id %s twice in the load: it would be deduplicated", ev.ID)
		}
		seen[ev.ID] = true
	}
	return events
}

// interleaveEvents merges lists keeping each one's order, spreading each evenly
// over the result.
func interleaveEvents(lists ...[]aisle.Event) []aisle.Event {
	type item struct {
		at float64 // position within its list, 0..1
		ev aisle.Event
	}
	var all []item
	for _, l := range lists {
		for i, ev := range l {
			all = append(all, item{float64(i) / float64(len(l)), ev})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	out := make([]aisle.Event, len(all))
	for i, it := range all {
		out[i] = it.ev
	}
	return out
}

func (r *faultRig) newGroup() string {
	var b [4]byte
	rand.Read(b[:])
	return "fault-" + hex.EncodeToString(b[:])
}

// newPrefix returns a fresh Redis prefix whose keys are deleted when the
// test ends, after the processes using it (cleanups run last in, first out).
func (r *faultRig) newPrefix() string {
	prefix := featurestest.NewPrefix()
	featurestest.MustOpenAt(r.t, featurestest.URL(), prefix)
	return prefix
}

// serve starts `aisle serve` with the role, consumer group and Redis prefix,
// on the rig's broker and database, and for API roles waits until it serves.
func (r *faultRig) serve(name, role, group, prefix string, extra ...string) *proctest.Proc {
	r.t.Helper()
	args := append([]string{"serve",
		"--role", role,
		"--group", group,
		"--redis-url", featurestest.URL(),
		"--redis-prefix", prefix,
		"--database-url", r.dbURL,
		"--kafka-brokers", strings.Join(r.brokers, ","),
		"--partitions", strconv.Itoa(faultPartitions),
		"--session-timeout", faultSessionTimeout.String(),
		"--http-addr", "127.0.0.1:0",
		"--web-dir", "web",
	}, extra...)
	p := proctest.Start(r.t, name, r.bin, args...)
	if role != "stream" {
		if _, err := p.HTTPURL(faultWait); err != nil {
			r.t.Fatal(err)
		}
	}
	return p
}

// url returns an API process's base URL.
func (r *faultRig) url(p *proctest.Proc) string {
	r.t.Helper()
	url, err := p.HTTPURL(faultWait)
	if err != nil {
		r.t.Fatal(err)
	}
	return url
}

func (r *faultRig) totalPartitions() int {
	n := 0
	for _, topic := range aisle.EventTopics {
		n += int(streaming.PartitionsOf(topic, faultPartitions))
	}
	return n
}

// waitAssigned waits until group is stable with members members sharing
// every partition, and returns the partitions per member.
func (r *faultRig) waitAssigned(group string, members int) map[string]int {
	r.t.Helper()
	var last map[string]int
	r.within(fmt.Sprintf("group %s to settle on %d members owning all %d partitions", group, members, r.totalPartitions()), func(ctx context.Context) (bool, error) {
		a, err := r.admin.Assignment(ctx, group)
		if err != nil {
			return false, err
		}
		last = a
		total := 0
		for _, n := range a {
			total += n
		}
		return len(a) == members && total == r.totalPartitions(), nil
	}, func() string { return fmt.Sprintf("last assignment %v", last) })
	return last
}

// waitCaughtUp waits until group has committed every record of the event
// topics: its workers applied everything (they commit only after writing).
func (r *faultRig) waitCaughtUp(group string) {
	r.t.Helper()
	waitCaughtUp(r.t, r.admin, group, faultWait)
}

// waitCaughtUp waits, at most within, until group has committed every
// record of the event topics on admin's cluster.
func waitCaughtUp(t testing.TB, admin *streamingtest.Admin, group string, within time.Duration) {
	t.Helper()
	eventually(t, within, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lag, err := admin.Lag(ctx, group)
		switch {
		case err != nil:
			return "group " + group + ": " + err.Error()
		case lag != 0:
			return fmt.Sprintf("group %s has not committed %d records of the event topics", group, lag)
		}
		return ""
	})
}

// within polls done until it reports true, failing the test after faultWait
// with what and the state that status describes.
func (r *faultRig) within(what string, done func(context.Context) (bool, error), status func() string) {
	r.t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := done(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waited %s for %s: %s (last error: %v)", faultWait, what, status(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *faultRig) committed(group string) streamingtest.Offsets {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.admin.Committed(ctx, group)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *faultRig) endOffsets() streamingtest.Offsets {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end, err := r.admin.EndOffsets(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return end
}

// watermarks returns the last offset applied to Redis under prefix from
// each partition (the highest of the entity hashes' marks).
func (r *faultRig) watermarks(prefix string) streamingtest.Offsets {
	r.t.Helper()
	marks, err := featurestest.Watermarks(featurestest.MustSnapshot(r.t, prefix))
	if err != nil {
		r.t.Fatal(err)
	}
	return marks
}

// settledUncommitted counts the records a dead worker of group applied to
// Redis under prefix past its committed offsets, once neither changes any
// more: Redis and the broker may still be executing what the worker sent
// just before it died.
func (r *faultRig) settledUncommitted(group, prefix string) int64 {
	r.t.Helper()
	last := int64(-1)
	for deadline := time.Now().Add(faultWait); ; {
		n := uncommitted(r.watermarks(prefix), r.committed(group))
		if n == last {
			return n
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("records applied but not committed still changing after %s: %d, then %d", faultWait, last, n)
		}
		last = n
		time.Sleep(200 * time.Millisecond)
	}
}

// waitUncommitted waits until the live worker of group has applied records
// to Redis under prefix past its committed offsets. The watermarks are read
// before the commits, so that a commit in between can only hide records,
// never count them: when it returns, some were uncommitted.
func (r *faultRig) waitUncommitted(worker, group, prefix string) {
	r.t.Helper()
	eventually(r.t, faultWait, func() string {
		if uncommitted(r.watermarks(prefix), r.committed(group)) > 0 {
			return ""
		}
		return worker + " has committed every record it applied: no moment to kill it with records to redeliver"
	})
}

// uncommitted counts the records applied to Redis past the committed offsets.
func uncommitted(marks, committed streamingtest.Offsets) int64 {
	var n int64
	for topic, ps := range marks {
		for p, mark := range ps {
			n += max(0, mark+1-committed[topic][p])
		}
	}
	return n
}

// assertSameAsCleanReplay consumes every event topic again with a fresh
// worker under a new group and prefix, and checks that it wrote exactly the
// keys and values found under prefix: nothing lost, nothing counted twice.
// It returns the replay's prefix.
func (r *faultRig) assertSameAsCleanReplay(prefix string) string {
	r.t.Helper()
	got, want, replayPrefix := r.cleanReplay(prefix)
	if diff := featurestest.Diff(got, want); diff != "" {
		r.t.Fatalf("features under %s differ from a clean replay of the same topics:\n%s", prefix, diff)
	}
	r.t.Logf("features equal a clean replay: %s", snapshotKeyCounts(want))
	return replayPrefix
}

// cleanReplay consumes every event topic again with a fresh worker under a
// new group and prefix and returns the features under prefix (got), those
// of the replay (want) and the replay's prefix.
func (r *faultRig) cleanReplay(prefix string) (got, want map[string]map[string]string, replayPrefix string) {
	r.t.Helper()
	group, replayPrefix := r.newGroup(), r.newPrefix()
	r.serve("replay", "stream", group, replayPrefix)
	r.waitCaughtUp(group)
	got = featurestest.FeaturesOnly(featurestest.MustSnapshot(r.t, prefix))
	want = featurestest.FeaturesOnly(featurestest.MustSnapshot(r.t, replayPrefix))
	return got, want, replayPrefix
}

// snapshotKeyCounts summarises a snapshot: how many keys of each kind.
func snapshotKeyCounts(snap map[string]map[string]string) string {
	counts := map[string]int{}
	for k := range snap {
		kind, _, _ := strings.Cut(k, ":")
		counts[kind]++
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", kind, counts[kind]))
	}
	return strings.Join(parts, ", ")
}

// load publishes the rig's events in the background, in order, at the
// rig's rate.
type faultLoad struct {
	sent atomic.Int64
	done chan error
}

func (r *faultRig) startLoad() *faultLoad {
	r.t.Helper()
	producer, err := streaming.NewProducer(r.brokers, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &faultLoad{done: make(chan error, 1)}
	r.t.Cleanup(func() {
		cancel()
		<-l.done
		producer.Close()
	})
	events, rate := r.events, r.rate
	go func() {
		l.done <- func() error {
			start := time.Now()
			for i, ev := range events {
				if _, err := producer.Publish(ctx, ev, ""); err != nil {
					return fmt.Errorf("publish event %d (%s): %w", i, ev.ID, err)
				}
				l.sent.Add(1)
				if ahead := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))); ahead > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(ahead):
					}
				}
			}
			return nil
		}()
	}()
	return l
}

// waitSent waits until n events are published.
func (l *faultLoad) waitSent(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for l.sent.Load() < int64(n) {
		select {
		case err := <-l.done:
			l.done <- err // for wait and the cleanup
			t.Fatalf("the load stopped after %d events, before %d: %v", l.sent.Load(), n, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events published after %s, want %d", l.sent.Load(), faultWait, n)
		}
	}
}

// wait waits until every event is published.
func (l *faultLoad) wait(t *testing.T) { l.waitWithin(t, faultWait) }

// waitWithin waits, at most within, until every event is published.
func (l *faultLoad) waitWithin(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		if err != nil {
			t.Fatalf("load: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("load not published after %s (%d events sent)", within, l.sent.Load())
	}
}

// storeProducts are the shelves of the load's availability events.
func (r *faultRig) storeProducts() map[string][]string {
	out := map[string][]string{}
	for _, ev := range r.events {
		topic, err := aisle.TopicFor(ev.Type)
		if err != nil || (topic != aisle.TopicPicking && topic != aisle.TopicInventory) {
			continue
		}
		var data struct {
			StoreID   string `json:"store_id"`
			ProductID string `json:"product_id"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			r.t.Fatalf("event %s: %v", ev.ID, err)
		}
		if !slices.Contains(out[data.StoreID], data.ProductID) {
			out[data.StoreID] = append(out[data.StoreID], data.ProductID)
		}
	}
	return out
}

// availabilityAnswers asks an API process for the availability of every
// shelf of the load.
func (r *faultRig) availabilityAnswers(api *proctest.Proc) []itemAvailability {
	r.t.Helper()
	ts := &testServer{t: r.t, url: r.url(api)}
	shelves := r.storeProducts()
	var out []itemAvailability
	for _, store := range slices.Sorted(maps.Keys(shelves)) {
		out = append(out, ts.availability(store, shelves[store]...)...)
	}
	return out
}

// diffAvailability compares two sets of answers. Probabilities are read
// seconds apart and decay towards the prior in between (by about 1e-6 a
// second here), so they are compared to 1e-4; an event counted twice or
// lost moves one by more unless it has decayed away, and the features
// themselves were compared exactly.
func diffAvailability(got, want []itemAvailability) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d answers, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		same := g.StoreID == w.StoreID && g.ProductID == w.ProductID && g.Status == w.Status &&
			(g.UpdatedAt == nil) == (w.UpdatedAt == nil) && (g.UpdatedAt == nil || *g.UpdatedAt == *w.UpdatedAt) &&
			math.Abs(g.Probability-w.Probability) <= 1e-4
		if !same {
			return fmt.Sprintf("%s %s: %s %v updated %s, want %s %v updated %s", g.StoreID, g.ProductID,
				g.Status, g.Probability, updatedAtText(g.UpdatedAt), w.Status, w.Probability, updatedAtText(w.UpdatedAt))
		}
	}
	return ""
}

// subscribeAvailability opens a graphql-transport-ws subscription to the
// availability changes of the first store of the load.
func (r *faultRig) subscribeAvailability(api *proctest.Proc) *wsClient {
	r.t.Helper()
	ts := &testServer{t: r.t, url: r.url(api)}
	ws, err := ts.dialWS(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	stores := slices.Sorted(maps.Keys(r.storeProducts()))
	ws.subscribe("1", `subscription($s: ID!) { availabilityChanged(storeId: $s) { productId probability } }`, map[string]any{"s": stores[0]})
	return ws
}

// metrics scrapes an API process's /metrics.
func (r *faultRig) metrics(api *proctest.Proc) promtest.Metrics {
	r.t.Helper()
	return (&testServer{t: r.t, url: r.url(api)}).scrape()
}

func updatedAtText(s *string) string {
	if s == nil {
		return "never"
	}
	return *s
}
