// Package httpapi assembles Aisle's HTTP surface: GraphQL over HTTP and
// websockets, GraphiQL served from self-hosted assets, health and metrics.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/resolvers"
)

// Limits that keep one client from taking the server down. Each is enforced by
// gqlgen, net/http or limits*.go (which also has the limits on an
// operation's shape) and answered with a clear error.
const (
	maxRequestBytes   = 1 << 20          // HTTP request body
	maxWebsocketBytes = 64 << 10         // one websocket message
	queryCacheSize    = 1000             // parsed documents kept
	wsKeepAlive       = 10 * time.Second // graphql-ws keep-alive
	operationTimeout  = 15 * time.Second // one query or mutation over HTTP
	bodyReadTimeout   = 10 * time.Second // a request body, from the end of its headers
	// responseWriteTimeout is the time a client has to read its answer
	// once the operation is done (the write deadline also covers reading
	// the body and running the operation).
	responseWriteTimeout = 10 * time.Second
)

// Config is what the HTTP surface needs.
type Config struct {
	Resolver *resolvers.Resolver
	Keys     auth.KeyLookup
	WebDir   string                          // holds index.html, aisle-graphiql.js and node_modules/
	Ready    func(ctx context.Context) error // nil error when the server can take traffic
	Log      *slog.Logger

	// Production turns off GraphiQL, introspection and field suggestions,
	// which help developers and attackers alike (AISLE_ENV=production).
	Production bool
	Dashboard  bool // serves /dashboard in production too (dashboard.go)
	// MetricsElsewhere leaves /metrics off the API's handler: it names
	// every operation, limit and dependency, and belongs on an operators'
	// listener (Ops on --metrics-addr), not on the public port.
	MetricsElsewhere bool
	// RateLimiter, when set, limits operations per caller (limits_http.go).
	RateLimiter RateLimiter
	// PersistedOperations, when set, is the only operations the server runs.
	PersistedOperations *PersistedOperations
	// Websockets (websocket.go); zero values take the defaults there.
	AllowedOrigins                []string      // Origin patterns besides same-origin; nil: DefaultAllowedOrigins
	MaxSubscriptionsPerConnection int           // operations open at once on one websocket
	MaxConnectionsPerKey          int           // open websockets per API key, or per client IP when anonymous; per replica
	MaxSubscriptionsPerKey        int           // operations open at once per API key (client IP when anonymous) over all its websockets; per replica
	WebsocketPingInterval         time.Duration // graphql-transport-ws ping period; silent peers are dropped after 2–3
	WebsocketInitTimeout          time.Duration // time a client has to send connection_init
	KeyRecheckInterval            time.Duration // how often an open websocket's key is re-checked for revocation
}

// New returns the HTTP handler of the API.
func New(cfg Config) http.Handler { return newHandler(cfg, getQueries{}, postQueries{}) }

// newHandler is New with the GET and POST transports given: the tests
// compare answers through ours (transport.go) and through gqlgen's.
func newHandler(cfg Config, get, post graphql.Transport) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/graphql", withClientIP(auth.Middleware(cfg.Keys, limitRequests(cfg.RateLimiter, maxRequestBytes, bodyReadTimeout, bodyReadTimeout+operationTimeout+responseWriteTimeout, withOperationTimeout(graphqlHandler(cfg, get, post))))))
	if cfg.Production {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "GraphiQL is off in production (AISLE_ENV=production).\nGraphQL is served at /graphql.", http.StatusNotFound)
		})
	} else if assets, err := graphiqlAssets(cfg.WebDir); err != nil {
		// The API works without its explorer (say, in a slim production
		// image); the page says what is missing.
		cfg.Log.Warn("GraphiQL is not available", "err", err)
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "GraphiQL is not available: "+err.Error()+"\nGraphQL is served at /graphql.", http.StatusServiceUnavailable)
		})
	} else {
		for path, h := range assets {
			mux.Handle("GET "+pathPattern(path), h)
		}
	}
	handleDashboard(mux, cfg)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // browsers ask; an empty answer keeps consoles clean
	})
	handleOps(mux, cfg.Ready, cfg.Log, !cfg.MetricsElsewhere)
	return withRequestID(mux)
}

