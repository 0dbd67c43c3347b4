package models

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
)

// ReplacementItem is what the replacement model knows of a product.
type ReplacementItem struct {
	ID    string
	Name  string
	Brand string // "" when unknown
	Size  string // "" when unknown
}

// ReplacementCandidate is a product the store carries in the original's
// category, with the signals about it.
type ReplacementCandidate struct {
	ReplacementItem
	Available  float64 // probability that it is on the shelf now
	Accepted   int     // times shoppers replaced the original with it (pick.replaced)
	CoPurchase float64 // co-purchase similarity with the original, 0 when none
	Popularity float64 // share of the store's orders that contain it
}

// ReplacementModel ranks replacements by the chance that the shopper finds
// the candidate and that the customer accepts it:
//
//	score = Available × affinity,
//	affinity = Base + Brand·[same brand] + Size·[same size] + Name·nameSimilarity
//	         + Accepted·log(1+accepted) + CoPurchase·coPurchase + Popularity·√popularity
//
// Every affinity term is the evidence that a customer who wanted the
// original takes this one instead: the same product line (its name), the
// same brand or pack size, and replacements accepted before, which say it
// directly. The product with availability says whether there is one to take.
type ReplacementModel struct {
	Base, Brand, Size, Name, Accepted, CoPurchase, Popularity float64
	// MinAvailable drops candidates less likely than this to be on the
	// shelf: a picker should not walk to an empty slot. The default is the
	// availability model's OUT_OF_STOCK threshold, so a suggestion is
	// never an item the API calls out of stock.
	MinAvailable float64
}

// DefaultReplacementModel is what serving and `aisle eval replacements` use.
// The weights were chosen on seed 1 of the evaluation and checked on seeds 2
// and 3 (README "Replacement suggestions").
func DefaultReplacementModel() ReplacementModel {
	return ReplacementModel{Base: 0.2, Brand: 0.3, Size: 0.3, Name: 1.5, Accepted: 0.6, CoPurchase: 0.5, Popularity: 0.5, MinAvailable: DefaultAvailabilityModel().LowStockAbove}
}

// ScoredReplacement is a ranked candidate with why it is suggested.
type ScoredReplacement struct {
	ReplacementCandidate
	Score  float64
	Reason string
}

// Rank returns the first best candidates for original, best first (ties by
// id, so the order is deterministic). Candidates equal to the original or
// below MinAvailable are left out.
func (m ReplacementModel) Rank(original ReplacementItem, candidates []ReplacementCandidate, first int) []ScoredReplacement {
	origTokens := nameTokens(original)
	out := make([]ScoredReplacement, 0, len(candidates))
	for _, c := range candidates {
		if c.ID == original.ID || c.Available < m.MinAvailable {
			continue
		}
		a := m.affinity(original, origTokens, c)
		out = append(out, ScoredReplacement{ReplacementCandidate: c, Score: c.Available * a.total(), Reason: a.reason(c)})
	}
	slices.SortFunc(out, func(x, y ScoredReplacement) int {
		if c := cmp.Compare(y.Score, x.Score); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	return out[:min(first, len(out))]
}

// affinityTerms are the weighted terms of one candidate's affinity.
type affinityTerms struct {
	base, brand, size, name, accepted, coPurchase, popularity float64
}

func (m ReplacementModel) affinity(original ReplacementItem, origTokens map[string]bool, c ReplacementCandidate) affinityTerms {
	t := affinityTerms{
		base:       m.Base,
		name:       m.Name * jaccard(origTokens, nameTokens(c.ReplacementItem)),
		accepted:   m.Accepted * math.Log1p(float64(max(c.Accepted, 0))),
		coPurchase: m.CoPurchase * max(c.CoPurchase, 0),
		popularity: m.Popularity * math.Sqrt(max(c.Popularity, 0)),
	}
	if original.Brand != "" && strings.EqualFold(original.Brand, c.Brand) {
		t.brand = m.Brand
	}
	if original.Size != "" && strings.EqualFold(original.Size, c.Size) {
		t.size = m.Size
	}
	return t
}

func (t affinityTerms) total() float64 {
	return t.base + t.brand + t.size + t.name + t.accepted + t.coPurchase + t.popularity
}

// reason says the strongest signals behind a suggestion, in a few words.
func (t affinityTerms) reason(c ReplacementCandidate) string {
	var parts []string
	if c.Accepted > 0 {
		parts = append(parts, fmt.Sprintf("accepted as a replacement %d %s", c.Accepted, plural(c.Accepted, "time", "times")))
	}
	switch {
	case t.brand > 0 && t.size > 0:
		parts = append(parts, "same brand and size")
	case t.brand > 0:
		parts = append(parts, "same brand")
	case t.size > 0:
		parts = append(parts, "same size")
	}
	if t.name >= 0.5*t.total() && t.name > 0 {
		parts = append(parts, "similar product")
	}
	if t.coPurchase > 0 && t.coPurchase >= t.popularity {
		parts = append(parts, "bought by the same customers")
	}
	if len(parts) == 0 {
		parts = append(parts, "same category")
	}
	return fmt.Sprintf("%s; %.0f%% likely on the shelf", strings.Join(parts, ", "), 100*c.Available)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// nameTokens are the lower-case words of a product's name without its
// brand's and size's words: what says which product line it is.
func nameTokens(p ReplacementItem) map[string]bool {
	drop := map[string]bool{}
	for _, w := range words(p.Brand + " " + p.Size) {
		drop[w] = true
	}
	tokens := map[string]bool{}
	for _, w := range words(p.Name) {
		if !drop[w] {
			tokens[w] = true
		}
	}
	return tokens
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// jaccard is |a ∩ b| / |a ∪ b|, 0 for two empty sets.
func jaccard(a, b map[string]bool) float64 {
	inter := 0
	for w := range a {
		if b[w] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}
