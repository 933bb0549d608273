package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/eval"
	"github.com/kefu-ai/kefu/models"
	"github.com/kefu-ai/kefu/models/train"
)

func evaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "--model DIR --data FILE[,FILE…] [flags]\n       kefu eval --realtext FILE [--data-dir DIR] [--sample N] [--model DIR] [--bot DIR]", stderr)
	modelDir := fs.String("model", "", "model bundle directory (default: the embedded demo model)")
	data := fs.String("data", "", "labelled data: files or folders, comma-separated (required)")
	head := fs.String("head", "intent", "head to evaluate: intent or emotion")
	load := dataFlags(fs)
	jsonOut := fs.String("json", "", "write the full report as JSON to this file")
	mdOut := fs.String("markdown", "", "write a Markdown summary to this file (- for stdout)")
	htmlOut := fs.String("html", "", "write a self-contained HTML report (heatmap, sortable table, curves) to this file")
	oosLabel := fs.String("oos-label", "", "label of out-of-scope examples (CLINC150: oos); measures detection by confidence threshold")
	threshold := fs.Float64("threshold", 0, "confidence below which a prediction counts as out of scope (with --oos-label)")
	thresholdData := fs.String("threshold-data", "", "pick --threshold on these files instead: the highest with in-scope accuracy ≥ --min-in-scope")
	minInScope := fs.Float64("min-in-scope", 0.9, "in-scope accuracy to keep when picking the threshold")
	target := fs.Float64("target-precision", 0.95, "precision of the bot's answers the threshold sweep recommends a handoff threshold for")
	bins := fs.Int("bins", 10, "calibration bins")
	latency := fs.Int("latency-samples", 200, "texts classified one at a time for latency p50/p99 (0: skip)")
	compare := fs.String("compare", "", "a second model bundle to measure on the same data, with McNemar's test")
	baseline := fs.String("baseline", "", "JSON report of an earlier run: exit 1 when accuracy or macro-F1 fell more than --max-drop")
	maxDrop := fs.Float64("max-drop", 0.5, "percentage points accuracy or macro-F1 may fall below --baseline")
	show := fs.Int("show-errors", 5, "misclassified examples to print")
	cv := fs.Int("cv", 0, "k-fold cross-validation: train a model on k−1 folds with kefu train's trainer and evaluate on the k-th, k times (ignores --model)")
	trainConfig := trainFlags(fs, "train-workers")
	quiet := fs.Bool("quiet", false, "print no progress")
	realtext := fs.String("realtext", "", "measure the model on real people's words instead: the checks of this mapping file (cmd/kefu/bot/realtext.yaml); exit 1 when one misses its target")
	dataDir := fs.String("data-dir", "../shared/data", "with --realtext: the folder the mapping's paths are relative to")
	sample := fs.Int("sample", 0, "with --realtext: read about this many rows per check, spread over the files (0: all)")
	botDir := fs.String("bot", "", "with --realtext: the bot bundle whose flows and handoff threshold the checks use (default: the embedded demo bot)")
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *realtext != "" {
		return realText(ctx, *realtext, *dataDir, *sample, *modelDir, *botDir, *jsonOut, openRuntime, *cfg, stdout)
	}
	if *data == "" {
		fmt.Fprintln(stderr, "kefu eval: --data is required")
		fs.Usage()
		return errUsage
	}
	if *head != "intent" && *head != "emotion" {
		return fmt.Errorf("--head %q: want intent or emotion", *head)
	}
	if *target <= 0 || *target > 1 || *bins < 1 || *maxDrop < 0 || *cv == 1 || *cv < 0 {
		return fmt.Errorf("want 0 < --target-precision ≤ 1, --bins ≥ 1, --max-drop ≥ 0 and --cv 0 or ≥ 2")
	}
	var base eval.Scores
	if *baseline != "" { // read first: a bad baseline should not cost a whole run
		var err error
		if base, err = eval.ReadBaseline(*baseline); err != nil {
			return err
		}
	}
	examples, err := load(*data, *head)
	if err != nil {
		return err
	}
	dataList := strings.Split(*data, ",")
	progress := stderr
	if *quiet {
		progress = io.Discard
	}
	opts := eval.Options{OOSLabel: *oosLabel, Threshold: *threshold, TargetPrecision: *target, Bins: *bins}

	rt, err := openRuntime()
	if err != nil {
		return err
	}
	defer rt.Close()
	var report eval.Report
	if *cv > 0 {
		tc, err := trainConfig()
		if err != nil {
			return err
		}
		report, err = crossValidate(ctx, rt, *cfg, tc, examples, *cv, *head, dataList, opts, progress)
		if err != nil {
			return err
		}
	} else {
		clf, info, closeModel, err := loadForEval(rt, *modelDir, *cfg)
		if err != nil {
			return err
		}
		defer closeModel()
		labels := eval.HeadLabels(clf, *head)
		start := time.Now()
		preds, err := eval.Predict(ctx, clf, *head, examples, progressBar(progress, "classify", len(examples)))
		if err != nil {
			return err
		}
		took := time.Since(start)
		if report := eval.ScorePredictions(preds, labels); report.N == 0 {
			return fmt.Errorf("none of the data's labels (%s) is a label of the model's %s head (%s): wrong --head or wrong model?",
				strings.Join(firstN(report.UnknownLabels, 8), ", "), *head, strings.Join(firstN(labels, 8), ", "))
		}
		if *thresholdData != "" && *oosLabel != "" {
			cal, err := load(*thresholdData, *head)
			if err != nil {
				return err
			}
			calPreds, err := eval.Predict(ctx, clf, *head, cal, nil)
			if err != nil {
				return err
			}
			opts.Threshold = eval.PickThreshold(calPreds, *oosLabel, *minInScope)
			c := eval.ScoreOOS(calPreds, *oosLabel, opts.Threshold)
			fmt.Fprintf(stdout, "threshold %.4f picked on %s: in-scope accuracy %.4f, oos recall %.4f\n", opts.Threshold, *thresholdData, c.InScopeAccuracy, c.Recall)
		}
		report = eval.NewReport(info, *head, dataList, preds, labels, opts)
		if *latency > 0 {
			l, err := measureLatency(ctx, clf, examples, *latency)
			if err != nil {
				return err
			}
			l.Throughput = float64(len(examples)) / took.Seconds()
			report.Latency = &l
		}
		if *compare != "" {
			other, oinfo, closeOther, err := loadForEval(rt, *compare, *cfg)
			if err != nil {
				return fmt.Errorf("--compare: %w", err)
			}
			defer closeOther()
			opreds, err := eval.Predict(ctx, other, *head, examples, progressBar(progress, "compare", len(examples)))
			if err != nil {
				return fmt.Errorf("--compare: %w", err)
			}
			oscores := eval.ScorePredictions(opreds, eval.HeadLabels(other, *head))
			m, err := eval.CompareMcNemar(preds, opreds)
			if err != nil {
				return err
			}
			report.Comparison = &eval.Comparison{Model: oinfo, Accuracy: oscores.Accuracy, MacroF1: oscores.MacroF1, McNemar: m}
		}
	}
	if *baseline != "" {
		g := eval.CheckRegression(*baseline, base, report.Scores, *maxDrop)
		report.Gate = &g
	}
	printSummary(stdout, &report, *show)
	if err := writeReports(&report, *jsonOut, *mdOut, *htmlOut, stdout); err != nil {
		return err
	}
	if report.Gate != nil {
		return report.Gate.Err()
	}
	return nil
}

