package recommend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// CoPurchaseFit is what a batch run fitted and saved.
type CoPurchaseFit struct {
	FitID    int64
	Orders   int
	Products int // products with co-purchase neighbours
	Pairs    int // neighbour entries kept
	Since    time.Time
}

// ErrNoOrders is FitCoPurchase's error when no order was placed in the
// window: there is nothing to fit.
var ErrNoOrders = errors.New("no orders placed in the window: nothing to fit")

// FitCoPurchase fits co-purchase neighbours and popularity from the orders
// placed since since and saves them as the newest fit, which serving picks
// up within a minute. Running it again over the same orders saves the same
// neighbours again: it is safe to re-run and to schedule.
func FitCoPurchase(ctx context.Context, db *postgres.DB, since time.Time, cfg models.CoPurchaseConfig) (CoPurchaseFit, error) {
	baskets, err := db.Baskets(ctx, since)
	if err != nil {
		return CoPurchaseFit{}, err
	}
	if len(baskets) == 0 {
		return CoPurchaseFit{}, fmt.Errorf("since %s: %w", since.Format(time.RFC3339), ErrNoOrders)
	}
	fit := models.FitCoPurchase(baskets, cfg)
	id, err := db.SaveCoPurchase(ctx, fit, since)
	if err != nil {
		return CoPurchaseFit{}, err
	}
	out := CoPurchaseFit{FitID: id, Orders: fit.Orders, Products: len(fit.Neighbours), Since: since}
	for _, nbs := range fit.Neighbours {
		out.Pairs += len(nbs)
	}
	return out, nil
}
