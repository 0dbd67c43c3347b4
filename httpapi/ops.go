package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds a readiness check: a dependency that does not answer
// within it is as bad as one that is down, and probes have timeouts too.
const readyTimeout = 2 * time.Second

// Ops returns the operator endpoints alone (/healthz, /readyz, /metrics),
// for processes that serve no GraphQL: the stream workers.
func Ops(ready func(ctx context.Context) error, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	handleOps(mux, ready, log, true)
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
// correct answers now, else 503 naming the failing checks. The checks'
// errors are logged, not shown: they carry addresses and URLs, and the
// endpoint is as public as the API.
//
// /metrics, when metrics is set, is Prometheus's exposition.
func handleOps(mux *http.ServeMux, ready func(ctx context.Context) error, log *slog.Logger, metrics bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failing": failingChecks(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if metrics {
		mux.Handle("GET /metrics", promhttp.Handler())
	}
}

// CheckFailed is a failed readiness check. Name is what /readyz shows;
// Err is only logged.
type CheckFailed struct {
	Name string
	Err  error
}

func (e *CheckFailed) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *CheckFailed) Unwrap() error { return e.Err }

// failingChecks names the checks that failed in err, which may join
// several; an error that names no check is "unknown".
func failingChecks(err error) []string {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	names := make([]string, 0, len(errs))
	for _, e := range errs {
		var failed *CheckFailed
		if errors.As(e, &failed) {
			names = append(names, failed.Name)
		} else {
			names = append(names, "unknown")
		}
	}
	return names
}
