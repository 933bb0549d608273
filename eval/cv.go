package eval

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// CV is the outcome of k-fold cross-validation.
type CV struct {
	K            int         `json:"k"`
	Seed         uint64      `json:"seed"`
	Folds        []FoldScore `json:"folds"`
	MeanAccuracy float64     `json:"mean_accuracy"`
	StdAccuracy  float64     `json:"std_accuracy"`
	MeanMacroF1  float64     `json:"mean_macro_f1"`
	StdMacroF1   float64     `json:"std_macro_f1"`
}

// FoldScore is one fold: a model trained on the other folds, scored on this one.
type FoldScore struct {
	Fold     int     `json:"fold"`
	Train    int     `json:"train"`
	Test     int     `json:"test"`
	Accuracy float64 `json:"accuracy"`
	MacroF1  float64 `json:"macro_f1"`
	Seconds  float64 `json:"seconds"`
}

// Folds splits examples into k folds stratified by label: each label's examples are
// shuffled with seed and dealt to the folds in turn, so every fold has about 1/k of each
// label. It returns the example indices of each fold.
func Folds(labels []string, k int, seed uint64) ([][]int, error) {
	if k < 2 {
		return nil, fmt.Errorf("cross-validation needs at least 2 folds, not %d", k)
	}
	if len(labels) < k {
		return nil, fmt.Errorf("%d examples cannot fill %d folds", len(labels), k)
	}
	byLabel := map[string][]int{}
	for i, l := range labels {
		byLabel[l] = append(byLabel[l], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b656675))
	folds := make([][]int, k)
	next := 0 // continue dealing where the last label stopped, so folds stay even
	for _, l := range slices.Sorted(maps.Keys(byLabel)) {
		idx := byLabel[l]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx {
			folds[next] = append(folds[next], i)
			next = (next + 1) % k
		}
	}
	for _, f := range folds {
		slices.Sort(f)
	}
	return folds, nil
}

// FitFunc trains a model on train and returns its predictions of test, in test's order.
type FitFunc func(ctx context.Context, fold int, train, test []Example) ([]Prediction, error)

// CrossValidate runs k-fold cross-validation with fit and returns the per-fold figures and
// every example's out-of-fold prediction, in the examples' order. Labels a fold's training
// part lacks count as errors in that fold, as they would in production.
func CrossValidate(ctx context.Context, examples []Example, k int, seed uint64, fit FitFunc) (CV, []Prediction, error) {
	labels := make([]string, len(examples))
	for i, e := range examples {
		labels[i] = e.Label
	}
	folds, err := Folds(labels, k, seed)
	if err != nil {
		return CV{}, nil, err
	}
	cv := CV{K: k, Seed: seed}
	all := make([]Prediction, len(examples))
	var accs, f1s []float64
	for f, testIdx := range folds {
		inTest := make([]bool, len(examples))
		test := make([]Example, 0, len(testIdx))
		for _, i := range testIdx {
			inTest[i] = true
			test = append(test, examples[i])
		}
		train := make([]Example, 0, len(examples)-len(test))
		for i, e := range examples {
			if !inTest[i] {
				train = append(train, e)
			}
		}
		start := time.Now()
		preds, err := fit(ctx, f+1, train, test)
		if err != nil {
			return cv, nil, fmt.Errorf("fold %d: %w", f+1, err)
		}
		if len(preds) != len(test) {
			return cv, nil, fmt.Errorf("fold %d: %d predictions for %d examples", f+1, len(preds), len(test))
		}
		gold, pred := make([]string, len(preds)), make([]string, len(preds))
		for j, p := range preds {
			all[testIdx[j]] = p
			gold[j], pred[j] = p.Gold, p.Label
		}
		s := Score(gold, pred)
		cv.Folds = append(cv.Folds, FoldScore{Fold: f + 1, Train: len(train), Test: len(test), Accuracy: s.Accuracy, MacroF1: s.MacroF1, Seconds: time.Since(start).Seconds()})
		accs, f1s = append(accs, s.Accuracy), append(f1s, s.MacroF1)
	}
	cv.MeanAccuracy, cv.StdAccuracy = MeanStd(accs)
	cv.MeanMacroF1, cv.StdMacroF1 = MeanStd(f1s)
	return cv, all, nil
}
