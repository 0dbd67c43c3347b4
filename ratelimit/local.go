package ratelimit

import (
	"fmt"
	"sync"
	"time"
)

// maxLocalKeys bounds the keys a Local remembers. A key's entry matters
// only while its caller is ahead of its allowance, at most a burst's worth
// of emission intervals; expired entries are swept when the map is full.
const maxLocalKeys = 100_000

// Local is the same GCRA as the shared Limiter, counted in this process
// only: each key may run perSecond operations per second on average and
// burst at once.
type Local struct {
	interval  time.Duration // between two operations at the sustained rate
	tolerance time.Duration // how far ahead of now a key's allowance may run
	now       func() time.Time

	mu  sync.Mutex
	tat map[string]time.Time // key → theoretical arrival time of its next operation
}

// NewLocal returns a limiter of perSecond operations per second and burst
// at once per key.
func NewLocal(perSecond, burst int) (*Local, error) {
	if perSecond < 1 || burst < 1 {
		return nil, fmt.Errorf("ratelimit: want a positive rate and burst, got %d/s burst %d", perSecond, burst)
	}
	interval := time.Second / time.Duration(perSecond)
	return &Local{
		interval:  interval,
		tolerance: time.Duration(burst-1) * interval,
		now:       time.Now,
		tat:       map[string]time.Time{},
	}, nil
}

// Allow reports whether key may run one more operation now, and if not,
// how long until it may.
func (l *Local) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	tat, seen := l.tat[key]
	if !seen || tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > l.tolerance {
		return false, ahead - l.tolerance
	}
	if !seen && len(l.tat) >= maxLocalKeys {
		l.sweep(now)
		if len(l.tat) >= maxLocalKeys {
			// Every remembered key is ahead of its allowance: admit this
			// new one unremembered rather than forget one that is not.
			return true, 0
		}
	}
	l.tat[key] = tat.Add(l.interval)
	return true, 0
}

// sweep forgets keys whose allowance is full again: they behave as unseen.
func (l *Local) sweep(now time.Time) {
	for k, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, k)
		}
	}
}
