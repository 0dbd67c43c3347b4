package models

import (
	"errors"
	"fmt"
	"math"
)

// LogisticModel is a logistic regression on standardised inputs:
// p = σ(Bias + Σ Weights[j]·(x[j]−Means[j])/Stds[j]).
type LogisticModel struct {
	Means   []float64 `json:"means"`
	Stds    []float64 `json:"stds"`
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
}

// LogisticOptions tune TrainLogistic.
type LogisticOptions struct {
	L2            float64 // ridge penalty on the standardised weights (not the bias)
	MaxIterations int     // Newton steps at most
}

// DefaultLogisticOptions are used by `aisle train fraud` and the evaluation.
func DefaultLogisticOptions() LogisticOptions {
	return LogisticOptions{L2: 1, MaxIterations: 50}
}

// Score returns the probability for x and each input's contribution to the
// log-odds (weight × standardised value), which sum with Bias to the logit.
func (m LogisticModel) Score(x []float64) (p float64, contributions []float64) {
	contributions = make([]float64, len(m.Weights))
	return sigmoid(m.logit(x, contributions)), contributions
}

// Probability is Score's probability alone, without allocating: the fit
// scores every row each round.
func (m LogisticModel) Probability(x []float64) float64 {
	return sigmoid(m.logit(x, nil))
}

// logit is the log-odds of x; when contributions is not nil, it receives
// each input's part of it.
func (m LogisticModel) logit(x, contributions []float64) float64 {
	z := m.Bias
	for j, w := range m.Weights {
		c := w * (x[j] - m.Means[j]) / m.Stds[j]
		if contributions != nil {
			contributions[j] = c
		}
		z += c
	}
	return z
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// TrainLogistic fits a logistic regression to rows X (all the same length)
// and outcomes y by Newton's method (iteratively reweighted least squares)
// with an L2 penalty. Inputs are standardised first; a constant input gets
// standard deviation 1 and weight 0. It needs both outcomes present.
func TrainLogistic(X [][]float64, y []bool, opt LogisticOptions) (LogisticModel, error) {
	t := make([]float64, len(y))
	for i, v := range y {
		t[i] = boolFloat(v)
	}
	return TrainLogisticSoft(X, t, opt)
}

// TrainLogisticSoft is TrainLogistic on outcomes that are probabilities
// (in [0, 1]): the expected outcomes of a mixture's E-step, where an
// outcome is only partly explained by this model. It needs some weight on
// both outcomes.
func TrainLogisticSoft(X [][]float64, y []float64, opt LogisticOptions) (LogisticModel, error) {
	n := len(X)
	if n == 0 || n != len(y) {
		return LogisticModel{}, fmt.Errorf("train logistic: %d rows and %d outcomes", n, len(y))
	}
	d := len(X[0])
	var positives float64
	for _, v := range y {
		if !(v >= 0 && v <= 1) {
			return LogisticModel{}, fmt.Errorf("train logistic: outcome %v outside [0, 1]", v)
		}
		positives += v
	}
	if positives <= 0 || positives >= float64(n) {
		return LogisticModel{}, errors.New("train logistic: need both positive and negative examples")
	}
	m := LogisticModel{Means: make([]float64, d), Stds: make([]float64, d), Weights: make([]float64, d)}
	for _, row := range X {
		if len(row) != d {
			return LogisticModel{}, fmt.Errorf("train logistic: rows of %d and %d values", d, len(row))
		}
		for j, v := range row {
			m.Means[j] += v
		}
	}
	for j := range m.Means {
		m.Means[j] /= float64(n)
	}
	for _, row := range X {
		for j, v := range row {
			m.Stds[j] += (v - m.Means[j]) * (v - m.Means[j])
		}
	}
	for j := range m.Stds {
		m.Stds[j] = math.Sqrt(m.Stds[j] / float64(n))
		if m.Stds[j] < 1e-9 {
			m.Stds[j] = 1
		}
	}
	Z := make([][]float64, n) // standardised rows with a leading 1 for the bias
	for i, row := range X {
		z := make([]float64, d+1)
		z[0] = 1
		for j, v := range row {
			z[j+1] = (v - m.Means[j]) / m.Stds[j]
		}
		Z[i] = z
	}
	base := positives / float64(n)
	beta := make([]float64, d+1)
	beta[0] = math.Log(base / (1 - base))
	// objective is the penalised negative log-likelihood that Newton's
	// method minimises; a step that does not lower it is halved, which
	// keeps nearly separable data from sending the weights to infinity.
	objective := func(beta []float64) float64 {
		var obj float64
		for i, z := range Z {
			var eta float64
			for j, v := range z {
				eta += beta[j] * v
			}
			// log(1+e^η) − y·η, computed without overflow.
			obj += math.Max(eta, 0) + math.Log1p(math.Exp(-math.Abs(eta))) - y[i]*eta
		}
		for j := 1; j <= d; j++ {
			obj += opt.L2 / 2 * beta[j] * beta[j]
		}
		return obj
	}
	current := objective(beta)
	for range opt.MaxIterations {
		grad := make([]float64, d+1)
		hess := make([][]float64, d+1)
		for j := range hess {
			hess[j] = make([]float64, d+1)
		}
		for i, z := range Z {
			var eta float64
			for j, v := range z {
				eta += beta[j] * v
			}
			p := sigmoid(eta)
			r := p - y[i]
			w := max(p*(1-p), 1e-10)
			for j, vj := range z {
				grad[j] += r * vj
				row := hess[j]
				for k := 0; k <= j; k++ {
					row[k] += w * vj * z[k]
				}
			}
		}
		for j := 1; j <= d; j++ {
			grad[j] += opt.L2 * beta[j]
			hess[j][j] += opt.L2
		}
		for j := range hess {
			for k := j + 1; k <= d; k++ {
				hess[j][k] = hess[k][j]
			}
		}
		step, err := solveSPD(hess, grad)
		if err != nil {
			return LogisticModel{}, fmt.Errorf("train logistic: %w", err)
		}
		next := make([]float64, d+1)
		for t := 1.0; ; t /= 2 {
			for j := range beta {
				next[j] = beta[j] - t*step[j]
			}
			if obj := objective(next); obj <= current || t < 1e-6 {
				current = obj
				break
			}
		}
		var largest float64
		for j := range beta {
			largest = max(largest, math.Abs(next[j]-beta[j]))
		}
		beta = next
		if largest < 1e-7 {
			break
		}
	}
	m.Bias = beta[0]
	copy(m.Weights, beta[1:])
	return m, nil
}

// solveSPD solves A x = b for a symmetric positive definite A by Cholesky
// decomposition.
func solveSPD(a [][]float64, b []float64) ([]float64, error) {
	n := len(b)
	l := make([][]float64, n)
	for i := range l {
		l[i] = make([]float64, n)
		for j := 0; j <= i; j++ {
			sum := a[i][j]
			for k := range j {
				sum -= l[i][k] * l[j][k]
			}
			if i == j {
				if sum <= 0 {
					return nil, errors.New("matrix is not positive definite")
				}
				l[i][i] = math.Sqrt(sum)
			} else {
				l[i][j] = sum / l[j][j]
			}
		}
	}
	x := make([]float64, n)
	for i := range n { // L y = b
		sum := b[i]
		for k := range i {
			sum -= l[i][k] * x[k]
		}
		x[i] = sum / l[i][i]
	}
	for i := n - 1; i >= 0; i-- { // Lᵀ x = y
		sum := x[i]
		for k := i + 1; k < n; k++ {
			sum -= l[k][i] * x[k]
		}
		x[i] = sum / l[i][i]
	}
	return x, nil
}
