package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/streaming"
)

// Config is everything serve needs, from its flags and their environment
// variables (docs/design.md "Run modes").
type Config struct {
	HTTPAddr    string
	MetricsAddr string // operators' listener (/metrics, /healthz, /readyz); empty: none
	DatabaseURL string
	// DatabaseDirectURL reaches PostgreSQL itself when DatabaseURL is a
	// pooler in transaction mode, for what needs a session of its own
	// (creating and migrating the database, LISTEN); empty means DatabaseURL.
	DatabaseDirectURL string
	RedisURL          string
	RedisCluster      bool // RedisURL names a Redis Cluster (go-redis's cluster URL form)
	RedisPrefix       string
	KafkaBrokers      []string // empty: run the embedded broker
	EmbeddedKafka     string   // listen address of the embedded broker
	DataDir           string   // embedded broker log directory
	Partitions        int32
	ReplicationFactor int16  // replicas per partition when creating topics; 0: the broker's default
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
	fs.StringVar(&c.DatabaseURL, "database-url", "postgres://postgres@localhost:5432/aisle?sslmode=disable", "PostgreSQL URL")
	fs.StringVar(&c.DatabaseDirectURL, "database-direct-url", "", "PostgreSQL URL bypassing a transaction pooler, for creating and migrating the database and LISTEN (default --database-url)")
	fs.StringVar(&c.RedisURL, "redis-url", "redis://localhost:6379/0", "Redis URL")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "the Redis URL names a Redis Cluster: redis://h1:7000?addr=h2:7001&addr=h3:7002")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "aisle:", "prefix of every Redis key")
	fs.Func("kafka-brokers", "comma-separated Kafka `BROKERS` (host:port); empty runs the embedded broker", func(s string) error {
		c.KafkaBrokers = splitList(s)
		return nil
	})
	fs.StringVar(&c.EmbeddedKafka, "embedded-kafka-addr", "127.0.0.1:9092", "listen address of the embedded broker")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "embedded broker log directory")
	c.Partitions = 6
	fs.Func("partitions", "`N` partitions per topic when creating topics (default 6)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("partitions must be an integer in 1..1000, got %q", s)
		}
		c.Partitions = int32(n)
		return nil
	})
	fs.Func("replication-factor", "`N` replicas per partition when creating topics, at most the brokers of the cluster; 3 on a real cluster (default the broker's default.replication.factor)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 16)
		if err != nil || n < 1 {
			return fmt.Errorf("replication factor must be an integer of at least 1, got %q", s)
		}
		c.ReplicationFactor = int16(n)
		return nil
	})
	fs.Func("log-level", "`LEVEL` of the log: debug, info, warn or error (default info)", func(s string) error {
		return c.LogLevel.UnmarshalText([]byte(s))
	})
}

