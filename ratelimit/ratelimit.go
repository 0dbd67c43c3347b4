// Package ratelimit limits how many operations each caller runs per second,
// counted in Redis so that every API replica sharing a Redis and a key
// prefix enforces one allowance per caller. It uses go-redis/redis_rate's
// GCRA: one Lua call per decision, timed by the Redis server's clock, so
// replicas need no clock agreement.
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

var failedOpen = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_ratelimit_failed_open_total",
	Help: "Operations let through without a rate-limit decision because Redis did not answer.",
})

// Limiter allows each key PerSecond operations per second on average and
// Burst at once.
type Limiter struct {
	rdb    redis.UniversalClient
	gcra   *redis_rate.Limiter
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
	if perSecond < 1 || burst < 1 {
		_ = rdb.Close()
		return nil, fmt.Errorf("ratelimit: want a positive rate and burst, got %d/s burst %d", perSecond, burst)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("ratelimit: connect to Redis: %w", err)
	}
	return &Limiter{
		rdb:    rdb,
		gcra:   redis_rate.NewLimiter(rdb),
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
// When Redis does not answer it allows the operation, logs a warning and
// counts it (aisle_ratelimit_failed_open_total). The limit protects the
// API from heavy callers; failing closed would turn a Redis outage into an
// outage of every API answer, including the catalog, which is served from
// PostgreSQL and does not need Redis. The other limits (complexity, body
// size, timeouts) still bound each request meanwhile.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	decisionCtx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	res, err := l.gcra.Allow(decisionCtx, l.prefix+key, l.limit)
	if err != nil {
		if ctx.Err() != nil {
			return true, 0 // the caller went away: nothing to decide, and Redis is not to blame
		}
		failedOpen.Inc()
		l.warn(err)
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
		l.log.Warn("rate limiting is off until Redis answers: letting operations through", "err", err)
	}
}
