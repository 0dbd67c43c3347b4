package main

// The commands that publish events into Kafka: simulate, catalog import and
// seed demo.

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
)

// runCatalog is `aisle catalog import [--batch N] FILE…`.
func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("usage: aisle catalog import [--batch N] FILE…")
	}
	fset, c := newCommand("catalog import", stderr)
	batch := fset.Int("batch", 5000, "events per produce request")
	files, err := parseCommandArgs(fset, args[1:])
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("catalog import: name at least one .jsonl or .csv file")
	}
	if *batch < 1 {
		return fmt.Errorf("--batch must be at least 1, got %d", *batch)
	}
	producer, err := catalogProducer(c, stderr)
	if err != nil {
		return err
	}
	defer producer.Close()
	imp := &importer{producer: producer, batch: *batch, progress: stderr, start: time.Now()}
	for _, name := range files {
		if err := imp.importFile(ctx, name); err != nil {
			imp.summary(stdout)
			return err
		}
	}
	return imp.summary(stdout)
}

// catalogProducer connects to the configured brokers, or to a running
// `aisle serve`'s embedded broker.
func catalogProducer(c *Config, stderr io.Writer) (*streaming.Producer, error) {
	brokers := c.KafkaBrokers
	if len(brokers) == 0 {
		brokers = []string{c.EmbeddedKafka}
	}
	return streaming.NewProducer(brokers, commandLogger(c, stderr))
}

// importer publishes catalog events in batches and counts what it did.
type importer struct {
	producer *streaming.Producer
	batch    int
	progress io.Writer
	start    time.Time

	pending   []*aisle.Decoded
	published int
	rejected  []string // "FILE:LINE: reason"
	lines     int
	lastShown time.Time
	last      time.Time // the event time clock gave last
}

// clock gives the event time of a line that names none: now, but always at
// least a microsecond (PostgreSQL's resolution) after the previous line's,
// so that of two lines about one entity the later one wins, as in a file
// of changes, and a later import wins over an earlier one.
func (imp *importer) clock() time.Time {
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(imp.last) {
		t = imp.last.Add(time.Microsecond)
	}
	imp.last = t
	return t
}

// maxRejectsShown bounds the rejections the summary lists one by one.
const maxRejectsShown = 1000

// importFile reads one file (CSV when its name ends in .csv, JSON Lines
// otherwise) and publishes its events. Bad lines are counted and skipped;
// only an unreadable file or an unreachable broker stops the import.
func (imp *importer) importFile(ctx context.Context, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("catalog import: %w", err)
	}
	defer f.Close()
	emit := func(line int, d *aisle.Decoded, err error) error {
		if err != nil {
			imp.lines++
			imp.rejected = append(imp.rejected, fmt.Sprintf("%s:%d: %s", name, line, operatorMessage(err)))
			return nil
		}
		return imp.add(ctx, d)
	}
	if strings.HasSuffix(strings.ToLower(name), ".csv") {
		err = readCatalogCSV(f, imp.clock, emit)
	} else {
		err = readCatalogJSONL(f, imp.clock, emit)
	}
	if err == nil {
		err = imp.flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("catalog import %s: %w", name, err)
	}
	return nil
}

// add queues one event, publishing the queue when it is a batch.
func (imp *importer) add(ctx context.Context, d *aisle.Decoded) error {
	imp.lines++
	imp.pending = append(imp.pending, d)
	if len(imp.pending) >= imp.batch {
		return imp.flush(ctx)
	}
	return nil
}

// flush publishes the pending events and shows progress.
func (imp *importer) flush(ctx context.Context) error {
	if len(imp.pending) == 0 {
		return nil
	}
	if _, err := imp.producer.PublishEvents(ctx, imp.pending); err != nil {
		return err
	}
	imp.published += len(imp.pending)
	imp.pending = imp.pending[:0]
	if now := time.Now(); now.Sub(imp.lastShown) >= 250*time.Millisecond {
		imp.lastShown = now
		fmt.Fprintf(imp.progress, "\rcatalog import: %d lines, %d published, %d rejected, %.0f events/s ",
			imp.lines, imp.published, len(imp.rejected), float64(imp.published)/now.Sub(imp.start).Seconds())
	}
	return nil
}

// summary prints what was published and rejected; it fails when any line was
// rejected, so scripts notice.
func (imp *importer) summary(w io.Writer) error {
	took := time.Since(imp.start)
	fmt.Fprintf(imp.progress, "\n")
	fmt.Fprintf(w, "published %d events to %s, rejected %d lines, in %s (%.0f events/s)\n",
		imp.published, aisle.TopicCatalog, len(imp.rejected), took.Round(time.Millisecond), float64(imp.published)/took.Seconds())
	for i, r := range imp.rejected {
		if i == maxRejectsShown {
			fmt.Fprintf(w, "… and %d more rejected lines\n", len(imp.rejected)-maxRejectsShown)
			break
		}
		fmt.Fprintln(w, "rejected "+r)
	}
	if len(imp.rejected) > 0 {
		return fmt.Errorf("%d lines rejected", len(imp.rejected))
	}
	return nil
}

