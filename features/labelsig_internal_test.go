package features

import (
	"slices"
	"testing"
	"time"

	"github.com/aisle/aisle/models"
)

// An order record's label signature carries the order's time, for the
// store's fresh frauds; one stored before it did (the entities alone) still
// names the entities, with no time, so its label still counts in the
// delayed-label risk and never as fresh.
func TestLabelSignatureCarriesTheOrderTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	o := models.FraudOrder{OrderID: "o-1", UserID: "u-1", StoreID: "s-1", Card: "c-1", Device: "d-1", Address: "a-1", At: at}
	entities, orderAt := labelEntities(labelSignature(o))
	if !slices.Equal(entities, models.LabelEntities(o)) || !orderAt.Equal(at) {
		t.Errorf("signature %q reads as %v at %v, want %v at %v", labelSignature(o), entities, orderAt, models.LabelEntities(o), at)
	}
	entities, orderAt = labelEntities("c-1 d-1 a-1 s-1")
	if !slices.Equal(entities, models.LabelEntities(o)) || !orderAt.IsZero() {
		t.Errorf("a signature of before reads as %v at %v, want %v and no time", entities, orderAt, models.LabelEntities(o))
	}
	for _, sig := range []string{"c-1 d-1 a-1", "c-1 d-1 a-1 s-1 noon", "c-1 d-1 a-1 s-1 1 2"} {
		if entities, _ := labelEntities(sig); entities != nil {
			t.Errorf("%q reads as %v, want not a signature", sig, entities)
		}
	}
}
