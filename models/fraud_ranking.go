package models

import (
	"cmp"
	"slices"
)

// FraudRanking is the AUC and average precision of fraud scores for their
// outcomes. AUC is the Mann-Whitney probability that a fraud scores above a
// legitimate order, ties counting half (0.5 without both outcomes). Average
// precision is Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct scores, highest first:
// the area under the precision-recall curve without interpolation, ties
// forming one threshold (0 without frauds).
func FraudRanking(scores []float64, fraud []bool) (auc, averagePrecision float64) {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	var pos, neg, wins, ap float64
	for i := 0; i < len(order); {
		j := i
		var groupPos, groupNeg float64
		for ; j < len(order) && scores[order[j]] == scores[order[i]]; j++ {
			if fraud[order[j]] {
				groupPos++
			} else {
				groupNeg++
			}
		}
		// The frauds of this group beat every legitimate order below it and
		// tie with the group's legitimate ones.
		wins += groupNeg*pos + 0.5*groupNeg*groupPos
		pos += groupPos
		neg += groupNeg
		if groupPos > 0 {
			ap += groupPos * pos / (pos + neg) // recall step (÷ all frauds, below) × precision
		}
		i = j
	}
	if pos > 0 {
		averagePrecision = ap / pos
	}
	if pos == 0 || neg == 0 {
		return 0.5, averagePrecision
	}
	return wins / (pos * neg), averagePrecision
}
