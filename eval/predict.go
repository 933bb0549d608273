package eval

import (
	"context"
	"fmt"
	"slices"

	"github.com/kefu-ai/kefu/models"
)

// Prediction is the model's answer for one example.
type Prediction struct {
	Text       string  `json:"text"`
	Gold       string  `json:"gold"`
	Label      string  `json:"predicted"`
	Confidence float64 `json:"confidence"`
	// Scores are the probabilities of every label of the head, in the manifest's order.
	Scores []float32 `json:"-"`
	File   string    `json:"file,omitempty"`
	Line       int     `json:"line,omitempty"`
}

// Correct reports whether the prediction is the gold label.
func (p Prediction) Correct() bool { return p.Label == p.Gold }

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

// Predict classifies every example with the model's head, in batches of 256; progress, when
// not nil, is told how many examples are done after each batch.
func Predict(ctx context.Context, clf *models.Classifier, head string, examples []Example, progress func(done int)) ([]Prediction, error) {
	idx := headIndex(clf, head)
	if idx < 0 {
		var heads []string
		for _, h := range clf.Manifest().Heads {
			heads = append(heads, h.Name)
		}
		return nil, fmt.Errorf("model %q has no %q head (it has %v)", clf.Manifest().Name, head, heads)
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
			h, e := r.Heads[idx], batch[i]
			preds = append(preds, Prediction{Text: e.Text, Gold: e.Label, Label: h.Label, Confidence: float64(h.Confidence), Scores: h.Scores, File: e.File, Line: e.Line})
		}
		if progress != nil {
			progress(len(preds))
		}
	}
	return preds, nil
}
