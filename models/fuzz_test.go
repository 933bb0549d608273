package models_test

import (
	"math"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/models"
)

// FuzzEncode: for any text the fast pipeline gives [CLS] … [SEP] within the length limit and,
// wherever sugarme can encode the cleaned text, the same ids as sugarme.
func FuzzEncode(f *testing.F) {
	tok := writeTokenizer(f, bertVocab(f), true)
	for _, s := range tricky {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		maxLen = 3 + abs(maxLen)%200
		ids, err := tok.Encode(nil, text, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) < 2 || len(ids) > maxLen || ids[0] != 101 || ids[len(ids)-1] != 102 {
			t.Fatalf("%q: %v", text, ids)
		}
		full, _ := tok.Encode(nil, text, 0)
		if len(full) <= maxLen && !slices.Equal(full, ids) {
			t.Fatalf("%q: limit %d changed an encoding that fits: %v vs %v", text, maxLen, ids, full)
		}
		if !utf8.ValidString(text) {
			return
		}
		// As in TestTokenizerMatchesSugarme: sugarme's ids, or where sugarme mis-handles a
		// character that clean_text removes, its ids for the text without those characters.
		raw, errRaw := tok.EncodeSugarme(nil, text, 0)
		clean, errClean := tok.EncodeSugarme(nil, cleaned(text), 0)
		if (errRaw == nil || errClean == nil) && !slices.Equal(full, raw) && !slices.Equal(full, clean) {
			t.Fatalf("%q:\n fast             %v\n sugarme          %v\n sugarme, cleaned %v", text, full, raw, clean)
		}
	})
}

// FuzzClassify: any text gets a result whose scores are probabilities summing to one.
func FuzzClassify(f *testing.F) {
	c := load(f, writeBundle(f, bundleOpts{}), models.Config{})
	for _, s := range tricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		res, err := c.Classify(t.Context(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res[0].Heads {
			var sum float64
			for _, s := range h.Scores {
				if s < 0 || s > 1 || math.IsNaN(float64(s)) {
					t.Fatalf("%q: score %v", text, s)
				}
				sum += float64(s)
			}
			if math.Abs(sum-1) > 1e-4 {
				t.Fatalf("%q head %s: scores sum to %v", text, h.Head, sum)
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		if x == math.MinInt {
			return 0
		}
		return -x
	}
	return x
}
