package main

// Performance figures of issue 2, measured on a whole server from startServer
// (see BENCHMARKS.md for the commands and the results). They run only with
// -bench; `go test ./...` skips them.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/loadtest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/streaming"
)

const (
	benchProducts    = 100 // product ids per availability request
	benchConcurrency = 32  // requests in flight in BenchmarkAvailability
	freshnessRate    = 1000
)

// BenchmarkAvailability measures availability(storeId, 100 productIds)
// through the whole API (HTTP POST /graphql on loopback, auth, gqlgen,
// catalog checks, Redis read, model, JSON both ways) at 32 requests in
// flight, and as its baseline the same 100 reads as one Redis pipeline
// (features.Store.Availability) at the same concurrency, in the same process.
// Each baseline runs just before its API run, which reports its ratio to it.
func BenchmarkAvailability(b *testing.B) {
	ts := startServer(b)
	store, products := ts.store(benchProducts)
	if len(products) != benchProducts {
		b.Fatalf("store %s has %d products, want %d", store.ID, len(products), benchProducts)
	}
	producer := newBenchProducer(b, ts)
	fs := openServerFeatures(b, ts)
	sps := make([]aisle.StoreProduct, len(products))
	for i, p := range products {
		sps[i] = aisle.StoreProduct{StoreID: store.ID, ProductID: p}
	}
	seedAvailability(b, producer, fs, sps)

	body, err := json.Marshal(map[string]any{"query": availabilityQuery, "variables": map[string]any{"s": store.ID, "p": products}})
	if err != nil {
		b.Fatal(err)
	}
	// Keep-alive connections for every worker, as a real API client pool has.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchConcurrency}}
	b.Cleanup(client.CloseIdleConnections)

	// Concurrency 1 is the latency of an idle server, for comparison.
	for _, concurrency := range []int{1, benchConcurrency} {
		var redisP50 time.Duration
		b.Run(fmt.Sprintf("RedisPipeline/c=%d", concurrency), func(b *testing.B) {
			lat := measureConcurrent(b, concurrency, func(ctx context.Context) error {
				evidence, err := fs.Availability(ctx, sps)
				if err != nil {
					return err
				}
				if len(evidence) != len(sps) {
					return fmt.Errorf("read %d evidences, want %d", len(evidence), len(sps))
				}
				return nil
			})
			redisP50 = lat.P50
		})
		b.Run(fmt.Sprintf("HTTP/c=%d", concurrency), func(b *testing.B) {
			lat := measureConcurrent(b, concurrency, func(ctx context.Context) error {
				return postAvailability(ctx, client, ts.url+"/graphql", body)
			})
			if redisP50 > 0 {
				b.ReportMetric(float64(lat.P50)/float64(redisP50), "p50_x_redis")
			}
		})
	}
}

