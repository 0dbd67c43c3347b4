package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/merchandising"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/ratelimit"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/resolvers"
	"github.com/aisle/aisle/streamstatus"
)

// startAPI starts the GraphQL API's domains (each with the goroutines that
// keep it current) and returns its HTTP handler.
func (m *Main) startAPI(ctx context.Context, deps *dependencies, w *workers, ready func(context.Context) error, res *resources) (http.Handler, error) {
	c := &m.Config
	w.Go("catalog change feed", func(ctx context.Context) error {
		return deps.db.FollowChanges(ctx, c.directDatabaseURL(), nil)
	})
	avail, availHub, err := m.startAvailability(ctx, deps, w)
	if err != nil {
		return nil, err
	}
	reco, recoHub, err := m.startRecommendations(ctx, deps, w, avail)
	if err != nil {
		return nil, err
	}
	fraudService, err := m.startFraud(ctx, deps, w)
	if err != nil {
		return nil, err
	}
	if c.Demo {
		// Demo mode drives the API's own services (fraud assessments), so it
		// runs where they do.
		w.Go("demo", newDemo(c.DemoRate, deps.db, deps.producer, fraudService, reco, m.Log).run)
	}
	merch, err := merchandising.NewService(deps.db, deps.producer)
	if err != nil {
		return nil, err
	}
	resolver, err := resolvers.NewResolver(deps.db, avail, availHub, reco, recoHub, fraudService, merch)
	if err != nil {
		return nil, err
	}
	resolver.Pipeline = streamstatus.NewReader(deps.brokers, c.ConsumerGroup)
	limiter, err := m.rateLimiter(ctx, res)
	if err != nil {
		return nil, err
	}
	keys, err := auth.NewCache(httpapi.GuardKeyLookups(deps.db, limiter), m.Log)
	if err != nil {
		return nil, err
	}
	keys.TTL = c.KeyCacheTTL
	return httpapi.New(httpapi.Config{
		Resolver:   resolver,
		Keys:       keys,
		WebDir:     c.WebDir,
		Ready:      ready,
		Log:        m.Log,
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
	}), nil
}

// startAvailability starts the availability service, the refresh of its
// priors and the hub that tells subscribers of changes Redis reports.
func (m *Main) startAvailability(ctx context.Context, deps *dependencies, w *workers) (*availability.Service, *live.Hub[availability.Item], error) {
	avail, err := availability.NewService(ctx, deps.db, deps.features, deps.producer, m.Config.Availability, m.Log)
	if err != nil {
		return nil, nil, err
	}
	w.Go("availability priors", every(availability.PriorsRefreshInterval, "refresh availability priors", m.Log, avail.RefreshPriors))
	hub := live.NewHub("availability", avail.Changed, m.Log)
	w.Go("availability hub", func(ctx context.Context) error { hub.Run(ctx); return nil })
	w.Go("availability watch", func(ctx context.Context) error {
		return deps.features.WatchAvailability(ctx, func(sp aisle.StoreProduct) {
			hub.Notify(live.Key{Topic: sp.StoreID, Item: sp.ProductID})
		}, hub.NotifyWatched)
	})
	return avail, hub, nil
}

// startRecommendations starts the recommendation service, the reload of
// the co-purchase fit and the hub that tells subscribers of their
// sessions' changes.
func (m *Main) startRecommendations(ctx context.Context, deps *dependencies, w *workers, avail *availability.Service) (*recommend.Service, *live.Hub[struct{}], error) {
	reco, err := recommend.NewService(ctx, deps.db, deps.features, avail, deps.producer, models.DefaultRecommendModel(), m.Log)
	if err != nil {
		return nil, nil, err
	}
	w.Go("recommendations refresh", every(m.Config.RecommendRefresh, "refresh the co-purchase fit", m.Log, reco.Refresh))
	hub := live.NewHub("recommendations", recommend.Changed, m.Log)
	w.Go("recommendations hub", func(ctx context.Context) error { hub.Run(ctx); return nil })
	w.Go("sessions watch", func(ctx context.Context) error {
		return deps.features.WatchSessions(ctx, func(sessionID string) { hub.Notify(live.Key{Topic: sessionID}) })
	})
	return reco, hub, nil
}

// startFraud starts the fraud service, the reload of the active model
// version and the risk alerts.
func (m *Main) startFraud(ctx context.Context, deps *dependencies, w *workers) (*fraud.Service, error) {
	s, err := fraud.NewService(ctx, deps.db, deps.features, deps.producer, m.Config.FraudThresholds, m.Log)
	if err != nil {
		return nil, err
	}
	w.Go("fraud model reload", every(m.Config.FraudModelPoll, "reload the fraud model", m.Log, s.ReloadModel))
	w.Go("fraud alerts", s.RunAlerts)
	return s, nil
}

// rateLimiter returns the limits shared through Redis, or nil (a nil
// interface, not a nil *Limiter) without --rate-limit.
func (m *Main) rateLimiter(ctx context.Context, res *resources) (httpapi.RateLimiter, error) {
	c := &m.Config
	if c.RateLimit == 0 {
		return nil, nil
	}
	rdb, err := features.NewClient(c.RedisURL, c.RedisCluster)
	if err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	shared, err := ratelimit.Open(ctx, rdb, c.RedisPrefix, c.RateLimit, c.RateBurst, m.Log)
	if err != nil {
		return nil, err
	}
	res.add(func() { _ = shared.Close() })
	return shared, nil
}