// serveFlags registers serve's flags beside the common ones.
func serveFlags(fs *flag.FlagSet, c *Config) {
	commonFlags(fs, c)
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "",
		"listen address of /metrics, /healthz and /readyz for operators; when set, or in production, /metrics is not served on --http-addr")
	fs.StringVar(&c.Role, "role", "all", "all, api (GraphQL only) or stream (workers only)")
	fs.StringVar(&c.WebDir, "web-dir", "web", "directory of the GraphiQL page and its npm packages")
	fs.StringVar(&c.ConsumerGroup, "group", streaming.DefaultGroup, "Kafka consumer group of the stream workers")
	durationVar(fs, &c.SessionTimeout, "session-timeout", 45*time.Second, // franz-go's and Kafka's default
		"how long the consumer group waits for a silent stream worker before moving its partitions to the others; "+
			"within the broker's group.min/max.session.timeout.ms (Kafka's default minimum is 6s)")
	durationVar(fs, &c.StallThreshold, "stall-threshold", streaming.DefaultStallThreshold,
		"how long a stream partition may have records to apply without advancing (a dependency down, a step failing) "+
			"before /readyz fails naming it and aisle_stream_partition_stalled says 1")
	durationVar(fs, &c.DrainTimeout, "drain-timeout", 20*time.Second, "how long SIGTERM waits for in-flight work")
	durationVar(fs, &c.FeatureTTL, "feature-ttl", features.DefaultTTL, "how long an untouched store-product's features are kept in Redis")
	c.Availability = models.DefaultAvailabilityModel()
	fs.Float64Var(&c.Availability.InStockAbove, "in-stock-above", c.Availability.InStockAbove,
		"probability above which an item is IN_STOCK")
	fs.Float64Var(&c.Availability.LowStockAbove, "low-stock-above", c.Availability.LowStockAbove,
		"probability above which an item is LOW_STOCK, else OUT_OF_STOCK")
	c.FraudThresholds = models.DefaultFraudThresholds()
	fs.Float64Var(&c.FraudThresholds.ReviewAt, "fraud-review-at", c.FraudThresholds.ReviewAt,
		"fraud score from which an order goes to REVIEW")
	fs.Float64Var(&c.FraudThresholds.BlockAt, "fraud-block-at", c.FraudThresholds.BlockAt,
		"fraud score from which an order is BLOCKed")
	durationVar(fs, &c.FraudModelPoll, "fraud-model-poll", fraud.DefaultModelPollInterval,
		"how often serving checks which fraud model version is active")
	durationVar(fs, &c.RecommendRefresh, "recommend-refresh", recommend.DefaultRefresh, "how often serving reloads the fit of aisle batch copurchase")
	fs.Func("allowed-origins", "comma-separated Origin `PATTERNS` (path.Match, host or scheme://host) allowed to open websockets besides the server's own; default localhost", func(s string) error {
		c.AllowedOrigins = splitList(s)
		return nil
	})
	fs.IntVar(&c.MaxSubscriptionsPerConnection, "max-subscriptions-per-connection", httpapi.DefaultMaxSubscriptionsPerConnection,
		"operations open at once on one websocket")
	fs.IntVar(&c.MaxConnectionsPerKey, "max-connections-per-key", httpapi.DefaultMaxConnectionsPerKey,
		"open websockets per API key, or per client IP when anonymous, on each replica")
	fs.IntVar(&c.MaxSubscriptionsPerKey, "max-subscriptions-per-key", httpapi.DefaultMaxSubscriptionsPerKey,
		"operations open at once per API key, or per client IP when anonymous, over all its websockets, on each replica")
	durationVar(fs, &c.WebsocketPingInterval, "ws-ping-interval", httpapi.DefaultWebsocketPingInterval,
		"graphql-transport-ws ping period; a peer that stops answering is dropped within 3 periods")
	durationVar(fs, &c.WebsocketInitTimeout, "ws-init-timeout", httpapi.DefaultWebsocketInitTimeout,
		"time a websocket client has to send connection_init")
	durationVar(fs, &c.KeyCacheTTL, "key-cache-ttl", auth.DefaultTTL,
		"how long a valid API key is trusted without a database lookup; a revoked key is refused over HTTP within this, and its websockets are closed within twice this")
	fs.BoolVar(&c.Demo, "demo", false, "also run the simulator")
	fs.Float64Var(&c.DemoRate, "demo-rate", 50, "simulator events per second in demo mode")
	fs.Func("env", "`development|production`: production turns off GraphiQL, introspection and field suggestions", func(s string) error {
		return parseEnv(c, s)
	})
	fs.BoolVar(&c.Dashboard, "dashboard", false, "serve the live dashboard at /dashboard in production too; development always serves it")
	fs.IntVar(&c.RateLimit, "rate-limit", 0,
		"operations per second per API key, anonymous callers per client IP, shared by replicas through Redis; 0 = no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", 0,
		"operations a caller may send at once; 0 = twice --rate-limit")
	fs.StringVar(&c.PersistedOperations, "persisted-operations", "",
		"JSON file of sha256 hex → GraphQL document; when set, only those documents run")
}

// ParseFlags reads serve's flags and their environment variables, and
// checks them.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(m.logOut)
	c := &m.Config
	serveFlags(fs, c)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
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
	m.Log = newLogger(m.logOut, c.LogLevel)
	return nil
}

// newLogger returns the JSON logger of a command, which go-redis logs
// through too. Lines logged with a request's context carry its request_id.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	log := slog.New(httpapi.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
	features.LogRedisThrough(log)
	return log
}

