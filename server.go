// Command aisle is Aisle's one binary: the GraphQL API, the stream workers,
// the embedded Kafka-protocol broker, and the batch, simulation and
// evaluation commands. See README.md.
package main

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/merchandising"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/ratelimit"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/resolvers"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streamstatus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "aisle:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: aisle [command] [flags]

commands:
  serve       run the API and stream workers (default)
  migrate     apply database migrations
  keys create --role ROLE [--retailer ID] [--user ID] --name N
              create an API key; the key is printed alone on the last line
  keys revoke KEY_ID | --name N
              revoke a key, or every live key with a name; servers refuse
              it within --key-cache-ttl and close its websockets within 2×
  simulate    publish a synthetic marketplace's events to Kafka
  batch priors [--since D]
              fit availability found-rate priors from the last D of the
              inventory and picking topics (default 720h)
  batch copurchase [--since D] [--k N] [--min-support N]
              fit co-purchase neighbours and popularity from the order
              history of the last D (default 2160h)
  eval availability|recommendations|fraud|replacements [--seed N] [--json]
              evaluate a model on simulated data
  train fraud [--since D] [--activate]
              fit a fraud model version from the last D of the orders and
              labels topics (default 720h) and store it in PostgreSQL
  models list | models activate VERSION
              list fraud model versions; make one the serving version
  replay [--wipe] [--topics T,...]
              rebuild the Redis features from the event topics; --wipe first
              deletes the prefix's keys (stop the stream workers first)
  catalog import [--batch N] FILE...
              publish a marketplace's catalog (JSON Lines or CSV files) to
              aisle.catalog; prints what was published and every rejected
              line with its number and reason
  seed demo   publish the demo catalog to aisle.catalog (refused with
              AISLE_ENV=production)
  load [--url U] [--duration D] [--concurrency N] [--subscriptions N] [--json]
              run a bounded mixed workload against a running server and
              report latency, errors, memory per subscription and fan-out

Run "aisle COMMAND -h" for a command's flags.`

