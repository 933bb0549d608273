package eval

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteMarkdown writes a summary for CI logs and pull requests: the headline figures, the
// weakest classes, the top confusions and whatever else was measured.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## kefu eval: %s %s, %s head\n\n", r.Model.Name, r.Model.Version, r.Head)
	fmt.Fprintf(&b, "Data: %s\n\n", strings.Join(r.Data, ", "))
	b.WriteString("| metric | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| examples | %d |\n| accuracy | %s |\n| macro-F1 | %s |\n| micro-F1 | %s |\n| weighted-F1 | %s |\n",
		r.N, pct(r.Accuracy), pct(r.MacroF1), pct(r.MicroF1), pct(r.WeightedF1))
	fmt.Fprintf(&b, "| ECE (%d bins) | %.4f |\n", len(r.Calibration.Bins), r.Calibration.ECE)
	if r.Latency != nil {
		fmt.Fprintf(&b, "| latency p50 / p99 | %.2f / %.2f ms |\n| throughput | %.0f examples/s |\n", r.Latency.P50ms, r.Latency.P99ms, r.Latency.Throughput)
	}
	if r.Unknown > 0 {
		fmt.Fprintf(&b, "| unknown labels (left out) | %d: %s |\n", r.Unknown, strings.Join(r.UnknownLabels, ", "))
	}
	if o := r.OOS; o != nil {
		fmt.Fprintf(&b, "| out of scope (%q, threshold %.3f) | in-scope accuracy %s, oos recall %s, precision %s |\n",
			o.Label, o.Threshold, pct(o.InScopeAccuracy), pct(o.Recall), pct(o.Precision))
	}
	s := r.Sweep
	verb := "reaches"
	if !s.Reached {
		verb = "does not reach; best"
	}
	fmt.Fprintf(&b, "| handoff threshold for %s precision | %.3f (%s: precision %s, bot answers %s) |\n\n",
		pct(s.Target), s.Recommended, verb, pct(s.At.Precision), pct(s.At.Coverage))

	if g := r.Gate; g != nil {
		status := "passed"
		if !g.Passed {
			status = "**FAILED**"
		}
		fmt.Fprintf(&b, "### Regression gate %s (baseline %s, at most %.2f points drop)\n\n| metric | baseline | now | drop |\n|---|---|---|---|\n", status, g.Baseline, g.MaxDrop)
		for _, c := range g.Checks {
			mark := ""
			if !c.Passed {
				mark = " ✗"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f%s |\n", c.Metric, pct(c.Baseline), pct(c.Current), c.Drop, mark)
		}
		b.WriteString("\n")
	}
	if c := r.Comparison; c != nil {
		m := c.McNemar
		fmt.Fprintf(&b, "### Compared with %s %s\n\n| | this model | other |\n|---|---|---|\n| accuracy | %s | %s |\n| macro-F1 | %s | %s |\n\n",
			c.Model.Name, c.Model.Version, pct(r.Accuracy), pct(c.Accuracy), pct(r.MacroF1), pct(c.MacroF1))
		fmt.Fprintf(&b, "McNemar: only this model right %d, only the other right %d; p = %.4g (%s).\n\n", m.OnlyA, m.OnlyB, m.P, significance(m.P))
	}
	if cv := r.CV; cv != nil {
		fmt.Fprintf(&b, "### %d-fold cross-validation (seed %d)\n\naccuracy %s ± %.2f, macro-F1 %s ± %.2f (mean ± sample std over folds)\n\n| fold | train | test | accuracy | macro-F1 | seconds |\n|---|---|---|---|---|---|\n",
			cv.K, cv.Seed, pct(cv.MeanAccuracy), 100*cv.StdAccuracy, pct(cv.MeanMacroF1), 100*cv.StdMacroF1)
		for _, f := range cv.Folds {
			fmt.Fprintf(&b, "| %d | %d | %d | %s | %s | %.1f |\n", f.Fold, f.Train, f.Test, pct(f.Accuracy), pct(f.MacroF1), f.Seconds)
		}
		b.WriteString("\n")
	}
	weak := slices.Clone(r.Classes)
	slices.SortStableFunc(weak, func(a, b Class) int { return cmp.Compare(a.F1, b.F1) })
	b.WriteString("### Weakest classes\n\n| label | precision | recall | F1 | support | confused with |\n|---|---|---|---|---|---|\n")
	for _, c := range weak[:min(10, len(weak))] {
		var with []string
		for _, x := range c.ConfusedWith {
			with = append(with, fmt.Sprintf("%s (%d)", mdEscape(x.Predicted), x.Count))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s |\n", mdEscape(c.Label), pct(c.Precision), pct(c.Recall), pct(c.F1), c.Support, strings.Join(with, ", "))
	}
	if len(r.Misclassified) > 0 {
		fmt.Fprintf(&b, "\n### Most confident mistakes (%d in all)\n\n| text | gold | predicted | confidence |\n|---|---|---|---|\n", len(r.Misclassified))
		for _, p := range r.Misclassified[:min(10, len(r.Misclassified))] {
			fmt.Fprintf(&b, "| %s | %s | %s | %.3f |\n", mdEscape(p.Text), mdEscape(p.Gold), mdEscape(p.Label), p.Confidence)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }

func significance(p float64) string {
	if p < 0.05 {
		return "the difference is significant at 0.05"
	}
	return "no significant difference at 0.05"
}

// mdEscape keeps a text on one table row.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
