// Package promtest reads Prometheus metrics in tests, whether gathered from
// a registry in-process or scraped from a server's /metrics.
package promtest

import (
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are gathered metric families by name.
type Metrics map[string]*dto.MetricFamily

// Gather collects the default registry, which the promauto metrics and the
// pool collectors are registered with.
func Gather(t testing.TB) Metrics {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	m := make(Metrics, len(families))
	for _, f := range families {
		m[f.GetName()] = f
	}
	return m
}

// Parse reads the text exposition format, as served by /metrics.
func Parse(t testing.TB, r io.Reader) Metrics {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	m, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return m
}

// Value returns the value of the series of name whose labels include
// labels: a counter's or gauge's value, a histogram's sample count. ok is
// false when there is no such series.
func (m Metrics) Value(name string, labels map[string]string) (v float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// Sum returns the sum of the observations of a histogram series.
func (m Metrics) Sum(name string, labels map[string]string) (sum float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if hasLabels(s, labels) && s.Histogram != nil {
			return s.Histogram.GetSampleSum(), true
		}
	}
	return 0, false
}

// Total adds up the counters and gauges of name over every series whose
// labels include labels (all of them when labels is nil): e.g. a counter
// over all its values of a label. It is 0 when there is no such series.
func (m Metrics) Total(name string, labels map[string]string) float64 {
	var total float64
	for _, s := range m[name].GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.Counter.GetValue()
		case s.Gauge != nil:
			total += s.Gauge.GetValue()
		case s.Untyped != nil:
			total += s.Untyped.GetValue()
		}
	}
	return total
}

// MustValue is Value, failing the test when the series is missing.
func (m Metrics) MustValue(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := m.Value(name, labels)
	if !ok {
		t.Fatalf("no series %s%v; have %s", name, labels, m.describe(name))
	}
	return v
}

func (m Metrics) describe(name string) string {
	f := m[name]
	if f == nil {
		return "no such metric"
	}
	var out []string
	for _, s := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out = append(out, fmt.Sprint(labels))
	}
	return fmt.Sprint(out)
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
