package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// Schema names the report format; it changes only when a key changes meaning or goes away.
const Schema = "kefu.eval/1"

// Report is everything kefu eval measured, written as JSON (the keys are documented in the
// README), Markdown and HTML.
type Report struct {
	Schema  string    `json:"schema"`
	Created time.Time `json:"created"`
	Model   ModelInfo `json:"model"`
	Head    string    `json:"head"`
	Data    []string  `json:"data"`
	Scores
	// Misclassified lists the wrong predictions of known labels, the most confident first.
	Misclassified []Prediction `json:"misclassified"`
	OOS           *OOS         `json:"oos,omitempty"`
	Sweep         Sweep        `json:"threshold_sweep"`
	Calibration   Calibration  `json:"calibration"`
	Latency       *Latency     `json:"latency,omitempty"`
	CV            *CV          `json:"cross_validation,omitempty"`
	Comparison    *Comparison  `json:"comparison,omitempty"`
	Gate          *Gate        `json:"gate,omitempty"`
}

// ModelInfo names the model measured.
type ModelInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Dir      string `json:"dir"`
	Provider string `json:"provider,omitempty"`
}

// Comparison is a second model measured on the same examples.
type Comparison struct {
	Model    ModelInfo `json:"model"`
	Accuracy float64   `json:"accuracy"`
	MacroF1  float64   `json:"macro_f1"`
	McNemar  McNemar   `json:"mcnemar"`
}

// Options shape a report.
type Options struct {
	// OOSLabel is the gold label of out-of-scope examples ("" when the data has none).
	OOSLabel string
	// Threshold is the confidence below which a prediction counts as out of scope.
	Threshold float64
	// TargetPrecision is the precision the threshold sweep looks for (default 0.95).
	TargetPrecision float64
	// Bins is the number of calibration bins (default 10).
	Bins int
}

// NewReport measures preds against the model's labels. Examples whose gold label the model
// lacks are counted as unknown; with an OOS label they still count in the OOS figures and
// the threshold sweep, where they are the examples to hand off.
func NewReport(model ModelInfo, head string, data []string, preds []Prediction, labels []string, o Options) Report {
	if o.TargetPrecision == 0 {
		o.TargetPrecision = 0.95
	}
	if o.Bins == 0 {
		o.Bins = 10
	}
	r := Report{Schema: Schema, Created: time.Now().UTC().Truncate(time.Second), Model: model, Head: head, Data: data}
	r.Scores = ScorePredictions(preds, labels)
	r.Misclassified = Misclassified(preds, labels)
	var known, swept []Prediction
	for _, p := range preds {
		ok := slices.Contains(labels, p.Gold)
		if ok {
			known = append(known, p)
		}
		if ok || (o.OOSLabel != "" && p.Gold == o.OOSLabel) {
			swept = append(swept, p)
		}
	}
	if o.OOSLabel != "" {
		oos := ScoreOOS(preds, o.OOSLabel, o.Threshold)
		r.OOS = &oos
	}
	r.Sweep = ThresholdSweep(swept, o.OOSLabel, o.TargetPrecision)
	r.Calibration = Calibrate(known, o.Bins)
	return r
}

// WriteJSON writes the report, indented, to path.
func (r *Report) WriteJSON(path string) error {
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// ReadBaseline reads the accuracy and macro-F1 of an earlier report (this format, or the
// {"accuracy", "macro_f1", "n"} file of kefu eval --json from before it).
func ReadBaseline(path string) (Scores, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scores{}, err
	}
	var b struct {
		N        *int     `json:"n"`
		Accuracy *float64 `json:"accuracy"`
		MacroF1  *float64 `json:"macro_f1"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return Scores{}, &DataError{File: path, Msg: "not a kefu eval JSON report: " + err.Error()}
	}
	if b.Accuracy == nil || b.MacroF1 == nil {
		return Scores{}, &DataError{File: path, Msg: "not a kefu eval JSON report: no accuracy and macro_f1"}
	}
	s := Scores{Accuracy: *b.Accuracy, MacroF1: *b.MacroF1}
	if b.N != nil {
		s.N = *b.N
	}
	if s.Accuracy < 0 || s.Accuracy > 1 || s.MacroF1 < 0 || s.MacroF1 > 1 {
		return Scores{}, &DataError{File: path, Msg: fmt.Sprintf("accuracy %v and macro_f1 %v must lie in [0, 1]", s.Accuracy, s.MacroF1)}
	}
	return s, nil
}