// run dispatches a command line; it is main without the process exit, so
// tests can run commands in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		command, args = args[0], args[1:]
	}
	switch command {
	case "serve":
		m := NewMain(stderr)
		if err := m.ParseFlags(args); err != nil {
			return err
		}
		return m.Run(ctx)
	case "migrate":
		return runMigrate(ctx, args, stderr)
	case "keys":
		return runKeys(ctx, args, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stderr)
	case "batch":
		return runBatch(ctx, args, stdout, stderr)
	case "eval":
		return runEval(args, stdout, stderr)
	case "train":
		return runTrain(ctx, args, stdout, stderr)
	case "models":
		return runModels(ctx, args, stdout, stderr)
	case "replay":
		return runReplay(ctx, args, stdout, stderr)
	case "catalog":
		return runCatalog(ctx, args, stdout, stderr)
	case "seed":
		return runSeed(ctx, args, stdout, stderr)
	case "load":
		return runLoad(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", command, usage)
}

// Config is everything serve needs, from flags that default to the
// environment (docs/design.md "Run modes").
type Config struct {
	HTTPAddr    string
	MetricsAddr string // operators' listener (/metrics, /healthz, /readyz); empty: none
	DatabaseURL string
	// DatabaseDirectURL reaches PostgreSQL itself when DatabaseURL is a
	// pooler in transaction mode, for what needs a session of its own
	// (LISTEN); empty means DatabaseURL.
	DatabaseDirectURL string
	RedisURL          string
	RedisCluster      bool // RedisURL names a Redis Cluster (go-redis's cluster URL form)
	RedisPrefix       string
	KafkaBrokers      []string // empty: run the embedded broker
	EmbeddedKafka     string   // listen address of the embedded broker
	DataDir           string   // embedded broker log directory
	Partitions        int32
	Role              string // all, api or stream
	Demo              bool
	DemoRate          float64
	WebDir            string
	LogLevel          slog.Level
	DrainTimeout      time.Duration
	ConsumerGroup     string
	// SessionTimeout is how soon a dead stream worker's partitions move to
	// the live ones (Kafka's session.timeout.ms).
	SessionTimeout time.Duration
	// StallThreshold is how long a stream partition may have records
	// without advancing before /readyz fails naming it.
	StallThreshold time.Duration
	FeatureTTL     time.Duration
	Availability   models.AvailabilityModel // status thresholds are configurable

	FraudThresholds models.FraudThresholds // APPROVE / REVIEW / BLOCK
	FraudModelPoll  time.Duration          // how often serving checks the active model version
	// RecommendRefresh is how often serving reloads the co-purchase fit.
	RecommendRefresh time.Duration

	Production          bool   // --env production: no GraphiQL, introspection or field suggestions
	Dashboard           bool   // --dashboard: serve /dashboard in production too
	RateLimit           int    // operations per second per API key (per IP for anonymous callers); 0 = off
	RateBurst           int    // operations a caller may send at once
	PersistedOperations string // allowlist file; empty = any operation
	// Websockets and keys (httpapi/websocket.go).
	AllowedOrigins                []string // nil: httpapi.DefaultAllowedOrigins
	MaxSubscriptionsPerConnection int
	MaxConnectionsPerKey          int
	MaxSubscriptionsPerKey        int
	WebsocketPingInterval         time.Duration
	WebsocketInitTimeout          time.Duration
	KeyCacheTTL                   time.Duration // also how often open websockets re-check their key
}

// commonFlags registers the connection flags every command shares.
func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", "postgres://postgres@localhost:5432/aisle?sslmode=disable"), "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&c.DatabaseDirectURL, "database-direct-url", env("DATABASE_DIRECT_URL", ""), "PostgreSQL URL bypassing a transaction pooler, for LISTEN (DATABASE_DIRECT_URL; default --database-url)")
	fs.StringVar(&c.RedisURL, "redis-url", env("REDIS_URL", "redis://localhost:6379/0"), "Redis URL (REDIS_URL)")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "the Redis URL names a Redis Cluster: redis://h1:7000?addr=h2:7001&addr=h3:7002 (AISLE_REDIS_CLUSTER)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", env("AISLE_REDIS_PREFIX", "aisle:"), "prefix of every Redis key (AISLE_REDIS_PREFIX)")
	fs.Func("kafka-brokers", "comma-separated Kafka brokers; empty runs the embedded broker (KAFKA_BROKERS)", func(s string) error {
		c.KafkaBrokers = splitList(s)
		return nil
	})
	c.KafkaBrokers = splitList(os.Getenv("KAFKA_BROKERS"))
	fs.StringVar(&c.EmbeddedKafka, "embedded-kafka-addr", env("AISLE_KAFKA_ADDR", "127.0.0.1:9092"), "listen address of the embedded broker (AISLE_KAFKA_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("AISLE_DATA_DIR", "./data"), "embedded broker log directory (AISLE_DATA_DIR)")
	c.Partitions = 6
	fs.Func("partitions", "partitions per topic when creating topics (AISLE_PARTITIONS, default 6)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("partitions must be an integer in 1..1000, got %q", s)
		}
		c.Partitions = int32(n)
		return nil
	})
	fs.Func("log-level", "debug, info, warn or error (AISLE_LOG_LEVEL)", func(s string) error {
		return c.LogLevel.UnmarshalText([]byte(s))
	})
}

// Main is the serve command: it owns every resource and goroutine of a running
// server and releases them in reverse order.
type Main struct {
	Config Config
	Log    *slog.Logger
	logOut io.Writer

	// Listening addresses, known once Run has started listening (tests use :0).
	HTTPListener    net.Listener
	MetricsListener net.Listener // nil without --metrics-addr
	KafkaBrokers    []string     // Config.KafkaBrokers, or the embedded broker's address
	started         chan struct{}

	persisted *httpapi.PersistedOperations // loaded by ParseFlags, so a bad file stops start-up at once
}

// NewMain returns a Main logging JSON to logOut.
func NewMain(logOut io.Writer) *Main {
	return &Main{logOut: logOut, started: make(chan struct{})}
}

