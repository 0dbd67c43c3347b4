package features_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
)

// Finding: pub/sub ignores the database number, so two deployments on one
// Redis server in two databases with the same key prefix heard each other's
// availability changes and fraud alerts. Channels carry the database too.
func TestDeploymentsInTwoDatabasesDoNotHearEachOther(t *testing.T) {
	t.Parallel()
	if featurestest.Cluster() {
		t.Skip("a cluster has one database: deployments on it differ by prefix")
	}
	prefix := featurestest.NewPrefix()
	inDB := func(db string) *features.Store {
		u, err := url.Parse(featurestest.URL())
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + db
		return featurestest.MustOpenAt(t, u.String(), prefix)
	}
	a, b := inDB("11"), inDB("12")
	changes := watch(t, a)
	alerts := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() { watching <- a.WatchFraudAlerts(ctx, func(p []byte) { alerts <- string(p) }) }()
	defer func() {
		cancel()
		if err := <-watching; err != nil {
			t.Errorf("WatchFraudAlerts: %v", err)
		}
	}()

	other := aisle.StoreProduct{StoreID: "s-other", ProductID: "p-1"}
	mine := aisle.StoreProduct{StoreID: "s-mine", ProductID: "p-1"}
	// a's alerts subscription is confirmed once it hears its own alert.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := a.PublishFraudAlert(ctx, []byte("mine")); err != nil {
			t.Fatal(err)
		}
		if got := receive(alerts, 50*time.Millisecond); got == "mine" {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("a never heard its own alert")
		}
	}
	apply(t, b, aisle.Update{Event: pick("e-other", aisle.TypePickFound, other, t0)})
	if err := b.PublishFraudAlert(ctx, []byte("other")); err != nil {
		t.Fatal(err)
	}
	// What a hears after b's messages, in order: its own.
	apply(t, a, aisle.Update{Event: pick("e-mine", aisle.TypePickFound, mine, t0)})
	if err := a.PublishFraudAlert(ctx, []byte("mine again")); err != nil {
		t.Fatal(err)
	}
	for _, got := range drainUntil(t, changes, mine) {
		if got == other {
			t.Errorf("the deployment in database 11 heard a change in database 12: %v", got)
		}
	}
	for {
		got := receive(alerts, 5*time.Second)
		if got == "other" {
			t.Error("the deployment in database 11 heard a fraud alert of database 12")
		}
		if got == "mine again" || got == "" {
			break
		}
	}
}

// receive returns the next alert, or "" after d.
func receive(alerts <-chan string, d time.Duration) string {
	select {
	case got := <-alerts:
		return got
	case <-time.After(d):
		return ""
	}
}

// drainUntil returns what changes yields up to and including last, within
// 5s.
func drainUntil(t *testing.T, changes <-chan aisle.StoreProduct, last aisle.StoreProduct) []aisle.StoreProduct {
	t.Helper()
	var got []aisle.StoreProduct
	timeout := time.After(5 * time.Second)
	for {
		select {
		case sp := <-changes:
			got = append(got, sp)
			if sp == last {
				return got
			}
		case <-timeout:
			t.Fatalf("no change of %v within 5s; got %v", last, got)
		}
	}
}
