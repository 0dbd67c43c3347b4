package streaming

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// DefaultGroup is the consumer group of the stream workers.
const DefaultGroup = "aisle-stream"

const (
	defaultMaxPollRecords = 10_000
	// stepTimeout bounds one attempt of a batch step (catalog lookup, Redis
	// write, DLQ produce); failed attempts are retried.
	stepTimeout = 10 * time.Second
	maxBackoff  = 5 * time.Second
	// batchesPerWorker is how many polled batches may wait for a partition
	// worker before the poll loop blocks (backpressure).
	batchesPerWorker = 2
	// poisonAttempts is how often a step is tried, when it fails for a
	// reason other than a dependency outage (see dependencyDown), before the
	// worker looks for the records that make it fail, and how often each of
	// those is tried alone before it is dead-lettered.
	poisonAttempts = 3
)

// Catalog tells which retailers, stores and products exist. *postgres.DB
// implements it.
type Catalog interface {
	// UnknownIDs returns the store and product IDs that do not exist.
	UnknownIDs(ctx context.Context, storeIDs, productIDs []string) (stores, products map[string]bool, err error)
	// UnknownRetailers returns the retailer IDs that do not exist.
	UnknownRetailers(ctx context.Context, ids []string) (map[string]bool, error)
}

// Applier applies a batch of one topic's events, in order and effectively
// once: updates that were applied before (a redelivery) change nothing, and
// applied[i] says whether updates[i] was new. After an error the worker
// retries the batch, or, to find a record that makes it fail, parts of it in
// offset order (halves, then single records), so Apply must be idempotent
// and correct for any in-order part of a batch. An error that is not a
// dependency outage (see dependencyDown) must not leave the features of the
// batch's other records wrong: the records that fail alone are
// dead-lettered and the others applied. A record whose update failed must
// fail again when applied alone: if the records after it in the batch were
// applied meanwhile and moved a partition watermark past it, it is skipped
// as already applied, neither applied nor dead-lettered.
type Applier struct {
	Name  string // labels its metrics, e.g. "availability"
	Apply func(ctx context.Context, updates []aisle.Update) (applied []bool, err error)
}

// ConsumerConfig configures NewConsumer.
type ConsumerConfig struct {
	Brokers []string
	Group   string // DefaultGroup when empty
	// Appliers are what each consumed topic's events are applied with, in
	// order; the consumer reads exactly these topics. A topic's events go
	// to Redis through at most one applier, whose dedup and watermark are
	// per topic (see aisle.Update).
	Appliers map[string][]Applier
	Catalog  Catalog
	DLQ      *Producer // writes rejected records to aisle.TopicDLQ
	Log      *slog.Logger

	// MaxPollRecords bounds one poll, shared by the partitions that have
	// data; a partition's share becomes one batch and one Redis round trip.
	MaxPollRecords int
	// CommitInterval is how often marked offsets are committed besides on
	// revoke and shutdown; franz-go's default (5s) when zero.
	CommitInterval time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// worker killed or cut off) before giving its partitions to the others;
	// franz-go's default (45s) when zero. Heartbeats go every 3s (members
	// learn of rebalances by them), or every third of a shorter timeout.
	SessionTimeout time.Duration
	// StallThreshold is how long an owned partition may have records to
	// apply without advancing before Ready fails naming it and its
	// aisle_stream_partition_stalled gauge says 1 (a dependency outage, or
	// a step that keeps failing); DefaultStallThreshold when zero.
	StallThreshold time.Duration
}

// Consumer is the stream worker: a consumer-group member that validates
// events, dead-letters the bad ones and applies the rest to the features.
type Consumer struct {
	cfg   ConsumerConfig
	cl    atomic.Pointer[kgo.Client] // set while Run runs; Ready reads it
	owned progressSet                // of the partitions this consumer's workers own
}

// NewConsumer checks cfg and fills in its defaults.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("stream consumer: no Kafka brokers")
	case cfg.Catalog == nil:
		return nil, errors.New("stream consumer: no catalog")
	case len(cfg.Appliers) == 0:
		return nil, errors.New("stream consumer: no appliers, so no topics to consume")
	case cfg.DLQ == nil:
		return nil, errors.New("stream consumer: no dead-letter producer")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = defaultMaxPollRecords
	}
	if cfg.StallThreshold < 0 {
		return nil, fmt.Errorf("stream consumer: negative stall threshold %s", cfg.StallThreshold)
	} else if cfg.StallThreshold == 0 {
		cfg.StallThreshold = DefaultStallThreshold
	}
	return &Consumer{cfg: cfg}, nil
}

