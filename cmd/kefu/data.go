package main

import (
	"flag"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/eval"
)

// dataFlags adds the flags that say how to read labelled data files and returns a loader:
// load(list, head) reads the comma-separated files (or folders) in list.
func dataFlags(fs *flag.FlagSet) func(list, head string) ([]eval.Example, error) {
	format := fs.String("format", "auto", "data format: auto (by extension), kefu (NLU YAML), csv or clinc150")
	textCol := fs.String("text-col", "text", "CSV column holding the text")
	labelCol := fs.String("label-col", "label", "CSV column holding the label")
	delimiter := fs.String("delimiter", ",", "CSV field delimiter (one character; \\t for tab)")
	return func(list, head string) ([]eval.Example, error) {
		delim := strings.ReplaceAll(*delimiter, `\t`, "\t")
		if utf8.RuneCountInString(delim) != 1 {
			return nil, fmt.Errorf("--delimiter %q must be one character", *delimiter)
		}
		d, _ := utf8.DecodeRuneInString(delim)
		return eval.Load(strings.Split(list, ","), eval.Source{Format: *format, TextCol: *textCol, LabelCol: *labelCol, Delimiter: d}, head)
	}
}
