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
// and their labels, on the named features (nil: all of them).
func TrainFraudModel(raw [][]float64, fraud []bool, features []string, opt LogisticOptions) (FraudModel, error) {
	if features == nil {
		features = FraudFeatureNames()
	}
	idx, err := FraudFeatureIndex(features)
	if err != nil {
		return FraudModel{}, err
	}
	X := make([][]float64, len(raw))
	for i, r := range raw {
		x := make([]float64, len(idx))
		for j, k := range idx {
			x[j] = FraudFeatures[k].Transform.apply(r[k])
		}
		X[i] = x
	}
	lr, err := TrainLogistic(X, fraud, opt)
	if err != nil {
		return FraudModel{}, err
	}
	return FraudModel{Features: features, Logistic: lr}, nil
}

// Contradiction is a feature a fit learned the wrong way round: its weight
// says a new account is safer, or fewer declines riskier.
type Contradiction struct {
	Feature string
	Weight  float64 // on the standardised, transformed value
}

// contradictionWeight is the weight from which a feature's learned
// direction counts as contradicting its meaning: below it the fit only
// shares a signal between correlated features.
const contradictionWeight = 0.05

// Contradictions lists the features of m whose learned direction
// contradicts their meaning (FraudFeature.LessIsRiskier).
func (m FraudModel) Contradictions() ([]Contradiction, error) {
	idx, err := FraudFeatureIndex(m.Features)
	if err != nil {
		return nil, err
	}
	var out []Contradiction
	for j, k := range idx {
		w := m.Logistic.Weights[j]
		if FraudFeatures[k].LessIsRiskier {
			w = -w
		}
		if w <= -contradictionWeight {
			out = append(out, Contradiction{Feature: m.Features[j], Weight: m.Logistic.Weights[j]})
		}
	}
	return out, nil
}

// FitFraudModel fits a model to raw rows and their labels, then refits it
// without the features it learned the wrong way round, until none is left:
// a model whose reasons say "account first ordered 56 days ago" of a fraud
// has learned the marketplace's youth, not fraud. It returns what it left
// out, for the trainer to report.
func FitFraudModel(raw [][]float64, fraud []bool, opt LogisticOptions) (FraudModel, []Contradiction, error) {
	features := FraudFeatureNames()
	var dropped []Contradiction
	for {
		m, err := TrainFraudModel(raw, fraud, features, opt)
		if err != nil {
			return FraudModel{}, nil, err
		}
		bad, err := m.Contradictions()
		if err != nil || len(bad) == 0 {
			return m, dropped, err
		}
		dropped = append(dropped, bad...)
		features = slices.DeleteFunc(features, func(f string) bool {
			return slices.ContainsFunc(bad, func(c Contradiction) bool { return c.Feature == f })
		})
		if len(features) == 0 {
			return FraudModel{}, nil, fmt.Errorf("fraud model: every feature was learned the wrong way round")
		}
	}
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
	// backwards: the push comes from a weight against the feature's
	// meaning (fewer declines raising the risk), which no analyst would
	// read right; Reasons leaves it out.
	backwards bool
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
		w := s.model.Logistic.Weights[j]
		out[j] = Contribution{Feature: f.Name, Value: v, Contribution: c, Description: f.Describe(v),
			backwards: (w < 0) != f.LessIsRiskier && w != 0}
	}
	slices.SortStableFunc(out, func(a, b Contribution) int { return cmp.Compare(b.Contribution, a.Contribution) })
	return p, out
}

// Reasons are the top contributions worth showing an analyst: at most n
// that raise the log-odds by at least minReasonContribution, from features
// read the way the model learned them. Delayed-label risks of one window
// and equal value (the same labels, of a customer who keeps card, device
// and address together) are one reason, named after the largest, with
// their contributions summed.
func Reasons(contributions []Contribution, n int) []Contribution {
	byName := make(map[string]FraudFeature, len(FraudFeatures))
	for _, f := range FraudFeatures {
		byName[f.Name] = f
	}
	type risk struct {
		days  int64
		value float64
	}
	merged := map[risk]int{} // position in kept
	var kept []Contribution
	var subjects [][]string
	for _, c := range contributions { // sorted, largest first
		if c.backwards || c.Contribution <= 0 {
			continue
		}
		r := byName[c.Feature].Risk
		if r == nil {
			kept, subjects = append(kept, c), append(subjects, nil)
			continue
		}
		key := risk{r.Days, c.Value}
		if i, ok := merged[key]; ok {
			kept[i].Contribution += c.Contribution
			subjects[i] = append(subjects[i], r.Subject)
			kept[i].Description = describeRisk(c.Value, r.Days, subjects[i])
			continue
		}
		merged[key] = len(kept)
		kept, subjects = append(kept, c), append(subjects, []string{r.Subject})
	}
	slices.SortStableFunc(kept, func(a, b Contribution) int { return cmp.Compare(b.Contribution, a.Contribution) })
	out := []Contribution{} // none is an empty list, not a missing one
	for _, c := range kept {
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
