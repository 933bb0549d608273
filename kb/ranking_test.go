package kb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// openBundle opens an in-memory knowledge base holding the demo bot's articles.
func openBundle(tb testing.TB) *KB {
	tb.Helper()
	path := filepath.Join("..", "cmd", "kefu", "bot", "kb", "faq.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	articles, err := ParseYAML(path, data)
	if err != nil {
		tb.Fatal(err)
	}
	j, _ := OpenJournal("")
	k, err := Open(context.Background(), j, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.Close(); j.Close() })
	if _, err := k.Import(context.Background(), articles, "test", false); err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestRankingParaphrases: for 240 paraphrased questions in zh and en, written for the
// bundled KB, the right article comes first for at least 90 %.
func TestRankingParaphrases(t *testing.T) {
	k := openBundle(t)
	data, err := os.ReadFile("testdata/paraphrases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var set map[string][]string
	if err := yaml.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	n, top1, found := 0, 0, 0
	for article, queries := range set {
		if _, err := k.Get(article); err != nil {
			t.Fatalf("paraphrases name unknown article %q", article)
		}
		for _, q := range queries {
			n++
			hits, err := k.Search(context.Background(), q, "", 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) > 0 && hits[0].ID == article {
				top1++
				if hits[0].Confidence >= k.opt.MinConfidence {
					found++
				}
				continue
			}
			got := "nothing"
			if len(hits) > 0 {
				got = hits[0].ID
			}
			t.Logf("miss: %q → %s, want %s", q, got, article)
		}
	}
	acc := float64(top1) / float64(n)
	t.Logf("%d paraphrases: right article first for %d (%.1f %%), of which %d above the confidence threshold", n, top1, 100*acc, found)
	if n < 200 {
		t.Fatalf("only %d labelled paraphrases, want ≥ 200", n)
	}
	if acc < 0.90 {
		t.Fatalf("right article first for %.1f %%, want ≥ 90 %%", 100*acc)
	}
	if f := float64(found) / float64(n); f < 0.80 {
		t.Errorf("right article and confident for %.1f %%, want ≥ 80 %%", 100*f)
	}
}

// TestConfidenceOffTopic: questions the KB does not answer are not called found.
func TestConfidenceOffTopic(t *testing.T) {
	k := openBundle(t)
	data, err := os.ReadFile("testdata/offtopic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	if err := yaml.Unmarshal(data, &queries); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, q := range queries {
		r, err := k.Answer(context.Background(), Question{Text: q})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Found {
			found++
			t.Logf("off-topic %q found %s (confidence %.2f)", q, r.Article, r.Confidence)
		}
	}
	if found > len(queries)/10 {
		t.Errorf("%d of %d off-topic questions called found, want ≤ 10 %%", found, len(queries))
	}
}
