package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestScoreClassesByHand(t *testing.T) {
	s := Score([]string{"a", "a", "a", "b", "b", "c"}, []string{"a", "a", "b", "b", "c", "c"})
	wantMatrix := [][]int{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}
	if !reflect.DeepEqual(s.Confusion, wantMatrix) {
		t.Errorf("confusion %v, want %v", s.Confusion, wantMatrix)
	}
	want := []Class{
		{Label: "a", Precision: 1, Recall: 2.0 / 3, F1: 0.8, Support: 3, Predicted: 2, ConfusedWith: []Confusion{{"a", "b", 1}}},
		{Label: "b", Precision: 0.5, Recall: 0.5, F1: 0.5, Support: 2, Predicted: 2, ConfusedWith: []Confusion{{"b", "c", 1}}},
		{Label: "c", Precision: 0.5, Recall: 1, F1: 2.0 / 3, Support: 1, Predicted: 2},
	}
	for i, w := range want {
		g := s.Classes[i]
		if g.Label != w.Label || !near(g.Precision, w.Precision) || !near(g.Recall, w.Recall) || !near(g.F1, w.F1) ||
			g.Support != w.Support || g.Predicted != w.Predicted || !reflect.DeepEqual(g.ConfusedWith, w.ConfusedWith) {
			t.Errorf("class %s: %+v, want %+v", w.Label, g, w)
		}
	}
	// weighted: (3·0.8 + 2·0.5 + 1·2/3) / 6; micro = accuracy with one label per example.
	if !near(s.WeightedF1, (2.4+1+2.0/3)/6) || !near(s.MicroF1, 4.0/6) || !near(s.MacroF1, (0.8+0.5+2.0/3)/3) {
		t.Errorf("weighted %v micro %v macro %v", s.WeightedF1, s.MicroF1, s.MacroF1)
	}
	if want := []Confusion{{"a", "b", 1}, {"b", "c", 1}}; !reflect.DeepEqual(s.TopConfusions, want) {
		t.Errorf("top confusions %v", s.TopConfusions)
	}
}

func TestConfusedWithOrdersAndCaps(t *testing.T) {
	gold := strings.Split("x x x x x x x x x x", " ")
	pred := strings.Split("x p q q r r r s s s", " ")
	s := Score(gold, pred)
	x := s.Classes[slices.IndexFunc(s.Classes, func(c Class) bool { return c.Label == "x" })]
	want := []Confusion{{"x", "r", 3}, {"x", "s", 3}, {"x", "q", 2}} // most often first, ties by label, three at most
	if !reflect.DeepEqual(x.ConfusedWith, want) {
		t.Errorf("%v", x.ConfusedWith)
	}
}

func TestMisclassifiedMostConfidentFirst(t *testing.T) {
	preds := []Prediction{
		{Text: "1", Gold: "a", Label: "b", Confidence: 0.4},
		{Text: "2", Gold: "a", Label: "a", Confidence: 0.99},
		{Text: "3", Gold: "b", Label: "a", Confidence: 0.9},
		{Text: "4", Gold: "zzz", Label: "a", Confidence: 0.95}, // unknown gold label: listed apart
	}
	got := Misclassified(preds, []string{"a", "b"})
	if len(got) != 2 || got[0].Text != "3" || got[1].Text != "1" {
		t.Errorf("%+v", got)
	}
}

// sweepPreds: two out-of-scope examples the model (which has no oos label) gives labels to.
var sweepPreds = []Prediction{
	{Gold: "a", Label: "a", Confidence: 0.9},
	{Gold: "a", Label: "a", Confidence: 0.6},
	{Gold: "b", Label: "b", Confidence: 0.4},
	{Gold: "b", Label: "a", Confidence: 0.8},
	{Gold: "oos", Label: "a", Confidence: 0.5},
	{Gold: "oos", Label: "b", Confidence: 0.3},
}

