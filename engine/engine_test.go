package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kefu-ai/kefu/models"
)

// fakeNLU is a classifier whose answer the test chooses.
type fakeNLU struct {
	classify func(ctx context.Context, texts []string) ([]models.Result, error)
}

func (f fakeNLU) Classify(ctx context.Context, texts []string) ([]models.Result, error) {
	return f.classify(ctx, texts)
}

func (f fakeNLU) Manifest() *models.Manifest {
	return &models.Manifest{Name: "fake", Version: "1", Heads: []models.HeadSpec{{Name: "intent", Labels: []string{"a", "b", "c", "d"}}}}
}

func answer(scores ...float32) fakeNLU {
	return fakeNLU{classify: func(context.Context, []string) ([]models.Result, error) {
		return []models.Result{{Tokens: 5, Heads: []models.HeadResult{{Head: "intent", Label: "c", Confidence: scores[2], Scores: scores}}}}, nil
	}}
}

func TestParseRanksAndDetectsLanguage(t *testing.T) {
	e := New(Config{NLU: answer(0.1, 0.2, 0.5, 0.2)})
	cases := []struct {
		text, lang, want string
	}{
		{"where is my order", "", "en"},
		{"我的订单在哪", "", "zh"},
		{"我的order在哪里", "auto", "zh"},  // 5 Han of 10 letters
		{"please check 订单", "", "en"}, // 2 Han of 13 letters
		{"1234 !!!", "", "en"},
		{"where is my order", "zh", "zh"},
	}
	for _, tc := range cases {
		res, err := e.Parse(t.Context(), ParseRequest{Text: tc.text, Lang: tc.lang})
		if err != nil {
			t.Fatal(err)
		}
		if res.Lang != tc.want {
			t.Errorf("%q: lang %s, want %s", tc.text, res.Lang, tc.want)
		}
	}
	res, err := e.Parse(t.Context(), ParseRequest{Text: "x", TopK: 4})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Heads["intent"].Ranking
	// Ties keep the label order: b before d.
	if len(r) != 4 || r[0].Label != "c" || r[1].Label != "b" || r[2].Label != "d" || r[3].Label != "a" {
		t.Errorf("ranking %+v", r)
	}
	if res.Model.Name != "fake" || res.Tokens != 5 {
		t.Errorf("%+v", res)
	}
}

func TestParseErrors(t *testing.T) {
	failing := func(err error) fakeNLU {
		return fakeNLU{classify: func(context.Context, []string) ([]models.Result, error) { return nil, err }}
	}
	cases := []struct {
		nlu  fakeNLU
		req  ParseRequest
		want Code
	}{
		{answer(0.25, 0.25, 0.25, 0.25), ParseRequest{Text: " "}, Invalid},
		{answer(0.25, 0.25, 0.25, 0.25), ParseRequest{Text: "\xff"}, Invalid},
		{answer(0.25, 0.25, 0.25, 0.25), ParseRequest{Text: "hi", Lang: "de"}, Invalid},
		{answer(0.25, 0.25, 0.25, 0.25), ParseRequest{Text: "hi", TopK: 101}, Invalid},
		{failing(models.ErrOverloaded), ParseRequest{Text: "hi"}, Overloaded},
		{failing(models.ErrClosed), ParseRequest{Text: "hi"}, Unavailable},
		{failing(context.DeadlineExceeded), ParseRequest{Text: "hi"}, Unavailable},
		{failing(context.Canceled), ParseRequest{Text: "hi"}, Canceled},
		{failing(errors.New("onnx exploded")), ParseRequest{Text: "hi"}, Internal},
	}
	for _, tc := range cases {
		_, err := New(Config{NLU: tc.nlu}).Parse(t.Context(), tc.req)
		if got := ErrorCode(err); got != tc.want {
			t.Errorf("%+v: code %s (%v), want %s", tc.req, got, err, tc.want)
		}
	}
}

// TestRankIsTheStableSortsTopK: rank's selection gives what a stable sort of every label by
// score, cut at k, gives, ties and k beyond the labels included.
func TestRankIsTheStableSortsTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 1 + rng.IntN(40)
		labels, scores := make([]string, n), make([]float32, n)
		for i := range n {
			labels[i] = fmt.Sprint("l", i)
			scores[i] = float32(rng.IntN(8)) / 8 // many ties
		}
		want := make([]Ranked, n)
		for i := range n {
			want[i] = Ranked{Label: labels[i], Confidence: scores[i]}
		}
		slices.SortStableFunc(want, func(a, b Ranked) int { return cmp.Compare(b.Confidence, a.Confidence) })
		k := 1 + rng.IntN(n+3)
		got := rank(labels, scores, k)
		if !slices.Equal(got, want[:min(k, n)]) {
			t.Fatalf("trial %d, k %d, scores %v:\ngot  %v\nwant %v", trial, k, scores, got, want[:min(k, n)])
		}
	}
	if got := rank([]string{"a"}, []float32{1}, 0); len(got) != 0 {
		t.Errorf("k 0: %v", got)
	}
}
