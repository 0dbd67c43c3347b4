// Package poolmetrics exports the statistics of connection pools (pgxpool,
// go-redis) to Prometheus with one collector per kind of pool, registered
// once, that reads the pools open at scrape time.
//
// A server opens one pool of each kind, so the figures are that pool's. Tests
// open many in one process; their figures are summed, which is why a pool
// that closes leaves the collector (Remove) instead of lingering.
package poolmetrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is one figure read from a pool's statistics S.
type Metric[S any] struct {
	Name, Help string
	Type       prometheus.ValueType // GaugeValue or CounterValue
	Value      func(S) float64

	desc *prometheus.Desc
}

// Collector reports the Metrics of the pools P added to it.
type Collector[P comparable, S any] struct {
	stat    func(P) S
	metrics []Metric[S]

	mu    sync.Mutex
	pools map[P]struct{}
}

// New returns a collector that reads each pool's statistics with stat.
func New[P comparable, S any](stat func(P) S, metrics ...Metric[S]) *Collector[P, S] {
	for i := range metrics {
		metrics[i].desc = prometheus.NewDesc(metrics[i].Name, metrics[i].Help, nil, nil)
	}
	return &Collector[P, S]{stat: stat, metrics: metrics, pools: make(map[P]struct{})}
}

// Add reports pool from now on.
func (c *Collector[P, S]) Add(pool P) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pools[pool] = struct{}{}
}

// Remove stops reporting pool; removing it twice is harmless.
func (c *Collector[P, S]) Remove(pool P) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pools, pool)
}

// Describe implements prometheus.Collector.
func (c *Collector[P, S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector[P, S]) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stats := make([]S, 0, len(c.pools))
	for p := range c.pools {
		stats = append(stats, c.stat(p))
	}
	c.mu.Unlock()
	for _, m := range c.metrics {
		var sum float64
		for _, s := range stats {
			sum += m.Value(s)
		}
		ch <- prometheus.MustNewConstMetric(m.desc, m.Type, sum)
	}
}