// Run consumes until ctx is done, then finishes the batches in flight,
// commits what was processed, leaves the group and returns nil. Run follows
// franz-go's goroutine-per-partition pattern: each assigned partition has a
// worker that processes batches in order and marks their offsets only once
// their Redis writes and dead-letter records are acknowledged; marked
// offsets are committed periodically, on revoke and on shutdown. Call Run
// once.
func (c *Consumer) Run(ctx context.Context) error {
	s := &session{
		cfg:   c.cfg,
		owned: &c.owned,
		// Steps in flight finish even after ctx is done (each attempt is
		// bounded by stepTimeout): that is the drain.
		ctx:     context.WithoutCancel(ctx),
		workers: make(map[topicPartition]*worker),
		// Made before the client: partitions may be assigned (and workers
		// start) as soon as the client exists.
		routing: newRoutingCheck(c.cfg.Log),
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(slices.Collect(maps.Keys(c.cfg.Appliers))...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // a new group replays everything
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.WithLogger(kgoLogger{c.cfg.Log}),
	}
	if c.cfg.CommitInterval > 0 {
		opts = append(opts, kgo.AutoCommitInterval(c.cfg.CommitInterval))
	}
	if c.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(c.cfg.SessionTimeout), kgo.HeartbeatInterval(min(3*time.Second, c.cfg.SessionTimeout/3)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("stream consumer: %w", err)
	}
	c.cl.Store(cl)
	defer c.cl.Store(nil)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = cl.Ping(pingCtx)
	cancel()
	if err != nil && ctx.Err() == nil {
		cl.Close()
		return fmt.Errorf("stream consumer: Kafka at %v is unreachable: %w", c.cfg.Brokers, err)
	}

	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			fetchErrors.Inc()
			c.cfg.Log.Error("kafka fetch", "topic", topic, "partition", partition, "err", err)
		})
		s.dispatch(ctx, cl, fetches)
		cl.AllowRebalance()
	}
	// Leaving the group revokes every partition: the revoke callback waits
	// for the workers and commits what they marked.
	cl.CloseAllowingRebalance()
	s.stopAll()
	c.cfg.Log.Info("stream consumer stopped", "group", c.cfg.Group)
	return nil
}

// Ready reports whether Run is consuming as a member of its group and
// keeping up, for readiness probes: a worker that has not joined (still
// starting, or the group coordinator is unreachable) processes nothing, and
// one whose partitions have stalled (records waiting, no progress for
// longer than the stall threshold) is not applying them: a *StalledError
// names those partitions.
func (c *Consumer) Ready() error {
	cl := c.cl.Load()
	if cl == nil {
		return errors.New("stream consumer is not running")
	}
	// Generations start at 1 once the coordinator accepts the member; -1 is
	// "not in the group" and 0 "joining" (KIP-848).
	if _, generation := cl.GroupMetadata(); generation < 1 {
		return fmt.Errorf("stream consumer has not joined group %q", c.cfg.Group)
	}
	return stalledError(c.owned.list())
}

type topicPartition struct {
	topic     string
	partition int32
}

// session is the state of one Run. Its worker map needs no lock: with
// BlockRebalanceOnPoll the partition callbacks never run while the poll
// loop dispatches, and after CloseAllowingRebalance nothing else runs.
type session struct {
	cfg     ConsumerConfig
	owned   *progressSet
	ctx     context.Context
	workers map[topicPartition]*worker
	routing *routingCheck
}

func (s *session) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	for topic, partitions := range assigned {
		for _, p := range partitions {
			s.start(cl, topicPartition{topic, p})
		}
	}
}

func (s *session) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.stop(revoked)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		s.cfg.Log.Error("commit offsets on revoke", "err", err)
	}
}

// lost stops the workers without committing: the partitions may already
// belong to another member, whose progress we must not overwrite.
func (s *session) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.stop(lost)
}

