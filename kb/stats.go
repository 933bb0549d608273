package kb

import (
	"math"
)

// How an experiment's result is called (fixed-horizon design, no peeking):
//
//   - Each arm's resolution rate is resolved conversations / exposed conversations, with a
//     95 % Wilson score interval. Mean CSAT has a normal-approximation 95 % interval.
//   - Each arm is compared with the control by a two-sided two-proportion z-test (pooled
//     variance). With m arms, m−1 comparisons are made, so each uses α = 0.05 / (m−1)
//     (Bonferroni).
//   - The sample size each arm needs is fixed by the experiment's MinEffect δ at power 0.8:
//     n = (z₁₋α/₂·√(2·p̄·(1−p̄)) + z₀.₈·√(p₁(1−p₁) + p₂(1−p₂)))² / δ², with p₁ the control's
//     observed rate (0.5 before any data, clamped to [0.05, 0.95]), p₂ = p₁ + δ (or p₁ − δ
//     above 1) and p̄ their mean (Fleiss, Statistical Methods for Rates and Proportions, ch. 4).
//   - Until every arm has n exposures the decision is "collecting", whatever the p-values
//     say: repeatedly checking a z-test and stopping at the first p < 0.05 inflates false
//     positives far above 5 %, which this rule prevents. After that: "winner" (an arm is
//     significantly better than the control; the best such arm), "control" (every
//     significant difference favours the control) or "no_difference".
const (
	Alpha = 0.05
	Power = 0.8
)

// Report is an experiment's result.
type Report struct {
	Experiment Experiment  `json:"experiment" required:"true"`
	Running    bool        `json:"running" required:"true"`
	Alpha      float64     `json:"alpha" required:"true"`      // per comparison, after Bonferroni
	MinSample  int64       `json:"min_sample" required:"true"` // exposures each arm needs before a call
	Decision   string      `json:"decision" required:"true"`   // collecting, winner, control, no_difference
	Best       string      `json:"best,omitempty"`
	Variants   []ArmReport `json:"variants" required:"true"`
}

// ArmReport is one variant's figures.
type ArmReport struct {
	Answer         string     `json:"answer" required:"true"`
	Weight         float64    `json:"weight" required:"true"`
	Counts         Counts     `json:"counts" required:"true"`
	ResolutionRate float64    `json:"resolution_rate" required:"true"`
	ResolutionCI   [2]float64 `json:"resolution_ci95" required:"true"`
	MeanCSAT       float64    `json:"mean_csat" required:"true"`
	CSATCI         [2]float64 `json:"csat_ci95" required:"true"`
	ThumbsUpRate   float64    `json:"thumbs_up_rate" required:"true"`
	// Compared with the control (absent for the control itself).
	Diff        float64 `json:"diff,omitempty"`
	Z           float64 `json:"z,omitempty"`
	PValue      float64 `json:"p_value,omitempty"`
	Significant bool    `json:"significant,omitempty"`
}