// ParseFlags reads serve's flags and environment.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := &m.Config
	commonFlags(fs, c)
	fs.StringVar(&c.HTTPAddr, "http-addr", env("AISLE_HTTP_ADDR", ":8080"), "HTTP listen address (AISLE_HTTP_ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env("AISLE_METRICS_ADDR", ""),
		"listen address of /metrics, /healthz and /readyz for operators; when set, or in production, /metrics is not served on --http-addr (AISLE_METRICS_ADDR)")
	fs.StringVar(&c.Role, "role", env("AISLE_ROLE", "all"), "all, api (GraphQL only) or stream (workers only) (AISLE_ROLE)")
	fs.StringVar(&c.WebDir, "web-dir", env("AISLE_WEB_DIR", "web"), "directory of the GraphiQL page and its npm packages (AISLE_WEB_DIR)")
	fs.StringVar(&c.ConsumerGroup, "group", env("AISLE_CONSUMER_GROUP", "aisle-stream"), "Kafka consumer group of the stream workers")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 45*time.Second, // franz-go's and Kafka's default
		"how long the consumer group waits for a silent stream worker before moving its partitions to the others; "+
			"within the broker's group.min/max.session.timeout.ms (Kafka's default minimum is 6s) (AISLE_SESSION_TIMEOUT)")
	fs.DurationVar(&c.StallThreshold, "stall-threshold", streaming.DefaultStallThreshold,
		"how long a stream partition may have records to apply without advancing (a dependency down, a step failing) "+
			"before /readyz fails naming it and aisle_stream_partition_stalled says 1 (AISLE_STALL_THRESHOLD)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "how long SIGTERM waits for in-flight work")
	fs.DurationVar(&c.FeatureTTL, "feature-ttl", features.DefaultTTL, "how long an untouched store-product's features are kept in Redis")
	c.Availability = models.DefaultAvailabilityModel()
	fs.Float64Var(&c.Availability.InStockAbove, "in-stock-above", c.Availability.InStockAbove,
		"probability above which an item is IN_STOCK (AISLE_IN_STOCK_ABOVE)")
	fs.Float64Var(&c.Availability.LowStockAbove, "low-stock-above", c.Availability.LowStockAbove,
		"probability above which an item is LOW_STOCK, else OUT_OF_STOCK (AISLE_LOW_STOCK_ABOVE)")
	c.FraudThresholds = models.DefaultFraudThresholds()
	fs.Float64Var(&c.FraudThresholds.ReviewAt, "fraud-review-at", c.FraudThresholds.ReviewAt,
		"fraud score from which an order goes to REVIEW (AISLE_FRAUD_REVIEW_AT)")
	fs.Float64Var(&c.FraudThresholds.BlockAt, "fraud-block-at", c.FraudThresholds.BlockAt,
		"fraud score from which an order is BLOCKed (AISLE_FRAUD_BLOCK_AT)")
	fs.DurationVar(&c.FraudModelPoll, "fraud-model-poll", fraud.DefaultModelPollInterval,
		"how often serving checks which fraud model version is active")
	fs.DurationVar(&c.RecommendRefresh, "recommend-refresh", recommend.DefaultRefresh, "how often serving reloads the fit of aisle batch copurchase")
	c.AllowedOrigins = splitList(os.Getenv("AISLE_ALLOWED_ORIGINS"))
	fs.Func("allowed-origins", "comma-separated Origin patterns (path.Match, host or scheme://host) allowed to open websockets besides the server's own; default localhost (AISLE_ALLOWED_ORIGINS)", func(s string) error {
		c.AllowedOrigins = splitList(s)
		return nil
	})
	fs.IntVar(&c.MaxSubscriptionsPerConnection, "max-subscriptions-per-connection", httpapi.DefaultMaxSubscriptionsPerConnection,
		"operations open at once on one websocket (AISLE_MAX_SUBSCRIPTIONS_PER_CONNECTION)")
	fs.IntVar(&c.MaxConnectionsPerKey, "max-connections-per-key", httpapi.DefaultMaxConnectionsPerKey,
		"open websockets per API key, or per client IP when anonymous, on each replica (AISLE_MAX_CONNECTIONS_PER_KEY)")
	fs.IntVar(&c.MaxSubscriptionsPerKey, "max-subscriptions-per-key", httpapi.DefaultMaxSubscriptionsPerKey,
		"operations open at once per API key, or per client IP when anonymous, over all its websockets, on each replica (AISLE_MAX_SUBSCRIPTIONS_PER_KEY)")
	fs.DurationVar(&c.WebsocketPingInterval, "ws-ping-interval", httpapi.DefaultWebsocketPingInterval,
		"graphql-transport-ws ping period; a peer that stops answering is dropped within 3 periods (AISLE_WS_PING_INTERVAL)")
	fs.DurationVar(&c.WebsocketInitTimeout, "ws-init-timeout", httpapi.DefaultWebsocketInitTimeout,
		"time a websocket client has to send connection_init (AISLE_WS_INIT_TIMEOUT)")
	fs.DurationVar(&c.KeyCacheTTL, "key-cache-ttl", auth.DefaultTTL,
		"how long a valid API key is trusted without a database lookup; a revoked key is refused over HTTP within this, and its websockets are closed within twice this (AISLE_KEY_CACHE_TTL)")
	fs.BoolVar(&c.Demo, "demo", false, "also run the simulator (AISLE_DEMO=1)")
	fs.Float64Var(&c.DemoRate, "demo-rate", 50, "simulator events per second in demo mode")
	fs.Func("env", "development or production: production turns off GraphiQL, introspection and field suggestions (AISLE_ENV)", func(s string) error {
		return parseEnv(c, s)
	})
	fs.BoolVar(&c.Dashboard, "dashboard", os.Getenv("AISLE_DASHBOARD") == "true", "serve the live dashboard at /dashboard in production too; development always serves it (AISLE_DASHBOARD=true)")
	fs.IntVar(&c.RateLimit, "rate-limit", 0,
		"operations per second per API key, anonymous callers per client IP, shared by replicas through Redis; 0 = no limit (AISLE_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", 0,
		"operations a caller may send at once; 0 = twice --rate-limit (AISLE_RATE_BURST)")
	fs.StringVar(&c.PersistedOperations, "persisted-operations", env("AISLE_PERSISTED_OPERATIONS", ""),
		"JSON file of sha256 hex → GraphQL document; when set, only those documents run (AISLE_PERSISTED_OPERATIONS)")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		return fmt.Errorf("--rate-limit (%d) and --rate-burst (%d) must not be negative", c.RateLimit, c.RateBurst)
	}
	if c.RateBurst == 0 {
		c.RateBurst = 2 * c.RateLimit // absorbs a client's page load without letting it sustain more
	}
	if c.PersistedOperations != "" {
		var err error
		if m.persisted, err = httpapi.LoadPersistedOperations(c.PersistedOperations); err != nil {
			return fmt.Errorf("--persisted-operations: %w", err)
		}
	}
	switch c.Role {
	case "all", "api", "stream":
	default:
		return fmt.Errorf("--role must be all, api or stream, got %q", c.Role)
	}
	if c.SessionTimeout < time.Second {
		return fmt.Errorf("--session-timeout must be at least 1s, got %s", c.SessionTimeout)
	}
	if c.StallThreshold <= 0 {
		return fmt.Errorf("--stall-threshold must be positive, got %s", c.StallThreshold)
	}
	if c.RecommendRefresh <= 0 {
		return fmt.Errorf("--recommend-refresh must be positive, got %s", c.RecommendRefresh)
	}
	if a := c.Availability; !(0 < a.LowStockAbove && a.LowStockAbove < a.InStockAbove && a.InStockAbove < 1) {
		return fmt.Errorf("want 0 < --low-stock-above (%v) < --in-stock-above (%v) < 1", a.LowStockAbove, a.InStockAbove)
	}
	if err := c.FraudThresholds.Validate(); err != nil {
		return fmt.Errorf("--fraud-review-at, --fraud-block-at: %w", err)
	}
	if c.FraudModelPoll <= 0 {
		return fmt.Errorf("--fraud-model-poll must be positive, got %s", c.FraudModelPoll)
	}
	if err := httpapi.ValidateOriginPatterns(c.AllowedOrigins); err != nil {
		return fmt.Errorf("--allowed-origins: %w", err)
	}
	if c.MaxSubscriptionsPerConnection < 1 || c.MaxConnectionsPerKey < 1 || c.MaxSubscriptionsPerKey < 1 {
		return fmt.Errorf("--max-subscriptions-per-connection (%d), --max-connections-per-key (%d) and --max-subscriptions-per-key (%d) must be at least 1",
			c.MaxSubscriptionsPerConnection, c.MaxConnectionsPerKey, c.MaxSubscriptionsPerKey)
	}
	for name, d := range map[string]time.Duration{"ws-ping-interval": c.WebsocketPingInterval, "ws-init-timeout": c.WebsocketInitTimeout, "key-cache-ttl": c.KeyCacheTTL} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, got %s", name, d)
		}
	}
	// Lines logged with a request's context carry its request_id.
	m.Log = slog.New(httpapi.LogHandler(slog.NewJSONHandler(m.logOut, &slog.HandlerOptions{Level: c.LogLevel})))
	return nil
}