func (s *session) start(cl *kgo.Client, tp topicPartition) *worker {
	w := &worker{
		cfg:      s.cfg,
		ctx:      s.ctx,
		cl:       cl,
		tp:       tp,
		routing:  s.routing,
		progress: newProgress(tp, s.cfg.StallThreshold),
		latency:  processingSeconds.WithLabelValues(tp.topic),
		batches:  make(chan batch, batchesPerWorker),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.workers[tp] = w
	s.owned.add(w.progress)
	partitionGauges.add(w.progress)
	go w.run()
	return w
}

// stop tells the workers of the given partitions to quit and waits for them.
func (s *session) stop(partitions map[string][]int32) {
	var stopping []*worker
	for topic, ps := range partitions {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w := s.workers[tp]; w != nil {
				delete(s.workers, tp)
				close(w.quit)
				stopping = append(stopping, w)
			}
		}
	}
	for _, w := range stopping {
		<-w.done
		// The partition's lag and stall are its next owner's to report.
		s.owned.remove(w.progress)
		partitionGauges.remove(w.progress)
	}
}

func (s *session) stopAll() {
	all := make(map[string][]int32)
	for tp := range s.workers {
		all[tp.topic] = append(all[tp.topic], tp.partition)
	}
	s.stop(all)
}

// dispatch hands each partition's records to its worker. It stops early when
// ctx is done; records not handed off are not marked, so they are read again.
func (s *session) dispatch(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) {
	fetches.EachTopic(func(ft kgo.FetchTopic) {
		topicID := topicIDString(ft.TopicID)
		for _, p := range ft.Partitions {
			if len(p.Records) == 0 {
				continue
			}
			tp := topicPartition{ft.Topic, p.Partition}
			w := s.workers[tp]
			if w == nil {
				// franz-go assigns before it fetches, so this is only a
				// safety net: skipping records here would lose them once a
				// later batch of the partition is marked.
				w = s.start(cl, tp)
			}
			w.progress.fetched(p.Records[0].Offset, p.HighWatermark)
			select {
			case w.batches <- batch{topicID: topicID, records: p.Records}:
			case <-ctx.Done():
				return
			}
		}
	})
}

// batch is one poll's records of one partition, in offset order.
type batch struct {
	topicID string
	records []*kgo.Record
}

// worker processes one partition's batches in order.
type worker struct {
	cfg      ConsumerConfig
	ctx      context.Context
	cl       *kgo.Client
	tp       topicPartition
	routing  *routingCheck
	progress *progress
	latency  prometheus.Observer // processingSeconds of tp's topic
	batches  chan batch
	quit     chan struct{} // closed on revoke: finish the current step, stop retrying
	done     chan struct{} // closed when run returns
}

func (w *worker) run() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case b := <-w.batches:
			if !w.process(b) {
				return
			}
		}
	}
}

// process decodes, validates and filters one batch by the rule Replay
// shares (decodeRecords), applies it, dead-letters its rejects and marks
// it. Records that a step keeps refusing (see isolate) are dead-lettered
// too, so one bad record never holds its partition; a dependency outage
// does, until the dependency is back. process returns false when it gave
// up because the partition was revoked while a step kept failing; the
// batch is then left unmarked for the partition's next owner.
func (w *worker) process(b batch) bool {
	start := time.Now()
	w.routing.check(w.ctx, w.cl, w.tp.topic, w.tp.partition, b.records)
	d, err := decodeRecords(b.topicID, b.records, w.lookup)
	if err != nil {
		return false // revoked while the catalog kept failing
	}
	updates, from, rejects := d.updates, d.from, d.rejects
	for _, rj := range rejects {
		eventsConsumed.WithLabelValues(rj.rec.Topic, rj.typ).Inc()
	}
	for _, u := range updates {
		eventsConsumed.WithLabelValues(u.Origin.Topic, u.Event.Type).Inc()
	}

	// wrote[i] says whether some applier applied updates[i]: a redelivered
	// duplicate adds no latency sample, or a crash's redelivery would
	// inflate the latency by the outage.
	wrote := make([]bool, len(updates))
	for _, a := range w.cfg.Appliers[w.tp.topic] {
		if len(updates) == 0 {
			break
		}
		applied := make([]bool, len(updates))
		failed, ok := w.isolate(a.Name, len(updates), func(ctx context.Context, lo, hi int) error {
			got, err := a.Apply(ctx, updates[lo:hi])
			if err == nil {
				copy(applied[lo:hi], got)
			}
			return err
		})
		if !ok {
			return false
		}
		// The records an applier refuses are dead-lettered and go to no
		// later applier; the appliers before it have applied them.
		kept := 0
		for i := range updates {
			if err, refused := failed[i]; refused {
				rejects = append(rejects, reject{from[i], rejectApply, updates[i].Event.Type, fmt.Sprintf("%s refused the event: %v", a.Name, err)})
				continue
			}
			updates[kept], from[kept], wrote[kept], applied[kept] = updates[i], from[i], wrote[i], applied[i]
			kept++
		}
		updates, from, wrote, applied = updates[:kept], from[:kept], wrote[:kept], applied[:kept]
		n := 0
		for i, a := range applied {
			if a {
				n++
				wrote[i] = true
			}
		}
		eventsApplied.WithLabelValues(w.tp.topic, a.Name, "applied").Add(float64(n))
		eventsApplied.WithLabelValues(w.tp.topic, a.Name, "duplicate").Add(float64(len(applied) - n))
		observeFreshness(a.Name, updates, applied)
	}
	written := time.Now()
	for i, r := range from {
		if wrote[i] {
			w.latency.Observe(written.Sub(r.Timestamp).Seconds())
		}
	}

	if len(rejects) > 0 {
		if !w.deadLetter(rejects) {
			return false
		}
		for _, rj := range rejects {
			eventsRejected.WithLabelValues(rj.rec.Topic, rj.kind, rj.typ).Inc()
		}
		first := rejects[0]
		w.cfg.Log.Warn("rejected events sent to the dead-letter queue",
			"topic", w.tp.topic, "partition", w.tp.partition, "count", len(rejects),
			"first_offset", first.rec.Offset, "first_reason", first.reason)
	}

	last := b.records[len(b.records)-1]
	w.cl.MarkCommitRecords(last)
	w.progress.applied(last.Offset + 1)
	batchSeconds.Observe(time.Since(start).Seconds())
	return true
}

