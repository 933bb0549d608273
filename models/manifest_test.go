package models_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/models"
)

func TestParseManifestDefaultsAndErrors(t *testing.T) {
	m, err := models.ParseManifest([]byte(`{"name": "m", "heads": [{"name": "intent", "output": "logits", "labels": ["a", "b"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Model != "model.onnx" || m.Tokenizer != "tokenizer.json" || m.MaxSeqLen != 128 ||
		m.Inputs.InputIDs != "input_ids" || m.Inputs.AttentionMask != "attention_mask" || m.Heads[0].Activation != "softmax" {
		t.Errorf("defaults not filled: %+v", m)
	}
	bad := map[string]string{
		`{}`:                         "name: required",
		`{"name": "m", "heads": []}`: "heads: at least one",
		`{"name": "m", "heads": [{"name": "x", "output": "o", "labels": ["a", "a"]}]}`:                  `heads[0].labels[1]: label "a" appears twice`,
		`{"name": "m", "heads": [{"name": "x", "output": "o", "labels": ["a"], "activation": "relu"}]}`: "heads[0].activation",
		`{"name": "m", "max_seq_len": 1, "heads": [{"name": "x", "output": "o", "labels": ["a"]}]}`:     "max_seq_len",
		`{"name": "m", "model": "../x.onnx", "heads": [{"name": "x", "output": "o", "labels": ["a"]}]}`: "inside the bundle",
		`{"name": "m", "headz": []}`:                                       `unknown field "headz"`,
		"{\n  \"name\": \"m\",\n  \"heads\": [\n    {\"name\": 7}\n  ]\n}": "line 4",
		`{"name": "m",`: "unexpected end",
		``:              "empty file",
		`{"name": "m", "heads": [{"name": "x", "output": "o", "labels": ["a"]}]} {}`: "trailing data",
	}
	for in, want := range bad {
		_, err := models.ParseManifest([]byte(in))
		var me *models.ManifestError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error mentioning %q", in, err, want)
		}
	}
}

// FuzzParseManifest: any input either fails with a ManifestError or parses to a manifest that
// survives a round trip through JSON unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name": "m", "version": "1", "max_seq_len": 64, "inputs": {"token_type_ids": "tt"}, "heads": [{"name": "intent", "output": "logits", "activation": "sigmoid", "labels": ["a", "b"]}], "training": {"acc": 0.9}}`))
	f.Add([]byte(`{"name": "m", "heads": [{"name": "e", "output": "o", "labels": ["x"]}]}`))
	f.Add([]byte(`{"name": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := models.ParseManifest(data)
		if err != nil {
			var me *models.ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a ManifestError", err)
			}
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := models.ParseManifest(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		m.Training, again.Training = nil, nil
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, again)
		}
	})
}
