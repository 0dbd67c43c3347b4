package models

import (
	"math"
	"testing"
	"time"
)

func TestAvailabilityHistory(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	m.PickHalfLife = time.Hour // counts halve every hour: easy numbers
	hour := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

	// step is one replayed event; for picks, want is the evidence the
	// returned observation must carry (the state before the pick).
	type step struct {
		key      string
		feed     bool
		quantity int64
		found    bool
		at       time.Time
		want     AvailabilityEvidence
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first pick sees nothing", []step{
			{key: "s:a", found: true, at: t0, want: AvailabilityEvidence{}},
		}},
		{"picks decay to the newer pick", []step{
			{key: "s:a", found: true, at: t0},
			{key: "s:a", found: false, at: hour(1), want: AvailabilityEvidence{Found: 1, At: t0}},
			{key: "s:a", found: true, at: hour(2), want: AvailabilityEvidence{Found: 0.5, NotFound: 1, At: hour(1)}},
		}},
		{"a late pick is discounted to the newest", []step{
			{key: "s:a", found: true, at: hour(2)},
			{key: "s:a", found: false, at: hour(1), want: AvailabilityEvidence{Found: 1, At: hour(2)}},
			{key: "s:a", found: true, at: hour(2), want: AvailabilityEvidence{Found: 1, NotFound: 0.5, At: hour(2)}},
		}},
		{"feeds show in the next pick, newest level wins", []step{
			{key: "s:a", feed: true, quantity: 4, at: t0},
			{key: "s:a", feed: true, quantity: 9, at: t0.Add(-time.Minute)},
			{key: "s:a", found: false, at: hour(1), want: AvailabilityEvidence{FeedQuantity: 4, FeedAt: t0}},
			{key: "s:a", feed: true, quantity: 0, at: hour(1)},
			{key: "s:a", found: true, at: hour(1), want: AvailabilityEvidence{NotFound: 1, At: hour(1), FeedQuantity: 0, FeedAt: hour(1)}},
		}},
		{"keys are independent", []step{
			{key: "s:a", found: true, at: t0},
			{key: "s:a", feed: true, quantity: 3, at: t0},
			{key: "s:b", found: false, at: hour(1), want: AvailabilityEvidence{}},
			{key: "t:a", found: false, at: hour(1), want: AvailabilityEvidence{}},
			{key: "s:a", found: true, at: hour(1), want: AvailabilityEvidence{Found: 1, At: t0, FeedQuantity: 3, FeedAt: t0}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := m.NewHistory()
			for i, s := range tt.steps {
				if s.feed {
					h.Count(s.key, s.quantity, s.at, s.at)
					continue
				}
				product := s.key[len("s:"):]
				o := h.Pick(s.key, ShelfItem{StoreID: "s", ProductID: product, Category: "cat-" + product}, s.found, s.at)
				if o.ProductID != product || o.Category != "cat-"+product || o.Found != s.found || !o.At.Equal(s.at) {
					t.Errorf("step %d: observation %+v does not describe the pick", i, o)
				}
				if !sameEvidence(o.Evidence, s.want) {
					t.Errorf("step %d: evidence before the pick %+v, want %+v", i, o.Evidence, s.want)
				}
			}
		})
	}
}

func sameEvidence(got, want AvailabilityEvidence) bool {
	return math.Abs(got.Found-want.Found) < 1e-12 && math.Abs(got.NotFound-want.NotFound) < 1e-12 && got.At.Equal(want.At) &&
		got.FeedQuantity == want.FeedQuantity && got.FeedAt.Equal(want.FeedAt)
}