// lookup is the catalog step of decodeRecords: which of the retailers,
// stores and products do not exist. An id the catalog keeps refusing (isolated as
// isolate does) counts as unknown, so its events are dead-lettered.
func (w *worker) lookup(retailerIDs, storeIDs, productIDs []string) (aisle.Unknown, error) {
	unknown := aisle.Unknown{Retailers: map[string]bool{}, Stores: map[string]bool{}, Products: map[string]bool{}}
	ids := slices.Concat(retailerIDs, storeIDs, productIDs) // in this order
	r, s := len(retailerIDs), len(retailerIDs)+len(storeIDs)
	// segment returns the part of ids[lo:hi] that lies in ids[from:to].
	segment := func(lo, hi, from, to int) []string { return ids[min(max(lo, from), to):max(min(hi, to), from)] }
	failed, ok := w.isolate("catalog", len(ids), func(ctx context.Context, lo, hi int) error {
		u, err := lookupUnknown(ctx, w.cfg.Catalog, segment(lo, hi, 0, r), segment(lo, hi, r, s), segment(lo, hi, s, len(ids)))
		if err == nil {
			maps.Copy(unknown.Retailers, u.Retailers)
			maps.Copy(unknown.Stores, u.Stores)
			maps.Copy(unknown.Products, u.Products)
		}
		return err
	})
	if !ok {
		return aisle.Unknown{}, errRevoked
	}
	for i, err := range failed {
		switch {
		case i < r:
			unknown.Retailers[ids[i]] = true
		case i < s:
			unknown.Stores[ids[i]] = true
		default:
			unknown.Products[ids[i]] = true
		}
		w.cfg.Log.Warn("the catalog refuses an id; its events are dead-lettered as naming an unknown entity",
			"topic", w.tp.topic, "partition", w.tp.partition, "id", ids[i], "err", err)
	}
	return unknown, nil
}

// deadLetter writes the rejects' dead letters and waits for them all. A
// dead letter the broker refuses for what it is (larger than the DLQ
// topic's limit) is replaced by its stub; any other failure is retried for
// ever, since nothing can move on before the rejects are safe.
func (w *worker) deadLetter(rejects []reject) bool {
	stub := make([]bool, len(rejects))
	pending := make([]int, len(rejects))
	for i := range pending {
		pending[i] = i
	}
	ok, _ := w.attempt("dlq", math.MaxInt, func(ctx context.Context) error {
		recs := make([]*kgo.Record, len(pending)) // fresh records: a failed produce may have modified them
		for j, i := range pending {
			if stub[i] {
				recs[j] = deadLetterStub(rejects[i])
			} else {
				recs[j] = deadLetter(rejects[i])
			}
		}
		results, err := w.cfg.DLQ.produce(ctx, recs)
		if err != nil {
			return err
		}
		var again []int
		var first error
		for j, res := range results {
			if res.Err == nil {
				continue
			}
			i := pending[j]
			again = append(again, i)
			first = cmp.Or(first, res.Err)
			if refusedByKafka(res.Err) && !stub[i] {
				stub[i] = true
				w.cfg.Log.Warn("the dead-letter topic refuses a record's dead letter; writing its headers alone",
					"topic", w.tp.topic, "partition", w.tp.partition, "offset", rejects[i].rec.Offset, "err", res.Err)
			}
		}
		pending = again
		return first
	})
	return ok
}

