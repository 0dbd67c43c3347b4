package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/recommend"
)

// runBatchCoPurchase is `aisle batch copurchase`.
func runBatchCoPurchase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("batch copurchase", stderr)
	cfg := models.DefaultCoPurchaseConfig()
	since := durationFlag(fs, "since", 90*24*time.Hour, "fit the orders placed in this long before now")
	fs.IntVar(&cfg.K, "k", cfg.K, "co-purchase neighbours kept per product")
	fs.IntVar(&cfg.MinSupport, "min-support", cfg.MinSupport, "orders a pair of products must share to count")
	fs.IntVar(&cfg.Popular, "popular", cfg.Popular, "most popular products kept per store")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if cfg.K < 1 || cfg.MinSupport < 1 || cfg.Popular < 1 {
		return fmt.Errorf("--k, --min-support and --popular must be at least 1")
	}
	db, _, err := openBatchJob(ctx, c, *since, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	fit, err := recommend.FitCoPurchase(ctx, db, time.Now().Add(-*since), cfg)
	if err != nil {
		return fmt.Errorf("batch copurchase: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "co-purchase fit %d saved: %d orders since %s, %d products with %d neighbours (k %d, min support %d); serving loads it within a minute\n",
		fit.FitID, fit.Orders, fit.Since.UTC().Format(time.RFC3339), fit.Products, fit.Pairs, cfg.K, cfg.MinSupport)
	return err
}
