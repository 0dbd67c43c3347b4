package availability_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features/featurestest"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// Finding (issue 18, "hours are UTC"): serving read the hour of the day in
// UTC whatever the store's catalog time zone. Priors whose hours are the
// stores' own are read on the store's clock: the seeded stores keep
// Chicago's hours, so at 02:00 UTC it is 20:00 at the store.
func TestAnswersReadTheStoresClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	model := models.DefaultAvailabilityModel()
	svc, err := availability.NewService(ctx, db, featurestest.MustOpen(t), unusedPublisher{t}, model, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC) // 20:00 in Chicago (CST)
	svc.Now = func() time.Time { return at }
	priors := models.DefaultAvailabilityPriors()
	priors.FittedAt, priors.LocalHours = at.Add(-time.Hour), true
	priors.HourShifts = make([]float64, 24)
	priors.HourShifts[20] = -3 // evening shelves run empty
	if err := db.SaveAvailabilityPriors(ctx, priors); err != nil {
		t.Fatal(err)
	}
	if err := svc.RefreshPriors(ctx); err != nil {
		t.Fatal(err)
	}
	products, err := db.CarriedProducts(ctx, "s-1")
	if err != nil || len(products) == 0 {
		t.Fatalf("s-1 carries %v, %v", products, err)
	}
	categories, err := db.ProductCategories(ctx, products[:1])
	if err != nil {
		t.Fatal(err)
	}
	items, err := svc.Items(ctx, "s-1", products[:1])
	if err != nil {
		t.Fatal(err)
	}
	item := models.ShelfItem{StoreID: "s-1", ProductID: products[0], Category: categories[products[0]]}
	inUTC := model.ProbabilityOf(models.AvailabilityEvidence{}, priors, item, at)
	item.Location = chicago
	onTheStoresClock := model.ProbabilityOf(models.AvailabilityEvidence{}, priors, item, at)
	if got := items[0].Probability; got != onTheStoresClock || !(got < inUTC-0.2) {
		t.Errorf("answer at 20:00 store time: %.3f, want %.3f (the evening shift), not %.3f (02:00 UTC)", got, onTheStoresClock, inUTC)
	}
}
