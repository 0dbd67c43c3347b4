// Package ratelimit limits how many operations each caller runs per second,
// counted in Redis so that every API replica sharing a Redis and a key
// prefix enforces one allowance per caller. It uses go-redis/redis_rate's
// GCRA: one Lua call per decision, timed by the Redis server's clock, so
// replicas need no clock agreement. Each process also keeps the same
// allowance per caller in memory (Local), consulted first: a caller over
// its allowance is refused without a Redis call, and when Redis does not
// answer in time the local decision stands, so a flood that slows Redis
// down cannot switch the limit off.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// decisionTimeout bounds one decision: a slow Redis must not add more than
// this to every request.
const decisionTimeout = 100 * time.Millisecond

// warnEvery spaces the warnings of a Redis outage: one per request would
// flood the log exactly when it matters.
const warnEvery = 10 * time.Second

var localDecisions = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_ratelimit_local_decisions_total",
	Help: "Operations let through on this process's own allowance alone because Redis did not answer in time.",
})

// Limiter allows each key PerSecond operations per second on average and
// Burst at once.
type Limiter struct {
	rdb    redis.UniversalClient
	gcra   *redis_rate.Limiter
	local  *Local
	limit  redis_rate.Limit
	prefix string
	log    *slog.Logger

	mu       sync.Mutex
	lastWarn time.Time
}

// Open checks that Redis answers on rdb (one server or a cluster: each
// allowance is one key) and takes it over: Close closes it, and so does a
// failed Open. Keys live under prefix + "ratelimit:", so replicas sharing
// the prefix share allowances.
func Open(ctx context.Context, rdb redis.UniversalClient, prefix string, perSecond, burst int, log *slog.Logger) (*Limiter, error) {
	local, err := NewLocal(perSecond, burst)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("ratelimit: connect to Redis: %w", err)
	}
	return &Limiter{
		rdb:    rdb,
		gcra:   redis_rate.NewLimiter(rdb),
		local:  local,
		limit:  redis_rate.Limit{Rate: perSecond, Burst: burst, Period: time.Second},
		prefix: prefix + "ratelimit:",
		log:    log,
	}, nil
}

// Close releases the Redis connections.
func (l *Limiter) Close() error { return l.rdb.Close() }

// Allow reports whether key may run one more operation now, and if not,
// how long until it may.
//
// The process's own allowance decides first: a key over it is refused
// without asking Redis, so one caller's flood reaches Redis at most at its
// allowed rate. Redis then decides for every replica sharing the prefix.
// When Redis does not answer in time, the local decision stands: it logs
// a warning and counts the operation
// (aisle_ratelimit_local_decisions_total). Each replica then admits up to
// one allowance per key, not one between them; refusing everything
// instead would turn a Redis outage into an outage of every API answer,
// including the catalog, which is served from PostgreSQL.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	if ok, retryAfter := l.local.Allow(key); !ok {
		return false, retryAfter
	}
	decisionCtx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	res, err := l.gcra.Allow(decisionCtx, l.prefix+key, l.limit)
	if err != nil {
		if ctx.Err() == nil { // a caller that went away is not Redis's fault
			localDecisions.Inc()
			l.warn(err)
		}
		return true, 0
	}
	return res.Allowed > 0, res.RetryAfter
}

func (l *Limiter) warn(err error) {
	l.mu.Lock()
	now := time.Now()
	due := now.Sub(l.lastWarn) >= warnEvery
	if due {
		l.lastWarn = now
	}
	l.mu.Unlock()
	if due {
		l.log.Warn("rate limiting is per process until Redis answers", "err", err)
	}
}
