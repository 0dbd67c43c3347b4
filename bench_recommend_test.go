package main

// Performance figures of issue 3 (see BENCHMARKS.md for the commands and the
// results). They run only with -bench; `go test ./...` skips them.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/loadtest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

const benchSessions = 100_000 // recent sessions indexed for BenchmarkRecommendations

// benchShopping simulates the demo catalog's shoppers until sessions
// sessions have started (and their last events are in), and returns the
// events in time order.
func benchShopping(b *testing.B, db *postgres.DB, sessions int) []aisle.Event {
	b.Helper()
	cat, err := simulationCatalog(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	cfg := simulate.DefaultShoppingConfig(1)
	cfg.Customers = 50_000 // 12,500 sessions a day
	cfg.Start = time.Now().Add(-9 * 24 * time.Hour).Truncate(24 * time.Hour)
	w, err := simulate.NewShopping(cat, cfg)
	if err != nil {
		b.Fatal(err)
	}
	seen := make(map[string]bool, sessions)
	var events []aisle.Event
	for {
		ev := w.Next()
		if ev.Type == aisle.TypeSessionView || ev.Type == aisle.TypeSessionSearch {
			var se aisle.SessionEvent
			_ = json.Unmarshal(ev.Data, &se) // the simulator's own JSON
			if !seen[se.SessionID] {
				if len(seen) == sessions {
					return events
				}
				seen[se.SessionID] = true
			}
		}
		events = append(events, ev)
	}
}

// BenchmarkRecommendations measures recommendations(sessionId, storeId,
// first: 10) through the whole API (HTTP POST /graphql on loopback, auth,
// gqlgen, session and neighbour reads from Redis, model, availability of the
// candidates, JSON both ways) with 100,000 recent sessions indexed, at 1 and
// 32 requests in flight. The sessions are the shopping simulator's over the
// demo catalog, written to Redis by the stream applier's Lua script; the
// co-purchase fit is trained on their orders. Each request asks for a random
// one of the last 10,000 sessions, as a service key. Each HTTP run follows a
// baseline run of recommend.Service.Recommend in this process (p50_x_service).
func BenchmarkRecommendations(b *testing.B) {
	ts := startServer(b, "--recommend-refresh", "100ms")
	ctx := context.Background()
	db, err := postgres.Open(ctx, ts.main.Config.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	fs := openServerFeatures(b, ts)
	b.Cleanup(func() {
		// Millions of keys: more than the test store's cleanup has time for.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fs.DeleteAll(ctx); err != nil {
			b.Errorf("delete the benchmark's keys: %v", err)
		}
	})
	events := benchShopping(b, db, benchSessions)

	type target struct{ session, store string }
	var (
		updates []aisle.Update
		baskets []models.Basket
		recent  []target
	)
	for _, ev := range events {
		d, err := aisle.DecodeEvent(mustMarshal(b, ev), "", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if d.Order != nil {
			basket := models.Basket{StoreID: d.Order.StoreID}
			for _, it := range d.Order.Items {
				basket.Products = append(basket.Products, it.ProductID)
			}
			baskets = append(baskets, basket)
			continue
		}
		updates = append(updates, aisle.Update{Event: d})
		if d.Session.ProductID != "" {
			recent = append(recent, target{d.Session.SessionID, d.Session.StoreID})
		}
	}
	for from := 0; from < len(updates); from += 1000 {
		if _, err := fs.ApplySessions(ctx, updates[from:min(from+1000, len(updates))]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.SaveCoPurchase(ctx, models.FitCoPurchase(baskets, models.DefaultCoPurchaseConfig()), time.Time{}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server reloads the fit every 100 ms
	recent = recent[max(0, len(recent)-10_000):]
	b.Logf("%d events of %d sessions applied, %d orders fitted", len(updates), benchSessions, len(baskets))

	// The baseline: the same answers from a recommend.Service in this
	// process, on the same Redis and database, with its neighbour and
	// availability caches kept by their own change subscriptions, as the
	// server's are: no HTTP, no gqlgen.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 2)
	go func() { watched <- fs.WatchSessions(watchCtx, func(string) {}) }()
	go func() { watched <- fs.WatchAvailability(watchCtx, func(aisle.StoreProduct) {}, nil) }()
	b.Cleanup(func() { stopWatch(); <-watched; <-watched })
	log := slog.New(slog.DiscardHandler)
	avail, err := availability.NewService(ctx, db, fs, newBenchProducer(b, ts), models.DefaultAvailabilityModel(), log)
	if err != nil {
		b.Fatal(err)
	}
	reco, err := recommend.NewService(ctx, db, fs, avail, newBenchProducer(b, ts), models.DefaultRecommendModel(), log)
	if err != nil {
		b.Fatal(err)
	}
	asService := aisle.NewContextWithPrincipal(ctx, &aisle.Principal{Role: aisle.RoleService, Name: "bench"})

	service := ts.createKey(aisle.RoleService, "", "")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchConcurrency}}
	b.Cleanup(client.CloseIdleConnections)
	for _, concurrency := range []int{1, benchConcurrency} {
		var serviceP50 time.Duration
		b.Run(fmt.Sprintf("Service/c=%d", concurrency), func(b *testing.B) {
			lat := measureConcurrent(b, concurrency, func(context.Context) error {
				t := recent[rand.IntN(len(recent))]
				recs, err := reco.Recommend(asService, t.session, t.store, 10)
				if err == nil && len(recs) != 10 {
					err = fmt.Errorf("got %d recommendations, want 10", len(recs))
				}
				return err
			})
			serviceP50 = lat.P50
		})
		b.Run(fmt.Sprintf("HTTP/c=%d", concurrency), func(b *testing.B) {
			lat := measureConcurrent(b, concurrency, func(ctx context.Context) error {
				t := recent[rand.IntN(len(recent))]
				body, err := json.Marshal(map[string]any{"query": recommendationsQuery, "variables": map[string]any{"session": t.session, "store": t.store, "first": 10}})
				if err != nil {
					return err
				}
				return postRecommendations(ctx, client, ts.url+"/graphql", service, body)
			})
			if serviceP50 > 0 {
				b.ReportMetric(float64(lat.P50)/float64(serviceP50), "p50_x_service")
			}
		})
	}
}

// postRecommendations sends one recommendations request and checks the answer.
func postRecommendations(ctx context.Context, client *http.Client, url, key string, body []byte) error {
	var data struct {
		Recommendations []recommendation `json:"recommendations"`
	}
	if err := loadtest.Post(ctx, client, url, key, body, &data); err != nil {
		return err
	}
	if len(data.Recommendations) != 10 {
		return fmt.Errorf("got %d recommendations, want 10", len(data.Recommendations))
	}
	return nil
}

// BenchmarkSessionIngest measures the stream worker on aisle.sessions: a
// fresh consumer group reads 200,000 pre-produced session events of the
// shopping simulator (6 partitions, keyed by session), checks them against
// the catalog and applies them to Redis with the session script, until every
// event is applied.
func BenchmarkSessionIngest(b *testing.B) {
	const partitions = 6
	db := postgrestest.MustOpenSeededDB(b)
	broker := streamingtest.MustStartBroker(b, partitions)
	var events []aisle.Event
	for _, ev := range benchShopping(b, db, 12_000) {
		if ev.Type != aisle.TypeOrderPlaced {
			events = append(events, ev)
		}
	}
	events = events[:min(len(events), 200_000)]
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, ev := range events {
		var se aisle.SessionEvent
		_ = json.Unmarshal(ev.Data, &se) // the simulator's own JSON
		cl.Produce(ctx, &kgo.Record{Topic: aisle.TopicSessions, Key: []byte(se.SessionID), Value: mustMarshal(b, ev)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	dlq, err := streaming.NewProducer(broker.Addrs(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(dlq.Close)

	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		fs := featurestest.MustOpen(b)
		consumer, err := streaming.NewConsumer(streaming.ConsumerConfig{
			Brokers:  broker.Addrs(),
			Group:    fmt.Sprint("g-sessions-", i),
			Appliers: map[string][]streaming.Applier{aisle.TopicSessions: {{Name: "sessions", Apply: fs.ApplySessions}}},
			Catalog:  db,
			DLQ:      dlq,
			Log:      slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		start := sessionsApplied(b)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- consumer.Run(runCtx) }()
		deadline := time.Now().Add(2 * time.Minute)
		for sessionsApplied(b)-start < float64(len(events)) {
			if time.Now().After(deadline) {
				b.Fatalf("applied %v of %d events in 2 minutes", sessionsApplied(b)-start, len(events))
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(events))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// sessionsApplied reads the stream workers' count of aisle.sessions events
// applied or skipped (every valid event) from the default registry.
func sessionsApplied(b *testing.B) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "aisle_stream_events_applied_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == aisle.TopicSessions {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func mustMarshal(b *testing.B, v any) []byte {
	b.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
