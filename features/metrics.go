package features

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/internal/poolmetrics"
)

// poolStats reports the connection pool of every open Store. Timeouts and
// misses rising with open = the pool size mean the pool is too small for
// the load, or Redis is slow.
var poolStats = poolmetrics.New(redis.UniversalClient.PoolStats,
	poolmetrics.Metric[*redis.PoolStats]{
		Name: "aisle_redis_pool_hits_total", Type: prometheus.CounterValue,
		Help:  "Redis commands that found an idle connection in the pool.",
		Value: func(s *redis.PoolStats) float64 { return float64(s.Hits) },
	},
	poolmetrics.Metric[*redis.PoolStats]{
		Name: "aisle_redis_pool_misses_total", Type: prometheus.CounterValue,
		Help:  "Redis commands that found no idle connection and dialled or waited.",
		Value: func(s *redis.PoolStats) float64 { return float64(s.Misses) },
	},
	poolmetrics.Metric[*redis.PoolStats]{
		Name: "aisle_redis_pool_timeouts_total", Type: prometheus.CounterValue,
		Help:  "Redis commands that gave up waiting for a connection (pool timeout).",
		Value: func(s *redis.PoolStats) float64 { return float64(s.Timeouts) },
	},
	poolmetrics.Metric[*redis.PoolStats]{
		Name: "aisle_redis_pool_open_connections", Type: prometheus.GaugeValue,
		Help:  "Redis connections open in the pool (in use or idle).",
		Value: func(s *redis.PoolStats) float64 { return float64(s.TotalConns) },
	},
	poolmetrics.Metric[*redis.PoolStats]{
		Name: "aisle_redis_pool_idle_connections", Type: prometheus.GaugeValue,
		Help:  "Redis connections idle in the pool.",
		Value: func(s *redis.PoolStats) float64 { return float64(s.IdleConns) },
	},
)

func init() { prometheus.MustRegister(poolStats) }
