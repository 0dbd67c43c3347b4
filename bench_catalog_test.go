package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming"
)

// BenchmarkCatalogImport1M imports a catalog of 100 stores × 10,000
// products, then 1,000,000 assortment rows (a CSV file), on a whole server
// (embedded broker, stream workers, PostgreSQL), and reports the import's
// events/s and how long until the last row was applied. The baseline, in
// the same run, publishes 20,000 of the same events one produce each, as
// the single-event mutations do. Run once:
//
//	go test -run '^$' -bench BenchmarkCatalogImport1M -benchtime 1x .
func BenchmarkCatalogImport1M(b *testing.B) {
	const stores, products = 100, 10_000
	ts := startServer(b, "--env", "production")
	dir := b.TempDir()
	write := func(name string, fill func(w *bufio.Writer)) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		fill(w)
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		return path
	}
	base := write("base.jsonl", func(w *bufio.Writer) {
		fmt.Fprintln(w, `{"type":"retailer.upserted","data":{"retailer_id":"r-bench","name":"Bench"}}`)
		for s := range stores {
			fmt.Fprintf(w, `{"type":"store.upserted","data":{"store_id":"s-%d","retailer_id":"r-bench","name":"Store %d"}}`+"\n", s, s)
		}
		for p := range products {
			fmt.Fprintf(w, `{"type":"product.upserted","data":{"product_id":"p-%d","name":"Product %d","category":"Category %d"}}`+"\n", p, p, p%50)
		}
	})
	assortment := write("assortment.csv", func(w *bufio.Writer) {
		fmt.Fprintln(w, "store_id,product_id,price_cents,aisle")
		for s := range stores {
			for p := range products {
				fmt.Fprintf(w, "s-%d,p-%d,%d,%d\n", s, p, 100+p%900, 1+p%30)
			}
		}
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ts.main.Config.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM store_products`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	importFile := func(path string) {
		var out bytes.Buffer
		args := []string{"import", "--kafka-brokers", strings.Join(ts.main.KafkaBrokers, ","), path}
		if err := runCatalog(ctx, args, &out, &bytes.Buffer{}); err != nil {
			b.Fatalf("import %s: %v\n%s", path, err, out.String())
		}
	}
	importFile(base)

	producer, err := streaming.NewProducer(ts.main.KafkaBrokers, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	const oneByOne = 20_000
	baselineStart := time.Now()
	for i := range oneByOne {
		ev := aisle.Event{ID: aisle.NewEventID(), Type: aisle.TypeAssortmentUpserted, Time: time.Now().UTC(), Source: "bench",
			Data: []byte(fmt.Sprintf(`{"store_id":"s-%d","product_id":"p-%d"}`, i/products, i%products))}
		if _, err := producer.Publish(ctx, ev, ""); err != nil {
			b.Fatal(err)
		}
	}
	baseline := oneByOne / time.Since(baselineStart).Seconds()

	b.ResetTimer()
	start := time.Now()
	importFile(assortment)
	published := time.Since(start)
	for count() < stores*products { // the applier announces nothing per row: poll the table
		time.Sleep(100 * time.Millisecond)
	}
	applied := time.Since(start)
	b.StopTimer()
	b.ReportMetric(published.Seconds(), "import-s")
	b.ReportMetric(float64(stores*products)/published.Seconds(), "published-events/s")
	b.ReportMetric(baseline, "baseline-one-by-one-events/s")
	b.ReportMetric(applied.Seconds(), "applied-s")
	b.ReportMetric(float64(stores*products)/applied.Seconds(), "applied-rows/s")
}
