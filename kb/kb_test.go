package kb

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
)

func article(id string, questions []string, zh, en string) Article {
	return Article{ID: id, Status: Published, Questions: questions,
		Answers: []Answer{{ID: "v1", Text: texts(zh, en)}}}
}

func openMem(t *testing.T) *KB {
	t.Helper()
	j, _ := OpenJournal("")
	k, err := Open(context.Background(), j, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(); j.Close() })
	return k
}

func ids(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func TestIndexScoresWithBM25(t *testing.T) {
	x, err := NewIndex()
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	a := article("a", []string{"how long does a refund take"}, "", "three days")
	if err := x.Put(&a); err != nil {
		t.Fatal(err)
	}
	q := bleve.NewMatchQuery("refund")
	q.SetField(fieldQWords)
	req := bleve.NewSearchRequest(q)
	req.Explain = true
	res, err := x.idx.Search(req)
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("search: %v, %d hits", err, len(res.Hits))
	}
	if expl := res.Hits[0].Expl.String(); !strings.Contains(expl, "bm25") {
		t.Fatalf("the score is not BM25:\n%s", expl)
	}
}

func TestSearch(t *testing.T) {
	k := openMem(t)
	ctx := context.Background()
	arts := []Article{
		article("refund", []string{"退款多久到账", "how long does a refund take"}, "三到五天", "3-5 days"),
		article("return", []string{"怎么退货", "how do I return an item"}, "七天无理由", "within 7 days"),
		article("tie-b", []string{"gift wrapping"}, "", "yes"),
		article("tie-a", []string{"gift wrapping"}, "", "yes"),
		article("math", []string{"what does a+b (c:d) mean"}, "", "a plus b"),
		{ID: "zh-only", Lang: "zh", Status: Published, Questions: []string{"发票 invoice"}, Answers: []Answer{{Text: map[string]string{"zh": "可以开"}}}},
		{ID: "draft", Status: Draft, Questions: []string{"secret unreleased product"}, Answers: []Answer{{Text: map[string]string{"en": "soon"}}}},
	}
	if _, err := k.Import(ctx, arts, "test", false); err != nil {
		t.Fatal(err)
	}
	search := func(q, lang string) []Hit {
		t.Helper()
		hits, err := k.Search(ctx, q, lang, 5)
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		return hits
	}
	if h := search("退", ""); len(h) != 2 {
		t.Errorf("one-character query 退 found %v, want both articles with 退", ids(h))
	}
	if h := search("退款", ""); len(h) == 0 || h[0].ID != "refund" || h[0].Confidence != 1 {
		t.Errorf("退款: %+v, want refund first with confidence 1", h)
	}
	if h := search("refunds", ""); len(h) == 0 || h[0].ID != "refund" {
		t.Errorf("stemming: refunds found %v", ids(h))
	}
	if h := search("gift wrapping", ""); len(h) != 2 || h[0].ID != "tie-a" || h[0].Score != h[1].Score {
		t.Errorf("equal scores come back by id: %+v", h)
	}
	for _, q := range []string{`a+b (c:d)`, `+-:^~*?"()`, `refund AND NOT return`, `question:*`} {
		if _, err := k.Search(ctx, q, "", 5); err != nil {
			t.Errorf("%q is text, not query syntax: %v", q, err)
		}
	}
	if h := search(`a+b (c:d)`, ""); len(h) == 0 || h[0].ID != "math" {
		t.Errorf("syntax characters searched literally: %v", ids(h))
	}
	if h := search("invoice", "en"); len(h) != 0 {
		t.Errorf("lang en found the zh-only article: %v", ids(h))
	}
	if h := search("invoice", "zh"); len(h) != 1 {
		t.Errorf("lang zh did not find the zh-only article: %v", ids(h))
	}
	if h := search("secret unreleased product", ""); len(h) != 0 {
		t.Errorf("a draft is searchable: %v", ids(h))
	}
	if h := search(strings.Repeat("refund ", 10000), ""); len(h) == 0 || h[0].ID != "refund" {
		t.Errorf("a 70 kB query is cut, not refused: %v", ids(h))
	}
	var ve *ValidationError
	for _, bad := range []struct{ q, lang string }{{"", ""}, {"   ", ""}, {"x", "fr"}} {
		if _, err := k.Search(ctx, bad.q, bad.lang, 5); !errors.As(err, &ve) {
			t.Errorf("Search(%q, %q) = %v, want a ValidationError", bad.q, bad.lang, err)
		}
	}
	if _, err := k.Search(ctx, "x", "", 0); !errors.As(err, &ve) {
		t.Errorf("k 0 accepted")
	}
}

