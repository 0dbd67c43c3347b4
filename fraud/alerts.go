package fraud

import (
	"sync"

	"github.com/aisle/aisle/postgres"
)

// alertBuffer is how many alerts a subscriber may have unread; one more
// disconnects it, so a slow client never holds up the others.
const alertBuffer = 64

// AlertHub fans assessments out to riskAlerts subscribers. Alerts are events,
// not state: each subscriber gets every alert at or above its minimum score,
// in order, from a bounded buffer, and is disconnected when that overflows.
// Publish never blocks.
type AlertHub struct {
	mu     sync.Mutex
	subs   map[*AlertSubscription]struct{}
	closed bool
}

// NewAlertHub returns an empty hub.
func NewAlertHub() *AlertHub {
	return &AlertHub{subs: make(map[*AlertSubscription]struct{})}
}

// AlertSubscription receives alerts on C until it is closed: by Close, by
// the hub shutting down, or by overflowing its buffer.
type AlertSubscription struct {
	C        <-chan postgres.FraudAssessment
	c        chan postgres.FraudAssessment
	hub      *AlertHub
	minScore float64
}

// Subscribe returns a subscription to alerts scoring at least minScore.
func (h *AlertHub) Subscribe(minScore float64) *AlertSubscription {
	c := make(chan postgres.FraudAssessment, alertBuffer)
	sub := &AlertSubscription{C: c, c: c, hub: h, minScore: minScore}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return sub
	}
	h.subs[sub] = struct{}{}
	alertSubscribers.Inc()
	return sub
}

// Publish offers a to every subscriber whose minimum it reaches.
func (h *AlertHub) Publish(a postgres.FraudAssessment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if a.Score < sub.minScore {
			continue
		}
		select {
		case sub.c <- a:
		default:
			alertsDropped.Inc()
			h.removeLocked(sub)
		}
	}
}

// Close closes every subscription; later ones are closed at once.
func (h *AlertHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.removeLocked(sub)
	}
}

func (h *AlertHub) removeLocked(sub *AlertSubscription) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.c)
		alertSubscribers.Dec()
	}
}

// Close ends the subscription; it is safe to call more than once.
func (s *AlertSubscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}
