package eval

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// McNemar compares two models on the same examples (McNemar 1947): only the examples where
// exactly one of them is right say which is better.
type McNemar struct {
	Both    int `json:"both_right"`
	OnlyA   int `json:"only_a_right"`
	OnlyB   int `json:"only_b_right"`
	Neither int `json:"both_wrong"`
	// Statistic is (|OnlyA − OnlyB| − 1)² / (OnlyA + OnlyB), chi-squared with one degree of
	// freedom (Edwards' continuity correction).
	Statistic float64 `json:"statistic"`
	// P is the two-sided p-value: exact (binomial, p = ½) when OnlyA + OnlyB < 25, else from
	// the chi-squared statistic.
	P     float64 `json:"p_value"`
	Exact bool    `json:"exact"`
}

// CompareMcNemar tests two models' predictions of the same examples, in the same order.
func CompareMcNemar(a, b []Prediction) (McNemar, error) {
	var m McNemar
	if len(a) != len(b) {
		return m, fmt.Errorf("%d predictions against %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Gold != b[i].Gold || a[i].Text != b[i].Text {
			return m, fmt.Errorf("example %d differs between the two runs", i+1)
		}
		switch ra, rb := a[i].Correct(), b[i].Correct(); {
		case ra && rb:
			m.Both++
		case ra:
			m.OnlyA++
		case rb:
			m.OnlyB++
		default:
			m.Neither++
		}
	}
	n := m.OnlyA + m.OnlyB
	if n == 0 {
		m.P, m.Exact = 1, true
		return m, nil
	}
	d := math.Abs(float64(m.OnlyA-m.OnlyB)) - 1
	m.Statistic = max(0, d) * max(0, d) / float64(n)
	if n < 25 {
		m.Exact = true
		m.P = min(1, 2*binomialCDF(min(m.OnlyA, m.OnlyB), n))
	} else {
		m.P = math.Erfc(math.Sqrt(m.Statistic / 2)) // P(χ²₁ ≥ x)
	}
	return m, nil
}

// binomialCDF is P(X ≤ k) for X ~ Binomial(n, ½).
func binomialCDF(k, n int) float64 {
	sum := 0.0
	for i := 0; i <= k; i++ {
		lg, _ := math.Lgamma(float64(n + 1))
		li, _ := math.Lgamma(float64(i + 1))
		lr, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lg - li - lr - float64(n)*math.Ln2)
	}
	return sum
}

// Percentile is the nearest-rank q-quantile (0 < q ≤ 1) of sorted values: the smallest value
// with at least q of them at or below it.
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted))-1e-9)) - 1
	return sorted[min(len(sorted)-1, max(0, i))]
}

// MeanStd is the mean and the sample standard deviation (n − 1) of xs.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

// Latency is how fast the model answered.
type Latency struct {
	// Samples single-text requests were timed one after another for P50 and P99.
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	// Throughput is examples per second over the whole set, classified in batches.
	Throughput float64 `json:"throughput_per_s"`
}

// Gate is a regression check against a baseline report.
type Gate struct {
	Baseline string      `json:"baseline"`
	MaxDrop  float64     `json:"max_drop_points"`
	Passed   bool        `json:"passed"`
	Checks   []GateCheck `json:"checks"`
}

// GateCheck is one metric against the baseline; Drop is in percentage points.
type GateCheck struct {
	Metric   string  `json:"metric"`
	Baseline float64 `json:"baseline"`
	Current  float64 `json:"current"`
	Drop     float64 `json:"drop_points"`
	Passed   bool    `json:"passed"`
}

// ErrRegression is returned (wrapped) when a gate fails.
var ErrRegression = errors.New("regression")

// CheckRegression fails a metric (accuracy, macro-F1) that fell more than maxDrop
// percentage points below the baseline.
func CheckRegression(name string, baseline, current Scores, maxDrop float64) Gate {
	g := Gate{Baseline: name, MaxDrop: maxDrop, Passed: true}
	for _, m := range []struct {
		name      string
		base, cur float64
	}{{"accuracy", baseline.Accuracy, current.Accuracy}, {"macro_f1", baseline.MacroF1, current.MacroF1}} {
		c := GateCheck{Metric: m.name, Baseline: m.base, Current: m.cur, Drop: math.Round((m.base-m.cur)*1e6) / 1e4}
		c.Passed = c.Drop <= maxDrop
		g.Passed = g.Passed && c.Passed
		g.Checks = append(g.Checks, c)
	}
	return g
}

// Err is nil when the gate passed, else an ErrRegression naming the failed metrics.
func (g Gate) Err() error {
	var failed []string
	for _, c := range g.Checks {
		if !c.Passed {
			failed = append(failed, fmt.Sprintf("%s %.2f%% → %.2f%% (−%.2f points, at most %.2f allowed)", c.Metric, 100*c.Baseline, 100*c.Current, c.Drop, g.MaxDrop))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w against %s: %s", ErrRegression, g.Baseline, strings.Join(failed, "; "))
}
