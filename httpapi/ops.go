package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds a readiness check: a dependency that does not answer
// within it is as bad as one that is down, and probes have timeouts too.
const readyTimeout = 2 * time.Second

// Ops returns the operator endpoints alone (/healthz, /readyz, /metrics),
// for processes that serve no GraphQL: the stream workers.
func Ops(ready func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	handleOps(mux, ready)
	return withRequestID(mux)
}

// handleOps registers the operator endpoints. See README "Observability".
//
// /healthz is liveness: it answers 200 whenever the process can still serve
// HTTP, and checks no dependency, so an outage of Redis or PostgreSQL makes
// the pods unready (taken out of load balancing) instead of killed and
// restarted all at once, which would not bring the dependency back.
//
// /readyz is readiness: 200 only when ready says this process can give
// correct answers now, else 503 with the reasons.
func handleOps(mux *http.ServeMux, ready func(ctx context.Context) error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.Handler())
}