func TestEditing(t *testing.T) {
	k := openMem(t)
	ctx := context.Background()
	a, err := k.Create(ctx, Article{ID: "hours", Questions: []string{"opening hours"}, Answers: []Answer{{Text: map[string]string{"en": "9 to 5"}}}}, "ann")
	if err != nil || a.Version != 1 || a.Status != Draft || a.Answers[0].ID != "v1" {
		t.Fatalf("create: %+v, %v", a, err)
	}
	if h, _ := k.Search(ctx, "opening hours", "", 1); len(h) != 0 {
		t.Fatal("a new article is a draft: not searchable")
	}
	if _, err := k.Create(ctx, a, "bob"); !errors.Is(err, ErrConflict) {
		t.Fatalf("creating an existing id: %v", err)
	}
	if _, err := k.Publish(ctx, "hours", "ann"); err != nil {
		t.Fatal(err)
	}
	if h, _ := k.Search(ctx, "opening hours", "", 1); len(h) != 1 {
		t.Fatal("published article not searchable")
	}
	a.Questions = []string{"when are you open"}
	if _, err := k.Update(ctx, a, "bob", 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("update with a stale version: %v", err)
	}
	a.Status = Published
	if a, err = k.Update(ctx, a, "bob", 2); err != nil || a.Version != 3 || a.Author != "bob" {
		t.Fatalf("update: %+v, %v", a, err)
	}
	if h, _ := k.Search(ctx, "when are you open", "", 1); len(h) != 1 {
		t.Fatal("the edit is not searchable")
	}
	bad := a
	bad.Questions = nil
	if _, err := k.Update(ctx, bad, "bob", 0); err == nil {
		t.Fatal("an article without questions was accepted")
	}
	if err := k.Delete(ctx, "hours", "cy", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get("hours"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted article: %v", err)
	}
	if h, _ := k.Search(ctx, "when are you open", "", 1); len(h) != 0 {
		t.Fatal("a deleted article is searchable")
	}
	hist, err := k.History(ctx, "hours")
	if err != nil || len(hist) != 4 || !hist[3].Deleted || hist[0].Author != "ann" {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	audit, err := k.Audit(ctx, 10)
	if err != nil || len(audit) != 4 || audit[0].Action != "delete" || audit[0].Actor != "cy" || audit[3].Action != "create" {
		t.Fatalf("audit: %+v, %v", audit, err)
	}
	if a, err := k.Create(ctx, a, "ann"); err != nil || a.Version != 5 {
		t.Fatalf("recreating a deleted id continues its versions: %+v, %v", a, err)
	}
}

func TestImportIsAllOrNothing(t *testing.T) {
	k := openMem(t)
	good := article("good", []string{"q"}, "", "a")
	bad := article("bad", nil, "", "a")
	if _, err := k.Import(context.Background(), []Article{good, bad}, "ann", false); err == nil || !strings.Contains(err.Error(), "articles[1].questions") {
		t.Fatalf("import with a bad article: %v", err)
	}
	if len(k.List(Filter{})) != 0 {
		t.Fatal("a refused import wrote something")
	}
	res, err := k.Import(context.Background(), []Article{good}, "ann", false)
	if err != nil || res.Created != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = k.Import(context.Background(), []Article{good}, "ann", false)
	if err != nil || res.Unchanged != 1 {
		t.Fatalf("re-import of the same article: %+v %v", res, err)
	}
}

func TestFiles(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"a.yaml", "articles:\n  - id: x\n    questions: [q]\n    answers: [{en: a}]\n    colour: red\n", `a.yaml:5: unknown key "colour"`},
		{"a.yaml", "articles:\n  - id: x\n    questions: [q]\n    answers: [{en: a}]\n  - id: y\n    questions: []\n    answers: [{en: a}]\n", "a.yaml:5: questions at least one question"},
		{"a.yaml", "articles:\n  - id: x\n    questions: [q]\n    answers: [{en: a}]\n  - id: x\n    questions: [q]\n    answers: [{en: a}]\n", `a.yaml:5: article "x" already defined on line 2`},
		{"a.yaml", "articles:\n  - id: bad id\n    questions: [q]\n    answers: [{en: a}]\n", "a.yaml:2: id must match"},
		{"a.yaml", "articles: [\n", "a.yaml: "},
		{"a.yaml", "\xff", "a.yaml: not UTF-8"},
		{"a.csv", "id,questions,answer_en\nx,q,a\ny,,a\n", "a.csv:3: questions at least one question"},
		{"a.csv", "id,questions,answer_fr\n", `a.csv:1: unknown column "answer_fr"`},
		{"a.csv", "id,questions,answer_en\nx,\"q,a\n", "a.csv:2:"},
		{"a.csv", "id,answer_en\nx,a\n", `a.csv:1: no "questions" column`},
	} {
		var err error
		if strings.HasSuffix(c.name, ".csv") {
			_, err = ParseCSV(c.name, []byte(c.data))
		} else {
			_, err = ParseYAML(c.name, []byte(c.data))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.data, err, c.want)
		}
	}
	// Round trips: the bundled KB through CSV and YAML.
	data, err := os.ReadFile(filepath.Join("..", "cmd", "kefu", "bot", "kb", "faq.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	arts, err := ParseYAML("faq.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		write func(*bytes.Buffer, []Article) error
		parse func(string, []byte) ([]Article, error)
	}{
		{func(b *bytes.Buffer, a []Article) error { return WriteCSV(b, a) }, ParseCSV},
		{func(b *bytes.Buffer, a []Article) error { return WriteYAML(b, a) }, ParseYAML},
	} {
		var buf bytes.Buffer
		if err := f.write(&buf, arts); err != nil {
			t.Fatal(err)
		}
		back, err := f.parse("back", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(arts) {
			t.Fatalf("round trip: %d articles, want %d", len(back), len(arts))
		}
		for i := range arts {
			if !sameContent(&arts[i], &back[i]) {
				t.Fatalf("round trip changed %q:\n%+v\n%+v", arts[i].ID, arts[i], back[i])
			}
		}
	}
}

func FuzzParseFiles(f *testing.F) {
	f.Add([]byte("articles:\n  - id: x\n    questions: [q]\n    answers: [{en: a, zh: 答}]\n"), false)
	f.Add([]byte("id,questions,answer_zh,answer_en_b\nx,\"q1\nq2\",答,a\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		parse := ParseYAML
		if csv {
			parse = ParseCSV
		}
		arts, err := parse("f", data)
		if err != nil {
			return
		}
		for _, a := range arts {
			if err := a.Validate(); err != nil {
				t.Fatalf("parsed article does not validate: %v", err)
			}
		}
	})
}

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(ctx, j, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Import(ctx, []Article{article("a", []string{"refund"}, "", "x"), article("b", []string{"return"}, "", "y")}, "ann", false); err != nil {
		t.Fatal(err)
	}
	if err := k.Delete(ctx, "b", "ann", 0); err != nil {
		t.Fatal(err)
	}
	k.Close()
	j.Close()
	// A crash in the middle of a write leaves a torn last line: it was never acknowledged.
	path := filepath.Join(dir, journalFile)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"article":{"id":"c","vers`)
	f.Close()

	j, err = OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j.Recovered == 0 {
		t.Error("the torn line was not reported")
	}
	k, err = Open(ctx, j, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := k.List(Filter{}); len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("after reopening: %+v", got)
	}
	if h, _ := k.Search(ctx, "refund", "", 1); len(h) != 1 {
		t.Fatal("reopened article not searchable")
	}
	if _, err := k.Create(ctx, article("b", []string{"q"}, "", "z"), "bob"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	k.Close()
	j.Close()

	// A bad line in the middle is refused with file and line.
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = "garbage\n"
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644)
	if _, err := OpenJournal(dir); err == nil || !strings.Contains(err.Error(), journalFile+":2") {
		t.Fatalf("corrupt journal: %v", err)
	}
}

func TestStatistics(t *testing.T) {
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %.9f, want %.9f", name, got, want)
		}
	}
	// Hand-computed (Python: math, statistics.NormalDist).
	ci := Wilson(45, 100, 1.959963984540054)
	near("Wilson low", ci[0], 0.3561453797951198)
	near("Wilson high", ci[1], 0.5475539700255787)
	z, p := TwoProportionZ(50, 100, 65, 100)
	near("z", z, 2.1455956195564543)
	near("p", p, 0.0319052552365966)
	if n := SampleSize(0.5, 0.05, 0.05, 0.8); n != 1565 {
		t.Errorf("sample size = %d, want 1565", n)
	}
	mean, mci := MeanCI(5, 21, 91) // 5, 4, 4, 3, 5
	near("mean", mean, 4.2)
	near("mean CI low", mci[0], 3.4666486279434823)
	near("mean CI high", mci[1], 4.933351372056518)

	e := Experiment{ID: "e", Variants: []Arm{{"a", 1}, {"b", 1}}, MinEffect: 0.05}
	r := NewReport(e, map[string]Counts{"a": {Exposures: 100, Unresolved: 50}, "b": {Exposures: 100, Unresolved: 35}}, true)
	if r.Decision != "collecting" || r.Variants[1].PValue > 0.05 == true || !r.Variants[1].Significant {
		t.Errorf("p < 0.05 with 100 per arm must not be called before the sample size: %+v", r)
	}
	r = NewReport(e, map[string]Counts{"a": {Exposures: 2000, Unresolved: 1000}, "b": {Exposures: 2000, Unresolved: 800}}, true)
	if r.Decision != "winner" || r.Best != "b" {
		t.Errorf("a clear winner: %+v", r)
	}
	r = NewReport(e, map[string]Counts{"a": {Exposures: 2000, Unresolved: 1000}, "b": {Exposures: 2000, Unresolved: 990}}, true)
	if r.Decision != "no_difference" {
		t.Errorf("no difference: %+v", r)
	}
}

