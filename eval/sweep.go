package eval

import (
	"cmp"
	"slices"
)

// Sweep shows what a confidence threshold does: predictions below it (or of the
// out-of-scope label) go to a human; the rest are answered by the bot.
type Sweep struct {
	// Target is the precision wanted of the answered predictions.
	Target float64 `json:"target_precision"`
	// Recommended is the lowest threshold whose answered predictions reach Target: the one
	// that hands off the fewest messages. Reached is false when no threshold reaches it;
	// Recommended is then the threshold with the best precision.
	Recommended float64    `json:"recommended_threshold"`
	Reached     bool       `json:"reached"`
	At          SweepPoint `json:"at_recommended"`
	// Points covers thresholds 0, 0.02, …, 1 for plotting.
	Points []SweepPoint `json:"points"`
}

// SweepPoint is the effect of one threshold.
type SweepPoint struct {
	Threshold float64 `json:"threshold"`
	// Coverage is the share of all examples the bot answers.
	Coverage float64 `json:"coverage"`
	// Precision is the share of answered examples whose label is right (1 when none is
	// answered: the bot says nothing wrong).
	Precision float64 `json:"precision"`
	// OOSRecall is the share of out-of-scope examples handed off (only with an oos label).
	OOSRecall float64 `json:"oos_recall,omitempty"`
}

// ThresholdSweep measures every threshold over preds. oosLabel names the gold (and
// predicted) label of out-of-scope examples; "" when there is none. target is the
// precision wanted.
func ThresholdSweep(preds []Prediction, oosLabel string, target float64) Sweep {
	s := Sweep{Target: target}
	for i := 0; i <= 50; i++ {
		s.Points = append(s.Points, sweepAt(preds, oosLabel, float64(i)/50))
	}
	// Candidates are 0 and every confidence the bot could answer with; coverage falls as
	// the threshold rises, so the first candidate that reaches the target is the best. One
	// pass over the answerable predictions by rising confidence keeps the counts: a
	// prediction leaves the answered set once the threshold passes its confidence.
	var answerable []Prediction
	right := 0
	for _, p := range preds {
		if oosLabel == "" || p.Label != oosLabel {
			answerable = append(answerable, p)
			if p.Correct() {
				right++
			}
		}
	}
	slices.SortFunc(answerable, func(a, b Prediction) int { return cmp.Compare(a.Confidence, b.Confidence) })
	cands := []float64{0}
	for _, p := range answerable {
		cands = append(cands, p.Confidence)
	}
	cands = slices.Compact(cands)
	bestT, bestPrecision, next := 0.0, -1.0, 0
	for _, t := range cands {
		for ; next < len(answerable) && answerable[next].Confidence < t; next++ {
			if answerable[next].Correct() {
				right--
			}
		}
		answered := len(answerable) - next
		if answered == 0 {
			break
		}
		precision := ratio(right, answered)
		if precision >= target {
			s.Recommended, s.Reached, s.At = t, true, sweepAt(preds, oosLabel, t)
			return s
		}
		if precision > bestPrecision {
			bestT, bestPrecision = t, precision
		}
	}
	if bestPrecision >= 0 {
		s.Recommended, s.At = bestT, sweepAt(preds, oosLabel, bestT)
	}
	return s
}

func sweepAt(preds []Prediction, oosLabel string, t float64) SweepPoint {
	var answered, right, oos, caught int
	for _, p := range preds {
		handoff := p.Confidence < t || (oosLabel != "" && p.Label == oosLabel)
		if oosLabel != "" && p.Gold == oosLabel {
			oos++
			if handoff {
				caught++
			}
		}
		if !handoff {
			answered++
			if p.Correct() {
				right++
			}
		}
	}
	pt := SweepPoint{Threshold: t, Coverage: ratio(answered, len(preds)), Precision: 1, OOSRecall: ratio(caught, oos)}
	if answered > 0 {
		pt.Precision = ratio(right, answered)
	}
	return pt
}

// Calibration compares confidence with accuracy (Guo et al., "On Calibration of Modern
// Neural Networks", ICML 2017): predictions are put in equal-width confidence bins.
type Calibration struct {
	// ECE is the expected calibration error: Σ (bin count / n) · |accuracy − mean confidence|.
	ECE float64 `json:"ece"`
	// MCE is the largest |accuracy − mean confidence| of a non-empty bin.
	MCE  float64 `json:"mce"`
	Bins []Bin   `json:"bins"`
}

// Bin is one confidence interval (Lo, Hi]; the first also holds confidence 0.
type Bin struct {
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	Count      int     `json:"count"`
	Confidence float64 `json:"confidence"` // mean confidence in the bin
	Accuracy   float64 `json:"accuracy"`
}

// Calibrate bins preds by confidence into n equal-width bins.
func Calibrate(preds []Prediction, n int) Calibration {
	c := Calibration{Bins: make([]Bin, n)}
	right := make([]int, n)
	for i := range c.Bins {
		c.Bins[i].Lo, c.Bins[i].Hi = float64(i)/float64(n), float64(i+1)/float64(n)
	}
	for _, p := range preds {
		// (Lo, Hi]: confidence 0.3 with 10 bins is in (0.2, 0.3].
		i := min(n-1, max(0, cmp.Or(ceilTimes(p.Confidence, n), 1)-1))
		c.Bins[i].Count++
		c.Bins[i].Confidence += p.Confidence
		if p.Correct() {
			right[i]++
		}
	}
	for i := range c.Bins {
		b := &c.Bins[i]
		if b.Count == 0 {
			continue
		}
		b.Confidence /= float64(b.Count)
		b.Accuracy = ratio(right[i], b.Count)
		gap := b.Accuracy - b.Confidence
		if gap < 0 {
			gap = -gap
		}
		c.ECE += gap * float64(b.Count) / float64(len(preds))
		c.MCE = max(c.MCE, gap)
	}
	return c
}

// ceilTimes is ⌈x·n⌉ with a tolerance for floating-point noise (0.3·10 is 3, not 4).
func ceilTimes(x float64, n int) int {
	v := x * float64(n)
	k := int(v)
	if v-float64(k) > 1e-9 {
		k++
	}
	return k
}
