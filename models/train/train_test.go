package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
)

// small is a tiny bilingual data set: enough to train and to exercise every feature kind.
func small() []Dataset {
	intents := map[string][]string{
		"refund":       {"i want a refund", "refund my money please", "give me my money back", "can i get a refund", "我要退款", "把钱退给我", "申请退款", "退款吧"},
		"order_status": {"where is my order", "track my parcel", "has my package shipped", "when will my order arrive", "我的订单到哪了", "查一下物流", "快递什么时候到", "包裹发货了吗"},
		"human_agent":  {"talk to a human", "i want a real person", "connect me to an agent", "human please", "转人工", "我要人工客服", "找真人", "帮我转客服"},
		"greeting":     {"hello", "hi there", "good morning", "hey", "你好", "您好", "早上好", "在吗"},
	}
	emotions := map[string][]string{
		"angry":   {"this is outrageous", "i'm furious", "worst service ever", "you are useless", "气死我了", "太过分了", "垃圾服务", "我要投诉你们"},
		"neutral": {"where is my order", "i have a question", "what are your hours", "please send the invoice", "我的订单到哪了", "我想问个问题", "几点开门", "请发发票"},
		"happy":   {"thank you so much", "great service", "i love it", "perfect thanks", "太感谢了", "服务真好", "很喜欢", "太棒了"},
	}
	build := func(head string, m map[string][]string) Dataset {
		d := Dataset{Head: head}
		for _, l := range slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}) {
			for _, t := range m[l] {
				d.Texts, d.Labels = append(d.Texts, t), append(d.Labels, l)
			}
		}
		return d
	}
	return []Dataset{build("intent", intents), build("emotion", emotions)}
}

func quick() Config {
	return Config{Hidden: 16, Epochs: 30, Patience: 30, ValidSplit: 0, Seed: 7, Workers: 2, MinDF: 1, LR: 0.01}
}

