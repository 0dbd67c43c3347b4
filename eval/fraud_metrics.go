package eval

import (
	"cmp"
	"slices"

	"github.com/aisle/aisle/models"
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
	scores := make([]float64, len(orders))
	labels := make([]bool, len(orders))
	for i, o := range orders {
		scores[i], labels[i] = o.score, o.fraud
	}
	auc, ap := models.FraudRanking(scores, labels)
	return FraudMetrics{AUC: auc, AveragePrecision: ap, CardPrecisionAt100: cardPrecisionAtK(orders, 100)}
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
