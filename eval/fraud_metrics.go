package eval

import (
	"cmp"
	"slices"
)

// FraudMetrics rank orders by fraud score (docs/design.md: auc,
// average_precision, card_precision_at_100).
type FraudMetrics struct {
	AUC                float64 `json:"auc"`
	AveragePrecision   float64 `json:"average_precision"`
	CardPrecisionAt100 float64 `json:"card_precision_at_100"`
}

// scoredOrder is one order of a test day with a score.
type scoredOrder struct {
	score float64
	fraud bool
	card  string
}

// fraudMetrics scores one day's orders.
func fraudMetrics(orders []scoredOrder) FraudMetrics {
	preds := make([]prediction, len(orders))
	for i, o := range orders {
		preds[i] = prediction{p: o.score, found: o.fraud}
	}
	slices.SortStableFunc(preds, func(a, b prediction) int { return cmp.Compare(b.p, a.p) })
	return FraudMetrics{
		AUC:                auc(preds),
		AveragePrecision:   averagePrecision(preds),
		CardPrecisionAt100: cardPrecisionAtK(orders, 100),
	}
}

// averagePrecision is Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct scores, highest
// first (precision Pₙ and recall Rₙ of everything scoring at least the n-th
// score): the area under the precision-recall curve without interpolation.
// Ties form one threshold. sorted is by descending score.
func averagePrecision(sorted []prediction) float64 {
	var positives float64
	for _, x := range sorted {
		if x.found {
			positives++
		}
	}
	if positives == 0 {
		return 0
	}
	var ap, tp, seen float64
	for i := 0; i < len(sorted); {
		j := i
		var groupTP float64
		for ; j < len(sorted) && sorted[j].p == sorted[i].p; j++ {
			if sorted[j].found {
				groupTP++
			}
		}
		seen += float64(j - i)
		tp += groupTP
		ap += (groupTP / positives) * (tp / seen)
		i = j
	}
	return ap
}

// cardPrecisionAtK is the handbook's card precision top-k: each card scores
// its riskiest order of the day and is fraudulent when any of its orders
// was; it returns the share of fraudulent cards among the k riskiest (ties
// broken by card id, so the answer is deterministic).
func cardPrecisionAtK(orders []scoredOrder, k int) float64 {
	type card struct {
		id    string
		score float64
		fraud bool
	}
	byID := map[string]*card{}
	var cards []*card
	for _, o := range orders {
		c := byID[o.card]
		if c == nil {
			c = &card{id: o.card, score: o.score}
			byID[o.card] = c
			cards = append(cards, c)
		}
		c.score = max(c.score, o.score)
		c.fraud = c.fraud || o.fraud
	}
	slices.SortFunc(cards, func(a, b *card) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(cards) == 0 {
		return 0
	}
	var hits float64
	for _, c := range cards[:min(k, len(cards))] {
		if c.fraud {
			hits++
		}
	}
	return hits / float64(k)
}

// meanFraudMetrics averages per-day metrics.
func meanFraudMetrics(days []FraudMetrics) FraudMetrics {
	var m FraudMetrics
	for _, d := range days {
		m.AUC += d.AUC / float64(len(days))
		m.AveragePrecision += d.AveragePrecision / float64(len(days))
		m.CardPrecisionAt100 += d.CardPrecisionAt100 / float64(len(days))
	}
	return m
}

// FraudRanking is the AUC and average precision of scores for outcomes
// fraud, for reports of model training.
func FraudRanking(scores []float64, fraud []bool) (aucValue, ap float64) {
	preds := make([]prediction, len(scores))
	for i, p := range scores {
		preds[i] = prediction{p: p, found: fraud[i]}
	}
	slices.SortStableFunc(preds, func(a, b prediction) int { return cmp.Compare(b.p, a.p) })
	return auc(preds), averagePrecision(preds)
}