func (m *Main) runsAPI() bool    { return m.Config.Role != "stream" }
func (m *Main) runsStream() bool { return m.Config.Role != "api" }

// Run starts everything in dependency order, serves until ctx is done, then
// drains: stop taking work, finish in-flight writes, commit offsets, close
// subscriptions, and release resources in reverse order.
func (m *Main) Run(ctx context.Context) error {
	c, log := m.Config, m.Log
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	db, err := catalog.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, db.Close)
	// Demo data only where it belongs: a development server on an empty
	// catalog gets the demo catalog; production never gets anything.
	if !c.Production {
		if _, err := db.SeedDemo(ctx); err != nil {
			return fmt.Errorf("seed demo catalog: %w", err)
		}
	}

	model := c.Availability
	fs, err := features.Open(ctx, c.RedisURL, c.RedisPrefix, model, features.WithTTL(c.FeatureTTL), features.WithCluster(c.RedisCluster))
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = fs.Close() })

	brokers := c.KafkaBrokers
	if len(brokers) == 0 {
		broker, err := streaming.StartEmbeddedBroker(ctx, c.EmbeddedKafka, c.DataDir, c.Partitions, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, broker.Close)
		brokers = broker.Addrs()
		log.Info("embedded Kafka-protocol broker listening", "addr", strings.Join(brokers, ","), "data_dir", c.DataDir)
	}
	if err := streaming.EnsureTopics(ctx, brokers, c.Partitions); err != nil {
		return err
	}
	m.KafkaBrokers = brokers
	producer, err := streaming.NewProducer(brokers, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, producer.Close)

	// Long-lived work runs in one group; the first failure stops the rest.
	// Its context outlives ctx so that on SIGTERM the HTTP server stops
	// taking requests before the workers drain. drain stops and waits for the
	// group, bounded, before the cleanups close what the workers use, on
	// every return path.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	group, groupCtx := errgroup.WithContext(work)
	drain := sync.OnceValue(func() error {
		stopWork()
		return waitAtMost(group.Wait, c.DrainTimeout)
	})
	defer drain()
	goWork := func(name string, fn func(context.Context) error) {
		group.Go(func() error {
			if err := fn(groupCtx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}

	var consumer *streaming.Consumer // nil unless this process runs the stream workers
	if m.runsStream() {
		consumer, err = streaming.NewConsumer(streaming.ConsumerConfig{
			Brokers:        brokers,
			Group:          c.ConsumerGroup,
			SessionTimeout: c.SessionTimeout,
			StallThreshold: c.StallThreshold,
			Appliers:       streamAppliers(fs, db, log),
			Catalog:        db,
			DLQ:            producer,
			Log:            log,
		})
		if err != nil {
			return err
		}
		goWork("stream consumer", consumer.Run)
	}

	ready := readiness(db, fs, producer, consumer)
	var handler http.Handler
	if m.runsAPI() {
		goWork("catalog change feed", func(ctx context.Context) error {
			return db.FollowChanges(ctx, c.directDatabaseURL(), nil)
		})
		avail, err := availability.NewService(ctx, db, fs, producer, model, log)
		if err != nil {
			return err
		}
		goWork("availability priors", every(availability.PriorsRefreshInterval, "refresh availability priors", log, avail.RefreshPriors))
		hub := live.NewHub("availability", avail.Changed, log)
		goWork("availability hub", func(ctx context.Context) error { hub.Run(ctx); return nil })
		goWork("availability watch", func(ctx context.Context) error {
			return fs.WatchAvailability(ctx, func(sp aisle.StoreProduct) {
				hub.Notify(live.Key{Topic: sp.StoreID, Item: sp.ProductID})
			}, hub.NotifyWatched)
		})

		reco, err := recommend.NewService(ctx, db, fs, avail, producer, models.DefaultRecommendModel(), log)
		if err != nil {
			return err
		}
		goWork("recommendations refresh", every(c.RecommendRefresh, "refresh the co-purchase fit", log, reco.Refresh))
		recoHub := live.NewHub("recommendations", recommend.Changed, log)
		goWork("recommendations hub", func(ctx context.Context) error { recoHub.Run(ctx); return nil })
		goWork("sessions watch", func(ctx context.Context) error {
			return fs.WatchSessions(ctx, func(sessionID string) { recoHub.Notify(live.Key{Topic: sessionID}) })
		})

		fraudService, err := fraud.NewService(ctx, db, fs, producer, c.FraudThresholds, log)
		if err != nil {
			return err
		}
		goWork("fraud model reload", every(c.FraudModelPoll, "reload the fraud model", log, fraudService.ReloadModel))
		goWork("fraud alerts", fraudService.RunAlerts)

		merch, err := merchandising.NewService(db, producer)
		if err != nil {
			return err
		}
		resolver, err := resolvers.NewResolver(db, avail, hub, reco, recoHub, fraudService, merch)
		if err != nil {
			return err
		}
		resolver.Pipeline = streamstatus.NewReader(brokers, c.ConsumerGroup)
		var limiter httpapi.RateLimiter // nil interface when off, not a nil *Limiter
		if c.RateLimit > 0 {
			rdb, err := features.NewClient(c.RedisURL, c.RedisCluster)
			if err != nil {
				return fmt.Errorf("rate limits: %w", err)
			}
			shared, err := ratelimit.Open(ctx, rdb, c.RedisPrefix, c.RateLimit, c.RateBurst, log)
			if err != nil {
				return err
			}
			cleanups = append(cleanups, func() { _ = shared.Close() })
			limiter = shared
		}
		keys, err := auth.NewCache(httpapi.GuardKeyLookups(db, limiter), log)
		if err != nil {
			return err
		}
		keys.TTL = c.KeyCacheTTL
		apiConfig := httpapi.Config{
			Resolver:   resolver,
			Keys:       keys,
			WebDir:     c.WebDir,
			Ready:      ready,
			Log:        log,
			Production: c.Production,
			Dashboard:  c.Dashboard,
			// Production's metrics are for operators only: they are off
			// the public port, and served on --metrics-addr when set.
			MetricsElsewhere: c.Production || c.MetricsAddr != "",

			PersistedOperations: m.persisted,

			AllowedOrigins:                c.AllowedOrigins,
			MaxSubscriptionsPerConnection: c.MaxSubscriptionsPerConnection,
			MaxConnectionsPerKey:          c.MaxConnectionsPerKey,
			MaxSubscriptionsPerKey:        c.MaxSubscriptionsPerKey,
			WebsocketPingInterval:         c.WebsocketPingInterval,
			WebsocketInitTimeout:          c.WebsocketInitTimeout,
			KeyRecheckInterval:            c.KeyCacheTTL,
			RateLimiter:                   limiter,
		}
		handler = httpapi.New(apiConfig)
	} else {
		// A stream worker serves its probes and metrics only.
		handler = httpapi.Ops(ready, log)
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.HTTPAddr, err)
	}
	m.HTTPListener = ln
	if c.MetricsAddr != "" {
		if m.MetricsListener, err = net.Listen("tcp", c.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on --metrics-addr %s: %w", c.MetricsAddr, err)
		}
	}
	httpServer := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Websocket connections live in the group so that draining closes them.
		BaseContext: func(net.Listener) context.Context { return groupCtx },
	}
	goWork("http server", func(context.Context) error {
		if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	opsServer := &http.Server{Handler: httpapi.Ops(ready, log), ReadHeaderTimeout: 5 * time.Second}
	if opsLn := m.MetricsListener; opsLn != nil {
		goWork("ops server", func(context.Context) error {
			if err := opsServer.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		log.Info("serving /metrics, /healthz and /readyz", "addr", opsLn.Addr().String())
	}
	if m.runsAPI() {
		log.Info("serving GraphQL", "addr", ln.Addr().String(), "graphiql", "http://"+displayAddr(ln.Addr())+"/")
	} else {
		log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	}

	if c.Demo {
		goWork("simulator", func(ctx context.Context) error {
			return runSimulator(ctx, db, producer, c.DemoRate, 1, demoProductsPerStore, log)
		})
	}
	close(m.started)

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight work")
	case <-groupCtx.Done():
		log.Error("shutting down after a failure")
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.DrainTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := opsServer.Shutdown(shutdownCtx); err != nil {
		log.Warn("ops http shutdown", "err", err)
	}
	if err := drain(); err != nil {
		return err
	}
	log.Info("drained cleanly")
	return nil
}

// waitAtMost returns what wait returns, or an error once d has passed.
func waitAtMost(wait func() error, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("drain timed out after %s", d)
	}
}

// Started is closed once Run is serving; tests wait on it before dialling.
func (m *Main) Started() <-chan struct{} { return m.started }

// readiness reports whether this process can give correct answers now:
// PostgreSQL (catalog, keys, the stream's entity checks), Redis (features)
// and Kafka (mutations, dead letters) answer, and, when it runs the stream
// workers (consumer not nil), the consumer is a member of its group and none
// of its partitions has stalled (each stalled one is named: "stream
// stalled: topic/partition"). The
// checks run at once, so one hanging dependency does not hide the others,
// and every failure is named.
func readiness(db *catalog.DB, fs *features.Store, producer *streaming.Producer, consumer *streaming.Consumer) func(context.Context) error {
	type check struct {
		name string
		run  func(context.Context) error
	}
	checks := []check{{"postgres", db.Ping}, {"redis", fs.Ping}, {"kafka", producer.Ping}}
	if consumer != nil {
		checks = append(checks, check{"stream", func(context.Context) error { return consumer.Ready() }})
	}
	return func(ctx context.Context) error {
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				if err := c.run(ctx); err != nil {
					name := c.name
					var stalled *streaming.StalledError
					if errors.As(err, &stalled) {
						name = "stream stalled: " + strings.Join(stalled.Partitions, " ")
					}
					errs[i] = &httpapi.CheckFailed{Name: name, Err: err}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return "localhost:" + port
	}
	return net.JoinHostPort(host, port)
}

// directDatabaseURL is where sessions of their own connect.
func (c *Config) directDatabaseURL() string {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL
	}
	return c.DatabaseURL
}

// parseEnv sets Production from --env / AISLE_ENV.
func parseEnv(c *Config, s string) error {
	switch s {
	case "development", "":
		c.Production = false
	case "production":
		c.Production = true
	default:
		return fmt.Errorf("--env (AISLE_ENV) must be development or production, got %q", s)
	}
	return nil
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// every returns long-lived work that calls refresh every interval until ctx
// is done. A failed refresh keeps what was loaded before and is logged.
func every(interval time.Duration, what string, log *slog.Logger, refresh func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
				if err := refresh(ctx); err != nil && ctx.Err() == nil {
					log.Warn(what+"; keeping what was loaded", "err", err)
				}
			}
		}
	}
}