// validate checks serve's settings against each other.
func (c *Config) validate() error {
	if c.RateLimit < 0 || c.RateBurst < 0 {
		return fmt.Errorf("--rate-limit (%d) and --rate-burst (%d) must not be negative", c.RateLimit, c.RateBurst)
	}
	switch c.Role {
	case "all", "api", "stream":
	default:
		return fmt.Errorf("--role must be all, api or stream, got %q", c.Role)
	}
	if c.SessionTimeout < time.Second {
		return fmt.Errorf("--session-timeout must be at least 1s, got %s", c.SessionTimeout)
	}
	if a := c.Availability; !(0 < a.LowStockAbove && a.LowStockAbove < a.InStockAbove && a.InStockAbove < 1) {
		return fmt.Errorf("want 0 < --low-stock-above (%v) < --in-stock-above (%v) < 1", a.LowStockAbove, a.InStockAbove)
	}
	if err := c.FraudThresholds.Validate(); err != nil {
		return fmt.Errorf("--fraud-review-at, --fraud-block-at: %w", err)
	}
	if err := httpapi.ValidateOriginPatterns(c.AllowedOrigins); err != nil {
		return fmt.Errorf("--allowed-origins: %w", err)
	}
	if c.MaxSubscriptionsPerConnection < 1 || c.MaxConnectionsPerKey < 1 || c.MaxSubscriptionsPerKey < 1 {
		return fmt.Errorf("--max-subscriptions-per-connection (%d), --max-connections-per-key (%d) and --max-subscriptions-per-key (%d) must be at least 1",
			c.MaxSubscriptionsPerConnection, c.MaxConnectionsPerKey, c.MaxSubscriptionsPerKey)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"stall-threshold", c.StallThreshold},
		{"recommend-refresh", c.RecommendRefresh},
		{"fraud-model-poll", c.FraudModelPoll},
		{"ws-ping-interval", c.WebsocketPingInterval},
		{"ws-init-timeout", c.WebsocketInitTimeout},
		{"key-cache-ttl", c.KeyCacheTTL},
	} {
		if d.value <= 0 {
			return fmt.Errorf("--%s must be positive, got %s", d.name, d.value)
		}
	}
	return nil
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

// Every flag of serve, and so every connection flag the commands share, has
// one environment variable: AISLE_ and the flag's name in upper case with
// underscores (--drain-timeout: AISLE_DRAIN_TIMEOUT), except the
// conventional names of the connection URLs below. It is read one way, by
// parseCommand: a set variable is applied as if given first on the command
// line, so the flag overrides it and a malformed value is reported like a
// malformed flag. An empty variable counts as unset. A command's flags of
// its own (--since, --seed) describe one run and have none.
var conventionalEnv = map[string]string{
	"database-url":        "DATABASE_URL",
	"database-direct-url": "DATABASE_DIRECT_URL",
	"redis-url":           "REDIS_URL",
	"kafka-brokers":       "KAFKA_BROKERS",
	"group":               "AISLE_CONSUMER_GROUP",
	"embedded-kafka-addr": "AISLE_KAFKA_ADDR",
}

// flagEnv maps each of serve's flags to its environment variable.
var flagEnv = func() map[string]string {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &Config{})
	names := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		name, ok := conventionalEnv[f.Name]
		if !ok {
			name = "AISLE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		}
		names[f.Name] = name
	})
	return names
}()

// applyEnv sets fs's flags from their environment variables and names the
// variable in each flag's help.
func applyEnv(fs *flag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name, ok := flagEnv[f.Name]
		if !ok {
			return
		}
		f.Usage += " (" + name + ")"
		if v := os.Getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
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

// durationValue is the flag type of every duration flag: Go's durations
// (90s, 15m, 12h) and whole days before them (60d, 1d12h), since histories
// and windows are counted in days.
type durationValue struct{ d *time.Duration }

// durationVar registers a duration flag at p with default value.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationValue{p}, name, usage+" (a `DURATION` such as 90s, 12h or 60d)")
}

// durationFlag is durationVar returning the flag's address.
func durationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	durationVar(fs, p, name, value, usage)
	return p
}

func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v durationValue) String() string {
	if v.d == nil { // the zero value, which the flag package compares defaults with
		return formatDuration(0)
	}
	return formatDuration(*v.d)
}

// parseDuration reads a Go duration, optionally led by whole days: "60d",
// "1d12h", "90m".
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q: want e.g. 90s, 15m, 12h, 60d or 1d12h", s)
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	n, err := strconv.ParseUint(days, 10, 32)
	if err != nil || n > 100*365 {
		return 0, bad
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, bad
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		d += r
	}
	return d, nil
}

// formatDuration writes d the way parseDuration reads it, whole days first.
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d < day {
		return d.String()
	}
	s := strconv.FormatInt(int64(d/day), 10) + "d"
	if rest := d % day; rest != 0 {
		s += rest.String()
	}
	return s
}
