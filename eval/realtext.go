package eval

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kefu-ai/kefu/models"
)

// RealText is a mapping of public data sets onto a bot's labels (cmd/kefu/bot/realtext.yaml):
// which rows a shipped model may learn from (Train, train splits only) and the checks that
// measure a model on real people's words (Checks, test splits only). Paths are relative to
// the data folder.
type RealText struct {
	Maps   map[string]map[string]string `yaml:"maps"`
	Train  []PublicSet                  `yaml:"train"`
	Checks []Check                      `yaml:"checks"`
	file   string
}

// PublicSet is one file of a public data set and how its labels become the bot's.
type PublicSet struct {
	File       string   `yaml:"file"`
	Format     string   `yaml:"format"` // csv (default), goemotions (TSV: text, label ids), crosswoz (zipped dialogues: user turns)
	Head       string   `yaml:"head"`
	Text       string   `yaml:"text"`        // CSV text column (default text)
	Label      string   `yaml:"label"`       // CSV label column (default label)
	LabelsFile string   `yaml:"labels_file"` // goemotions: label names, one per line
	Map        LabelMap `yaml:"map"`         // source label → bot label; rows of other labels are left out
	LabelAll   string   `yaml:"label_all"`   // every row gets this label
	Rest       string   `yaml:"rest"`        // rows of unmapped labels get this label instead
	RestEach   int      `yaml:"rest_each"`   // at most this many rows per unmapped source label (0: all)
	Each       int      `yaml:"each"`        // at most this many rows per bot label from this file (0: all)
	Skip       []string `yaml:"skip"`        // source labels never used
	Exclude    []string `yaml:"exclude"`     // rows whose text contains one of these are left out
	Positive   []string `yaml:"positive"`    // handoff checks: mapped (or source) labels that should hand off
	line       int
}

// LabelMap is a map written inline or as the names of entries under maps.
type LabelMap struct {
	Inline map[string]string
	Names  []string
	line   int
}

// UnmarshalYAML accepts a mapping, a name or a list of names.
func (m *LabelMap) UnmarshalYAML(n *yaml.Node) error {
	m.line = n.Line
	switch n.Kind {
	case yaml.MappingNode:
		return n.Decode(&m.Inline)
	case yaml.ScalarNode:
		m.Names = []string{n.Value}
		return nil
	case yaml.SequenceNode:
		return n.Decode(&m.Names)
	}
	return fmt.Errorf("line %d: map: want a mapping, a name under maps, or a list of names", n.Line)
}

// Check is one measurement and its target.
type Check struct {
	Name     string      `yaml:"name"`
	What     string      `yaml:"what"`
	Kind     string      `yaml:"kind"` // accuracy, polarity, no_flow or handoff
	Head     string      `yaml:"head"`
	Target   float64     `yaml:"target"` // 0: reported, not checked
	Negative []string    `yaml:"negative"`
	Sets     []PublicSet `yaml:"sets"`
	line     int
}

// ReadRealText parses a mapping file; errors name the file and line.
func ReadRealText(path string) (*RealText, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRealText(path, data)
}

