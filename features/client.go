package features

import (
	"fmt"
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
