package eval

import (
	"cmp"
	"math"
	"slices"
)

// Metrics score probabilistic predictions of binary outcomes.
type Metrics struct {
	LogLoss float64 `json:"log_loss"`
	Brier   float64 `json:"brier"`
	ECE     float64 `json:"ece"` // expected calibration error over 10 equal-width bins
	AUC     float64 `json:"auc"`
	// Selection is what a storefront showing only the most likely items gets.
	Selection []Selection `json:"selection"`
}

// Selection describes the picks with the highest predicted probability,
// Share of all of them: how often they were found and how often the item was
// really on the shelf. Ties at the cut count fractionally, as the expected
// value under a random tie-break, so a constant predictor scores the base rate.
type Selection struct {
	Share       float64 `json:"share"`
	FoundRate   float64 `json:"found_rate"`
	OnShelfRate float64 `json:"on_shelf_rate"`
}

// selectionShares are the selection levels reported: showing half, 80% and
// 90% of the items asked for.
var selectionShares = []float64{0.5, 0.8, 0.9}

// prediction is one scored pick.
type prediction struct {
	p       float64
	found   bool // the pick's outcome: the target
	onShelf bool // hidden truth: the item was on the shelf
}

// with is the prediction p of the same pick.
func (x prediction) with(p float64) prediction {
	x.p = p
	return x
}

// eceBins is the number of equal-width probability bins of the ECE.
const eceBins = 10

// score computes every metric; preds must not be empty.
func score(preds []prediction) Metrics {
	n := float64(len(preds))
	var m Metrics
	var binCount, binP, binY [eceBins]float64
	for _, x := range preds {
		p := min(max(x.p, 1e-15), 1-1e-15)
		y := boolFloat(x.found)
		m.LogLoss -= y*math.Log(p) + (1-y)*math.Log(1-p)
		m.Brier += (p - y) * (p - y)
		b := min(int(p*eceBins), eceBins-1)
		binCount[b]++
		binP[b] += p
		binY[b] += y
	}
	m.LogLoss /= n
	m.Brier /= n
	for b := range binCount {
		m.ECE += math.Abs(binP[b]-binY[b]) / n
	}

	sorted := slices.Clone(preds)
	slices.SortStableFunc(sorted, func(a, b prediction) int { return cmp.Compare(b.p, a.p) })
	m.AUC = auc(sorted)
	for _, share := range selectionShares {
		m.Selection = append(m.Selection, selection(sorted, share))
	}
	return m
}

// auc is the Mann-Whitney probability that a found pick scores above a
// not-found one, ties counting half; sorted is by descending probability.
func auc(sorted []prediction) float64 {
	var pos, neg, wins float64
	for i := 0; i < len(sorted); {
		j := i
		var groupPos, groupNeg float64
		for ; j < len(sorted) && sorted[j].p == sorted[i].p; j++ {
			if sorted[j].found {
				groupPos++
			} else {
				groupNeg++
			}
		}
		// Found picks in this group beat every not-found pick below it, and
		// tie with the not-found picks of the group.
		wins += groupNeg*pos + 0.5*groupNeg*groupPos
		pos += groupPos
		neg += groupNeg
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return wins / (pos * neg)
}

// selection takes the top share of sorted (descending), whole tie groups
// first and a fraction of the group straddling the cut.
func selection(sorted []prediction, share float64) Selection {
	budget := share * float64(len(sorted))
	var taken, found, onShelf float64
	for i := 0; i < len(sorted) && taken < budget; {
		j := i
		var groupFound, groupOnShelf float64
		for ; j < len(sorted) && sorted[j].p == sorted[i].p; j++ {
			groupFound += boolFloat(sorted[j].found)
			groupOnShelf += boolFloat(sorted[j].onShelf)
		}
		size := float64(j - i)
		f := min(1, (budget-taken)/size)
		taken += f * size
		found += f * groupFound
		onShelf += f * groupOnShelf
		i = j
	}
	if taken == 0 {
		return Selection{Share: share}
	}
	return Selection{Share: share, FoundRate: found / taken, OnShelfRate: onShelf / taken}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
