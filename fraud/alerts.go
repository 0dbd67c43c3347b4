package fraud

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/catalog"
)

// alertBuffer is how many alerts a subscriber may have unread; one more
// disconnects it, so a slow client never holds up the others.
const alertBuffer = 64

var (
	alertSubscribers = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "aisle_fraud_alert_subscribers",
		Help: "Active riskAlerts subscriptions in this process.",
	})
	alertsDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_fraud_alert_subscribers_dropped_total",
		Help: "riskAlerts subscriptions closed because they fell more than the buffer behind.",
	})
	assessments = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_fraud_assessments_total",
		Help: "New fraud assessments by decision.",
	}, []string{"decision"})
	servingModel = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "aisle_fraud_model_version",
		Help: "The fraud model version this process scores with (0: none active).",
	})
	alertsUnsent = promauto.NewCounter(prometheus.CounterOpts{
		Name: "aisle_fraud_alerts_unsent_total",
		Help: "Assessments not announced to riskAlerts subscribers (outbox full or Redis publish failed).",
	})
)

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
	C        <-chan catalog.FraudAssessment
	c        chan catalog.FraudAssessment
	hub      *AlertHub
	minScore float64
}

// Subscribe returns a subscription to alerts scoring at least minScore.
func (h *AlertHub) Subscribe(minScore float64) *AlertSubscription {
	c := make(chan catalog.FraudAssessment, alertBuffer)
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
func (h *AlertHub) Publish(a catalog.FraudAssessment) {
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
