package models

import "time"

// AvailabilityHistory replays past inventory and picking events into
// per-store-product evidence, the way the online store accumulates it, so
// that a batch fit or an evaluation sees every pick together with the
// evidence serving had just before it. Replay events in event-time order:
// the evidence before a pick is then what a stream applying them in that
// order held. Keys are opaque (e.g. "store:product"). Not safe for
// concurrent use.
type AvailabilityHistory struct {
	model    AvailabilityModel
	evidence map[string]AvailabilityEvidence
}

// NewHistory returns an empty history that accumulates evidence with m's
// parameters.
func (m AvailabilityModel) NewHistory() *AvailabilityHistory {
	return &AvailabilityHistory{model: m, evidence: make(map[string]AvailabilityEvidence)}
}

// Count records a retailer feed level of key counted at countedAt and sent
// at event time t.
func (h *AvailabilityHistory) Count(key string, quantity int64, countedAt, t time.Time) {
	h.evidence[key] = h.model.ObserveCount(h.evidence[key], quantity, countedAt, t)
}

// Evidence is key's evidence so far, as serving would read it now.
func (h *AvailabilityHistory) Evidence(key string) AvailabilityEvidence {
	return h.evidence[key]
}

// Pick records a pick outcome of key at event time t and returns it as an
// observation for fitting, carrying the evidence from before this pick.
func (h *AvailabilityHistory) Pick(key string, item ShelfItem, found bool, t time.Time) PickObservation {
	before := h.evidence[key]
	h.evidence[key] = h.model.ObservePick(before, found, t)
	return PickObservation{StoreID: item.StoreID, ProductID: item.ProductID, Category: item.Category, Found: found, At: t, Evidence: before, Location: item.Location}
}
