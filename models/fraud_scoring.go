package models

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// FraudModel is one trained fraud model: a logistic regression over the
// transformed values of the named features (its schema), and in versions
// fitted by FitFraudModel since it learned the second mechanism, Store. It
// is what the model registry stores as a version.
type FraudModel struct {
	Features []string      `json:"features"`
	Logistic LogisticModel `json:"logistic"`
	// Store, when set, is the other way fraud arrives: through a
	// compromised store, where every order is fraud whatever its customer
	// looks like, read from the store's delayed labels alone. The model's
	// probability is then the noisy-OR 1 − (1 − p_order)(1 − p_store), so
	// an old account on a known device no longer pulls down the risk that
	// the store's labels raise. Features and Logistic are the order
	// mechanism then; versions without Store score with them alone.
	Store *FraudMechanism `json:"store,omitempty"`
}

// FraudMechanism is one way fraud arrives: a logistic regression over the
// transformed values of the named features.
type FraudMechanism struct {
	Features []string      `json:"features"`
	Logistic LogisticModel `json:"logistic"`
}

// StoreFraudFeatures are the features of the store mechanism (see
// FraudModel.Store): the store's fraud labels of yesterday, which rise with
// a compromise's first chargebacks, and of them those on its orders of the
// last few days, which stop days after a compromise ends while the others
// go on for the week chargebacks take. The store's other delayed-label
// features (its 7-day count, its shares of fraud) are in neither mechanism:
// on evaluation seeds 4–6 adding them to this one lowered the
// compromised-store AP (seed 4: .512 with store_frauds_1d alone, .460 with
// all five), since they stay high for weeks after a compromise ended.
// FitFraudModel gives every feature not about the store to the order
// mechanism.
var StoreFraudFeatures = []string{"store_fresh_frauds_1d", "store_stale_frauds_1d"}

// transformed is the rows of raw (FraudFeatures order) as a model over the
// features at positions idx sees them.
func transformed(raw [][]float64, idx []int) [][]float64 {
	X := make([][]float64, len(raw))
	for i, r := range raw {
		x := make([]float64, len(idx))
		for j, k := range idx {
			x[j] = FraudFeatures[k].Transform.apply(r[k])
		}
		X[i] = x
	}
	return X
}

// TrainFraudModel fits a one-mechanism model (a logistic regression) to raw
// feature rows (FraudFeatures order) and their labels, on the named
// features (nil: all of them).
func TrainFraudModel(raw [][]float64, fraud []bool, features []string, opt LogisticOptions) (FraudModel, error) {
	if features == nil {
		features = FraudFeatureNames()
	}
	idx, err := FraudFeatureIndex(features)
	if err != nil {
		return FraudModel{}, err
	}
	lr, err := TrainLogistic(transformed(raw, idx), fraud, opt)
	if err != nil {
		return FraudModel{}, err
	}
	return FraudModel{Features: features, Logistic: lr}, nil
}

// noisyOrIterations is how many EM steps fitNoisyOr takes after its start
// (chosen on evaluation seeds 4–6; each step is two fits).
const noisyOrIterations = 5

// fitNoisyOr fits the two-mechanism model (FraudModel.Store) by expectation
// maximisation on the noisy-OR likelihood: a fraud was caused by the order
// mechanism with probability p_order / p and by the store's with p_store /
// p (p the noisy-OR of the two), a legitimate order by neither; each
// mechanism is then refitted to the outcomes it is expected to cause.
// Both start fitted to every label.
func fitNoisyOr(raw [][]float64, fraud []bool, orderFeatures, storeFeatures []string, opt LogisticOptions) (FraudModel, error) {
	orderIdx, err := FraudFeatureIndex(orderFeatures)
	if err != nil {
		return FraudModel{}, err
	}
	storeIdx, err := FraudFeatureIndex(storeFeatures)
	if err != nil {
		return FraudModel{}, err
	}
	Xo, Xs := transformed(raw, orderIdx), transformed(raw, storeIdx)
	y := make([]float64, len(fraud))
	for i, f := range fraud {
		y[i] = boolFloat(f)
	}
	order, err := TrainLogisticSoft(Xo, y, opt)
	if err != nil {
		return FraudModel{}, fmt.Errorf("order mechanism: %w", err)
	}
	store, err := TrainLogisticSoft(Xs, y, opt)
	if err != nil {
		return FraudModel{}, fmt.Errorf("store mechanism: %w", err)
	}
	for range noisyOrIterations {
		yo, ys := make([]float64, len(fraud)), make([]float64, len(fraud))
		for i, f := range fraud {
			if !f {
				continue
			}
			po, ps := order.Probability(Xo[i]), store.Probability(Xs[i])
			p := 1 - (1-po)*(1-ps)
			yo[i], ys[i] = po/p, ps/p
		}
		if order, err = TrainLogisticSoft(Xo, yo, opt); err != nil {
			return FraudModel{}, fmt.Errorf("order mechanism: %w", err)
		}
		if store, err = TrainLogisticSoft(Xs, ys, opt); err != nil {
			return FraudModel{}, fmt.Errorf("store mechanism: %w", err)
		}
	}
	return FraudModel{Features: orderFeatures, Logistic: order,
		Store: &FraudMechanism{Features: storeFeatures, Logistic: store}}, nil
}

