package features

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

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
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	return redis.NewClient(opts), nil
}
