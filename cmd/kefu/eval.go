package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kefu-ai/kefu/eval"
)

func evaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "--model DIR --data FILE[,FILE…] [flags]", stderr)
	modelDir := fs.String("model", "", "model bundle directory (default: the embedded demo model)")
	data := fs.String("data", "", "labelled data files, comma-separated (required)")
	head := fs.String("head", "intent", "head to evaluate: intent or emotion")
	load := dataFlags(fs)
	jsonOut := fs.String("json", "", "also write accuracy, macro_f1 and n (and oos) to this JSON file")
	oosLabel := fs.String("oos-label", "", "label of out-of-scope examples (CLINC150: oos); measures detection by confidence threshold")
	threshold := fs.Float64("threshold", 0, "confidence below which a prediction counts as out of scope (with --oos-label)")
	thresholdData := fs.String("threshold-data", "", "pick --threshold on these files instead: the highest with in-scope accuracy ≥ --min-in-scope")
	minInScope := fs.Float64("min-in-scope", 0.9, "in-scope accuracy to keep when picking the threshold")
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		fmt.Fprintln(stderr, "kefu eval: --data is required")
		fs.Usage()
		return errUsage
	}
	examples, err := load(*data, *head)
	if err != nil {
		return err
	}
	clf, _, closeModel, err := openModel(openRuntime, *modelDir, *cfg)
	if err != nil {
		return err
	}
	defer closeModel()
	preds, err := eval.Predict(ctx, clf, *head, examples)
	if err != nil {
		return err
	}
	m := clf.Manifest()
	report := struct {
		eval.Scores
		OOS *eval.OOS `json:"oos,omitempty"`
	}{Scores: eval.ScorePredictions(preds, eval.HeadLabels(clf, *head))}
	s := report.Scores
	fmt.Fprintf(stdout, "model     %s %s\nhead      %s\nexamples  %d\naccuracy  %.4f\nmacro-F1  %.4f\n", m.Name, m.Version, *head, s.N, s.Accuracy, s.MacroF1)
	if s.Unknown > 0 {
		fmt.Fprintf(stdout, "unknown   %d examples with labels the model lacks: %s\n", s.Unknown, strings.Join(s.UnknownLabels, ", "))
	}
	if *oosLabel != "" {
		thr := *threshold
		if *thresholdData != "" {
			cal, err := load(*thresholdData, *head)
			if err != nil {
				return err
			}
			calPreds, err := eval.Predict(ctx, clf, *head, cal)
			if err != nil {
				return err
			}
			thr = eval.PickThreshold(calPreds, *oosLabel, *minInScope)
			c := eval.ScoreOOS(calPreds, *oosLabel, thr)
			fmt.Fprintf(stdout, "threshold %.4f picked on %s: in-scope accuracy %.4f, oos recall %.4f\n", thr, *thresholdData, c.InScopeAccuracy, c.Recall)
		}
		o := eval.ScoreOOS(preds, *oosLabel, thr)
		report.OOS = &o
		fmt.Fprintf(stdout, "oos       threshold %.4f: in-scope accuracy %.4f (%d), oos recall %.4f, precision %.4f (%d)\n", thr, o.InScopeAccuracy, o.InScope, o.Recall, o.Precision, o.OutOfScope)
	}
	if *jsonOut != "" {
		out, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