// ParseRealText parses a mapping file's contents; name is used in errors.
func ParseRealText(name string, data []byte) (*RealText, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &DataError{File: name, Msg: err.Error()}
	}
	rt := &RealText{file: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(rt); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 { // "line 5: field colour not found in type eval.PublicSet"
			var line int
			msg := te.Errors[0]
			if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
				_, msg, _ = strings.Cut(msg, ": ")
				msg, _, _ = strings.Cut(msg, " in type ")
			}
			return nil, &DataError{File: name, Line: line, Msg: msg}
		}
		return nil, &DataError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) > 0 { // lines of sets and checks, for the errors below
		top := root.Content[0]
		lines := func(key string) []int {
			for i := 0; i+1 < len(top.Content); i += 2 {
				if top.Content[i].Value == key {
					var out []int
					for _, c := range top.Content[i+1].Content {
						out = append(out, c.Line)
					}
					return out
				}
			}
			return nil
		}
		for i, l := range lines("train") {
			rt.Train[i].line = l
		}
		for i, l := range lines("checks") {
			rt.Checks[i].line = l
		}
	}
	fail := func(line int, format string, a ...any) error {
		return &DataError{File: name, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	checkSet := func(s *PublicSet, line int) error {
		if s.line == 0 {
			s.line = line
		}
		if s.File == "" {
			return fail(s.line, "a set needs a file")
		}
		switch s.Format {
		case "", "csv", "crosswoz":
		case "goemotions":
			if s.LabelsFile == "" {
				return fail(s.line, "%s: format goemotions needs labels_file", s.File)
			}
		default:
			return fail(s.line, "%s: format %q: want csv, goemotions or crosswoz", s.File, s.Format)
		}
		for _, n := range s.Map.Names {
			if _, ok := rt.Maps[n]; !ok {
				return fail(s.Map.line, "%s: no map %q under maps (there are %s)", s.File, n, strings.Join(slices.Sorted(maps.Keys(rt.Maps)), ", "))
			}
		}
		if s.LabelAll == "" && len(s.Map.Inline) == 0 && len(s.Map.Names) == 0 && len(s.Positive) == 0 {
			return fail(s.line, "%s: give map or label_all", s.File)
		}
		return nil
	}
	for i := range rt.Train {
		s := &rt.Train[i]
		if err := checkSet(s, s.line); err != nil {
			return nil, err
		}
		if s.Head != "intent" && s.Head != "emotion" {
			return nil, fail(s.line, "%s: head %q: want intent or emotion", s.File, s.Head)
		}
	}
	seen := map[string]bool{}
	for i := range rt.Checks {
		c := &rt.Checks[i]
		switch {
		case c.Name == "" || seen[c.Name]:
			return nil, fail(c.line, "a check needs a name of its own")
		case !slices.Contains([]string{"accuracy", "polarity", "no_flow", "handoff"}, c.Kind):
			return nil, fail(c.line, "check %s: kind %q: want accuracy, polarity, no_flow or handoff", c.Name, c.Kind)
		case c.Head != "intent" && c.Head != "emotion":
			return nil, fail(c.line, "check %s: head %q: want intent or emotion", c.Name, c.Head)
		case c.Kind == "polarity" && len(c.Negative) == 0:
			return nil, fail(c.line, "check %s: a polarity check lists its negative labels", c.Name)
		case c.Target < 0 || c.Target > 1:
			return nil, fail(c.line, "check %s: target %v: want a share from 0 to 1", c.Name, c.Target)
		case len(c.Sets) == 0:
			return nil, fail(c.line, "check %s: no sets", c.Name)
		}
		seen[c.Name] = true
		for j := range c.Sets {
			if err := checkSet(&c.Sets[j], c.line); err != nil {
				return nil, err
			}
			if c.Kind == "handoff" && len(c.Sets[j].Positive) == 0 {
				return nil, fail(c.line, "check %s: %s: a handoff check says which labels are positive", c.Name, c.Sets[j].File)
			}
		}
	}
	return rt, nil
}

// mapping is a set's labels → the bot's.
func (rt *RealText) mapping(s PublicSet) map[string]string {
	m := maps.Clone(s.Map.Inline)
	if m == nil {
		m = map[string]string{}
	}
	for _, n := range s.Map.Names {
		maps.Copy(m, rt.Maps[n])
	}
	return m
}

// row is one text of a public file with its source labels (GoEmotions rows may have several).
type row struct {
	text   string
	labels []string
	line   int
}

// readRows reads a public set's file under dir.
func readRows(dir string, s PublicSet) ([]row, error) {
	path := filepath.Join(dir, s.File)
	switch s.Format {
	case "crosswoz":
		return readCrossWOZ(path)
	case "goemotions":
		names, err := os.ReadFile(filepath.Join(dir, s.LabelsFile))
		if err != nil {
			return nil, err
		}
		return readGoEmotions(path, strings.Fields(string(names)))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ex, err := ReadCSV(path, f, Source{TextCol: s.Text, LabelCol: s.Label, SkipBad: true})
	if err != nil {
		return nil, err
	}
	var out []row
	for _, e := range ex {
		if text := strings.TrimSpace(strings.TrimPrefix(e.Text, "\ufeff")); text != "" {
			out = append(out, row{text: text, labels: []string{e.Label}, line: e.Line})
		}
	}
	return out, nil
}

// readGoEmotions reads GoEmotions' TSV: text, comma-separated label ids, comment id.
func readGoEmotions(path string, names []string) ([]row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []row
	for i, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 2 {
			return nil, &DataError{File: path, Line: i + 1, Msg: "want text, label ids and id separated by tabs"}
		}
		r := row{text: strings.TrimSpace(f[0]), line: i + 1}
		for _, id := range strings.Split(f[1], ",") {
			k, err := strconv.Atoi(id)
			if err != nil || k < 0 || k >= len(names) {
				return nil, &DataError{File: path, Line: i + 1, Msg: fmt.Sprintf("label id %q: want 0 to %d", id, len(names)-1)}
			}
			r.labels = append(r.labels, names[k])
		}
		if r.text != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// readCrossWOZ reads the customers' turns of zipped CrossWOZ dialogues.
func readCrossWOZ(path string) ([]row, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	var out []row
	for _, f := range z.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		var dialogues map[string]struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		err = json.NewDecoder(rc).Decode(&dialogues)
		rc.Close()
		if err != nil {
			return nil, &DataError{File: path + ":" + f.Name, Msg: err.Error()}
		}
		for _, id := range slices.Sorted(maps.Keys(dialogues)) {
			for i, m := range dialogues[id].Messages {
				if m.Role == "usr" && strings.TrimSpace(m.Content) != "" {
					out = append(out, row{text: strings.TrimSpace(m.Content), labels: []string{"usr"}, line: i + 1})
				}
			}
		}
	}
	return out, nil
}

// examples maps a set's rows onto the bot's labels, applying its caps evenly over the file.
func (rt *RealText) examples(dir string, s PublicSet) ([]Example, error) {
	rows, err := readRows(dir, s)
	if err != nil {
		return nil, err
	}
	m := rt.mapping(s)
	type pick struct {
		r     row
		label string
		group string // the cap applies per group
		cap   int
	}
	var picks []pick
	for _, r := range rows {
		if len(r.labels) != 1 || slices.Contains(s.Skip, r.labels[0]) || containsAny(r.text, s.Exclude) {
			continue
		}
		src := r.labels[0]
		switch to, ok := m[src]; {
		case s.LabelAll != "":
			picks = append(picks, pick{r, s.LabelAll, s.LabelAll, s.Each})
		case ok:
			picks = append(picks, pick{r, to, to, s.Each})
		case s.Rest != "":
			picks = append(picks, pick{r, s.Rest, "rest:" + src, s.RestEach})
		}
	}
	total := map[string]int{}
	for _, p := range picks {
		total[p.group]++
	}
	seen := map[string]int{}
	var out []Example
	for _, p := range picks {
		i := seen[p.group]
		seen[p.group]++
		if n := total[p.group]; p.cap > 0 && n > p.cap && i*p.cap/n == (i+1)*p.cap/n {
			continue // keeps cap rows spread evenly over the file
		}
		out = append(out, Example{Text: p.r.text, Label: p.label, Head: s.Head, File: filepath.Join(dir, s.File), Line: p.r.line})
	}
	return out, nil
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// TrainExamples reads every train set under dir, by head.
func (rt *RealText) TrainExamples(dir string) (map[string][]Example, error) {
	out := map[string][]Example{}
	for _, s := range rt.Train {
		ex, err := rt.examples(dir, s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", rt.file, s.line, err)
		}
		out[s.Head] = append(out[s.Head], ex...)
	}
	return out, nil
}

// Bot is what the checks need to know of the bot the model serves.
type Bot struct {
	FlowIntents       []string // intents that start a flow
	IntentThreshold   float64  // confidence an intent needs to start one
	NegativeEmotions  []string // emotions whose scores are summed for the anger handoff
	NegativeThreshold float64
}

// CheckResult is one check's figures.
type CheckResult struct {
	Name     string  `json:"name"`
	What     string  `json:"what"`
	Kind     string  `json:"kind"`
	Examples int     `json:"examples"`
	Score    float64 `json:"score"`            // accuracy or share
	Target   float64 `json:"target,omitempty"` // 0: not checked
	Pass     bool    `json:"pass"`
	// PerLabel is each gold label's recall (accuracy and polarity checks).
	PerLabel map[string]float64 `json:"per_label,omitempty"`
	// Curve is precision and recall of "hands off" at thresholds (handoff checks); At is the
	// point at the bot's threshold.
	Curve []CurvePoint `json:"curve,omitempty"`
	At    *CurvePoint  `json:"at_bot_threshold,omitempty"`
	// Errors are a few misread examples.
	Errors []Prediction `json:"errors,omitempty"`
}

// CurvePoint is one threshold of a handoff check.
type CurvePoint struct {
	Threshold float64 `json:"threshold"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// RunChecks measures the model on every check; sample > 0 reads about that many rows per
// check (every k-th), for quick runs.
func (rt *RealText) RunChecks(ctx context.Context, clf *models.Classifier, bot Bot, dir string, sample int) ([]CheckResult, error) {
	var out []CheckResult
	for _, c := range rt.Checks {
		r, err := rt.run(ctx, clf, bot, dir, c, sample)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: check %s: %w", rt.file, c.line, c.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

type scored struct {
	text, gold string
	res        Prediction
	positive   bool
}

func (rt *RealText) run(ctx context.Context, clf *models.Classifier, bot Bot, dir string, c Check, sample int) (CheckResult, error) {
	var items []scored
	for _, s := range c.Sets {
		rows, err := readRows(dir, s)
		if err != nil {
			return CheckResult{}, err
		}
		m := rt.mapping(s)
		for _, r := range rows {
			if c.Kind == "handoff" {
				pos := false
				for _, l := range r.labels {
					pos = pos || slices.Contains(s.Positive, l) || slices.Contains(s.Positive, m[l])
				}
				items = append(items, scored{text: r.text, positive: pos})
				continue
			}
			if len(r.labels) != 1 {
				continue
			}
			if to, ok := m[r.labels[0]]; ok {
				if c.Kind == "no_flow" {
					to = ""
				}
				items = append(items, scored{text: r.text, gold: to})
			}
		}
	}
	if sample > 0 && len(items) > sample {
		step := (len(items) + sample - 1) / sample
		var kept []scored
		for i := 0; i < len(items); i += step {
			kept = append(kept, items[i])
		}
		items = kept
	}
	if len(items) == 0 {
		return CheckResult{}, errors.New("no rows")
	}
	examples := make([]Example, len(items))
	for i, it := range items {
		examples[i] = Example{Text: it.text, Label: it.gold}
	}
	preds, err := Predict(ctx, clf, c.Head, examples, nil)
	if err != nil {
		return CheckResult{}, err
	}
	for i := range items {
		items[i].res = preds[i]
	}
	labels := HeadLabels(clf, c.Head)
	r := CheckResult{Name: c.Name, What: c.What, Kind: c.Kind, Examples: len(items), Target: c.Target}
	negative := func(label string) bool { return slices.Contains(c.Negative, label) }
	right, byGold, okGold := 0, map[string]int{}, map[string]int{}
	for _, it := range items {
		var ok bool
		switch c.Kind {
		case "accuracy":
			ok = it.res.Label == it.gold
		case "polarity":
			ok = negative(it.res.Label) == (it.gold == "negative")
		case "no_flow":
			ok = !slices.Contains(bot.FlowIntents, it.res.Label) || it.res.Confidence < bot.IntentThreshold
		default:
			continue
		}
		byGold[it.gold]++
		if ok {
			right++
			okGold[it.gold]++
		} else if len(r.Errors) < 8 {
			r.Errors = append(r.Errors, Prediction{Text: it.text, Gold: it.gold, Label: it.res.Label, Confidence: it.res.Confidence})
		}
	}
	if c.Kind == "handoff" {
		score := func(it scored) float64 {
			var s float64
			for k, l := range labels {
				if slices.Contains(bot.NegativeEmotions, l) {
					s += float64(it.res.Scores[k])
				}
			}
			return s
		}
		point := func(t float64) CurvePoint {
			tp, fp, fn := 0, 0, 0
			for _, it := range items {
				switch hand := score(it) >= t; {
				case hand && it.positive:
					tp++
				case hand:
					fp++
				case it.positive:
					fn++
				}
			}
			return CurvePoint{Threshold: t, Precision: ratio(tp, tp+fp), Recall: ratio(tp, tp+fn), F1: f1(tp, fp, fn)}
		}
		for t := 0.05; t < 0.999; t += 0.05 {
			r.Curve = append(r.Curve, point(float64(int(t*100+0.5))/100))
		}
		at := point(bot.NegativeThreshold)
		r.At, r.Score, r.Pass = &at, at.F1, true
		return r, nil
	}
	r.Score = ratio(right, len(items))
	r.PerLabel = map[string]float64{}
	for g, n := range byGold {
		r.PerLabel[g] = ratio(okGold[g], n)
	}
	r.Pass = r.Score >= c.Target
	return r, nil
}

// WriteChecks prints the results as a table, then each check's detail.
func WriteChecks(w io.Writer, results []CheckResult) {
	fmt.Fprintf(w, "%-14s %8s %8s %8s  %s\n", "check", "examples", "score", "target", "")
	for _, r := range results {
		target, verdict := "-", ""
		if r.Kind != "handoff" && r.Target > 0 {
			target, verdict = pct(r.Target), "ok"
			if !r.Pass {
				verdict = "BELOW TARGET"
			}
		}
		score := pct(r.Score)
		if r.Kind == "handoff" {
			score = fmt.Sprintf("F1 %.3f", r.Score)
		}
		fmt.Fprintf(w, "%-14s %8d %8s %8s  %s\n", r.Name, r.Examples, score, target, verdict)
	}
	for _, r := range results {
		fmt.Fprintf(w, "\n%s: %s\n", r.Name, r.What)
		if r.At != nil {
			fmt.Fprintf(w, "  at the bot's threshold %.2f: precision %s, recall %s\n", r.At.Threshold, pct(r.At.Precision), pct(r.At.Recall))
			fmt.Fprintf(w, "  threshold  precision  recall   F1\n")
			for _, p := range r.Curve {
				fmt.Fprintf(w, "  %9.2f  %9s  %6s  %.3f\n", p.Threshold, pct(p.Precision), pct(p.Recall), p.F1)
			}
			continue
		}
		for _, g := range slices.Sorted(maps.Keys(r.PerLabel)) {
			if g != "" {
				fmt.Fprintf(w, "  %-16s %s\n", g, pct(r.PerLabel[g]))
			}
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  ✗ %q → %s %.2f (want %s)\n", shorten(e.Text, 70), e.Label, e.Confidence, cmp.Or(e.Gold, "no flow"))
		}
	}
}