func TestThresholdSweepByHand(t *testing.T) {
	// Answered at ≥ t: 0.3 → all, 3/6 right; 0.4 → 3/5; 0.5 → 2/4; 0.6 → 2/3; 0.8 → 1/2; 0.9 → 1/1.
	for _, c := range []struct {
		target, thr, coverage, precision, recall float64
	}{
		{0.6, 0.4, 5.0 / 6, 0.6, 0.5},
		{0.65, 0.6, 0.5, 2.0 / 3, 1},
		{0.95, 0.9, 1.0 / 6, 1, 1},
		{0.5, 0, 1, 0.5, 0},
	} {
		s := ThresholdSweep(sweepPreds, "oos", c.target)
		if !s.Reached || s.Recommended != c.thr || !near(s.At.Coverage, c.coverage) || !near(s.At.Precision, c.precision) || !near(s.At.OOSRecall, c.recall) {
			t.Errorf("target %v: %+v, want threshold %v", c.target, s.At, c.thr)
		}
	}
	s := ThresholdSweep(sweepPreds, "oos", 1.01)
	if s.Reached || s.Recommended != 0.9 || s.At.Precision != 1 {
		t.Errorf("unreachable: %+v", s)
	}
	if len(s.Points) != 51 || s.Points[30].Threshold != 0.6 || !near(s.Points[30].Precision, 2.0/3) || s.Points[50].Coverage != 0 || s.Points[50].Precision != 1 {
		t.Errorf("points %+v", s.Points[30])
	}
	// A predicted oos label is a handoff at any threshold.
	s = ThresholdSweep([]Prediction{{Gold: "oos", Label: "oos", Confidence: 0.99}, {Gold: "a", Label: "a", Confidence: 0.2}}, "oos", 0.9)
	if s.Recommended != 0 || s.At.Coverage != 0.5 || s.At.OOSRecall != 1 {
		t.Errorf("oos label: %+v", s)
	}
}

func TestCalibrateByHand(t *testing.T) {
	preds := []Prediction{
		{Gold: "a", Label: "a", Confidence: 0.95},
		{Gold: "a", Label: "a", Confidence: 0.85},
		{Gold: "a", Label: "b", Confidence: 0.85},
		{Gold: "a", Label: "a", Confidence: 0.3}, // (0.2, 0.3]
		{Gold: "a", Label: "b", Confidence: 0.25},
		{Gold: "a", Label: "b", Confidence: 0},
	}
	c := Calibrate(preds, 10)
	// gaps: bin 9 |1−0.95| = 0.05 (1), bin 8 |0.5−0.85| = 0.35 (2), bin 2 |0.5−0.275| = 0.225 (2), bin 0 0 (1)
	if !near(c.ECE, (0.05+0.7+0.45)/6) || !near(c.MCE, 0.35) {
		t.Errorf("ECE %v MCE %v", c.ECE, c.MCE)
	}
	if b := c.Bins[2]; b.Count != 2 || !near(b.Confidence, 0.275) || b.Accuracy != 0.5 || b.Lo != 0.2 || b.Hi != 0.3 {
		t.Errorf("bin 2 %+v", b)
	}
	if c.Bins[0].Count != 1 || c.Bins[3].Count != 0 || c.Bins[9].Count != 1 {
		t.Errorf("%+v", c.Bins)
	}
}

func TestMcNemarByHand(t *testing.T) {
	mk := func(bothRight, onlyA, onlyB, neither int) (a, b []Prediction) {
		add := func(n int, ra, rb bool) {
			for range n {
				pa, pb := Prediction{Gold: "g", Label: "g"}, Prediction{Gold: "g", Label: "g"}
				if !ra {
					pa.Label = "x"
				}
				if !rb {
					pb.Label = "x"
				}
				a, b = append(a, pa), append(b, pb)
			}
		}
		add(bothRight, true, true)
		add(onlyA, true, false)
		add(onlyB, false, true)
		add(neither, false, false)
		return a, b
	}
	// 12 discordant pairs (< 25): exact two-sided binomial 2·(C(12,0)+C(12,1)+C(12,2))/2¹² = 158/4096.
	a, b := mk(50, 10, 2, 5)
	m, err := CompareMcNemar(a, b)
	if err != nil || m.Both != 50 || m.OnlyA != 10 || m.OnlyB != 2 || m.Neither != 5 || !m.Exact || !near(m.P, 158.0/4096) || !near(m.Statistic, 49.0/12) {
		t.Errorf("%+v %v", m, err)
	}
	// 40 discordant: χ² = (|30−10|−1)²/40 = 9.025, p = erfc(√(9.025/2)) = 0.0026631.
	a, b = mk(100, 30, 10, 0)
	m, _ = CompareMcNemar(a, b)
	if m.Exact || !near(m.Statistic, 9.025) || math.Abs(m.P-0.0026631) > 1e-6 {
		t.Errorf("%+v", m)
	}
	if m, _ := CompareMcNemar(mk(3, 0, 0, 1)); m.P != 1 {
		t.Errorf("no discordant pairs: %+v", m)
	}
	if _, err := CompareMcNemar(a, b[1:]); err == nil {
		t.Error("different lengths accepted")
	}
}

func TestPercentileAndMeanStd(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if Percentile(xs, 0.5) != 5 || Percentile(xs, 0.99) != 10 || Percentile(xs, 0.1) != 1 || Percentile(nil, 0.5) != 0 {
		t.Error("percentile")
	}
	m, s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || !near(s, math.Sqrt(32.0/7)) {
		t.Errorf("%v %v", m, s)
	}
}

