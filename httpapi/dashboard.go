package httpapi

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// handleDashboard serves the live dashboard at /dashboard: a static page
// that uses only the public GraphQL API, with a key typed into it. It is
// off in production unless cfg.Dashboard turns it on (--dashboard).
func handleDashboard(mux *http.ServeMux, cfg Config) {
	if cfg.Production && !cfg.Dashboard {
		mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "The dashboard is off in production (AISLE_ENV=production); turn it on with --dashboard (AISLE_DASHBOARD=true).", http.StatusNotFound)
		})
		return
	}
	assets, err := dashboardAssets(cfg.WebDir)
	if err != nil {
		cfg.Log.Warn("the dashboard is not available", "err", err)
		mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "The dashboard is not available: "+err.Error(), http.StatusServiceUnavailable)
		})
		return
	}
	for path, h := range assets {
		mux.Handle("GET "+path, h)
	}
}

// dashboardAssets maps URL paths to the page, its script and style, and the
// graphql-ws client that web/package-lock.json pins for GraphiQL too.
func dashboardAssets(webDir string) (map[string]http.Handler, error) {
	files := map[string]string{
		"/dashboard":               "dashboard/index.html",
		"/dashboard/dashboard.js":  "dashboard/dashboard.js",
		"/dashboard/dashboard.css": "dashboard/dashboard.css",
		"/dashboard/graphql-ws.js": "node_modules/graphql-ws/umd/graphql-ws.min.js",
	}
	handlers := make(map[string]http.Handler, len(files))
	for path, name := range files {
		file := filepath.Join(webDir, name)
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("dashboard asset %s is missing: run `npm ci --prefix %s` first (the README's commands do): %w", file, webDir, err)
		}
		handlers[path] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFile(w, r, file)
		})
	}
	return handlers, nil
}
