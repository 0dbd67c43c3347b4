package fraud

import (
	"testing"

	"github.com/aisle/aisle/postgres"
)

func TestAlertHubFiltersAndDropsSlowSubscribers(t *testing.T) {
	t.Parallel()
	h := NewAlertHub()
	high := h.Subscribe(0.8)
	all := h.Subscribe(0)
	h.Publish(postgres.FraudAssessment{OrderID: "o-low", Score: 0.1})
	h.Publish(postgres.FraudAssessment{OrderID: "o-high", Score: 0.9})
	if a := <-high.C; a.OrderID != "o-high" {
		t.Errorf("minScore 0.8 got %s first", a.OrderID)
	}
	if a, b := <-all.C, <-all.C; a.OrderID != "o-low" || b.OrderID != "o-high" {
		t.Errorf("minScore 0 got %s, %s; want both in order", a.OrderID, b.OrderID)
	}

	// high reads nothing more: one alert past its buffer closes it, and
	// the publisher never waits.
	for range alertBuffer + 1 {
		h.Publish(postgres.FraudAssessment{OrderID: "o-flood", Score: 1})
		<-all.C // all keeps up
	}
	n := 0
	for range high.C {
		n++
	}
	if n != alertBuffer {
		t.Errorf("slow subscriber got %d buffered alerts before being closed, want %d", n, alertBuffer)
	}
	h.Publish(postgres.FraudAssessment{OrderID: "o-after", Score: 1})
	if a := <-all.C; a.OrderID != "o-after" {
		t.Errorf("the subscriber that kept up got %s", a.OrderID)
	}

	all.Close()
	all.Close() // idempotent
	h.Close()
	h.Close()
	if _, ok := <-h.Subscribe(0).C; ok {
		t.Error("a subscription after Close is open")
	}
}
