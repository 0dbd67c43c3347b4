package availability

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// MinPriorPicks is the fewest picks a fit needs to replace the stored priors:
// below it, found rates are mostly noise and the current priors are better.
const MinPriorPicks = 100

// ErrNotEnoughHistory is returned (wrapped) by RefitPriors when there are
// fewer than MinPriorPicks picks; nothing is saved.
var ErrNotEnoughHistory = errors.New("not enough pick history")

// History collects the inventory and picking events a priors fit replays.
// Records are added as they are read, so that invalid ones and those before
// the window are dropped at once and memory holds only what the fit uses,
// in a compact form.
type History struct {
	since   time.Time
	events  []pastEvent
	invalid int
	older   int
}

// pastEvent is what a fit needs of one inventory or picking event.
type pastEvent struct {
	id       string
	at       time.Time
	sp       aisle.StoreProduct
	pick     bool      // a pick; else a feed level
	found    bool      // pick.found (not_found and replaced are not found)
	quantity int64     // the feed level
	counted  time.Time // when the feed level was counted
}

// NewHistory returns an empty history of the events at or after since.
// Events before since are left out entirely, so the first picks after it
// see less evidence than serving had; over a window of days that is
// negligible, as pick and feed evidence fade within hours.
func NewHistory(since time.Time) *History {
	return &History{since: since}
}

// Add decodes one record read from topic, stamped by Kafka at stamped.
// Records the stream workers would dead-letter (which judge an event time
// in the future against that stamp) are counted and skipped, as are events
// before the window.
func (h *History) Add(topic string, value []byte, stamped time.Time) {
	d, err := aisle.DecodeEvent(value, topic, stamped)
	if err != nil {
		h.invalid++
		return
	}
	if d.Time.Before(h.since) {
		h.older++
		return
	}
	if d.Snapshot != nil {
		// A completion is about the products a snapshot left out, which
		// only the catalog of its time could name: the fit keeps to the
		// levels the feed sent.
		return
	}
	e := pastEvent{id: d.ID, at: d.Time, sp: d.StoreProduct()}
	if d.Pick != nil {
		e.pick, e.found = true, d.Type == aisle.TypePickFound
	} else {
		e.quantity, e.counted = *d.Inventory.Quantity, d.Inventory.CountedTime(d.Time)
	}
	h.events = append(h.events, e)
}

// PriorsFit describes a fit of the availability priors.
type PriorsFit struct {
	Priors     models.AvailabilityPriors // Observations is the number of picks fitted
	Events     int                       // events replayed
	Duplicates int                       // events dropped because their id came before
	Invalid    int                       // records dropped as the stream would dead-letter them
	Older      int                       // valid events before the window
}

// RefitPriors replays h in event-time order, as the stream would have
// applied it, fits found-rate priors from every pick with the evidence
// serving had just before it, and saves them; serving picks them up within
// a minute (Service.RefreshPriors). Events are ordered by (time, id) and counted once
// per id, like the stream's dedup. Events about stores or products not in
// the catalog count as invalid. With fewer than MinPriorPicks picks it saves
// nothing and returns an error wrapping ErrNotEnoughHistory. It reorders h.
func RefitPriors(ctx context.Context, db *postgres.DB, model models.AvailabilityModel, h *History) (PriorsFit, error) {
	fit := PriorsFit{Invalid: h.invalid, Older: h.older}
	slices.SortFunc(h.events, func(a, b pastEvent) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.id, b.id))
	})
	seen := make(map[string]struct{}, len(h.events))
	var sps []aisle.StoreProduct // distinct, in order of first event
	seenSP := make(map[aisle.StoreProduct]struct{})
	events := make([]pastEvent, 0, len(h.events))
	for _, e := range h.events {
		if _, dup := seen[e.id]; dup {
			fit.Duplicates++
			continue
		}
		seen[e.id] = struct{}{}
		if _, ok := seenSP[e.sp]; !ok {
			seenSP[e.sp] = struct{}{}
			sps = append(sps, e.sp)
		}
		events = append(events, e)
	}

	missing, err := db.MissingStoreProducts(ctx, sps)
	if err != nil {
		return fit, fmt.Errorf("check the history's store products: %w", err)
	}
	var productIDs []string
	for _, sp := range sps {
		if _, gone := missing[sp]; !gone {
			productIDs = append(productIDs, sp.ProductID)
		}
	}
	categories, err := db.ProductCategories(ctx, productIDs)
	if err != nil {
		return fit, fmt.Errorf("read the history's product categories: %w", err)
	}
	zones, err := db.StoreLocations(ctx, storeIDsOf(sps))
	if err != nil {
		return fit, fmt.Errorf("read the history's store time zones: %w", err)
	}

	history := model.NewHistory()
	var obs []models.PickObservation
	for _, e := range events {
		if _, gone := missing[e.sp]; gone {
			fit.Invalid++
			continue
		}
		fit.Events++
		key := e.sp.String()
		if !e.pick {
			history.Count(key, e.quantity, e.counted, e.at)
			continue
		}
		item := models.ShelfItem{StoreID: e.sp.StoreID, ProductID: e.sp.ProductID, Category: categories[e.sp.ProductID], Location: zones[e.sp.StoreID]}
		obs = append(obs, history.Pick(key, item, e.found, e.at))
	}
	if len(obs) < MinPriorPicks {
		return fit, fmt.Errorf("%w: %d picks among %d events since %s, at least %d are needed; the current priors are kept",
			ErrNotEnoughHistory, len(obs), fit.Events, h.since.Format(time.RFC3339), MinPriorPicks)
	}
	fit.Priors = model.FitAvailabilityPriors(obs)
	if err := db.SaveAvailabilityPriors(ctx, fit.Priors); err != nil {
		return fit, err
	}
	return fit, nil
}

// storeIDsOf returns the distinct store IDs of sps, in order.
func storeIDsOf(sps []aisle.StoreProduct) []string {
	var ids []string
	seen := make(map[string]bool)
	for _, sp := range sps {
		if !seen[sp.StoreID] {
			seen[sp.StoreID] = true
			ids = append(ids, sp.StoreID)
		}
	}
	return ids
}