// NewReport computes the report of e from its counts.
func NewReport(e Experiment, counts map[string]Counts, running bool) *Report {
	m := len(e.Variants)
	r := &Report{Experiment: e, Running: running, Alpha: Alpha / float64(max(m-1, 1))}
	for _, v := range e.Variants {
		c := counts[v.Answer]
		// Counts written before outcomes required an exposure may be inconsistent; clamp them
		// so that every rate is in [0, 1] and the report always encodes.
		c.Unresolved = min(max(c.Unresolved, 0), max(c.Exposures, 0))
		a := ArmReport{Answer: v.Answer, Weight: v.Weight, Counts: c}
		if c.Exposures > 0 {
			resolved := c.Exposures - c.Unresolved
			a.ResolutionRate = float64(resolved) / float64(c.Exposures)
			a.ResolutionCI = Wilson(resolved, c.Exposures, 1.959963984540054)
		}
		a.MeanCSAT, a.CSATCI = MeanCI(c.CSATN, c.CSATSum, c.CSATSumSq)
		if n := c.ThumbsUp + c.ThumbsDown; n > 0 {
			a.ThumbsUpRate = float64(c.ThumbsUp) / float64(n)
		}
		r.Variants = append(r.Variants, a)
	}
	control := r.Variants[0]
	p1 := 0.5
	if control.Counts.Exposures > 0 {
		p1 = min(max(control.ResolutionRate, 0.05), 0.95)
	}
	r.MinSample = SampleSize(p1, e.MinEffect, r.Alpha, Power)
	enough := true
	for i := range r.Variants {
		a := &r.Variants[i]
		if a.Counts.Exposures < r.MinSample {
			enough = false
		}
		if i == 0 {
			continue
		}
		c := control.Counts
		a.Diff = a.ResolutionRate - control.ResolutionRate
		a.Z, a.PValue = TwoProportionZ(c.Exposures-c.Unresolved, c.Exposures, a.Counts.Exposures-a.Counts.Unresolved, a.Counts.Exposures)
		a.Significant = a.PValue < r.Alpha
	}
	r.Decision = "collecting"
	if !enough {
		return r
	}
	r.Decision = "no_difference"
	for _, a := range r.Variants[1:] {
		if !a.Significant {
			continue
		}
		if a.Diff > 0 && (r.Best == "" || a.ResolutionRate > r.variant(r.Best).ResolutionRate) {
			r.Decision, r.Best = "winner", a.Answer
		} else if a.Diff < 0 && r.Decision != "winner" {
			r.Decision, r.Best = "control", control.Answer
		}
	}
	return r
}

func (r *Report) variant(answer string) *ArmReport {
	for i := range r.Variants {
		if r.Variants[i].Answer == answer {
			return &r.Variants[i]
		}
	}
	return nil
}

// Wilson is the Wilson score interval of k successes in n trials at normal quantile z.
func Wilson(k, n int64, z float64) [2]float64 {
	if n == 0 {
		return [2]float64{0, 1}
	}
	p, nn := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nn
	center := (p + z*z/(2*nn)) / den
	half := z / den * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn))
	return [2]float64{max(center-half, 0), min(center+half, 1)}
}

// MeanCI is the mean of n values with the given sum and sum of squares, and its 95 %
// normal-approximation interval (zero width for fewer than two values).
func MeanCI(n, sum, sumSq int64) (float64, [2]float64) {
	if n == 0 {
		return 0, [2]float64{}
	}
	nn := float64(n)
	mean := float64(sum) / nn
	if n < 2 {
		return mean, [2]float64{mean, mean}
	}
	variance := max((float64(sumSq)-nn*mean*mean)/(nn-1), 0)
	half := 1.959963984540054 * math.Sqrt(variance/nn)
	return mean, [2]float64{mean - half, mean + half}
}

// TwoProportionZ tests k1/n1 against k2/n2 (pooled variance) and returns z and the
// two-sided p-value; p = 1 when either sample is empty or the pooled rate is 0 or 1.
func TwoProportionZ(k1, n1, k2, n2 int64) (z, p float64) {
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	p1, p2 := float64(k1)/float64(n1), float64(k2)/float64(n2)
	pool := float64(k1+k2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0, 1
	}
	z = (p2 - p1) / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}

// NormalQuantile is Φ⁻¹(p).
func NormalQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// SampleSize is the exposures each arm needs to detect a change of delta from rate p1 with
// a two-sided test at alpha and the given power.
func SampleSize(p1, delta, alpha, power float64) int64 {
	p2 := p1 + delta
	if p2 >= 1 {
		p2 = p1 - delta
	}
	pbar := (p1 + p2) / 2
	za, zb := NormalQuantile(1-alpha/2), NormalQuantile(power)
	n := math.Pow(za*math.Sqrt(2*pbar*(1-pbar))+zb*math.Sqrt(p1*(1-p1)+p2*(1-p2)), 2) / (delta * delta)
	return int64(math.Ceil(n))
}
