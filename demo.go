package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/simulate"
	"github.com/aisle/aisle/streaming"
)

// Demo mode (--demo, AISLE_DEMO=1) makes a development server show all
// three answers on its own within minutes: availability moves, sessions and
// orders feed recommendations (live tallies at once, a co-purchase fit every
// demoRefit), and simulated checkouts are scored by the fraud service as a
// client's assessOrder would be, with a model trained at start, so that
// riskAlerts fires.
const (
	// demoRefit is how often the demo fits co-purchase from the orders so
	// far, as a scheduled `aisle batch copurchase` would.
	demoRefit = 5 * time.Minute
	// demoHistoryDays of a generated checkout history train the demo's
	// first fraud model, over demoHistoryCustomers customers: enough
	// labelled fraud for a model, small enough to fit in seconds.
	demoHistoryDays      = 14
	demoHistoryCustomers = 2000
	// demoSeed is the simulations' seed.
	demoSeed = 1
)

// demo is demo mode's work; its run is long-lived work of the server.
type demo struct {
	rate      float64 // events per second of each simulation
	db        *postgres.DB
	producer  *streaming.Producer
	fraud     *fraud.Service
	recommend *recommend.Service
	log       *slog.Logger
}

func newDemo(rate float64, db *postgres.DB, producer *streaming.Producer, fraudService *fraud.Service, reco *recommend.Service, log *slog.Logger) *demo {
	return &demo{rate: rate, db: db, producer: producer, fraud: fraudService, recommend: reco, log: log}
}

// run simulates until ctx is done: the shelves of demoProductsPerStore
// products a store, shoppers over every store's whole assortment, and, once
// a fraud model serves, the checkout at a fifth of the rate; and it refits
// co-purchase every demoRefit.
func (d *demo) run(ctx context.Context) error {
	cat, err := simulationCatalog(ctx, d.db)
	if err != nil {
		return err
	}
	d.log.Info("demo: simulating", "rate", d.rate, "stores", len(cat.Stores), "products_per_store", demoProductsPerStore)
	shelves := cat.Sample(demoProductsPerStore)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return simulate.Run(gctx, simulate.RunConfig{Catalog: shelves, Seed: demoSeed, Rate: d.rate}, d.publish)
	})
	g.Go(func() error {
		return simulate.RunShopping(gctx, simulate.RunConfig{Catalog: cat, Seed: demoSeed, Rate: d.rate}, simulate.DefaultShoppingConfig(demoSeed), d.publish)
	})
	g.Go(func() error {
		if err := d.ensureFraudModel(gctx, shelves.Stores); err != nil {
			return err
		}
		return simulate.RunFraud(gctx, simulate.FraudRunConfig{Stores: shelves.Stores, Seed: demoSeed, Rate: d.rate / 5}, d.checkout)
	})
	g.Go(func() error { return every(demoRefit, "demo: fit co-purchase", d.log, d.refit)(gctx) })
	err = g.Wait()
	if ctx.Err() != nil {
		return nil // stopped: a step cut short by the stop (training, a save) is no failure
	}
	return err
}

// publish writes a simulated event to its topic, keyed by its entity.
func (d *demo) publish(ctx context.Context, ev aisle.Event) error {
	_, err := d.producer.Publish(ctx, ev, "")
	return err
}

// demoService is the principal the demo's checkout assesses orders as.
var demoService = &aisle.Principal{Role: aisle.RoleService}

// checkout sends a simulated order through the fraud service, which scores
// it, stores the assessment, alerts and publishes the order, as assessOrder
// does; the checkout's other events (declines, labels) are published as
// they are. An order the service refuses is logged and the checkout goes
// on: one bad order must not stop the demo.
func (d *demo) checkout(ctx context.Context, ev aisle.Event) error {
	if ev.Type != aisle.TypeOrderPlaced {
		return d.publish(ctx, ev)
	}
	var order aisle.OrderPlaced
	if err := json.Unmarshal(ev.Data, &order); err != nil {
		return fmt.Errorf("demo: simulated order %s: %w", ev.ID, err)
	}
	_, err := d.fraud.Assess(aisle.NewContextWithPrincipal(ctx, demoService), fraud.Order{OrderPlaced: order, Time: ev.Time})
	if err != nil && ctx.Err() == nil {
		d.log.Warn("demo: assessing a simulated order failed", "order_id", order.OrderID, "err", err)
	}
	return nil
}

// ensureFraudModel trains, stores and activates a fraud model on a
// generated checkout history when no version is active yet, and has the
// service serve it.
func (d *demo) ensureFraudModel(ctx context.Context, stores []simulate.Store) error {
	if _, active, err := d.db.ActiveFraudModelVersion(ctx); err != nil || active {
		return err
	}
	w := simulate.DefaultFraudWorld(demoSeed, stores)
	// Three weeks ago for two weeks: every label of the history (up to a
	// week after its order) is known by now.
	w.Start = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -demoHistoryDays-7)
	w.Days, w.Customers, w.ScenarioScale = demoHistoryDays, demoHistoryCustomers, 0.2
	records, err := simulate.GenerateFraud(w)
	if err != nil {
		return fmt.Errorf("demo: generate a checkout history: %w", err)
	}
	events := make([]*aisle.Decoded, len(records))
	for i, r := range records {
		events[i] = r.Event
	}
	v, err := fraud.Train(events)
	if err != nil {
		return fmt.Errorf("demo: train a fraud model: %w", err)
	}
	version, err := d.db.SaveFraudModel(ctx, v)
	if err != nil {
		return err
	}
	if err := d.db.ActivateFraudModel(ctx, version); err != nil {
		return err
	}
	d.log.Info("demo: fraud model trained on a generated history and activated", "version", version,
		"labelled_orders", v.Metrics["rows"], "holdout_auc", v.Metrics["holdout_auc"])
	return d.fraud.ReloadModel(ctx)
}

// refit fits co-purchase from the orders so far and has serving load it;
// before the first order there is nothing to fit, and the live tallies
// serve on.
func (d *demo) refit(ctx context.Context) error {
	fit, err := recommend.FitCoPurchase(ctx, d.db, time.Now().Add(-90*24*time.Hour), models.DefaultCoPurchaseConfig())
	if errors.Is(err, recommend.ErrNoOrders) {
		return nil
	}
	if err != nil {
		return err
	}
	d.log.Info("demo: co-purchase fitted", "fit", fit.FitID, "orders", fit.Orders, "products", fit.Products)
	return d.recommend.Refresh(ctx)
}
