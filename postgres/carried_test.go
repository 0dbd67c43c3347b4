package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

var aOrB = []aisle.StoreProduct{{StoreID: "s-a", ProductID: "p-a"}, {StoreID: "s-a", ProductID: "p-b"}}

// carried is db.Carried of aOrB, as "[true false]".
func carried(t *testing.T, db *postgres.DB) string {
	t.Helper()
	got, err := db.Carried(context.Background(), aOrB)
	if err != nil {
		t.Fatalf("Carried: %v", err)
	}
	return fmt.Sprint(got)
}

// eventuallyCarried polls until db answers want for aOrB. A bound on
// "never", not a latency claim: a cache the change feed did not reach
// keeps its answer for ever.
func eventuallyCarried(t *testing.T, db *postgres.DB, want, after string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := carried(t, db)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s %s, Carried(p-a, p-b at s-a) = %s; want %s", after, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// followChanges runs server.FollowChanges until the test ends; each LISTEN
// in place sends on the returned channel.
func followChanges(t *testing.T, server *postgres.DB, url string) <-chan struct{} {
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{}, 4)
	done := make(chan error)
	go func() {
		done <- server.FollowChanges(ctx, postgrestest.DirectURL(t, url), func() { listening <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FollowChanges: %v", err)
		}
	})
	return listening
}

// TestAssortmentCacheFollowsTheChangeFeed: while a process follows the
// change feed it answers assortments from memory, and an assortment change
// applied by another process reaches it.
func TestAssortmentCacheFollowsTheChangeFeed(t *testing.T) {
	t.Parallel()
	url := postgrestest.NewDatabaseURL(t)
	writer, server := mustOpenAt(t, url), mustOpenAt(t, url)
	mustApply(t, writer, baseCatalog(t)...)
	<-followChanges(t, server, url)

	if got := carried(t, server); got != "[true false]" {
		t.Fatalf("Carried = %s; want [true false]", got)
	}
	// An unannounced write (no catalog event) shows the answer now comes
	// from memory.
	conn := connect(t, url)
	if _, err := conn.Exec(context.Background(), `INSERT INTO store_products (store_id, product_id) VALUES ('s-a', 'p-b')`); err != nil {
		t.Fatal(err)
	}
	if got := carried(t, server); got != "[true false]" {
		t.Fatalf("Carried after an unannounced insert = %s; want the remembered [true false]", got)
	}

	mustApply(t, writer, catalogEvent(t, aisle.TypeAssortmentRemoved, 10, aisle.Assortment{StoreID: "s-a", ProductID: "p-a"}))
	eventuallyCarried(t, server, "[false true]", "after another process removed p-a")
	mustApply(t, writer, catalogEvent(t, aisle.TypeAssortmentUpserted, 20, aisle.Assortment{StoreID: "s-a", ProductID: "p-a"}))
	eventuallyCarried(t, server, "[true true]", "after another process added p-a back")

	// The applying process itself sees its change as it commits.
	writerFollows := mustOpenAt(t, url)
	<-followChanges(t, writerFollows, url)
	if got := carried(t, writerFollows); got != "[true true]" {
		t.Fatalf("Carried = %s; want [true true]", got)
	}
	mustApply(t, writerFollows, catalogEvent(t, aisle.TypeAssortmentRemoved, 30, aisle.Assortment{StoreID: "s-a", ProductID: "p-b"}))
	if got := carried(t, writerFollows); got != "[true false]" {
		t.Errorf("Carried in the applying process right after its removal = %s; want [true false]", got)
	}
}

// TestAssortmentCacheSurvivesNoMissedNotification: a change the feed did
// not hear of (made while its connection was down, or never announced) is
// seen once LISTEN is in place again, and a process that does not follow the
// feed reads PostgreSQL every time.
func TestAssortmentCacheSurvivesNoMissedNotification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.NewDatabaseURL(t)
	writer, server := mustOpenAt(t, url), mustOpenAt(t, url)
	mustApply(t, writer, baseCatalog(t)...)
	listening := followChanges(t, server, url)
	<-listening
	if got := carried(t, server); got != "[true false]" {
		t.Fatalf("Carried = %s; want [true false]", got)
	}

	conn := connect(t, url)
	if _, err := conn.Exec(ctx, `DELETE FROM store_products WHERE store_id = 's-a' AND product_id = 'p-a'`); err != nil {
		t.Fatal(err)
	}
	// Drop the feed's connection, as a restarted PostgreSQL or a network
	// cut would.
	if n := count(t, conn, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%') x`); n != 1 {
		t.Fatalf("terminated %d LISTEN sessions; want 1", n)
	}
	<-listening
	if got := carried(t, server); got != "[false false]" {
		t.Errorf("Carried after the feed reconnected = %s; want [false false] (the change it missed)", got)
	}

	// Not following the feed: no memory.
	unfollowed := mustOpenAt(t, url)
	if got := carried(t, unfollowed); got != "[false false]" {
		t.Fatalf("Carried = %s; want [false false]", got)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO store_products (store_id, product_id) VALUES ('s-a', 'p-a')`); err != nil {
		t.Fatal(err)
	}
	if got := carried(t, unfollowed); got != "[true false]" {
		t.Errorf("Carried without the change feed, after an insert = %s; want [true false]", got)
	}
}
