package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/postgres/postgrestest"
)

// A redelivered pick.replaced is recorded once, within a batch and across
// batches, and the counts are per replacement of one product.
func TestRecordReplacementsIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.MustOpenSeededDB(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	r := func(id, product, replacement string) postgres.AcceptedReplacement {
		return postgres.AcceptedReplacement{EventID: id, StoreID: "s-1", ProductID: product, ReplacementID: replacement, At: at}
	}
	recorded, err := db.RecordReplacements(ctx, []postgres.AcceptedReplacement{r("e-1", "p-1", "p-2"), r("e-2", "p-1", "p-2"), r("e-1", "p-1", "p-2"), r("e-3", "p-1", "p-3"), r("e-4", "p-9", "p-2")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, true, true}; !slices.Equal(recorded, want) {
		t.Errorf("recorded %v, want %v", recorded, want)
	}
	recorded, err = db.RecordReplacements(ctx, []postgres.AcceptedReplacement{r("e-2", "p-1", "p-2"), r("e-5", "p-1", "p-3")})
	if err != nil || !slices.Equal(recorded, []bool{false, true}) {
		t.Errorf("again: recorded %v, %v; want [false true]", recorded, err)
	}
	counts, err := db.AcceptedReplacements(ctx, "p-1")
	if err != nil || len(counts) != 2 || counts["p-2"] != 2 || counts["p-3"] != 2 {
		t.Errorf("accepted replacements of p-1 = %v, %v; want p-2: 2, p-3: 2", counts, err)
	}
}
