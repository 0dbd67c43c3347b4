package features

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterStateReloadInterval bounds how long a cluster client keeps
// sending a dead master's slots to it after its replica took over: go-redis
// learns of a failover only from a MOVED reply, which a dead master never
// sends, or when its view of the slots is this old (60 s by default, a
// minute of stalled stream workers). A reload is one CLUSTER SLOTS, made
// only while the client is in use.
const clusterStateReloadInterval = time.Second

// NewClient returns a client of the Redis at url: one server
// (redis://host:port/db), or with cluster a Redis Cluster in go-redis's
// cluster URL form (redis://h1:7000?addr=h2:7001&addr=h3:7002), whose nodes
// the client discovers from the ones named. Every part of Aisle that talks
// to Redis gets its client here, so that one flag moves all of them to a
// cluster. It does not connect; the first command does.
func NewClient(url string, cluster bool) (redis.UniversalClient, error) {
	if cluster {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("parse Redis Cluster URL: %w", err)
		}
		opts.ClusterStateReloadInterval = clusterStateReloadInterval
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	return redis.NewClient(opts), nil
}

// LogRedisThrough makes go-redis, whose own logger prints plain lines to
// stderr (pool and cluster errors, retries), log through log instead, so
// that a process's log stays one JSON object a line. go-redis has one
// logger per process: the last call wins.
func LogRedisThrough(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
}

// redisLogger is go-redis's internal.Logging over slog: its lines are
// warnings, since go-redis logs what it retries or recovers from.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// unreachableHint says what to do about an unreachable Redis at the
// configured address: on this machine, the command that starts it there
// (one server, or the repository's local cluster); otherwise, to check the
// URL.
func unreachableHint(rdb redis.UniversalClient) string {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		addrs := c.Options().Addrs
		if len(addrs) == 0 || !onThisMachine(addrs[0]) {
			return "check --redis-url (REDIS_URL) and that the cluster's nodes are up"
		}
		_, port, _ := net.SplitHostPort(addrs[0])
		return "check --redis-url (REDIS_URL), or start a local cluster of 3 masters and 3 replicas from port " + port +
			" with: scripts/redis-cluster.sh start " + port
	}
	c, ok := rdb.(*redis.Client)
	if !ok || !onThisMachine(c.Options().Addr) {
		return "check --redis-url (REDIS_URL) and that the server is up"
	}
	_, port, _ := net.SplitHostPort(c.Options().Addr)
	return "check --redis-url (REDIS_URL), or start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port " + port +
		` --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`
}

// onThisMachine reports whether addr (host:port) is a loopback address.
func onThisMachine(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && (host == "localhost" || net.ParseIP(host).IsLoopback())
}