// TestGraphMatchesTrainer checks that the ONNX graph computes what the trainer's own forward
// pass computes, through ONNX Runtime, for texts of every shape: batched with padding, empty,
// one character, longer than max_seq_len, unknown characters, mixed languages.
// With word vectors, it also covers a word that joined the vocabulary from the vectors only.
func TestGraphMatchesTrainer(t *testing.T) {
	rt := testenv.Runtime(t)
	vecs, err := ReadVectors(strings.NewReader(tinyVectors), "tiny.vec", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("plain", func(t *testing.T) { graphMatchesTrainer(t, rt, nil) })
	t.Run("vectors", func(t *testing.T) { graphMatchesTrainer(t, rt, vecs) })
}

// tinyVectors are hand-made 3-dimensional word vectors: "refund" and "reimbursement" point one
// way, "hello" and "hey"/"howdy" another; "reimbursement" and "howdy" are not in small().
const tinyVectors = `7 3
refund 1 0.1 0
reimbursement 0.9 0.2 0.1
hello 0 1 0.1
hey 0.1 0.9 0
howdy 0 0.95 0.2
parcel 0 0.1 1
package 0.1 0 0.9
`

func graphMatchesTrainer(t *testing.T, rt *models.Runtime, vecs *Vectors) {
	dir := t.TempDir()
	sets := small()
	cfg := Config{Hidden: 8, Ensemble: 2, MaxSeqLen: 16, MinDF: 1}.withDefaults()
	var all []string
	for _, s := range sets {
		all = append(all, s.Texts...)
	}
	vocab := LearnVocab(all, 1000, 1)
	if vecs != nil {
		vocab = vecs.extend(vocab, 10)
		if !slices.Contains(vocab, "howdy") || !slices.Contains(vocab, "reimbursement") {
			t.Fatalf("vector words not added: %q", vocab[len(vocab)-3:])
		}
	}
	tj, err := models.BertTokenizerJSON(vocab, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := models.LoadTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]int64
	for _, s := range all {
		ids, _ := tok.Encode(nil, s, cfg.MaxSeqLen)
		docs = append(docs, ids)
	}
	fz := newFeaturizer(vocab, docs, featureConfig{minDF: 1, skip: true, charWeight: cfg.CharWeight, vectors: vecs, vectorWeight: cfg.VectorWeight})
	if vecs != nil && fz.vecs == nil {
		t.Fatal("no vector features")
	}
	if fz.table2.count() == 0 || fz.table3.count() == 0 || fz.tableS.count() == 0 || fz.charRows == 0 {
		t.Fatalf("feature space lacks a kind: %d bigrams, %d trigrams, %d char n-grams", fz.table2.count(), fz.table3.count(), fz.charRows)
	}
	var heads []*headNet
	for i, s := range sets {
		for range cfg.Ensemble {
			heads = append(heads, &headNet{name: s.Head, group: i, labels: slices.Compact(slices.Sorted(slices.Values(s.Labels))), h: cfg.Hidden})
		}
	}
	n := newNet(fz.rows, heads, rand.New(rand.NewPCG(1, 2)))
	rng := rand.New(rand.NewPCG(3, 4))
	for _, hd := range heads { // biases too, so that every parameter matters
		for i := range hd.b {
			hd.b[i] = float32(rng.NormFloat64() * 0.1)
		}
		for i := range hd.c {
			hd.c[i] = float32(rng.NormFloat64())
		}
	}
	if err := export(dir, cfg, n, fz, &Report{}); err != nil {
		t.Fatal(err)
	}
	clf, err := models.Load(rt, dir, models.Config{MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	texts := []string{"", "我", "i want a refund", "where is my order, 我的订单到哪了?", "REFUND!!! refunding refunded",
		"☃ unknown ☃ 𝄞", strings.Repeat("track my parcel ", 40), "转人工 please", "hello", "气死我了", "howdy, reimbursement for my package"}
	res, err := clf.Classify(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	s := newScratch(n)
	for i, text := range texts {
		ids, _ := tok.Encode(nil, text, cfg.MaxSeqLen)
		feats, den := fz.vecFeatures(fz.features(nil, ids), ids)
		for g, set := range sets {
			var mean []float64
			for _, hd := range heads {
				if hd.group != g {
					continue
				}
				n.forward(hd, feats, den, s, 0, nil)
				if mean == nil {
					mean = make([]float64, len(hd.labels))
				}
				for k := range mean {
					mean[k] += s.logits[k] / float64(cfg.Ensemble)
				}
			}
			softmax(mean)
			got := res[i].Heads[g]
			if got.Head != set.Head {
				t.Fatalf("head %d is %q, want %q", g, got.Head, set.Head)
			}
			for k, p := range mean {
				if math.Abs(p-float64(got.Scores[k])) > 2e-3 {
					t.Errorf("%q %s label %d: ONNX Runtime %.5f, trainer %.5f", text, set.Head, k, got.Scores[k], p)
				}
			}
		}
	}
}

// TestTrainLearnsAndIsDeterministic trains twice with one seed (identical bytes) and once
// with another, and checks the model through ONNX Runtime on new phrasings.
func TestTrainLearnsAndIsDeterministic(t *testing.T) {
	rt := testenv.Runtime(t)
	base := t.TempDir()
	ctx := context.Background()
	var progress bytes.Buffer
	cfg := quick()
	cfg.Progress = &progress
	rep, err := Train(ctx, cfg, small(), filepath.Join(base, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "epoch  1/30  loss") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}
	if rep.Vocab == 0 || len(rep.Heads) != 2 || rep.Heads[0].Labels["refund"] != 8 || rep.Seconds <= 0 {
		t.Errorf("report %+v", rep)
	}
	cfg.Progress = nil
	if _, err := Train(ctx, cfg, small(), filepath.Join(base, "b")); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 8
	if _, err := Train(ctx, cfg, small(), filepath.Join(base, "c")); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(base, "a", "model.onnx"))
	b, _ := os.ReadFile(filepath.Join(base, "b", "model.onnx"))
	c, _ := os.ReadFile(filepath.Join(base, "c", "model.onnx"))
	if !bytes.Equal(a, b) {
		t.Error("two runs with seed 7 wrote different models")
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 7 and 8 wrote the same model")
	}
	if entries, _ := os.ReadDir(base); len(entries) != 3 {
		t.Errorf("left behind: %v", entries)
	}
	clf, err := models.Load(rt, filepath.Join(base, "a"), models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	for text, want := range map[string][2]string{
		"please refund me":      {"refund", ""},
		"where's my parcel":     {"order_status", "neutral"},
		"我要找人工":                 {"human_agent", ""},
		"you are so useless":    {"", "angry"},
		"谢谢你，服务太好了":             {"", "happy"},
		"hello, good morning!!": {"greeting", ""},
	} {
		res, err := clf.Classify(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		for h, w := range want {
			if got := res[0].Heads[h].Label; w != "" && got != w {
				t.Errorf("%q %s = %s, want %s", text, res[0].Heads[h].Head, got, w)
			}
		}
	}
}

func TestTrainRefusesBadDataAndKeepsOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(out, "old")
	os.WriteFile(marker, []byte("x"), 0o644)
	ctx := context.Background()
	for name, sets := range map[string][]Dataset{
		"no data":    nil,
		"one label":  {{Head: "intent", Texts: []string{"a", "b"}, Labels: []string{"x", "x"}}},
		"empty head": {{Head: "intent"}},
		"twice":      {small()[0], small()[0]},
	} {
		if _, err := Train(ctx, quick(), sets, out); err == nil {
			t.Errorf("%s: trained", name)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Train(cancelled, quick(), small(), out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("a failed run touched the old bundle: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("temporary directories left: %v", entries)
	}
}

func TestCheckWarns(t *testing.T) {
	d := Dataset{Head: "intent", Texts: []string{"Refund please", "refund   PLEASE", "hello", "hi", "bye"},
		Labels: []string{"refund", "cancel", "greet", "greet", "refund"}, Where: []string{"a.csv:2", "a.csv:3", "a.csv:4", "a.csv:5", "a.csv:6"}}
	warnings, err := check([]Dataset{d})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`a.csv:3: label "cancel" has only this example; it is never validated`,
		`a.csv:3: same text as a.csv:2 but label "cancel", not "refund"`,
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", warnings, want)
	}
}

func TestLearnVocab(t *testing.T) {
	v := LearnVocab([]string{"Refunding my order", "refund refund", "我要退款", "Café"}, 100, 1)
	if !slices.Equal(v[:5], Specials) {
		t.Fatalf("specials %q", v[:5])
	}
	// Precomposed "é" stays: sugarme strips combining marks without decomposing first, and the
	// vocabulary must hold what the tokenizer will look up.
	for _, tok := range []string{"refund", "refunding", "r", "##r", "我", "退", "café", "##ing"} {
		if !slices.Contains(v, tok) {
			t.Errorf("vocabulary lacks %q", tok)
		}
	}
	for _, tok := range []string{"##我", "Café", "Refunding"} {
		if slices.Contains(v, tok) {
			t.Errorf("vocabulary has %q", tok)
		}
	}
	if small := LearnVocab([]string{"alpha beta gamma delta"}, 30, 1); len(small) > 30 && !slices.Contains(small, "alpha") {
		t.Errorf("limit: %d tokens", len(small))
	}
}

func TestSplitStratified(t *testing.T) {
	labels := slices.Repeat([]string{"a", "a", "a", "a", "a", "a", "a", "a", "a", "a", "b"}, 1)
	tr, va := split(labels, 0.2, rand.New(rand.NewPCG(1, 1)))
	if len(va) != 2 || len(tr) != 9 || slices.Contains(va, 10) {
		t.Errorf("train %v valid %v: want 2 of label a held out and b kept for training", tr, va)
	}
}

func TestTrainWithSeparateValidation(t *testing.T) {
	sets := small()
	sets[0].ValidTexts = []string{"refund please", "where is my parcel", "hello!", "something else"}
	sets[0].ValidLabels = []string{"refund", "order_status", "greeting", "no_such_label"}
	cfg := quick()
	cfg.Epochs, cfg.Patience, cfg.Refit = 6, 2, true
	rep, err := Train(context.Background(), cfg, sets, filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Heads[0]
	if h.Train != len(sets[0].Texts) || h.Valid != 3 || rep.Refit {
		t.Errorf("train %d valid %d refit %v: want every training example used, 3 validation examples, no refit", h.Train, h.Valid, rep.Refit)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool {
		return strings.Contains(w, "1 validation examples have labels the training data lacks")
	}) {
		t.Errorf("warnings %q", rep.Warnings)
	}
}

// TestTrainWithVectors checks that word vectors carry a label to words the training data
// never had, through ONNX Runtime.
func TestTrainWithVectors(t *testing.T) {
	rt := testenv.Runtime(t)
	vecs, err := ReadVectors(strings.NewReader(tinyVectors), "tiny.vec", 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quick()
	cfg.Vectors, cfg.VectorWords = vecs, 10
	out := filepath.Join(t.TempDir(), "m")
	rep, err := Train(context.Background(), cfg, small()[:1], out)
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.Vectors; v == nil || v.Dim != 3 || v.Added != 2 || v.Tokens != 7 {
		t.Errorf("vector report %+v: want 3 dimensions, 2 words added (reimbursement, howdy), 7 tokens with a vector", v)
	}
	clf, err := models.Load(rt, out, models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	for text, want := range map[string]string{"howdy": "greeting", "reimbursement": "refund"} {
		res, err := clf.Classify(context.Background(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Heads[0]; got.Label != want {
			t.Errorf("%q = %s (%.2f), want %s", text, got.Label, got.Confidence, want)
		}
	}
}

func TestReadVectors(t *testing.T) {
	v, err := ReadVectors(strings.NewReader("2 2\nok 3 4\n\nok 1 0\nnil 0 0\nfar 0 -2\n"), "v.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Words, []string{"ok", "far"}) || !slices.Equal(v.Vec("ok"), []float32{0.6, 0.8}) || !slices.Equal(v.Vec("far"), []float32{0, -1}) || v.Vec("nil") != nil {
		t.Errorf("words %q ok %v far %v: want unit vectors, the first of a repeated word, no zero vector", v.Words, v.Vec("ok"), v.Vec("far"))
	}
	if v, _ := ReadVectors(strings.NewReader("a 1\nb 2\nc 3\n"), "v.txt", 2); len(v.Words) != 2 {
		t.Errorf("limit 2: %q", v.Words)
	}
	for in, want := range map[string]string{
		"a 1 2\nb 1\n":       `v.txt:2: 1 numbers after "b", want 2 like the first row`,
		"a 1 2\nb 1 x\n":     `v.txt:2: number 2 of "b" is "x", not a finite number`,
		"a 1 NaN\n":          `v.txt:1: number 2 of "a" is "NaN", not a finite number`,
		"word\n":             `v.txt:1: "word" has no vector`,
		"3 100\n":            `v.txt: no word vectors`,
		"":                   `v.txt: no word vectors`,
		"ok 1\n\xff\xfe 1\n": `v.txt:2: the word is not UTF-8`,
		"a 1\n" + strings.Repeat("b", 2<<20) + "\n": `v.txt:2: bufio.Scanner: token too long`,
	} {
		if _, err := ReadVectors(strings.NewReader(in), "v.txt", 0); err == nil || err.Error() != want {
			t.Errorf("%.20q: %v, want %s", in, err, want)
		}
	}
}

func TestAutoEpochs(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{10003, 8}, // BANKING77
		{2063, 18}, // SMP2019
		{39555, 4}, // GoEmotions
		{15000, 7}, // CLINC150
		{50, 32},   // at most 32
		{0, 32},
		{2000000, 3}, // at least 3
	} {
		if got := AutoEpochs(c.n); got != c.want {
			t.Errorf("%d texts: %d epochs, want %d", c.n, got, c.want)
		}
	}
}

// TestEveryPassRunsWithoutEarlyStop checks that training without EarlyStop takes all its
// passes and keeps the last, and that EarlyStop stops after Patience epochs without gain.
func TestEveryPassRunsWithoutEarlyStop(t *testing.T) {
	cfg := quick()
	cfg.Epochs, cfg.Patience, cfg.ValidSplit, cfg.Refit = 6, 1, 0.25, true
	rep, err := Train(context.Background(), cfg, small(), filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Epochs != 6 || rep.Best != 6 || !rep.Refit {
		t.Errorf("epochs %d best %d refit %v: want all 6, the last kept, a refit on all data", rep.Epochs, rep.Best, rep.Refit)
	}
	cfg.EarlyStop, cfg.Epochs, cfg.LR = true, 30, 0.05
	rep, err = Train(context.Background(), cfg, small(), filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Epochs >= 30 || rep.Epochs != rep.Best+1 {
		t.Errorf("early stop: %d epochs, best %d: want a stop one epoch after the best", rep.Epochs, rep.Best)
	}
}