// seedAvailability produces a pick for every store-product (and a feed level
// for every other one), then waits until the stream workers have applied
// them, so that the benchmark reads real hashes.
func seedAvailability(b *testing.B, producer *streaming.Producer, fs *features.Store, sps []aisle.StoreProduct) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	for i, sp := range sps {
		ev := pickEvent(fmt.Sprintf("e-seed-%d", i), sp, now)
		if i%3 == 0 {
			ev.Type = aisle.TypePickNotFound
		}
		if _, err := producer.Publish(ctx, ev, ""); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			data, _ := json.Marshal(aisle.InventoryLevel{StoreID: sp.StoreID, ProductID: sp.ProductID, Quantity: ptr(int64(i % 7))})
			ev := aisle.Event{ID: fmt.Sprintf("e-seed-feed-%d", i), Type: aisle.TypeInventoryLevel, Time: now, Source: "bench", Data: data}
			if _, err := producer.Publish(ctx, ev, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evidence, err := fs.Availability(ctx, sps)
		if err != nil {
			b.Fatal(err)
		}
		if !slices.ContainsFunc(evidence, func(e models.AvailabilityEvidence) bool { return e.At.IsZero() }) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("seed events were not applied within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postAvailability sends one availability request and checks the answer.
func postAvailability(ctx context.Context, client *http.Client, url string, body []byte) error {
	var data struct {
		Availability []itemAvailability `json:"availability"`
	}
	if err := loadtest.Post(ctx, client, url, "", body, &data); err != nil {
		return err
	}
	switch {
	case len(data.Availability) != benchProducts:
		return fmt.Errorf("got %d items, want %d", len(data.Availability), benchProducts)
	case data.Availability[0].UpdatedAt == nil:
		return fmt.Errorf("item %+v has no updatedAt: the seed events are not visible", data.Availability[0])
	}
	return nil
}

func reportLatencies(b *testing.B, prefix string, l loadtest.Latencies) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(l.P50), prefix+"p50_ms")
	b.ReportMetric(ms(l.P99), prefix+"p99_ms")
	b.ReportMetric(ms(l.Max), prefix+"max_ms")
}

// measureConcurrent runs op b.N times from concurrency goroutines (a closed
// loop: each starts its next operation when the previous one returns) and
// reports the latency percentiles and the throughput.
func measureConcurrent(b *testing.B, concurrency int, op func(context.Context) error) loadtest.Latencies {
	b.Helper()
	b.ResetTimer()
	start := time.Now()
	ds, err := loadtest.ClosedLoop(context.Background(), concurrency, int64(b.N), true, func(ctx context.Context, _ int) error {
		return op(ctx)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	l := loadtest.Summarise(ds)
	reportLatencies(b, "", l)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	return l
}

// BenchmarkFreshness measures how long a pick event takes from being
// produced to Kafka to reaching a websocket subscriber of
// availabilityChanged (whole store), with events produced at 1,000/s round
// robin over 99 products of the store; b.N is the number of events
// (-benchtime 10000x is 10 s). Each event's time is its produce time, and a
// message is matched to its event by productId and updatedAt (the event time
// in ms). The hub coalesces changes, so not every event yields a message:
// delivered_% says how many did. The applied_ metrics time the same events
// to their Redis change notification (consumer poll, catalog check, Lua
// write and PUBLISH), which splits the latency between the stream workers
// and the API's hub and websocket.
func BenchmarkFreshness(b *testing.B) {
	ts := startServer(b)
	store, products := ts.store(benchProducts)
	producer := newBenchProducer(b, ts)
	fs := openServerFeatures(b, ts)
	run := 0
	b.Run(fmt.Sprintf("events/s=%d", freshnessRate), func(b *testing.B) {
		run++
		measureFreshness(b, ts, producer, fs, store.ID, products, fmt.Sprintf("e-fresh-%d-", run))
	})
}

// sentEvent is an event the freshness benchmark produced.
type sentEvent struct {
	product string
	at      time.Time // produce time, also the event time
}

// arrival is when something about a product reached the benchmark.
type arrival struct {
	product   string
	updatedAt string // the message's updatedAt; empty for change notifications
	at        time.Time
}

// measureFreshness produces b.N pick events at freshnessRate over
// products[1:] and reports their produce-to-message latencies; products[0]
// takes the warm-up events.
func measureFreshness(b *testing.B, ts *testServer, producer *streaming.Producer, fs *features.Store, storeID string, products []string, idPrefix string) {
	if b.N > 15*freshnessRate {
		b.Fatalf("b.N = %d: at most 15 s of events, the test websocket lives 20 s", b.N)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws, err := ts.dialWS(nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.subscribe("1", `subscription($s: ID!) { availabilityChanged(storeId: $s) { productId updatedAt } }`, map[string]any{"s": storeID})

	var (
		mu            sync.Mutex
		messages      []arrival    // from the websocket
		notifications []arrival    // from Redis pub/sub
		lastArrival   atomic.Int64 // unix ns of the latest message
		readers       sync.WaitGroup
	)
	readers.Go(func() {
		for {
			msg, err := ws.next(time.Minute)
			if err != nil {
				return // the connection is closed when the run ends
			}
			at := time.Now()
			var payload struct {
				Data struct {
					AvailabilityChanged itemAvailability `json:"availabilityChanged"`
				} `json:"data"`
			}
			if msg.Type != "next" || json.Unmarshal(msg.Payload, &payload) != nil || payload.Data.AvailabilityChanged.UpdatedAt == nil {
				b.Errorf("unexpected subscription message %+v", msg)
				return
			}
			item := payload.Data.AvailabilityChanged
			mu.Lock()
			messages = append(messages, arrival{product: item.ProductID, updatedAt: *item.UpdatedAt, at: at})
			mu.Unlock()
			lastArrival.Store(at.UnixNano())
		}
	})
	readers.Go(func() {
		err := fs.WatchAvailability(ctx, func(sp aisle.StoreProduct) {
			at := time.Now()
			mu.Lock()
			notifications = append(notifications, arrival{product: sp.ProductID, at: at})
			mu.Unlock()
		}, nil)
		if err != nil {
			b.Error(err)
		}
	})

	// The subscription and the change feed are live once a change reaches
	// both. Warm-up changes go to a product of their own, products[0], so
	// that they never mix with the measured ones.
	warm := aisle.StoreProduct{StoreID: storeID, ProductID: products[0]}
	products = products[1:]
	for i := 0; ; i++ {
		if _, err := producer.Publish(ctx, pickEvent(fmt.Sprint(idPrefix, "warmup-", i), warm, time.Now()), ""); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		live := len(messages) > 0 && len(notifications) > 0
		mu.Unlock()
		if live {
			break
		}
		if i == 100 {
			b.Fatal("no change reached the subscription or the change feed within 10 s")
		}
	}

	// Publish is synchronous, so several publishers keep up with the rate;
	// the pacer stamps each event when it hands it over.
	events := make(chan aisle.Event, freshnessRate)
	var publishers sync.WaitGroup
	for range 16 {
		publishers.Go(func() {
			for ev := range events {
				if _, err := producer.Publish(ctx, ev, ""); err != nil {
					b.Error(err)
				}
			}
		})
	}
	sent := make([]sentEvent, 0, b.N)
	lastMS := make(map[string]int64, len(products))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / freshnessRate)); wait > 0 {
			time.Sleep(wait)
		}
		product := products[i%len(products)]
		at := time.Now()
		for at.UnixMilli() <= lastMS[product] { // one event per product and ms, so updatedAt names it
			time.Sleep(100 * time.Microsecond)
			at = time.Now()
		}
		lastMS[product] = at.UnixMilli()
		sent = append(sent, sentEvent{product: product, at: at})
		events <- pickEvent(fmt.Sprint(idPrefix, i), aisle.StoreProduct{StoreID: storeID, ProductID: product}, at)
	}
	close(events)
	publishers.Wait()
	produced := time.Since(start)
	b.StopTimer()

	// Wait for the tail: until no message has come for a second.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if time.Since(time.Unix(0, lastArrival.Load())) > time.Second {
			break
		}
	}
	cancel()
	ws.conn.CloseNow()
	readers.Wait()

	byKey := make(map[string]time.Time, len(sent))
	byProduct := make(map[string][]time.Time, len(products))
	for _, s := range sent {
		byKey[fmt.Sprint(s.product, "@", s.at.UnixMilli())] = s.at
		byProduct[s.product] = append(byProduct[s.product], s.at)
	}
	var delivered []time.Duration
	for _, m := range messages {
		updated, err := time.Parse(time.RFC3339Nano, m.updatedAt)
		if err != nil {
			b.Fatalf("updatedAt %q: %v", m.updatedAt, err)
		}
		if at, ok := byKey[fmt.Sprint(m.product, "@", updated.UnixMilli())]; ok {
			delivered = append(delivered, m.at.Sub(at))
		}
	}
	// Each applied event publishes one notification, and one product's events
	// are applied in produce order (one partition), so the k-th notification
	// of a product is its k-th event.
	var applied []time.Duration
	seen := make(map[string]int, len(products))
	for _, n := range notifications {
		k := seen[n.product]
		seen[n.product]++
		if k < len(byProduct[n.product]) {
			applied = append(applied, n.at.Sub(byProduct[n.product][k]))
		}
	}
	if len(delivered) == 0 || len(applied) != b.N {
		b.Fatalf("of %d events, %d reached the subscriber and %d were applied (notifications)", b.N, len(delivered), len(applied))
	}
	reportLatencies(b, "", loadtest.Summarise(delivered))
	reportLatencies(b, "applied_", loadtest.Summarise(applied))
	b.ReportMetric(100*float64(len(delivered))/float64(b.N), "delivered_%")
	b.ReportMetric(float64(b.N)/produced.Seconds(), "events/s")
}

// openServerFeatures opens the feature store the server uses (same Redis,
// same key prefix), with a connection pool of its own.
func openServerFeatures(b *testing.B, ts *testServer) *features.Store {
	b.Helper()
	fs, err := features.Open(context.Background(), ts.main.Config.RedisURL, ts.main.Config.RedisPrefix, models.DefaultAvailabilityModel(), features.WithCluster(ts.main.Config.RedisCluster))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fs.Close() })
	return fs
}

func newBenchProducer(b *testing.B, ts *testServer) *streaming.Producer {
	b.Helper()
	p, err := streaming.NewProducer(ts.main.KafkaBrokers, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

func pickEvent(id string, sp aisle.StoreProduct, at time.Time) aisle.Event {
	// Plain structs of strings and numbers always encode, here and in seedAvailability.
	data, _ := json.Marshal(aisle.Pick{StoreID: sp.StoreID, ProductID: sp.ProductID, ShopperID: "sh-bench", OrderID: "o-bench"})
	return aisle.Event{ID: id, Type: aisle.TypePickFound, Time: at, Source: "bench", Data: data}
}

func ptr[T any](v T) *T { return &v }