// emitFunc receives each line's event, or why the line is rejected; an
// error it returns stops the read.
type emitFunc func(line int, d *aisle.Decoded, err error) error

// importLine is one line of a JSON Lines import: a catalog event's type and
// data, and optionally its time (default: when it is read, see clock).
type importLine struct {
	Type string          `json:"type"`
	Time *time.Time      `json:"time,omitempty"`
	Data json.RawMessage `json:"data"`
}

// maxImportLine bounds one line of an import file: an event's size limit.
const maxImportLine = aisle.MaxEventBytes

func readCatalogJSONL(r io.Reader, clock func() time.Time, emit emitFunc) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine+1)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var l importLine
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		var d *aisle.Decoded
		err := dec.Decode(&l)
		if err != nil {
			err = aisle.Errorf(aisle.EINVALID, "not a catalog line ({\"type\": …, \"data\": {…}}): %s", err)
		} else {
			d, err = buildCatalogEvent(l.Type, l.Time, l.Data, clock)
		}
		if err := emit(n, d, err); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("a line is longer than %d bytes", maxImportLine)
	}
	return sc.Err()
}

// buildCatalogEvent makes a catalog event of an import line, validated as
// the stream workers will validate it.
func buildCatalogEvent(eventType string, at *time.Time, data any, clock func() time.Time) (*aisle.Decoded, error) {
	if !slices.Contains(aisle.CatalogTypes, eventType) {
		return nil, aisle.Errorf(aisle.EINVALID, "type %q is not a catalog event type (%s)", eventType, strings.Join(aisle.CatalogTypes, ", "))
	}
	t := clock()
	if at != nil {
		t = *at
	}
	return aisle.BuildEvent(aisle.NewEventID(), eventType, t, time.Now(), data)
}

// csvNumbers are the CSV columns holding numbers rather than text.
var csvNumbers = map[string]bool{"lat": true, "lon": true, "price_cents": true}

// csvType tells a CSV file's event type from its header: assortments have a
// store_id and a product_id (and are removals where a "removed" column says
// true), stores a store_id, products a product_id, retailers a retailer_id.
func csvType(header []string) (string, error) {
	has := func(c string) bool { return slices.Contains(header, c) }
	switch {
	case has("store_id") && has("product_id"):
		return aisle.TypeAssortmentUpserted, nil
	case has("store_id"):
		return aisle.TypeStoreUpserted, nil
	case has("product_id"):
		return aisle.TypeProductUpserted, nil
	case has("retailer_id"):
		return aisle.TypeRetailerUpserted, nil
	}
	return "", errors.New("the header names no retailer_id, store_id or product_id column")
}

func readCatalogCSV(r io.Reader, clock func() time.Time, emit emitFunc) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a short or long row is the row's error, not the file's
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read the header row: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	eventType, err := csvType(header)
	if err != nil {
		return err
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var line int
		var d *aisle.Decoded
		if err != nil {
			var parseErr *csv.ParseError
			if !errors.As(err, &parseErr) {
				return err
			}
			err = aisle.Errorf(aisle.EINVALID, "bad CSV: %s", parseErr.Err)
			line = parseErr.Line
		} else {
			line, _ = cr.FieldPos(0)
			d, err = csvEvent(eventType, header, row, clock)
		}
		if err := emit(line, d, err); err != nil {
			return err
		}
	}
}

// csvEvent makes the event of one CSV row: each non-empty cell is the data
// field its column names, except "time" (the event time) and "removed".
func csvEvent(eventType string, header, row []string, clock func() time.Time) (*aisle.Decoded, error) {
	if len(row) != len(header) {
		return nil, aisle.Errorf(aisle.EINVALID, "%d cells, the header has %d", len(row), len(header))
	}
	data := map[string]any{}
	var at *time.Time
	for i, col := range header {
		cell := strings.TrimSpace(row[i])
		if cell == "" {
			continue
		}
		switch {
		case col == "time":
			t, err := time.Parse(time.RFC3339Nano, cell)
			if err != nil {
				return nil, aisle.Errorf(aisle.EINVALID, "time %q is not RFC 3339", cell)
			}
			at = &t
		case col == "removed" && eventType == aisle.TypeAssortmentUpserted:
			removed, err := strconv.ParseBool(cell)
			if err != nil {
				return nil, aisle.Errorf(aisle.EINVALID, "removed %q is not true or false", cell)
			}
			if removed {
				eventType = aisle.TypeAssortmentRemoved
			}
		case csvNumbers[col]:
			n, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				return nil, aisle.Errorf(aisle.EINVALID, "%s %q is not a number", col, cell)
			}
			data[col] = json.Number(strconv.FormatFloat(n, 'f', -1, 64))
		default:
			data[col] = cell
		}
	}
	return buildCatalogEvent(eventType, at, data, clock)
}

