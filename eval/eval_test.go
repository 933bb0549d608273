package eval_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/eval"
)

func TestScoreByHand(t *testing.T) {
	gold := []string{"a", "a", "a", "b", "b", "c"}
	pred := []string{"a", "a", "b", "b", "c", "c"}
	// a: tp 2 fp 0 fn 1 → F1 4/5; b: tp 1 fp 1 fn 1 → 1/2; c: tp 1 fp 1 fn 0 → 2/3.
	s := eval.Score(gold, pred)
	if s.N != 6 || math.Abs(s.Accuracy-4.0/6) > 1e-12 || math.Abs(s.MacroF1-(0.8+0.5+2.0/3)/3) > 1e-12 {
		t.Errorf("%+v", s)
	}
	// A label only predicted counts in the macro average with F1 0.
	s = eval.Score([]string{"a", "a"}, []string{"a", "z"})
	if math.Abs(s.MacroF1-(2.0/3)/2) > 1e-12 {
		t.Errorf("%+v", s)
	}
}

func TestReadCSVRefusesBadRows(t *testing.T) {
	cases := map[string]string{
		"text,label\nhello,greeting\n,refund\n": "data.csv:3: row without text",
		"text,label\nhello,\n":                  "data.csv:2: row without label",
		"txt,label\nhello,greeting\n":           "data.csv:1: header",
		"text,label\n\"unclosed,greeting\n":     "data.csv:2:",
		"text,label\nhello \xff,greeting\n":     "data.csv:2: not UTF-8",
		"":                                      "data.csv: empty file",
		"text,label\n":                          "no rows",
	}
	for in, want := range cases {
		_, err := eval.ReadCSV("data.csv", strings.NewReader(in), eval.Source{})
		var de *eval.DataError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	ex, err := eval.ReadCSV("b.csv", strings.NewReader("\ufefftext,category\n\"a, b\",x\n"), eval.Source{LabelCol: "category"})
	if err != nil || len(ex) != 1 || ex[0].Text != "a, b" || ex[0].Label != "x" || ex[0].Line != 2 {
		t.Errorf("%+v %v", ex, err)
	}
}

func TestParseNLU(t *testing.T) {
	ex, err := eval.ParseNLU("nlu.yaml", []byte("intents:\n  refund:\n    en: [i want a refund]\n    zh:\n      - 我要退款\nemotions:\n  angry:\n    en: [furious]\n"))
	if err != nil || len(ex) != 3 || ex[1].Text != "我要退款" || ex[1].Line != 5 || ex[1].Lang != "zh" || ex[2].Head != "emotion" {
		t.Fatalf("%+v %v", ex, err)
	}
	for in, want := range map[string]string{
		"intents:\n  refund:\n    en: [\"\"]\n": "nlu.yaml:3:",
		"intentz: {}\n":                         `nlu.yaml:1: unknown key "intentz"`,
		"intents:\n  refund: [a, b]\n":          "nlu.yaml:2:",
		"intents: [\n":                          "nlu.yaml:",
		"":                                      "empty file",
	} {
		if _, err := eval.ParseNLU("nlu.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

// FuzzParseNLU: any input is refused with a DataError or gives examples with text and label.
func FuzzParseNLU(f *testing.F) {
	f.Add([]byte("intents:\n  refund:\n    en: [i want a refund]\n"))
	f.Add([]byte("emotions:\n  angry: {zh: [气死了]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := eval.ParseNLU("f.yaml", data)
		if err != nil {
			var de *eval.DataError
			if !errors.As(err, &de) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		for _, e := range ex {
			if strings.TrimSpace(e.Text) == "" || e.Label == "" || e.Line < 1 {
				t.Fatalf("%+v", e)
			}
		}
	})
}
