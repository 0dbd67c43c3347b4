package recommend

import (
	"context"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// Replacements: first's default and bound.
const (
	DefaultReplacements = 5
	MaxReplacements     = 20
)

// AcceptedReplacements returns the stream applier of aisle.picking that
// records pick.replaced events in PostgreSQL, the replacements shoppers
// made, for replacement suggestions. It is idempotent by event id, so it
// needs no Redis dedup and can share the topic with the availability
// applier; other events of the topic are not its business (applied false).
func AcceptedReplacements(db *postgres.DB) func(context.Context, []aisle.Update) ([]bool, error) {
	return func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		return applySome(ctx, updates, func(u aisle.Update) (postgres.AcceptedReplacement, bool) {
			if u.Event.Type != aisle.TypePickReplaced {
				return postgres.AcceptedReplacement{}, false
			}
			p := u.Event.Pick
			return postgres.AcceptedReplacement{EventID: u.Event.ID, StoreID: p.StoreID, ProductID: p.ProductID,
				ReplacementID: p.ReplacementProductID, At: u.Event.Time}, true
		}, db.RecordReplacements)
	}
}

// Replacement is one suggested replacement, read at the store.
type Replacement struct {
	Product      *postgres.Product // StoreID set: its price and availability are the store's
	Availability availability.Item
	Score        float64
	Reason       string
}

// Replacements suggests up to first (nil: DefaultReplacements; 1..
// MaxReplacements) products of the store to pick instead of productID,
// best first: products the store carries in the same category, likely on
// the shelf now, ranked by models.ReplacementModel. Public like the
// catalog and availability. Errors: EINVALID for bad ids or first;
// ENOTFOUND for an unknown store or product.
func (s *Service) Replacements(ctx context.Context, storeID, productID string, first *int) ([]Replacement, error) {
	n := DefaultReplacements
	if first != nil {
		n = *first
	}
	if n < 1 || n > MaxReplacements {
		return nil, aisle.Errorf(aisle.EINVALID, "first must be between 1 and %d, got %d", MaxReplacements, n)
	}
	// Validates both ids as an availability request does (NOT_FOUND for
	// unknown ones), without reading any availability.
	if err := s.avail.CheckSubscription(ctx, storeID, []string{productID}); err != nil {
		return nil, err
	}
	originals, errs := s.catalog.ProductsByIDs(ctx, []string{productID})
	if errs != nil {
		return nil, errs[0]
	}
	original := originals[0]
	products, err := s.catalog.ReplacementCandidates(ctx, storeID, productID)
	if err != nil {
		return nil, err
	}
	if len(products) == 0 {
		return []Replacement{}, nil
	}
	ids := make([]string, len(products))
	for i, p := range products {
		ids[i] = p.ID
	}
	items, err := s.avail.Items(ctx, storeID, ids)
	if err != nil {
		return nil, err
	}
	accepted, err := s.catalog.AcceptedReplacements(ctx, productID)
	if err != nil {
		return nil, err
	}
	snap := s.state.Load()
	coPurchase := scoresByID(snap.fit.Neighbours[productID])
	popular := snap.fit.Popular[storeID]
	if popular == nil {
		popular = snap.fit.Popular[""]
	}
	popularity := scoresByID(popular)

	candidates := make([]models.ReplacementCandidate, len(products))
	byID := make(map[string]int, len(products))
	for i, p := range products {
		byID[p.ID] = i
		candidates[i] = models.ReplacementCandidate{
			ReplacementItem: replacementItem(&p),
			Available:       items[i].Probability,
			Accepted:        accepted[p.ID],
			CoPurchase:      coPurchase[p.ID],
			Popularity:      popularity[p.ID],
		}
	}
	ranked := s.replacementModel.Rank(replacementItem(original), candidates, n)
	out := make([]Replacement, len(ranked))
	for i, r := range ranked {
		j := byID[r.ID]
		out[i] = Replacement{Product: &products[j], Availability: items[j], Score: r.Score, Reason: r.Reason}
	}
	return out, nil
}

func replacementItem(p *postgres.Product) models.ReplacementItem {
	return models.ReplacementItem{ID: p.ID, Name: p.Name, Brand: deref(p.Brand), Size: deref(p.Size)}
}

func scoresByID(scores []models.ItemScore) map[string]float64 {
	m := make(map[string]float64, len(scores))
	for _, s := range scores {
		m[s.ProductID] = s.Score
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
