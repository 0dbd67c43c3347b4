package models

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// FraudModel is one trained fraud model: a logistic regression over the
// transformed values of the named features (its schema). It is what the
// model registry stores as a version.
type FraudModel struct {
	Features []string      `json:"features"`
	Logistic LogisticModel `json:"logistic"`
}

// TrainFraudModel fits a model to raw feature rows (FraudFeatures order)
// and their labels.
func TrainFraudModel(raw [][]float64, fraud []bool, opt LogisticOptions) (FraudModel, error) {
	X := make([][]float64, len(raw))
	for i, r := range raw {
		X[i] = transformAll(r)
	}
	lr, err := TrainLogistic(X, fraud, opt)
	if err != nil {
		return FraudModel{}, err
	}
	return FraudModel{Features: FraudFeatureNames(), Logistic: lr}, nil
}

func transformAll(raw []float64) []float64 {
	out := make([]float64, len(raw))
	for j, v := range raw {
		out[j] = FraudFeatures[j].Transform.apply(v)
	}
	return out
}

// FraudScorer scores raw feature rows with a FraudModel whose schema it has
// matched against the features this code computes.
type FraudScorer struct {
	model FraudModel
	index []int // index[j]: position in FraudFeatures of the model's feature j
}

// NewFraudScorer checks m's schema and sizes.
func NewFraudScorer(m FraudModel) (*FraudScorer, error) {
	idx, err := FraudFeatureIndex(m.Features)
	if err != nil {
		return nil, err
	}
	lr := m.Logistic
	d := len(m.Features)
	if d == 0 || len(lr.Means) != d || len(lr.Stds) != d || len(lr.Weights) != d {
		return nil, fmt.Errorf("fraud model: %d features but %d means, %d stds, %d weights", d, len(lr.Means), len(lr.Stds), len(lr.Weights))
	}
	for j, s := range lr.Stds {
		if !(s > 0) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("fraud model: feature %s has standard deviation %v", m.Features[j], s)
		}
	}
	return &FraudScorer{model: m, index: idx}, nil
}

// Contribution is one feature's push on the log-odds of an assessment.
type Contribution struct {
	Feature      string  `json:"feature"`
	Value        float64 `json:"value"`        // the raw value
	Contribution float64 `json:"contribution"` // weight × standardised transformed value
	Description  string  `json:"description"`
}

// Score returns the fraud probability of raw (FraudFeatures order) and every
// feature's contribution, largest first.
func (s *FraudScorer) Score(raw []float64) (float64, []Contribution) {
	x := make([]float64, len(s.index))
	for j, i := range s.index {
		x[j] = FraudFeatures[i].Transform.apply(raw[i])
	}
	p, contrib := s.model.Logistic.Score(x)
	out := make([]Contribution, len(contrib))
	for j, c := range contrib {
		f := FraudFeatures[s.index[j]]
		v := raw[s.index[j]]
		description := f.Describe(v)
		if c > 0 && f.Transform != Binary && x[j] < s.model.Logistic.Means[j] {
			// The model learned that less of this is riskier; "2 orders
			// in the last 24 hours" alone would read as a reason for
			// comfort.
			description += " (fewer than usual, which raises the risk)"
		}
		out[j] = Contribution{Feature: f.Name, Value: v, Contribution: c, Description: description}
	}
	slices.SortStableFunc(out, func(a, b Contribution) int { return cmp.Compare(b.Contribution, a.Contribution) })
	return p, out
}

// Reasons are the top contributions worth showing an analyst: at most n
// that raise the log-odds by at least minReasonContribution.
func Reasons(contributions []Contribution, n int) []Contribution {
	out := []Contribution{}           // none is an empty list, not a missing one
	for _, c := range contributions { // sorted, largest first
		if len(out) == n || c.Contribution < minReasonContribution {
			break
		}
		out = append(out, c)
	}
	return out
}

// minReasonContribution keeps noise out of the reasons: a push of 0.5 on the
// log-odds multiplies the odds by about 1.65.
const minReasonContribution = 0.5

// FraudDecision is what happens to an order.
type FraudDecision string

// Decisions, as named in the GraphQL enum.
const (
	FraudApprove FraudDecision = "APPROVE"
	FraudReview  FraudDecision = "REVIEW"
	FraudBlock   FraudDecision = "BLOCK"
)

// FraudThresholds map a score to a decision.
type FraudThresholds struct {
	ReviewAt float64 // scores at or above go to manual review
	BlockAt  float64 // scores at or above are blocked
}

// DefaultFraudThresholds are the serving defaults.
func DefaultFraudThresholds() FraudThresholds { return FraudThresholds{ReviewAt: 0.3, BlockAt: 0.8} }

// Validate checks 0 < ReviewAt ≤ BlockAt ≤ 1.
func (t FraudThresholds) Validate() error {
	if !(0 < t.ReviewAt && t.ReviewAt <= t.BlockAt && t.BlockAt <= 1) {
		return fmt.Errorf("want 0 < review threshold (%v) <= block threshold (%v) <= 1", t.ReviewAt, t.BlockAt)
	}
	return nil
}

// Decide maps a score to a decision.
func (t FraudThresholds) Decide(score float64) FraudDecision {
	switch {
	case score >= t.BlockAt:
		return FraudBlock
	case score >= t.ReviewAt:
		return FraudReview
	}
	return FraudApprove
}