// Contradiction is a feature a fit learned the wrong way round: its weight
// says a new account is safer, or fewer declines riskier, and so does the
// history it was fitted to, read one feature at a time.
type Contradiction struct {
	Feature string
	Weight  float64 // on the standardised, transformed value
}

// contradictionWeight is the weight from which a feature's learned
// direction counts as contradicting its meaning: below it the fit only
// shares a signal between correlated features.
const contradictionWeight = 0.05

// Contradictions lists the features of m (of both mechanisms) that it
// learned against their meaning (FraudFeature.LessIsRiskier) from a history
// (raw rows in FraudFeatures order and their labels) that, read one feature
// at a time, teaches them that way too: a young marketplace whose frauds
// come from its oldest accounts. A feature whose weight is against its
// meaning while alone it goes with it is not one: the fit uses it beside a
// correlated feature (fewer declines on the card than on the device is a
// legitimate retry, not card testing), and Reasons never names such a push.
func (m FraudModel) Contradictions(raw [][]float64, fraud []bool) ([]Contradiction, error) {
	out, err := FraudMechanism{m.Features, m.Logistic}.contradictions(raw, fraud)
	if err != nil || m.Store == nil {
		return out, err
	}
	store, err := m.Store.contradictions(raw, fraud)
	return append(out, store...), err
}

func (m FraudMechanism) contradictions(raw [][]float64, fraud []bool) ([]Contradiction, error) {
	idx, err := FraudFeatureIndex(m.Features)
	if err != nil {
		return nil, err
	}
	var out []Contradiction
	for j, k := range idx {
		sign := 1.0
		if FraudFeatures[k].LessIsRiskier {
			sign = -1
		}
		if sign*m.Logistic.Weights[j] <= -contradictionWeight && sign*covariance(raw, fraud, k) < 0 {
			out = append(out, Contradiction{Feature: m.Features[j], Weight: m.Logistic.Weights[j]})
		}
	}
	return out, nil
}

// covariance is the covariance of feature k, transformed, with fraud in
// raw: its sign is that of the weight a logistic regression on the feature
// alone learns.
func covariance(raw [][]float64, fraud []bool, k int) float64 {
	var sumX, sumY, sumXY float64
	for i, r := range raw {
		x := FraudFeatures[k].Transform.apply(r[k])
		y := boolFloat(fraud[i])
		sumX, sumY, sumXY = sumX+x, sumY+y, sumXY+x*y
	}
	n := float64(len(raw))
	return sumXY/n - sumX/n*sumY/n
}

// FitFraudModel fits the two-mechanism model (FraudModel.Store) to raw rows
// and their labels, then refits it without the features it learned the
// wrong way round, until none is left: a model whose reasons say "account
// first ordered 56 days ago" of a fraud has learned the marketplace's
// youth, not fraud. When every store feature is left out the model has
// the order mechanism alone. It returns what it left out, for the trainer
// to report.
func FitFraudModel(raw [][]float64, fraud []bool, opt LogisticOptions) (FraudModel, []Contradiction, error) {
	var orderFeatures []string
	for _, f := range FraudFeatureNames() {
		if !strings.HasPrefix(f, "store_") { // the store's labels: the store mechanism's
			orderFeatures = append(orderFeatures, f)
		}
	}
	storeFeatures := slices.Clone(StoreFraudFeatures)
	var dropped []Contradiction
	for {
		var m FraudModel
		var err error
		if len(storeFeatures) == 0 {
			m, err = TrainFraudModel(raw, fraud, orderFeatures, opt)
		} else {
			m, err = fitNoisyOr(raw, fraud, orderFeatures, storeFeatures, opt)
		}
		if err != nil {
			return FraudModel{}, nil, err
		}
		bad, err := m.Contradictions(raw, fraud)
		if err != nil || len(bad) == 0 {
			return m, dropped, err
		}
		dropped = append(dropped, bad...)
		isBad := func(f string) bool {
			return slices.ContainsFunc(bad, func(c Contradiction) bool { return c.Feature == f })
		}
		orderFeatures = slices.DeleteFunc(orderFeatures, isBad)
		storeFeatures = slices.DeleteFunc(storeFeatures, isBad)
		if len(orderFeatures) == 0 {
			return FraudModel{}, nil, fmt.Errorf("fraud model: every order feature was learned the wrong way round")
		}
	}
}

