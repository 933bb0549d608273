package eval

import (
	"cmp"
	"maps"
	"slices"
)

// Scores summarises predictions against gold labels.
type Scores struct {
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the unweighted mean of per-label F1 over every label that is a gold or a
	// predicted label (scikit-learn's average="macro").
	MacroF1 float64 `json:"macro_f1"`
	// MicroF1 pools true and false positives over labels; with one label per example it
	// equals the accuracy.
	MicroF1 float64 `json:"micro_f1"`
	// WeightedF1 weights each label's F1 by its support (gold count).
	WeightedF1 float64 `json:"weighted_f1"`
	// Unknown counts examples whose gold label the model does not have; they are left out of
	// every other figure and listed in UnknownLabels.
	Unknown       int      `json:"unknown"`
	UnknownLabels []string `json:"unknown_labels,omitempty"`
	// Classes holds one row per label, sorted by label.
	Classes []Class `json:"classes"`
	// Confusion counts gold (rows) against predicted (columns) labels, in Classes' order.
	Confusion [][]int `json:"confusion"`
	// TopConfusions are the most frequent (gold, predicted) mistakes, most frequent first.
	TopConfusions []Confusion `json:"top_confusions"`
}

// Class is one label's figures.
type Class struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`   // gold examples
	Predicted int     `json:"predicted"` // examples given this label
	// ConfusedWith lists the labels this label's examples were wrongly given, most often
	// first (at most three).
	ConfusedWith []Confusion `json:"confused_with,omitempty"`
}

// Confusion is a count of examples of one gold label given another label.
type Confusion struct {
	Gold      string `json:"gold"`
	Predicted string `json:"predicted"`
	Count     int    `json:"count"`
}

// Score compares predictions with gold labels (same length).
func Score(gold, pred []string) Scores {
	s := Scores{N: len(gold), Classes: []Class{}, Confusion: [][]int{}, TopConfusions: []Confusion{}}
	if len(gold) == 0 {
		return s
	}
	set := map[string]bool{}
	for i := range gold {
		set[gold[i]], set[pred[i]] = true, true
	}
	labels := slices.Sorted(maps.Keys(set))
	index := make(map[string]int, len(labels))
	for i, l := range labels {
		index[l] = i
	}
	s.Confusion = make([][]int, len(labels))
	for i := range s.Confusion {
		s.Confusion[i] = make([]int, len(labels))
	}
	right := 0
	for i := range gold {
		s.Confusion[index[gold[i]]][index[pred[i]]]++
		if gold[i] == pred[i] {
			right++
		}
	}
	s.Accuracy = ratio(right, len(gold))
	var tpAll, fpAll, fnAll int
	for i, l := range labels {
		c := Class{Label: l}
		tp := s.Confusion[i][i]
		for j := range labels {
			c.Support += s.Confusion[i][j]
			c.Predicted += s.Confusion[j][i]
			if j != i && s.Confusion[i][j] > 0 {
				c.ConfusedWith = append(c.ConfusedWith, Confusion{Gold: l, Predicted: labels[j], Count: s.Confusion[i][j]})
			}
		}
		c.Precision, c.Recall = ratio(tp, c.Predicted), ratio(tp, c.Support)
		c.F1 = f1(tp, c.Predicted-tp, c.Support-tp)
		tpAll, fpAll, fnAll = tpAll+tp, fpAll+c.Predicted-tp, fnAll+c.Support-tp
		sortConfusions(c.ConfusedWith)
		s.TopConfusions = append(s.TopConfusions, c.ConfusedWith...)
		c.ConfusedWith = c.ConfusedWith[:min(3, len(c.ConfusedWith))]
		s.MacroF1 += c.F1 / float64(len(labels))
		s.WeightedF1 += c.F1 * float64(c.Support) / float64(len(gold))
		s.Classes = append(s.Classes, c)
	}
	s.MicroF1 = f1(tpAll, fpAll, fnAll)
	sortConfusions(s.TopConfusions)
	s.TopConfusions = s.TopConfusions[:min(10, len(s.TopConfusions))]
	return s
}

// f1 is 2·tp / (2·tp + fp + fn), 0 when there is nothing to count.
func f1(tp, fp, fn int) float64 { return ratio(2*tp, 2*tp+fp+fn) }

func sortConfusions(c []Confusion) {
	slices.SortStableFunc(c, func(a, b Confusion) int {
		return cmp.Or(b.Count-a.Count, cmp.Compare(a.Gold, b.Gold), cmp.Compare(a.Predicted, b.Predicted))
	})
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

// Misclassified returns the wrongly labelled predictions whose gold label the model knows,
// the most confident mistakes first.
func Misclassified(preds []Prediction, modelLabels []string) []Prediction {
	out := []Prediction{}
	for _, p := range preds {
		if p.Label != p.Gold && slices.Contains(modelLabels, p.Gold) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Prediction) int { return cmp.Compare(b.Confidence, a.Confidence) })
	return out
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