func TestAssignmentIsStickyAndFollowsWeights(t *testing.T) {
	e := Experiment{ID: "exp-1", Variants: []Arm{{"a", 5}, {"b", 3}, {"c", 2}}}
	const n = 30000
	counts := map[string]float64{}
	for i := range n {
		key := "customer:" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String()
		v := e.Assign(key)
		if e.Assign(key) != v {
			t.Fatal("assignment is not sticky")
		}
		counts[v]++
	}
	// Chi-square goodness of fit, 2 degrees of freedom: 13.82 is the 0.999 quantile.
	var chi2 float64
	for _, arm := range e.Variants {
		want := n * arm.Weight / 10
		chi2 += (counts[arm.Answer] - want) * (counts[arm.Answer] - want) / want
	}
	if chi2 > 13.82 {
		t.Errorf("assignment does not follow the weights: counts %v, chi-square %.2f", counts, chi2)
	}
	zero := Experiment{ID: "z", Variants: []Arm{{"a", 0}, {"b", 1}}}
	for i := range 1000 {
		if zero.Assign(time.Duration(i).String()) != "b" {
			t.Fatal("a variant of weight 0 got traffic")
		}
	}
}

func TestExperiment(t *testing.T) {
	k := openMem(t)
	ctx := context.Background()
	a := article("refund", []string{"how long does a refund take"}, "三天", "three days")
	a.Answers = append(a.Answers, Answer{ID: "short", Text: map[string]string{"en": "3 days", "zh": "3天"}})
	if _, err := k.Create(ctx, a, "ann"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Experiment{
		{ID: "x", Article: "refund", Variants: []Arm{{"v1", 1}}},
		{ID: "x", Article: "refund", Variants: []Arm{{"v1", -1}, {"short", 2}}},
		{ID: "x", Article: "refund", Variants: []Arm{{"v1", 0}, {"short", 0}}},
		{ID: "x", Article: "refund", Variants: []Arm{{"v1", 1}, {"long", 1}}},
	} {
		var ve *ValidationError
		if _, err := k.CreateExperiment(ctx, bad, "ann"); !errors.As(err, &ve) {
			t.Errorf("%+v accepted: %v", bad.Variants, err)
		}
	}
	if _, err := k.CreateExperiment(ctx, Experiment{ID: "x", Article: "nope", Variants: []Arm{{"v1", 1}, {"short", 1}}}, "ann"); !errors.Is(err, ErrNotFound) {
		t.Errorf("experiment on an unknown article: %v", err)
	}
	e, err := k.CreateExperiment(ctx, Experiment{ID: "wording", Article: "refund", Variants: []Arm{{"v1", 1}, {"short", 1}}, Unit: "conversation"}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.CreateExperiment(ctx, Experiment{ID: "second", Article: "refund", Variants: []Arm{{"v1", 1}, {"short", 1}}}, "ann"); !errors.Is(err, ErrConflict) {
		t.Errorf("a second experiment on the article: %v", err)
	}
	seen := map[string]bool{}
	for i := range 40 {
		conv := "c" + time.Duration(i).String()
		r, err := k.Answer(ctx, Question{Text: "refund take how long", Lang: "en", Conversation: conv})
		if err != nil || !r.Found || r.Experiment != "wording" || r.Variant != e.Assign("conversation:"+conv) {
			t.Fatalf("answer: %+v, %v", r, err)
		}
		if want := a.Text(r.Variant, "en"); r.Text != want {
			t.Fatalf("variant %s answered %q, want %q", r.Variant, r.Text, want)
		}
		seen[r.Variant] = true
		if i < 4 { // asked again in the same conversation: not resolved
			if _, err := k.Answer(ctx, Question{Text: "how long for a refund", Lang: "en", Conversation: conv}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 10 {
			if err := k.Feedback(ctx, Feedback{Article: "refund", Conversation: conv, Handoff: true, CSAT: 2, Thumb: -1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !seen["v1"] || !seen["short"] {
		t.Fatalf("40 conversations all got one variant: %v", seen)
	}
	rep, err := k.Report(ctx, "wording")
	if err != nil {
		t.Fatal(err)
	}
	var exp, unres, csat int64
	for _, v := range rep.Variants {
		exp += v.Counts.Exposures
		unres += v.Counts.Unresolved
		csat += v.Counts.CSATN
	}
	if exp != 40 || unres != 5 || csat != 1 || rep.Decision != "collecting" || !rep.Running {
		t.Fatalf("report: exposures %d unresolved %d csat %d decision %s: %+v", exp, unres, csat, rep.Decision, rep)
	}
	if _, err := k.Promote(ctx, "wording", "short", "ann"); err != nil {
		t.Fatal(err)
	}
	got, _ := k.Get("refund")
	if got.Answers[0].ID != "short" || len(got.Answers) != 2 {
		t.Fatalf("promoted variant is not the control: %+v", got.Answers)
	}
	r, _ := k.Answer(ctx, Question{Text: "how long does a refund take", Lang: "en", Conversation: "new"})
	if r.Experiment != "" || r.Text != "3 days" {
		t.Fatalf("after promotion: %+v", r)
	}
}
