package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aisle/aisle/internal/poolmetrics"
)

// poolStats reports the connection pool of every open DB. Saturation shows
// as acquired = max with waits rising, before requests time out.
var poolStats = poolmetrics.New((*pgxpool.Pool).Stat,
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_acquired_connections", Type: prometheus.GaugeValue,
		Help:  "PostgreSQL connections checked out of the pool right now.",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_idle_connections", Type: prometheus.GaugeValue,
		Help:  "PostgreSQL connections open and idle in the pool.",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_open_connections", Type: prometheus.GaugeValue,
		Help:  "PostgreSQL connections open (acquired, idle or being established).",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_max_connections", Type: prometheus.GaugeValue,
		Help:  "The pool's connection limit (pool_max_conns of DATABASE_URL).",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_acquires_total", Type: prometheus.CounterValue,
		Help:  "Connections acquired from the pool.",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_acquire_waits_total", Type: prometheus.CounterValue,
		Help:  "Acquires that found no idle connection and had to wait for one.",
		Value: func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) },
	},
	poolmetrics.Metric[*pgxpool.Stat]{
		Name: "aisle_postgres_pool_acquire_wait_seconds_total", Type: prometheus.CounterValue,
		Help:  "Time spent waiting for a connection by acquires that found none idle.",
		Value: func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() },
	},
)

func init() { prometheus.MustRegister(poolStats) }
