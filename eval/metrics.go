package eval

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/kefu-ai/kefu/models"
)

// Scores summarises predictions against gold labels.
type Scores struct {
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the unweighted mean of per-label F1 over every label that is a gold or a
	// predicted label (scikit-learn's average="macro").
	MacroF1 float64 `json:"macro_f1"`
	// Unknown counts examples whose gold label the model does not have; they are left out of
	// N, Accuracy and MacroF1 and listed in UnknownLabels.
	Unknown       int      `json:"unknown"`
	UnknownLabels []string `json:"unknown_labels,omitempty"`
}

// Score compares predictions with gold labels (same length).
func Score(gold, pred []string) Scores {
	s := Scores{N: len(gold)}
	if len(gold) == 0 {
		return s
	}
	tp, fp, fn := map[string]int{}, map[string]int{}, map[string]int{}
	labels := map[string]bool{}
	right := 0
	for i := range gold {
		labels[gold[i]], labels[pred[i]] = true, true
		if gold[i] == pred[i] {
			right++
			tp[gold[i]]++
		} else {
			fp[pred[i]]++
			fn[gold[i]]++
		}
	}
	s.Accuracy = float64(right) / float64(len(gold))
	var sum float64
	for l := range labels {
		if d := 2*tp[l] + fp[l] + fn[l]; d > 0 {
			sum += 2 * float64(tp[l]) / float64(d)
		}
	}
	s.MacroF1 = sum / float64(len(labels))
	return s
}

// Evaluate classifies every example with the model's head and scores the predictions.
func Evaluate(ctx context.Context, clf *models.Classifier, head string, examples []Example) (Scores, error) {
	preds, err := Predict(ctx, clf, head, examples)
	if err != nil {
		return Scores{}, err
	}
	return ScorePredictions(preds, HeadLabels(clf, head)), nil
}

// ScorePredictions scores predictions whose gold label is one of the model's labels; the
// others are counted and listed as unknown.
func ScorePredictions(preds []Prediction, modelLabels []string) Scores {
	var gold, pred []string
	unknown := map[string]bool{}
	skipped := 0
	for _, p := range preds {
		if !slices.Contains(modelLabels, p.Gold) {
			unknown[p.Gold] = true
			skipped++
			continue
		}
		gold, pred = append(gold, p.Gold), append(pred, p.Label)
	}
	s := Score(gold, pred)
	s.Unknown = skipped
	s.UnknownLabels = slices.Sorted(maps.Keys(unknown))
	return s
}

// Prediction is the model's answer for one example.
type Prediction struct {
	Gold       string
	Label      string
	Confidence float64
}

// HeadLabels lists the labels of the model's head, or nil when it has no such head.
func HeadLabels(clf *models.Classifier, head string) []string {
	if i := headIndex(clf, head); i >= 0 {
		return clf.Manifest().Heads[i].Labels
	}
	return nil
}

func headIndex(clf *models.Classifier, head string) int {
	return slices.IndexFunc(clf.Manifest().Heads, func(h models.HeadSpec) bool { return h.Name == head })
}

// Predict classifies every example with the model's head.
func Predict(ctx context.Context, clf *models.Classifier, head string, examples []Example) ([]Prediction, error) {
	idx := headIndex(clf, head)
	if idx < 0 {
		return nil, fmt.Errorf("model %q has no %q head", clf.Manifest().Name, head)
	}
	preds := make([]Prediction, 0, len(examples))
	for start := 0; start < len(examples); start += 256 {
		batch := examples[start:min(start+256, len(examples))]
		texts := make([]string, len(batch))
		for i, e := range batch {
			texts[i] = e.Text
		}
		res, err := clf.Classify(ctx, texts)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			h := r.Heads[idx]
			preds = append(preds, Prediction{Gold: batch[i].Label, Label: h.Label, Confidence: float64(h.Confidence)})
		}
	}
	return preds, nil
}

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

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
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
