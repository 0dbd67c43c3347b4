package simulate

import (
	"slices"
	"testing"
)

func TestSampleKeepsTheFirstProductsOfEachStore(t *testing.T) {
	t.Parallel()
	cat := Catalog{
		Stores:     []Store{{ID: "s-1", Products: []string{"p-1", "p-2", "p-3"}}, {ID: "s-2", Products: []string{"p-4"}}},
		Categories: map[string]string{"p-1": "a", "p-2": "a", "p-3": "b", "p-4": "b"},
	}
	got := cat.Sample(2)
	if len(got.Stores) != 2 || !slices.Equal(got.Stores[0].Products, []string{"p-1", "p-2"}) || !slices.Equal(got.Stores[1].Products, []string{"p-4"}) {
		t.Fatalf("Sample(2) = %+v", got.Stores)
	}
	if all := cat.Sample(0); !slices.Equal(all.Stores[0].Products, cat.Stores[0].Products) {
		t.Fatalf("Sample(0) = %+v, want everything", all.Stores)
	}
}