func TestRegressionGate(t *testing.T) {
	base := Scores{Accuracy: 0.9211, MacroF1: 0.9000}
	g := CheckRegression("base.json", base, Scores{Accuracy: 0.9150, MacroF1: 0.8990}, 0.5)
	if g.Passed || g.Checks[0].Passed || !near(g.Checks[0].Drop, 0.61) || !g.Checks[1].Passed || !near(g.Checks[1].Drop, 0.1) {
		t.Errorf("%+v", g)
	}
	if err := g.Err(); !errors.Is(err, ErrRegression) || !strings.Contains(err.Error(), "accuracy 92.11% → 91.50%") || strings.Contains(err.Error(), "macro_f1") {
		t.Errorf("%v", err)
	}
	// Exactly the allowed drop passes; a gain passes.
	if g := CheckRegression("b", base, Scores{Accuracy: 0.9161, MacroF1: 0.95}, 0.5); !g.Passed || g.Err() != nil {
		t.Errorf("%+v", g)
	}
}

func TestFoldsAndCrossValidate(t *testing.T) {
	labels := []string{"a", "b", "a", "a", "b", "a"}
	folds, err := Folds(labels, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, f := range folds {
		count := map[string]int{}
		for _, i := range f {
			seen[i]++
			count[labels[i]]++
		}
		if count["a"] != 2 || count["b"] != 1 {
			t.Errorf("fold not stratified: %v", count)
		}
	}
	if len(seen) != 6 {
		t.Errorf("each example once: %v", seen)
	}
	again, _ := Folds(labels, 2, 7)
	if !reflect.DeepEqual(folds, again) {
		t.Error("same seed, other folds")
	}
	for _, k := range []int{1, 7} {
		if _, err := Folds(labels, k, 1); err == nil {
			t.Errorf("k=%d accepted", k)
		}
	}
	var ex []Example
	for i, l := range labels {
		ex = append(ex, Example{Text: string(rune('p' + i)), Label: l})
	}
	// A majority-label "model": each fold trains on a,a,b and answers a; 2 of 3 right,
	// macro-F1 (4/5 + 0)/2.
	majority := func(_ context.Context, _ int, train, test []Example) ([]Prediction, error) {
		n := map[string]int{}
		for _, e := range train {
			n[e.Label]++
		}
		out := []Prediction{}
		for _, e := range test {
			l := "a"
			if n["b"] > n["a"] {
				l = "b"
			}
			out = append(out, Prediction{Text: e.Text, Gold: e.Label, Label: l, Confidence: 1})
		}
		return out, nil
	}
	cv, preds, err := CrossValidate(context.Background(), ex, 2, 7, majority)
	if err != nil || len(cv.Folds) != 2 || !near(cv.MeanAccuracy, 2.0/3) || cv.StdAccuracy != 0 || !near(cv.MeanMacroF1, 0.4) || cv.Folds[0].Train != 3 {
		t.Fatalf("%+v %v", cv, err)
	}
	for i, p := range preds {
		if p.Text != ex[i].Text {
			t.Errorf("out-of-fold prediction %d is for %q", i, p.Text)
		}
	}
}

// TestThresholdSweepMatchesEveryCandidate checks the one-pass sweep against measuring every
// candidate threshold with sweepAt, on random predictions with tied confidences.
func TestThresholdSweepMatchesEveryCandidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []string{"a", "b", "c", "oos"}
	for trial := range 200 {
		var preds []Prediction
		for range 1 + rng.IntN(40) {
			preds = append(preds, Prediction{Gold: labels[rng.IntN(4)], Label: labels[rng.IntN(4)], Confidence: float64(rng.IntN(11)) / 10})
		}
		oos := []string{"", "oos"}[trial%2]
		target := []float64{0.5, 0.8, 0.95, 1}[trial%4]
		want := Sweep{Target: target}
		best := SweepPoint{Precision: -1}
		cands := []float64{0}
		for _, p := range preds {
			if oos == "" || p.Label != oos {
				cands = append(cands, p.Confidence)
			}
		}
		slices.Sort(cands)
		for _, c := range slices.Compact(cands) {
			pt := sweepAt(preds, oos, c)
			if pt.Coverage > 0 && pt.Precision >= target {
				want.Recommended, want.Reached, want.At = c, true, pt
				break
			}
			if pt.Coverage > 0 && pt.Precision > best.Precision {
				best = pt
			}
		}
		if !want.Reached && best.Precision >= 0 {
			want.Recommended, want.At = best.Threshold, best
		}
		got := ThresholdSweep(preds, oos, target)
		if got.Recommended != want.Recommended || got.Reached != want.Reached || got.At != want.At {
			t.Fatalf("trial %d: got %v %v %+v, want %v %v %+v", trial, got.Recommended, got.Reached, got.At, want.Recommended, want.Reached, want.At)
		}
	}
}