// loadForEval loads a bundle (the embedded demo model when dir is "") on rt.
func loadForEval(rt *models.Runtime, dir string, cfg models.Config) (*models.Classifier, eval.ModelInfo, func(), error) {
	shown := dir
	if dir == "" {
		tmp, err := extractModel()
		if err != nil {
			return nil, eval.ModelInfo{}, nil, fmt.Errorf("embedded model: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir, shown = tmp, "(embedded)"
	}
	clf, err := models.Load(rt, dir, cfg)
	if err != nil {
		return nil, eval.ModelInfo{}, nil, err
	}
	m := clf.Manifest()
	return clf, eval.ModelInfo{Name: m.Name, Version: m.Version, Dir: shown, Provider: clf.Provider()}, func() { clf.Close() }, nil
}

// measureLatency classifies up to n texts, spread over examples, one at a time.
func measureLatency(ctx context.Context, clf *models.Classifier, examples []eval.Example, n int) (eval.Latency, error) {
	n = min(n, len(examples))
	ms := make([]float64, 0, n)
	for i := range n {
		text := examples[i*len(examples)/n].Text
		start := time.Now()
		if _, err := clf.Classify(ctx, []string{text}); err != nil {
			return eval.Latency{}, err
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(ms)
	return eval.Latency{Samples: n, P50ms: eval.Percentile(ms, 0.5), P99ms: eval.Percentile(ms, 0.99)}, nil
}

// crossValidate trains one model per fold with kefu train's trainer into a temporary
// directory and scores its predictions of the held-out fold.
func crossValidate(ctx context.Context, rt *models.Runtime, cfg models.Config, tc train.Config, examples []eval.Example, k int, head string, data []string, opts eval.Options, progress io.Writer) (eval.Report, error) {
	tmp, err := os.MkdirTemp("", "kefu-cv-")
	if err != nil {
		return eval.Report{}, err
	}
	defer os.RemoveAll(tmp)
	fit := func(ctx context.Context, fold int, trainEx, test []eval.Example) ([]eval.Prediction, error) {
		fmt.Fprintf(progress, "fold %d/%d: training on %d examples\n", fold, k, len(trainEx))
		dir := filepath.Join(tmp, fmt.Sprint("fold", fold))
		if _, err := train.Train(ctx, tc, []train.Dataset{dataset(head, trainEx)}, dir); err != nil {
			return nil, err
		}
		clf, err := models.Load(rt, dir, cfg)
		if err != nil {
			return nil, err
		}
		defer clf.Close()
		preds, err := eval.Predict(ctx, clf, head, test, progressBar(progress, fmt.Sprintf("fold %d", fold), len(test)))
		if err == nil {
			s := eval.ScorePredictions(preds, eval.HeadLabels(clf, head))
			fmt.Fprintf(progress, "fold %d/%d: accuracy %.4f, macro-F1 %.4f\n", fold, k, s.Accuracy, s.MacroF1)
		}
		return preds, err
	}
	cv, preds, err := eval.CrossValidate(ctx, examples, k, tc.Seed, fit)
	if err != nil {
		return eval.Report{}, err
	}
	var labels []string
	for _, e := range examples {
		if !slices.Contains(labels, e.Label) {
			labels = append(labels, e.Label)
		}
	}
	r := eval.NewReport(eval.ModelInfo{Name: tc.Name, Version: fmt.Sprintf("%d-fold cross-validation", k), Dir: "(trained per fold)"}, head, data, preds, labels, opts)
	r.CV = &cv
	return r, nil
}

func printSummary(w io.Writer, r *eval.Report, show int) {
	fmt.Fprintf(w, "model     %s %s\nhead      %s\nexamples  %d\naccuracy  %.4f\nmacro-F1  %.4f\nmicro-F1  %.4f\nweighted  %.4f\nECE       %.4f\n",
		r.Model.Name, r.Model.Version, r.Head, r.N, r.Accuracy, r.MacroF1, r.MicroF1, r.WeightedF1, r.Calibration.ECE)
	if r.Unknown > 0 {
		fmt.Fprintf(w, "unknown   %d examples with labels the model lacks: %s\n", r.Unknown, strings.Join(r.UnknownLabels, ", "))
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency   p50 %.2f ms, p99 %.2f ms (%d single texts); %.0f examples/s batched\n", l.P50ms, l.P99ms, l.Samples, l.Throughput)
	}
	if o := r.OOS; o != nil {
		fmt.Fprintf(w, "oos       threshold %.4f: in-scope accuracy %.4f (%d), oos recall %.4f, precision %.4f (%d)\n", o.Threshold, o.InScopeAccuracy, o.InScope, o.Recall, o.Precision, o.OutOfScope)
	}
	s := r.Sweep
	note := ""
	if !s.Reached {
		note = " (target not reached: the most precise threshold)"
	}
	fmt.Fprintf(w, "handoff   threshold %.3f for %.0f%% precision%s: the bot answers %.1f%% at %.2f%% precision\n", s.Recommended, 100*s.Target, note, 100*s.At.Coverage, 100*s.At.Precision)
	if cv := r.CV; cv != nil {
		fmt.Fprintf(w, "cv        %d folds: accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f\n", cv.K, cv.MeanAccuracy, cv.StdAccuracy, cv.MeanMacroF1, cv.StdMacroF1)
	}
	if c := r.Comparison; c != nil {
		fmt.Fprintf(w, "compare   %s %s: accuracy %.4f, macro-F1 %.4f; McNemar only-this %d, only-other %d, p = %.4g\n",
			c.Model.Name, c.Model.Version, c.Accuracy, c.MacroF1, c.McNemar.OnlyA, c.McNemar.OnlyB, c.McNemar.P)
	}
	for i, c := range r.TopConfusions {
		if i == 3 {
			break
		}
		fmt.Fprintf(w, "confused  %s → %s ×%d\n", c.Gold, c.Predicted, c.Count)
	}
	for _, p := range r.Misclassified[:min(show, len(r.Misclassified))] {
		where := p.File
		if p.Line > 0 {
			where = fmt.Sprintf("%s:%d", p.File, p.Line)
		}
		fmt.Fprintf(w, "wrong     %q: %s, predicted %s (%.2f) [%s]\n", p.Text, p.Gold, p.Label, p.Confidence, where)
	}
	if g := r.Gate; g != nil {
		for _, c := range g.Checks {
			status := "ok"
			if !c.Passed {
				status = "FAILED"
			}
			fmt.Fprintf(w, "gate      %s %.4f vs baseline %.4f: drop %.2f points (max %.2f) %s\n", c.Metric, c.Current, c.Baseline, c.Drop, g.MaxDrop, status)
		}
	}
}

func writeReports(r *eval.Report, jsonPath, mdPath, htmlPath string, stdout io.Writer) error {
	if jsonPath != "" {
		if err := r.WriteJSON(jsonPath); err != nil {
			return err
		}
	}
	if mdPath == "-" {
		fmt.Fprintln(stdout)
		if err := r.WriteMarkdown(stdout); err != nil {
			return err
		}
	} else if mdPath != "" {
		if err := writeFile(mdPath, r.WriteMarkdown); err != nil {
			return err
		}
	}
	if htmlPath != "" {
		return writeFile(htmlPath, r.WriteHTML)
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "…")
	}
	return s
}

// realText runs a mapping file's checks on the model and prints them; a check below its
// target makes the command fail.
func realText(ctx context.Context, file, dir string, sample int, modelDir, botDir, jsonOut string, openRuntime func() (*models.Runtime, error), cfg models.Config, stdout io.Writer) error {
	spec, err := eval.ReadRealText(file)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("--data-dir: %w (the public data sets; see ../shared/data/README.md)", err)
	}
	b, _, err := loadBot(botDir)
	if err != nil {
		return err
	}
	rt, err := openRuntime()
	if err != nil {
		return err
	}
	defer rt.Close()
	clf, info, closeModel, err := loadForEval(rt, modelDir, cfg)
	if err != nil {
		return err
	}
	defer closeModel()
	target := eval.Bot{IntentThreshold: b.Thresholds.Intent, NegativeEmotions: b.Handoff.Policy.NegativeEmotions, NegativeThreshold: b.Handoff.Policy.NegativeThreshold}
	for _, f := range b.Flows {
		target.FlowIntents = append(target.FlowIntents, f.Intents...)
	}
	results, err := spec.RunChecks(ctx, clf, target, dir, sample)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model %s %s (%s) on %s\n\n", info.Name, info.Version, info.Dir, dir)
	eval.WriteChecks(stdout, results)
	if jsonOut != "" {
		data, err := json.MarshalIndent(map[string]any{"model": info, "checks": results}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	var missed []string
	for _, r := range results {
		if !r.Pass {
			missed = append(missed, fmt.Sprintf("%s %.1f %% < %.1f %%", r.Name, 100*r.Score, 100*r.Target))
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("below target: %s", strings.Join(missed, "; "))
	}
	return nil
}
