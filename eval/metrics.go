package eval

import (
	"context"
	"fmt"
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
	idx := slices.IndexFunc(clf.Manifest().Heads, func(h models.HeadSpec) bool { return h.Name == head })
	if idx < 0 {
		return Scores{}, fmt.Errorf("model %q has no %q head", clf.Manifest().Name, head)
	}
	known := map[string]bool{}
	for _, l := range clf.Manifest().Heads[idx].Labels {
		known[l] = true
	}
	var texts, gold []string
	unknown := map[string]bool{}
	skipped := 0
	for _, e := range examples {
		if !known[e.Label] {
			unknown[e.Label] = true
			skipped++
			continue
		}
		texts, gold = append(texts, e.Text), append(gold, e.Label)
	}
	pred := make([]string, 0, len(texts))
	for start := 0; start < len(texts); start += 256 {
		res, err := clf.Classify(ctx, texts[start:min(start+256, len(texts))])
		if err != nil {
			return Scores{}, err
		}
		for _, r := range res {
			pred = append(pred, r.Heads[idx].Label)
		}
	}
	s := Score(gold, pred)
	s.Unknown = skipped
	for l := range unknown {
		s.UnknownLabels = append(s.UnknownLabels, l)
	}
	slices.Sort(s.UnknownLabels)
	return s, nil
}