// FraudScorer scores raw feature rows with a FraudModel whose schema it has
// matched against the features this code computes.
type FraudScorer struct {
	order mechanismScorer
	store *mechanismScorer // nil: a one-mechanism model
}

// mechanismScorer scores one mechanism.
type mechanismScorer struct {
	m     FraudMechanism
	index []int // index[j]: position in FraudFeatures of the mechanism's feature j
}

// NewFraudScorer checks m's schema and sizes.
func NewFraudScorer(m FraudModel) (*FraudScorer, error) {
	order, err := newMechanismScorer(FraudMechanism{m.Features, m.Logistic})
	if err != nil {
		return nil, err
	}
	s := &FraudScorer{order: order}
	if m.Store != nil {
		store, err := newMechanismScorer(*m.Store)
		if err != nil {
			return nil, fmt.Errorf("store mechanism: %w", err)
		}
		s.store = &store
	}
	return s, nil
}

func newMechanismScorer(m FraudMechanism) (mechanismScorer, error) {
	idx, err := FraudFeatureIndex(m.Features)
	if err != nil {
		return mechanismScorer{}, err
	}
	lr := m.Logistic
	d := len(m.Features)
	if d == 0 || len(lr.Means) != d || len(lr.Stds) != d || len(lr.Weights) != d {
		return mechanismScorer{}, fmt.Errorf("fraud model: %d features but %d means, %d stds, %d weights", d, len(lr.Means), len(lr.Stds), len(lr.Weights))
	}
	for j, s := range lr.Stds {
		if !(s > 0) || math.IsInf(s, 0) {
			return mechanismScorer{}, fmt.Errorf("fraud model: feature %s has standard deviation %v", m.Features[j], s)
		}
	}
	return mechanismScorer{m: m, index: idx}, nil
}

// Contribution is one feature's push on the log-odds of an assessment.
type Contribution struct {
	Feature string  `json:"feature"`
	Value   float64 `json:"value"` // the raw value
	// Contribution is weight × standardised transformed value, weighted
	// in a two-mechanism model by its mechanism's share (see Score).
	Contribution float64 `json:"contribution"`
	Description  string  `json:"description"`
	// backwards: the push comes from a weight against the feature's
	// meaning (fewer declines raising the risk), which no analyst would
	// read right; Reasons leaves it out.
	backwards bool
}

// Score returns the fraud probability of raw (FraudFeatures order) and every
// feature's contribution, largest first. In a two-mechanism model each
// mechanism's contributions (pushes on its own log-odds) are weighted by
// its share p_m / (p_order + p_store) of the risk, so the reasons come
// from the mechanism that explains the score: the store's labels when a
// compromise does, the customer's features when they do.
func (s *FraudScorer) Score(raw []float64) (float64, []Contribution) {
	p, out := s.order.score(raw)
	if s.store != nil {
		ps, store := s.store.score(raw)
		scale := func(cs []Contribution, share float64) {
			for i := range cs {
				cs[i].Contribution *= share
			}
		}
		scale(out, p/(p+ps))
		scale(store, ps/(p+ps))
		out = append(out, store...)
		p = 1 - (1-p)*(1-ps)
	}
	slices.SortStableFunc(out, func(a, b Contribution) int { return cmp.Compare(b.Contribution, a.Contribution) })
	return p, out
}

// score returns the mechanism's probability for raw and its features'
// contributions, in the mechanism's order.
func (s mechanismScorer) score(raw []float64) (float64, []Contribution) {
	x := make([]float64, len(s.index))
	for j, i := range s.index {
		x[j] = FraudFeatures[i].Transform.apply(raw[i])
	}
	p, contrib := s.m.Logistic.Score(x)
	out := make([]Contribution, len(contrib))
	for j, c := range contrib {
		f := FraudFeatures[s.index[j]]
		v := raw[s.index[j]]
		w := s.m.Logistic.Weights[j]
		out[j] = Contribution{Feature: f.Name, Value: v, Contribution: c, Description: f.Describe(v),
			backwards: (w < 0) != f.LessIsRiskier && w != 0}
	}
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
