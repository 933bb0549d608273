package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Manifest is a model bundle's model.json: what the ONNX graph takes and gives, and where it
// came from. Field names are the JSON keys.
type Manifest struct {
	// Name and Version identify the model in responses and logs. Name is required.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Model and Tokenizer are file names inside the bundle; defaults model.onnx and tokenizer.json.
	Model     string `json:"model,omitempty"`
	Tokenizer string `json:"tokenizer,omitempty"`
	// MaxSeqLen is the longest input in tokens, special tokens included; longer texts are cut.
	// Default 128; at most 4096.
	MaxSeqLen int `json:"max_seq_len,omitempty"`
	// Inputs names the graph inputs.
	Inputs Inputs `json:"inputs"`
	// Heads are the classification outputs, at least one.
	Heads []HeadSpec `json:"heads"`
	// Training is the trainer's report (data sizes, metrics, time), kept as written.
	Training json.RawMessage `json:"training,omitempty"`
}

// Inputs names the graph's int64 [batch, sequence] inputs.
type Inputs struct {
	// InputIDs defaults to "input_ids"; AttentionMask to "attention_mask".
	InputIDs      string `json:"input_ids,omitempty"`
	AttentionMask string `json:"attention_mask,omitempty"`
	// TokenTypeIDs is set only when the graph takes token type ids (all zero for one text).
	TokenTypeIDs string `json:"token_type_ids,omitempty"`
}

// HeadSpec is one classification output of the graph.
type HeadSpec struct {
	// Name is what callers see: "intent", "emotion", …
	Name string `json:"name"`
	// Output is the graph output, float32 [batch, len(Labels)].
	Output string `json:"output"`
	// Activation turns the output into probabilities: "softmax" (default), "sigmoid"
	// (independent labels), or "none" (the graph already outputs probabilities).
	Activation string `json:"activation,omitempty"`
	// Labels name the output's columns in order.
	Labels []string `json:"labels"`
}

// ManifestError is a model.json that cannot be used; Field names the offending key.
type ManifestError struct {
	Field string
	Msg   string
}

func (e *ManifestError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// ParseManifest decodes and validates model.json, filling defaults. Unknown keys are refused
// so that a misspelt key does not silently fall back to a default.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ManifestError{Msg: "trailing data after the JSON object"}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// jsonError adds the line and column to a decoding error.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return &ManifestError{Msg: fmt.Sprintf("line %d, column %d: %v", line, col, syn)}
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return &ManifestError{Field: typ.Field, Msg: fmt.Sprintf("line %d, column %d: expected %s, got %s", line, col, typ.Type, typ.Value)}
	case errors.Is(err, io.EOF):
		return &ManifestError{Msg: "empty file"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		return &ManifestError{Msg: fmt.Sprintf("line %d, column %d: unexpected end of file", line, col)}
	}
	return &ManifestError{Msg: err.Error()}
}

func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func (m *Manifest) validate() error {
	if strings.TrimSpace(m.Name) == "" {
		return &ManifestError{Field: "name", Msg: "required"}
	}
	if m.Model == "" {
		m.Model = "model.onnx"
	}
	if m.Tokenizer == "" {
		m.Tokenizer = "tokenizer.json"
	}
	for field, file := range map[string]string{"model": m.Model, "tokenizer": m.Tokenizer} {
		if strings.ContainsAny(file, `/\`) || file == "." || file == ".." {
			return &ManifestError{Field: field, Msg: fmt.Sprintf("%q must be a file name inside the bundle", file)}
		}
	}
	switch {
	case m.MaxSeqLen == 0:
		m.MaxSeqLen = 128
	case m.MaxSeqLen < 3 || m.MaxSeqLen > 4096:
		return &ManifestError{Field: "max_seq_len", Msg: fmt.Sprintf("%d is outside 3..4096", m.MaxSeqLen)}
	}
	if m.Inputs.InputIDs == "" {
		m.Inputs.InputIDs = "input_ids"
	}
	if m.Inputs.AttentionMask == "" {
		m.Inputs.AttentionMask = "attention_mask"
	}
	if len(m.Heads) == 0 {
		return &ManifestError{Field: "heads", Msg: "at least one head is required"}
	}
	names := map[string]bool{}
	for i := range m.Heads {
		h := &m.Heads[i]
		field := fmt.Sprintf("heads[%d]", i)
		if h.Name == "" {
			return &ManifestError{Field: field + ".name", Msg: "required"}
		}
		if names[h.Name] {
			return &ManifestError{Field: field + ".name", Msg: fmt.Sprintf("head %q appears twice", h.Name)}
		}
		names[h.Name] = true
		if h.Output == "" {
			return &ManifestError{Field: field + ".output", Msg: "required"}
		}
		switch h.Activation {
		case "":
			h.Activation = "softmax"
		case "softmax", "sigmoid", "none":
		default:
			return &ManifestError{Field: field + ".activation", Msg: fmt.Sprintf("%q is not softmax, sigmoid or none", h.Activation)}
		}
		if len(h.Labels) == 0 {
			return &ManifestError{Field: field + ".labels", Msg: "at least one label is required"}
		}
		seen := map[string]bool{}
		for j, l := range h.Labels {
			if strings.TrimSpace(l) == "" {
				return &ManifestError{Field: fmt.Sprintf("%s.labels[%d]", field, j), Msg: "empty label"}
			}
			if seen[l] {
				return &ManifestError{Field: fmt.Sprintf("%s.labels[%d]", field, j), Msg: fmt.Sprintf("label %q appears twice", l)}
			}
			seen[l] = true
		}
	}
	return nil
}

// Head returns the head named name.
func (m *Manifest) Head(name string) (*HeadSpec, bool) {
	for i := range m.Heads {
		if m.Heads[i].Name == name {
			return &m.Heads[i], true
		}
	}
	return nil, false
}
