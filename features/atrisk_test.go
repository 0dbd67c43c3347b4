package features_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/features/featurestest"
)

func candidates(t *testing.T, s *features.Store, storeID string, n int) ([]string, int64) {
	t.Helper()
	ids, total, err := s.AtRiskCandidates(context.Background(), storeID, 0, n)
	if err != nil {
		t.Fatalf("AtRiskCandidates: %v", err)
	}
	return ids, total
}

// The stream keeps each store's products in its at-risk index, ordered by
// their probability as of their latest evidence, and only that store's.
func TestAtRiskIndexOrdersByScore(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	sp := func(store, product string) aisle.StoreProduct {
		return aisle.StoreProduct{StoreID: store, ProductID: product}
	}
	apply(t, s,
		aisle.Update{Event: pick("e-1", aisle.TypePickFound, sp("s-1", "p-found"), t0)},
		aisle.Update{Event: pick("e-2", aisle.TypePickNotFound, sp("s-1", "p-missing"), t0)},
		aisle.Update{Event: pick("e-3", aisle.TypePickNotFound, sp("s-1", "p-missing"), t0.Add(time.Minute))},
		aisle.Update{Event: feed("e-4", sp("s-1", "p-zero"), 0, t0)},
		aisle.Update{Event: feed("e-5", sp("s-1", "p-plenty"), 40, t0)},
		aisle.Update{Event: pick("e-6", aisle.TypePickNotFound, sp("s-2", "p-other"), t0)},
	)
	ids, total := candidates(t, s, "s-1", 10)
	if total != 4 || len(ids) != 4 {
		t.Fatalf("index of s-1 = %v (%d), want its 4 products", ids, total)
	}
	scores := make([]float64, len(ids))
	for i, id := range ids {
		scores[i] = s.AtRiskScore(read(t, s, sp("s-1", id))[0])
	}
	if !slices.IsSorted(scores) {
		t.Fatalf("index order %v has scores %v, want ascending", ids, scores)
	}
	if ids[len(ids)-1] == "p-missing" || ids[len(ids)-1] == "p-zero" {
		t.Fatalf("index order %v: an item with only negative evidence is last", ids)
	}
	if ids, _ := candidates(t, s, "s-2", 10); !slices.Equal(ids, []string{"p-other"}) {
		t.Fatalf("index of s-2 = %v, want [p-other]", ids)
	}
}

// An index write lost after its apply (a crash between the two round
// trips) is made again when the record is redelivered, although the
// redelivery applies nothing.
func TestAtRiskIndexRepairedByRedelivery(t *testing.T) {
	t.Parallel()
	prefix := featurestest.NewPrefix()
	s := featurestest.MustOpenAt(t, featurestest.URL(), prefix)
	u := aisle.Update{
		Event:  pick("e-1", aisle.TypePickNotFound, aisle.StoreProduct{StoreID: "s-1", ProductID: "p-1"}, t0),
		Origin: aisle.Origin{Topic: aisle.TopicPicking, Partition: 0, Offset: 7},
	}
	if !apply(t, s, u)[0] {
		t.Fatal("first delivery not applied")
	}
	if err := featurestest.Client(t).Del(context.Background(), prefix+features.KeyName("atrisk", "s-1")).Err(); err != nil {
		t.Fatal(err)
	}
	if apply(t, s, u)[0] {
		t.Fatal("redelivery applied again")
	}
	if ids, _ := candidates(t, s, "s-1", 10); !slices.Equal(ids, []string{"p-1"}) {
		t.Fatalf("index after redelivery = %v, want [p-1]", ids)
	}
}

// A store's index never holds more than MaxAtRiskPerStore products; the
// least at risk leave first.
func TestAtRiskIndexIsBounded(t *testing.T) {
	t.Parallel()
	s := featurestest.MustOpen(t)
	var updates []aisle.Update
	for i := range features.MaxAtRiskPerStore + 10 {
		sp := aisle.StoreProduct{StoreID: "s-1", ProductID: fmt.Sprint("p-", i)}
		updates = append(updates, aisle.Update{Event: pick(fmt.Sprint("e-", i), aisle.TypePickFound, sp, t0)})
	}
	risky := aisle.StoreProduct{StoreID: "s-1", ProductID: "p-risky"}
	updates = append(updates, aisle.Update{Event: pick("e-risky", aisle.TypePickNotFound, risky, t0)})
	apply(t, s, updates...)
	ids, total := candidates(t, s, "s-1", 1)
	if total != features.MaxAtRiskPerStore {
		t.Fatalf("index holds %d products, want at most %d", total, features.MaxAtRiskPerStore)
	}
	if !slices.Equal(ids, []string{"p-risky"}) {
		t.Fatalf("lowest of the index = %v, want [p-risky]", ids)
	}
	if err := s.DropAtRisk(context.Background(), "s-1", []string{"p-risky"}); err != nil {
		t.Fatal(err)
	}
	if ids, total := candidates(t, s, "s-1", 1); total != features.MaxAtRiskPerStore-1 || slices.Contains(ids, "p-risky") {
		t.Fatalf("after DropAtRisk: %v of %d", ids, total)
	}
}
