package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/eval"
)

func evaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "--model DIR --data FILE[,FILE…] [flags]", stderr)
	modelDir := fs.String("model", "", "model bundle directory (default: the embedded demo model)")
	data := fs.String("data", "", "labelled data files, comma-separated (required)")
	head := fs.String("head", "intent", "head to evaluate: intent or emotion")
	format := fs.String("format", "auto", "data format: auto (by extension), kefu (NLU YAML) or csv")
	textCol := fs.String("text-col", "text", "CSV column holding the text")
	labelCol := fs.String("label-col", "label", "CSV column holding the label")
	delimiter := fs.String("delimiter", ",", "CSV field delimiter (one character; \\t for tab)")
	jsonOut := fs.String("json", "", "also write accuracy, macro_f1 and n to this JSON file")
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
	delim := strings.ReplaceAll(*delimiter, `\t`, "\t")
	if utf8.RuneCountInString(delim) != 1 {
		return fmt.Errorf("--delimiter %q must be one character", *delimiter)
	}
	d, _ := utf8.DecodeRuneInString(delim)
	examples, err := eval.Load(strings.Split(*data, ","), eval.Source{Format: *format, TextCol: *textCol, LabelCol: *labelCol, Delimiter: d}, *head)
	if err != nil {
		return err
	}
	clf, _, closeModel, err := openModel(openRuntime, *modelDir, *cfg)
	if err != nil {
		return err
	}
	defer closeModel()
	s, err := eval.Evaluate(ctx, clf, *head, examples)
	if err != nil {
		return err
	}
	m := clf.Manifest()
	fmt.Fprintf(stdout, "model     %s %s\nhead      %s\nexamples  %d\naccuracy  %.4f\nmacro-F1  %.4f\n", m.Name, m.Version, *head, s.N, s.Accuracy, s.MacroF1)
	if s.Unknown > 0 {
		fmt.Fprintf(stdout, "unknown   %d examples with labels the model lacks: %s\n", s.Unknown, strings.Join(s.UnknownLabels, ", "))
	}
	if *jsonOut != "" {
		out, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
