// Package eval reads labelled data sets and measures models on them.
package eval

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Example is one labelled text.
type Example struct {
	Text  string
	Label string
	Head  string // "intent" or "emotion"
	Lang  string // "en", "zh", … as written in the file
	File  string
	Line  int
}

// DataError is a data file that cannot be used, with its position.
type DataError struct {
	File string
	Line int
	Msg  string
}

func (e *DataError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ParseNLU reads kefu's NLU format (YAML):
//
//	intents:
//	  refund:
//	    en: [i want a refund, …]
//	    zh: [我要退款, …]
//	emotions:
//	  angry:
//	    en: […]
//
// name is used in errors. Every example keeps its file and line.
func ParseNLU(name string, data []byte) ([]Example, error) {
	root, err := yamlRoot(name, data)
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, &DataError{File: name, Line: root.Line, Msg: "want a mapping with intents and emotions"}
	}
	var out []Example
	for i := 0; i < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		var head string
		switch key.Value {
		case "intents":
			head = "intent"
		case "emotions":
			head = "emotion"
		default:
			return nil, &DataError{File: name, Line: key.Line, Msg: fmt.Sprintf("unknown key %q (want intents or emotions)", key.Value)}
		}
		ex, err := parseLabels(name, head, val)
		if err != nil {
			return nil, err
		}
		out = append(out, ex...)
	}
	if len(out) == 0 {
		return nil, &DataError{File: name, Msg: "no examples"}
	}
	return out, nil
}

// yamlRoot parses a UTF-8 YAML file and returns its top node; name is used in errors.
func yamlRoot(name string, data []byte) (*yaml.Node, error) {
	if !utf8.Valid(data) {
		return nil, &DataError{File: name, Msg: "not UTF-8 text"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &DataError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &DataError{File: name, Msg: "empty file"}
	}
	return doc.Content[0], nil
}

func parseLabels(file, head string, n *yaml.Node) ([]Example, error) {
	if n.Kind != yaml.MappingNode {
		return nil, &DataError{File: file, Line: n.Line, Msg: head + "s: want a mapping of label to languages"}
	}
	var out []Example
	for i := 0; i < len(n.Content); i += 2 {
		label, langs := n.Content[i], n.Content[i+1]
		if strings.TrimSpace(label.Value) == "" {
			return nil, &DataError{File: file, Line: label.Line, Msg: "empty label"}
		}
		if langs.Kind != yaml.MappingNode {
			return nil, &DataError{File: file, Line: langs.Line, Msg: fmt.Sprintf("%s %q: want a mapping of language to examples", head, label.Value)}
		}
		for j := 0; j < len(langs.Content); j += 2 {
			lang, texts := langs.Content[j], langs.Content[j+1]
			if texts.Kind != yaml.SequenceNode {
				return nil, &DataError{File: file, Line: texts.Line, Msg: fmt.Sprintf("%s %q, %s: want a list of examples", head, label.Value, lang.Value)}
			}
			for _, t := range texts.Content {
				if t.Kind != yaml.ScalarNode || strings.TrimSpace(t.Value) == "" {
					return nil, &DataError{File: file, Line: t.Line, Msg: fmt.Sprintf("%s %q: an example must be non-empty text", head, label.Value)}
				}
				out = append(out, Example{Text: t.Value, Label: label.Value, Head: head, Lang: lang.Value, File: file, Line: t.Line})
			}
		}
	}
	return out, nil
}