func graphqlHandler(cfg Config, get, post graphql.Transport) http.Handler {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: cfg.Resolver})
	srv := handler.New(schema)
	authenticate := auth.WebsocketInit(cfg.Keys)
	// websocket.go is the websocket transport, with the protocol's close
	// codes, origins, caps and key revocation.
	srv.AddTransport(newWebsockets(cfg).transport(func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		return authenticate(context.WithValue(ctx, websocketKey{}, true), payload)
	}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(get)
	srv.AddTransport(post)
	srv.AddTransport(unsupportedRequests{}) // last: takes what the others do not
	cache := lru.New[*ast.QueryDocument](queryCacheSize)
	srv.SetQueryCache(cache)
	if !cfg.Production {
		srv.Use(extension.Introspection{})
	}
	if cfg.Production {
		srv.SetDisableSuggestion(true)
		srv.SetValidationRulesFn(rulesWithoutSuggestions)
	}
	srv.SetParserTokenLimit(maxParserTokens)
	if cfg.PersistedOperations != nil {
		srv.Use(cfg.PersistedOperations) // supplies the document of a hash before gqlgen parses it
	}
	// The first extension used is the outermost: metrics see the errors
	// as the limits rewrite them, and those answered in AroundOperations.
	srv.Use(newOperationMetrics())
	srv.Use(operationLimits{maxDepth: maxDepth, maxAliases: maxAliases, maxComplexity: maxComplexity, production: cfg.Production, cache: cache})
	srv.Use(clearAnswers{production: cfg.Production})
	srv.Use(newObjectLists(schema.Schema(), cfg.Resolver)) // the innermost field middleware: it writes what resolvers returned
	srv.SetErrorPresenter(resolvers.ErrorPresenter(cfg.Log))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		cfg.Log.ErrorContext(ctx, "graphql: panic in resolver", "panic", p, "stack", string(debug.Stack()))
		return fmt.Errorf("panic in resolver: %v", p)
	})
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription && ctx.Value(websocketKey{}) == nil {
			// Over plain HTTP a subscription would hold the request open
			// until its first event; say where subscriptions live instead.
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
				Message:    "subscriptions are served over a websocket: connect to /graphql with graphql-transport-ws",
				Extensions: map[string]any{"code": aisle.EINVALID},
			}}})
		}
		return next(cfg.Resolver.WithLoaders(ctx))
	})
	return srv
}

// websocketKey marks the context of operations that arrive over a websocket.
type websocketKey struct{}

// withOperationTimeout bounds each plain HTTP request, so a stuck dependency
// cannot hold a client and a server goroutine forever. Websocket upgrades are
// long-lived by design and keep their context.
func withOperationTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), operationTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// pathPattern makes "/" match only itself, not every path below it.
func pathPattern(path string) string {
	if path == "/" {
		return "/{$}"
	}
	return path
}

// graphiqlAssets maps URL paths to the GraphiQL page and the pinned npm
// packages it loads, so GraphiQL works with no network beyond this server.
func graphiqlAssets(webDir string) (map[string]http.Handler, error) {
	files := map[string]string{
		"/":                         "index.html",
		"/assets/aisle-graphiql.js": "aisle-graphiql.js",
		"/assets/react.js":          "node_modules/react/umd/react.production.min.js",
		"/assets/react-dom.js":      "node_modules/react-dom/umd/react-dom.production.min.js",
		"/assets/graphql-ws.js":     "node_modules/graphql-ws/umd/graphql-ws.min.js",
		"/assets/graphiql.js":       "node_modules/graphiql/dist/index.umd.js",
		"/assets/graphiql.css":      "node_modules/graphiql/dist/style.css",
	}
	handlers := make(map[string]http.Handler, len(files))
	for path, name := range files {
		file := filepath.Join(webDir, name)
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("GraphiQL asset %s is missing: run `npm ci --prefix %s` first (the README's commands do): %w", file, webDir, err)
		}
		handlers[path] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFile(w, r, file)
		})
	}
	return handlers, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do then
}
