package models

import (
	"strings"
	"testing"
)

func TestRankReplacements(t *testing.T) {
	m := DefaultReplacementModel()
	original := ReplacementItem{ID: "p-1", Name: "Acme Greek Yogurt 32 oz", Brand: "Acme", Size: "32 oz"}
	candidate := func(id, name, brand, size string, available float64) ReplacementCandidate {
		return ReplacementCandidate{ReplacementItem: ReplacementItem{ID: id, Name: name, Brand: brand, Size: size}, Available: available}
	}
	sameLine := candidate("p-2", "Clover Greek Yogurt 32 oz", "Clover", "32 oz", 0.9)
	sameBrand := candidate("p-3", "Acme Oat Crackers 8 oz", "Acme", "8 oz", 0.9)
	other := candidate("p-4", "Birch Oat Crackers 8 oz", "Birch", "8 oz", 0.95)
	gone := candidate("p-5", "Acme Greek Yogurt 16 oz", "Acme", "16 oz", 0.01)
	accepted := candidate("p-6", "Dunmore Spicy Beans 12 oz", "Dunmore", "12 oz", 0.9)
	accepted.Accepted = 3
	self := candidate("p-1", original.Name, "Acme", "32 oz", 0.9)

	got := m.Rank(original, []ReplacementCandidate{other, gone, sameBrand, accepted, sameLine, self}, 10)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "p-2,p-6,p-3,p-4" {
		t.Errorf("ranked %v; want the same line and size, then the often accepted, then the same brand, then the rest, without the original or the empty shelf", ids)
	}
	for _, r := range got {
		if r.Score <= 0 || r.Score > r.Available*m.affinity(original, nameTokens(original), r.ReplacementCandidate).total()+1e-12 || r.Reason == "" {
			t.Errorf("%s: score %v, reason %q", r.ID, r.Score, r.Reason)
		}
	}
	reasons := map[string]string{}
	for _, r := range got {
		reasons[r.ID] = r.Reason
	}
	for id, want := range map[string]string{
		"p-6": "accepted as a replacement 3 times; 90% likely on the shelf",
		"p-2": "same size, similar product; 90% likely on the shelf",
		"p-3": "same brand; 90% likely on the shelf",
		"p-4": "same category; 95% likely on the shelf",
	} {
		if reasons[id] != want {
			t.Errorf("reason of %s = %q, want %q", id, reasons[id], want)
		}
	}
	if got := m.Rank(original, []ReplacementCandidate{other, sameLine, sameBrand}, 2); len(got) != 2 || got[0].ID != "p-2" {
		t.Errorf("first 2: %+v", got)
	}
	// A likelier shelf wins between equally similar products.
	a, b := candidate("p-8", "Birch Oat Crackers 8 oz", "Birch", "8 oz", 0.5), candidate("p-7", "Birch Oat Crackers 8 oz", "Birch", "8 oz", 0.9)
	if got := m.Rank(original, []ReplacementCandidate{a, b}, 2); got[0].ID != "p-7" {
		t.Errorf("equally similar: %s first; want the likelier on the shelf", got[0].ID)
	}
}
