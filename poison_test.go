package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/httpapi"
	"github.com/aisle/aisle/internal/proctest"
	"github.com/aisle/aisle/postgres/postgrestest"
	"github.com/aisle/aisle/streaming"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// An id with a NUL or another control character is refused by the API as
// BAD_USER_INPUT, before anything is published: labelOrder(orderId:
// "o\u0000") used to be published and then held the labels partition for
// ever (PostgreSQL refuses NUL in text). The stream side, a record carrying
// such an id, is dead-lettered (streaming.TestConsumerDeadLettersPoisonRecords).
func TestIDsWithControlCharactersAreBadUserInput(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, products := ts.store(1)
	ops := ts.createKey(aisle.RoleOps, "", "")
	shopper := ts.createKey(aisle.RoleShopper, "", "sh-1")
	for _, tc := range []struct {
		name, key, query string
		vars             map[string]any
	}{
		{"labelOrder with a NUL", ops, labelOrderMutation, map[string]any{"o": "o\x00"}},
		{"labelOrder with an escape", ops, labelOrderMutation, map[string]any{"o": "o\x1b[2J"}},
		{"reportPick with a NUL order", shopper, reportPickMutation, map[string]any{"s": store.ID, "p": products[0], "o": "o-1\x00"}},
		{"availability of a product with a NUL", "", availabilityQuery, map[string]any{"s": store.ID, "p": []string{products[0] + "\x00"}}},
	} {
		resp := ts.query(tc.key, tc.query, tc.vars)
		if code := resp.code(t); code != aisle.EINVALID || !strings.Contains(resp.Errors[0].Message, "control character") {
			t.Errorf("%s: %s %+v, want %s saying control character", tc.name, code, resp.Errors, aisle.EINVALID)
		}
	}
}

// --stall-threshold defaults to a minute and reads AISLE_STALL_THRESHOLD;
// bad values are refused with the other flags (TestWebsocketFlagsAreValidated).
func TestStallThresholdFlag(t *testing.T) {
	m := NewMain(io.Discard)
	if err := m.ParseFlags(nil); err != nil || m.Config.StallThreshold != streaming.DefaultStallThreshold {
		t.Errorf("default stall threshold %s (%v), want %s", m.Config.StallThreshold, err, streaming.DefaultStallThreshold)
	}
	t.Setenv("AISLE_STALL_THRESHOLD", "90s")
	if err := m.ParseFlags(nil); err != nil || m.Config.StallThreshold != 90*time.Second {
		t.Errorf("stall threshold from the environment %s (%v), want 90s", m.Config.StallThreshold, err)
	}
}

// A stream worker whose partition has records it cannot apply (its
// dependency keeps refusing connections) becomes unready once the stall
// threshold passes: /readyz names the partition, without the error, which
// is logged.
func TestReadyzNamesStalledPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	fs := featurestest.MustOpen(t)
	broker := streamingtest.MustStartBroker(t, 1)
	logs := &proctest.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	producer, err := streaming.NewProducer(broker.Addrs(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	refused := func(context.Context, []aisle.Update) ([]bool, error) {
		return nil, fmt.Errorf("apply: %w", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 6379}, Err: syscall.ECONNREFUSED})
	}
	consumer, err := streaming.NewConsumer(streaming.ConsumerConfig{
		Brokers: broker.Addrs(), Catalog: db, DLQ: producer, Log: log, StallThreshold: 200 * time.Millisecond,
		Appliers: map[string][]streaming.Applier{aisle.TopicInventory: {{Name: "availability", Apply: refused}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()
	srv := httptest.NewServer(httpapi.Ops(readiness(db, fs, producer, consumer), log))
	defer srv.Close()
	eventually(t, 15*time.Second, func() string {
		if status, body := getStatus(t, srv.URL+"/readyz", nil); status != http.StatusOK {
			return fmt.Sprintf("/readyz %d %s before any record", status, body)
		}
		return ""
	})

	qty := int64(3)
	data, err := json.Marshal(aisle.InventoryLevel{StoreID: "s-1", ProductID: "p-1", Quantity: &qty})
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(aisle.Event{ID: "e-1", Type: aisle.TypeInventoryLevel, Time: time.Now(), Source: "test", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	streamingtest.Produce(t, broker.Addrs(), &kgo.Record{Topic: aisle.TopicInventory, Key: []byte("s-1:p-1"), Value: value})
	var body string
	eventually(t, 15*time.Second, func() string {
		var status int
		if status, body = getStatus(t, srv.URL+"/readyz", nil); status != http.StatusServiceUnavailable {
			return fmt.Sprintf("/readyz %d %s while the partition is stalled", status, body)
		}
		return ""
	})
	var got struct{ Failing []string }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Failing) != 1 || got.Failing[0] != "stream stalled: aisle.inventory/0" {
		t.Errorf("/readyz failing %q, want the stalled partition named", got.Failing)
	}
	if strings.Contains(body, "10.9.8.7") || strings.Contains(body, "refused") {
		t.Errorf("/readyz leaks the error: %s", body)
	}
	if !strings.Contains(logs.String(), "aisle.inventory/0") {
		t.Errorf("the stall is not logged:\n%s", logs.String())
	}
}
