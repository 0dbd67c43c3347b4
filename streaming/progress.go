package streaming

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultStallThreshold is how long a partition may have records it has
// not applied without advancing before it counts as stalled.
const DefaultStallThreshold = time.Minute

// progress is what a partition worker has applied of its partition, read
// by scrapes and readiness checks while the worker runs.
type progress struct {
	tp        topicPartition
	threshold time.Duration

	mu       sync.Mutex
	next     int64     // next offset to apply; -1 until the first batch
	high     int64     // high watermark of the latest fetch; -1 until then
	advanced time.Time // when next last moved, or records arrived at a caught-up partition
}

func newProgress(tp topicPartition, threshold time.Duration) *progress {
	return &progress{tp: tp, threshold: threshold, next: -1, high: -1, advanced: time.Now()}
}

// fetched records a batch handed to the worker: its first offset and the
// partition's high watermark when it was fetched.
func (p *progress) fetched(first, highWatermark int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next < 0 {
		p.next = first
	}
	if p.high <= p.next {
		p.advanced = time.Now() // it was caught up: the wait starts now
	}
	p.high = max(p.high, highWatermark)
}

// applied records that every offset before next is done.
func (p *progress) applied(next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = next
	p.advanced = time.Now()
}

// state returns the records fetched but not applied (-1 when unknown) and
// how long the partition has had such records without advancing.
func (p *progress) state(now time.Time) (lag int64, waiting time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next < 0 || p.high < 0 {
		return -1, 0
	}
	lag = max(p.high-p.next, 0)
	if lag > 0 {
		waiting = now.Sub(p.advanced)
	}
	return lag, waiting
}

// progressSet is the progress of a set of partition workers.
type progressSet struct {
	mu  sync.Mutex
	all map[*progress]struct{}
}

func (s *progressSet) add(p *progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[*progress]struct{}{}
	}
	s.all[p] = struct{}{}
}

func (s *progressSet) remove(p *progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.all, p)
}

func (s *progressSet) list() []*progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*progress, 0, len(s.all))
	for p := range s.all {
		ps = append(ps, p)
	}
	return ps
}

// partitionMetrics exports every partition worker's progress in the
// process when scraped: computed then, so a worker stuck in a step is seen
// stuck, not as it last reported.
type partitionMetrics struct {
	progressSet
	lag  *prometheus.Desc
	stal *prometheus.Desc
	secs *prometheus.Desc
}

var partitionGauges = &partitionMetrics{
	lag: prometheus.NewDesc("aisle_stream_consumer_lag_records",
		"Records of an owned partition not applied yet: the high watermark of its latest fetch minus the next offset to apply (from the first fetch of a newly assigned partition; gone once it is revoked).",
		[]string{"topic", "partition"}, nil),
	stal: prometheus.NewDesc("aisle_stream_partition_stalled",
		"1 when an owned partition has had records to apply without advancing for longer than the stall threshold (--stall-threshold), else 0.",
		[]string{"topic", "partition"}, nil),
	secs: prometheus.NewDesc("aisle_stream_partition_stalled_seconds",
		"How long an owned partition has had records to apply without advancing; 0 while it is caught up or moving.",
		[]string{"topic", "partition"}, nil),
}

func init() { prometheus.MustRegister(partitionGauges) }

func (s *partitionMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.lag
	ch <- s.stal
	ch <- s.secs
}

// Collect exports each partition once: when several consumers of the
// process own the same one (tests, or a revoke racing an assign), the
// largest figures win.
func (s *partitionMetrics) Collect(ch chan<- prometheus.Metric) {
	type figures struct {
		lag     int64
		waiting time.Duration
		stalled bool
	}
	now := time.Now()
	byPartition := map[topicPartition]figures{}
	for _, p := range s.list() {
		lag, waiting := p.state(now)
		f, seen := byPartition[p.tp]
		if !seen {
			f.lag = -1
		}
		f.lag, f.waiting = max(f.lag, lag), max(f.waiting, waiting)
		f.stalled = f.stalled || waiting > p.threshold
		byPartition[p.tp] = f
	}
	for tp, f := range byPartition {
		labels := []string{tp.topic, strconv.Itoa(int(tp.partition))}
		if f.lag >= 0 { // unknown until the first fetch, not 0
			ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, float64(f.lag), labels...)
		}
		stalled := 0.0
		if f.stalled {
			stalled = 1
		}
		ch <- prometheus.MustNewConstMetric(s.stal, prometheus.GaugeValue, stalled, labels...)
		ch <- prometheus.MustNewConstMetric(s.secs, prometheus.GaugeValue, f.waiting.Seconds(), labels...)
	}
}

// StalledError names the partitions of a consumer that have had records to
// apply for longer than its stall threshold without advancing, as
// "topic/partition".
type StalledError struct {
	Partitions []string
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("stream partitions stalled (records waiting, no progress for longer than the threshold): %v", e.Partitions)
}

func stalledError(ps []*progress) error {
	now := time.Now()
	var names []string
	for _, p := range ps {
		if _, waiting := p.state(now); waiting > p.threshold {
			names = append(names, p.tp.topic+"/"+strconv.Itoa(int(p.tp.partition)))
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return &StalledError{Partitions: names}
}
