package eval

import (
	"math"
	"slices"
)

// OOS is out-of-scope detection at a confidence threshold: a prediction below the threshold
// (or of the out-of-scope label itself) counts as "out of scope".
type OOS struct {
	Label     string  `json:"label"`
	Threshold float64 `json:"threshold"`
	// InScopeAccuracy is the share of in-scope examples given their right label at or above
	// the threshold (Larson et al. 2019).
	InScopeAccuracy float64 `json:"in_scope_accuracy"`
	Recall          float64 `json:"oos_recall"`
	Precision       float64 `json:"oos_precision"`
	InScope         int     `json:"in_scope"`
	OutOfScope      int     `json:"out_of_scope"`
}

// ScoreOOS measures out-of-scope detection at threshold; examples whose gold label is
// label are the out-of-scope ones.
func ScoreOOS(preds []Prediction, label string, threshold float64) OOS {
	o := OOS{Label: label, Threshold: threshold}
	var right, caught, flagged int
	for _, p := range preds {
		out := p.Label == label || p.Confidence < threshold
		if out {
			flagged++
		}
		if p.Gold == label {
			o.OutOfScope++
			if out {
				caught++
			}
			continue
		}
		o.InScope++
		if !out && p.Label == p.Gold {
			right++
		}
	}
	o.InScopeAccuracy = ratio(right, o.InScope)
	o.Recall = ratio(caught, o.OutOfScope)
	o.Precision = ratio(caught, flagged)
	return o
}

// PickThreshold returns the highest confidence threshold at which the in-scope accuracy on
// preds is still at least minInScope; out-of-scope recall only grows with the threshold, so
// this is the threshold with the best recall under that constraint. It returns 0 when even no
// threshold reaches minInScope.
func PickThreshold(preds []Prediction, label string, minInScope float64) float64 {
	var right []float64 // confidences of in-scope examples labelled right
	in := 0
	for _, p := range preds {
		if p.Gold == label {
			continue
		}
		in++
		if p.Label == p.Gold {
			right = append(right, p.Confidence)
		}
	}
	need := int(math.Ceil(minInScope*float64(in) - 1e-9))
	if need <= 0 {
		return 1
	}
	if need > len(right) {
		return 0
	}
	slices.Sort(right)
	slices.Reverse(right)
	return right[need-1]
}