// runSeed is `aisle seed demo`: it publishes the demo catalog to
// aisle.catalog through the import's producer, for the stream workers to
// apply. Production never gets demo data, so it refuses with
// AISLE_ENV=production. The events have stable ids and an old event time,
// so seeding twice changes nothing and a marketplace's own events win.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "demo" {
		return errors.New("usage: aisle seed demo")
	}
	fset, c := newCommand("seed demo", stderr)
	fset.Func("env", "`development|production`: production refuses", func(s string) error { return parseEnv(c, s) })
	if err := parseCommand(fset, args[1:]); err != nil {
		return err
	}
	if c.Production {
		return errors.New("seed demo: refused with AISLE_ENV=production: production never gets demo data")
	}
	events, err := postgres.DemoEvents()
	if err != nil {
		return err
	}
	producer, err := catalogProducer(c, stderr)
	if err != nil {
		return err
	}
	defer producer.Close()
	imp := &importer{producer: producer, batch: 5000, progress: stderr, start: time.Now()}
	for _, d := range events {
		if err := imp.add(ctx, d); err != nil {
			return err
		}
	}
	if err := imp.flush(ctx); err != nil {
		return err
	}
	return imp.summary(stdout)
}

// runSimulate is `aisle simulate`: the live marketplace until interrupted
// (or --duration), or with --fraud-history the checkout history alone, for
// `aisle train fraud`, after which it exits.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("simulate", stderr)
	rate := fs.Float64("rate", 100, "events per second of each simulated world (shelves, shoppers)")
	seed := fs.Int64("seed", 1, "random seed: the same seed publishes the same sequence")
	duration := durationFlag(fs, "duration", 0, "stop after this long (0: until interrupted)")
	perStore := fs.Int("products-per-store", demoProductsPerStore, "simulate this many products of each store's assortment (0: all)")
	fraudHistory := fs.Int("fraud-history", 0, "publish only this many `DAYS` of simulated checkout history ending now, to train a fraud model on, and exit")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *fraudHistory < 0 {
		return fmt.Errorf("--fraud-history must be 0 or more days, got %d", *fraudHistory)
	}
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{c.EmbeddedKafka}
	}
	log := commandLogger(c, stderr)
	db, err := postgres.Open(ctx, c.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	producer, err := streaming.NewProducer(c.KafkaBrokers, log)
	if err != nil {
		return err
	}
	defer producer.Close()
	if *fraudHistory > 0 {
		if err := publishFraudHistory(ctx, db, producer, *seed, *fraudHistory, log); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "published %d days of simulated checkout history; train on it with: aisle train fraud --since %dd --activate\n", *fraudHistory, *fraudHistory)
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	return runSimulator(ctx, db, producer, *rate, *seed, *perStore, log)
}

// demoProductsPerStore is how much of each store's assortment the simulator
// animates by default: at tens of events per second every store then moves
// within seconds.
const demoProductsPerStore = 50

// runSimulator publishes the simulated marketplace over the real catalog
// until ctx is done.
func runSimulator(ctx context.Context, db *postgres.DB, producer *streaming.Producer, rate float64, seed int64, perStore int, log *slog.Logger) error {
	cat, err := simulationCatalog(ctx, db)
	if err != nil {
		return err
	}
	log.Info("simulator publishing", "rate", rate, "seed", seed, "stores", len(cat.Stores), "products_per_store", perStore)
	publish := func(ctx context.Context, ev aisle.Event) error {
		_, err := producer.Publish(ctx, ev, "") // keyed by the event's entity
		return err
	}
	// Beside the shelves: the shoppers' sessions and orders at the same
	// rate over every store's whole assortment, and at a fifth of the rate
	// the checkout's world (orders, declines and labels for fraud risk).
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return simulate.Run(ctx, simulate.RunConfig{Catalog: cat.Sample(perStore), Seed: seed, Rate: rate}, publish)
	})
	g.Go(func() error {
		return simulate.RunShopping(ctx, simulate.RunConfig{Catalog: cat, Seed: seed, Rate: rate}, simulate.DefaultShoppingConfig(seed), publish)
	})
	g.Go(func() error {
		return simulate.RunFraud(ctx, simulate.FraudRunConfig{Stores: cat.Sample(perStore).Stores, Seed: seed, Rate: rate / 5}, publish)
	})
	return g.Wait()
}

// simulationCatalog is the database's catalog as the simulator sees it.
func simulationCatalog(ctx context.Context, db *postgres.DB) (simulate.Catalog, error) {
	sc, err := db.SimulationCatalog(ctx)
	if err != nil {
		return simulate.Catalog{}, err
	}
	cat := simulate.Catalog{Categories: sc.Categories}
	for _, s := range sc.Stores {
		cat.Stores = append(cat.Stores, simulate.Store{ID: s.StoreID, Products: s.ProductIDs})
	}
	return cat, nil
}
