package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/streaming"
)

// dependencies are the stores every part of the server uses: PostgreSQL
// (catalog, keys, models), Redis (features) and Kafka (the embedded broker
// unless --kafka-brokers names a cluster).
type dependencies struct {
	db       *postgres.DB
	features *features.Store
	producer *streaming.Producer
	brokers  []string
}

// openDependencies connects to PostgreSQL, Redis and Kafka (starting the
// embedded broker when no brokers are named) and creates the topics; res
// closes them.
func (m *Main) openDependencies(ctx context.Context, res *resources) (*dependencies, error) {
	c, log := &m.Config, m.Log
	db, err := postgres.OpenPooled(ctx, c.DatabaseURL, c.directDatabaseURL(), log)
	if err != nil {
		return nil, err
	}
	res.add(db.Close)
	// Demo data only where it belongs: a development server on an empty
	// catalog gets the demo catalog; production never gets anything.
	if !c.Production {
		if _, err := db.SeedDemo(ctx); err != nil {
			return nil, fmt.Errorf("seed demo catalog: %w", err)
		}
	}

	fs, err := features.Open(ctx, c.RedisURL, c.RedisPrefix, c.Availability, features.WithTTL(c.FeatureTTL), features.WithCluster(c.RedisCluster))
	if err != nil {
		return nil, err
	}
	res.add(func() { _ = fs.Close() })

	brokers := c.KafkaBrokers
	if len(brokers) == 0 {
		broker, err := streaming.StartEmbeddedBroker(ctx, c.EmbeddedKafka, c.DataDir, c.Partitions, log)
		if err != nil {
			return nil, err
		}
		res.add(broker.Close)
		brokers = broker.Addrs()
		log.Info("embedded Kafka-protocol broker listening", "addr", strings.Join(brokers, ","), "data_dir", c.DataDir)
	}
	if err := streaming.EnsureTopics(ctx, brokers, c.Partitions, c.ReplicationFactor); err != nil {
		return nil, err
	}
	m.KafkaBrokers = brokers
	producer, err := streaming.NewProducer(brokers, log)
	if err != nil {
		return nil, err
	}
	res.add(producer.Close)
	return &dependencies{db: db, features: fs, producer: producer, brokers: brokers}, nil
}

// readiness reports whether this process can give correct answers now:
// PostgreSQL (catalog, keys, the stream's entity checks), Redis (features)
// and Kafka (mutations, dead letters) answer, and, when it runs the stream
// workers (consumer not nil), the consumer is a member of its group and none
// of its partitions has stalled (each stalled one is named: "stream
// stalled: topic/partition"). The checks run at once, so one hanging
// dependency does not hide the others, and every failure is named.
func readiness(db *postgres.DB, fs *features.Store, producer *streaming.Producer, consumer *streaming.Consumer) func(context.Context) error {
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
