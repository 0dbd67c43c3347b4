package main

// Performance figures of issue 4 (fraud risk), measured on a whole server
// from startServer; see BENCHMARKS.md. They run only with -bench.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/loadtest"
)

// BenchmarkAssessOrder measures assessOrder through the whole API (HTTP POST
// /graphql on loopback, auth, gqlgen, catalog check, the stored-assessment
// lookup, six velocity hashes read from Redis in one pipeline, scoring, the
// audit INSERT, the produce of order.placed acknowledged by the broker and
// the alert PUBLISH), at 1 and 32 requests in flight. The model is trained
// first from 12 simulated days published to the server's broker; the stream
// workers keep applying the benchmark's own orders meanwhile. Every request
// is a new order of one of 2,000 customers (each with its own card, device,
// address and IP), so velocity hashes are warm.
func BenchmarkAssessOrder(b *testing.B) {
	ts := startServer(b, "--fraud-model-poll", "100ms")
	store, products := ts.store(1)
	service := ts.createKey(aisle.RoleService, "", "")
	ts.publishFraudHistory(12, 600)
	ts.command("train", "fraud", "--activate")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	url := ts.url + "/graphql"
	var seq atomic.Int64
	assess := func(ctx context.Context) error {
		n := seq.Add(1)
		user := fmt.Sprint("u-bench-", n%2000)
		in := orderInput(fmt.Sprint("o-bench-", n), user, store.ID, products[0], "card-"+user, "dev-"+user, 1000+int(n%9000))
		in["ip"] = fmt.Sprintf("10.0.%d.%d", n%2000/250, n%250+1) // a home IP per customer
		return postAssessOrder(ctx, client, url, service, in)
	}
	deadline := time.Now().Add(30 * time.Second)
	for err := assess(context.Background()); err != nil; err = assess(context.Background()) {
		if time.Now().After(deadline) {
			b.Fatalf("the trained model is not serving after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, concurrency := range []int{1, benchConcurrency} {
		b.Run(fmt.Sprintf("HTTP/c=%d", concurrency), func(b *testing.B) {
			measureConcurrent(b, concurrency, assess)
		})
	}
}

// postAssessOrder sends one assessOrder and checks the answer.
func postAssessOrder(ctx context.Context, client *http.Client, url, key string, in map[string]any) error {
	body, err := json.Marshal(map[string]any{"query": assessOrderMutation, "variables": map[string]any{"in": in}})
	if err != nil {
		return err
	}
	var data struct {
		AssessOrder *fraudAssessment `json:"assessOrder"`
	}
	if err := loadtest.Post(ctx, client, url, key, body, &data); err != nil {
		return fmt.Errorf("assessOrder: %w", err)
	}
	if data.AssessOrder == nil || data.AssessOrder.ModelVersion == 0 {
		return fmt.Errorf("assessOrder: no model version in %+v", data.AssessOrder)
	}
	return nil
}
