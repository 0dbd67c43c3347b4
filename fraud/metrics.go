package fraud

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

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