// observeFreshness records, for each update an applier wrote (not the
// duplicates it skipped), how long after its event time it reached Redis.
func observeFreshness(applier string, updates []aisle.Update, applied []bool) {
	fresh := freshnessSeconds.WithLabelValues(applier)
	written := time.Now()
	for i, ok := range applied {
		if ok {
			fresh.Observe(written.Sub(updates[i].Event.Time).Seconds())
		}
	}
}

// errRevoked says a step gave up because the partition was revoked.
var errRevoked = errors.New("partition revoked")

// isolate runs a step f over the items [0, n) of a batch (records or ids)
// through the worker's attempt, in one call when it can: a failure that is
// a dependency outage is retried for ever, and any other one, after
// poisonAttempts tries, may be some item's (see isolateItems). It returns
// the last error of each item that failed alone, by index, and false when
// the partition was revoked while the step kept failing.
func (w *worker) isolate(step string, n int, f func(ctx context.Context, lo, hi int) error) (map[int]error, bool) {
	return isolateItems(n, func(lo, hi, tries int) (bool, error) {
		ok, err := w.attempt(step, tries, func(ctx context.Context) error { return f(ctx, lo, hi) })
		if ok && err != nil && hi-lo > 1 {
			w.cfg.Log.Warn("stream batch step keeps failing; looking for the records that make it fail",
				"step", step, "topic", w.tp.topic, "partition", w.tp.partition, "records", hi-lo, "err", err)
		}
		return ok, err
	})
}

// isolateItems finds the items of [0, n) that a step fails on. try(lo, hi,
// tries) runs the step over items [lo, hi), trying up to tries times, and
// returns its last error (nil once it succeeds), or ok false to give up
// altogether. The whole range gets poisonAttempts tries; a range that still
// fails is halved and the halves run in order, those that fail again split
// at once, down to single items, which get poisonAttempts tries each. Items
// before and after a bad one are thus applied in order, each call being
// idempotent. isolateItems returns the last error of each item that failed
// alone, by index, and false when try gave up.
func isolateItems(n int, try func(lo, hi, tries int) (ok bool, err error)) (map[int]error, bool) {
	failed := map[int]error{}
	var run func(lo, hi, tries int) bool
	run = func(lo, hi, tries int) bool {
		ok, err := try(lo, hi, tries)
		switch {
		case !ok:
			return false
		case err == nil:
			return true
		case hi-lo == 1:
			failed[lo] = err
			return true
		}
		mid := lo + (hi-lo)/2
		return run(lo, mid, triesFor(mid-lo)) && run(mid, hi, triesFor(hi-mid))
	}
	if n == 0 {
		return failed, true
	}
	return failed, run(0, n, poisonAttempts)
}

// triesFor is how often isolateItems tries a part of n items: a part that
// fails is split at once, a single item is tried poisonAttempts times.
func triesFor(n int) int {
	if n == 1 {
		return poisonAttempts
	}
	return 1
}

// attempt runs one step until it succeeds, backing off between attempts
// (capped at maxBackoff): for ever while it fails because a dependency is
// down (dependencyDown), and at most tries times in all while it fails
// otherwise; it then returns the last error. ok is false when the
// partition is revoked while the step keeps failing.
func (w *worker) attempt(step string, tries int, f func(context.Context) error) (ok bool, err error) {
	backoff := 100 * time.Millisecond
	for failures := 0; ; {
		ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
		err := f(ctx)
		cancel()
		if err == nil {
			return true, nil
		}
		down := dependencyDown(err)
		if !down {
			if failures++; failures >= tries {
				return true, err
			}
		}
		stepRetries.WithLabelValues(step).Inc()
		w.cfg.Log.Warn("stream batch step failed; retrying", "step", step,
			"topic", w.tp.topic, "partition", w.tp.partition, "dependency_down", down, "backoff", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-w.quit:
			timer.Stop()
			w.cfg.Log.Warn("partition revoked during retries; its next owner re-reads the batch",
				"step", step, "topic", w.tp.topic, "partition", w.tp.partition)
			return false, nil
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
