package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
)

// DefaultGroup is the consumer group of the stream workers.
const DefaultGroup = "aisle-stream"

// Headers of a dead-letter record. The record keeps the original key, value
// and headers.
const (
	HeaderError     = "aisle-error"     // why the event was rejected
	HeaderTopic     = "aisle-topic"     // where it was read from
	HeaderPartition = "aisle-partition" // decimal
	HeaderOffset    = "aisle-offset"    // decimal
)

const (
	defaultMaxPollRecords = 10_000
	// stepTimeout bounds one attempt of a batch step (catalog lookup, Redis
	// write, DLQ produce); failed attempts are retried.
	stepTimeout = 10 * time.Second
	maxBackoff  = 5 * time.Second
	// batchesPerWorker is how many polled batches may wait for a partition
	// worker before the poll loop blocks (backpressure).
	batchesPerWorker = 2
)

// Catalog tells which retailers, stores and products exist. *catalog.DB
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
// retries the whole batch, so Apply must be idempotent.
type Applier struct {
	Name  string // labels its metrics, e.g. "availability"
	Apply func(ctx context.Context, updates []features.Update) (applied []bool, err error)
}

// ConsumerConfig configures NewConsumer.
type ConsumerConfig struct {
	Brokers []string
	Group   string // DefaultGroup when empty
	// Appliers are what each consumed topic's events are applied with, in
	// order; the consumer reads exactly these topics. A topic's events go
	// to Redis through at most one applier, whose dedup and watermark are
	// per topic (see features.Update).
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
}

// Consumer is the stream worker: a consumer-group member that validates
// events, dead-letters the bad ones and applies the rest to the features.
type Consumer struct {
	cfg ConsumerConfig
	cl  atomic.Pointer[kgo.Client] // set while Run runs; Ready reads it
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
		cfg: c.cfg,
		// Steps in flight finish even after ctx is done (each attempt is
		// bounded by stepTimeout): that is the drain.
		ctx:     context.WithoutCancel(ctx),
		workers: make(map[topicPartition]*worker),
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

// Ready reports whether Run is consuming as a member of its group, for
// readiness probes: a worker that has not joined (still starting, or the
// group coordinator is unreachable) processes nothing.
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
	return nil
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
	ctx     context.Context
	workers map[topicPartition]*worker
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
		cfg:     s.cfg,
		ctx:     s.ctx,
		cl:      cl,
		tp:      tp,
		latency: processingSeconds.WithLabelValues(tp.topic),
		batches: make(chan batch, batchesPerWorker),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.workers[tp] = w
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
		// The partition's lag is its next owner's to report.
		consumerLag.DeleteLabelValues(w.tp.topic, strconv.Itoa(int(w.tp.partition)))
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
			select {
			case w.batches <- batch{topicID: topicID, records: p.Records, highWatermark: p.HighWatermark}:
			case <-ctx.Done():
				return
			}
		}
	})
}

// batch is one poll's records of one partition, in offset order.
type batch struct {
	topicID       string
	records       []*kgo.Record
	highWatermark int64 // of the partition when the batch was fetched
}

// worker processes one partition's batches in order.
type worker struct {
	cfg     ConsumerConfig
	ctx     context.Context
	cl      *kgo.Client
	tp      topicPartition
	lag     prometheus.Gauge    // consumerLag of tp; nil until the first batch: the lag is unknown until then, not 0
	latency prometheus.Observer // processingSeconds of tp's topic
	batches chan batch
	quit    chan struct{} // closed on revoke: finish the current step, stop retrying
	done    chan struct{} // closed when run returns
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
// it. It returns false when it gave up because the partition was revoked
// while a step kept failing; the batch is then left unmarked for the
// partition's next owner.
func (w *worker) process(b batch) bool {
	start := time.Now()
	d, err := decodeRecords(b.topicID, b.records, func(retailerIDs, storeIDs, productIDs []string) (unknown aisle.Unknown, err error) {
		if !w.retry("catalog", func(ctx context.Context) (err error) {
			unknown, err = lookupUnknown(ctx, w.cfg.Catalog, retailerIDs, storeIDs, productIDs)
			return err
		}) {
			return aisle.Unknown{}, errRevoked
		}
		return unknown, nil
	})
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
		var applied []bool
		ok := w.retry(a.Name, func(ctx context.Context) (err error) {
			applied, err = a.Apply(ctx, updates)
			return err
		})
		if !ok {
			return false
		}
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
		ok := w.retry("dlq", func(ctx context.Context) error {
			recs := make([]*kgo.Record, len(rejects)) // fresh records: a failed produce may have modified them
			for i, rj := range rejects {
				recs[i] = deadLetter(rj)
			}
			return w.cfg.DLQ.produce(ctx, recs)
		})
		if !ok {
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
	if w.lag == nil {
		w.lag = consumerLag.WithLabelValues(w.tp.topic, strconv.Itoa(int(w.tp.partition)))
	}
	w.lag.Set(float64(max(b.highWatermark-(last.Offset+1), 0)))
	batchSeconds.Observe(time.Since(start).Seconds())
	return true
}

// observeFreshness records, for each update an applier wrote (not the
// duplicates it skipped), how long after its event time it reached Redis.
func observeFreshness(applier string, updates []features.Update, applied []bool) {
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

// retry runs one step until it succeeds, backing off between attempts. It
// returns false when the partition is revoked while the step keeps failing.
func (w *worker) retry(step string, f func(context.Context) error) bool {
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(w.ctx, stepTimeout)
		err := f(ctx)
		cancel()
		if err == nil {
			return true
		}
		stepRetries.WithLabelValues(step).Inc()
		w.cfg.Log.Warn("stream batch step failed; retrying", "step", step,
			"topic", w.tp.topic, "partition", w.tp.partition, "backoff", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-w.quit:
			timer.Stop()
			w.cfg.Log.Warn("partition revoked during retries; its next owner re-reads the batch",
				"step", step, "topic", w.tp.topic, "partition", w.tp.partition)
			return false
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// deadLetter builds the dead-letter record of a rejected one.
func deadLetter(rj reject) *kgo.Record {
	value := rj.rec.Value
	if len(value) > aisle.MaxEventBytes {
		// An oversized record might not fit the DLQ with our headers, and a
		// DLQ produce that can never succeed would stall the partition; the
		// reason already says how large it was.
		value = value[:aisle.MaxEventBytes]
	}
	headers := append(slices.Clone(rj.rec.Headers),
		kgo.RecordHeader{Key: HeaderError, Value: []byte(rj.reason)},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(rj.rec.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(rj.rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, rj.rec.Offset, 10)},
	)
	return &kgo.Record{Topic: aisle.TopicDLQ, Key: rj.rec.Key, Value: value, Headers: headers}
}
