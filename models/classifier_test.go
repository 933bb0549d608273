package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
	"github.com/kefu-ai/kefu/models/onnx"
)

var smallVocab = strings.Fields(`[PAD] [UNK] [CLS] [SEP] [MASK] i want to refund my order where is the
package cancel please thanks hello agent human angry ##s ##ed ##ing , . ! ? 我 要 退 款 订 单 在 哪 里 取 消
谢 人 工 客 服 生 气 a b c d e`)

type bundleOpts struct {
	big        bool // 4 layers × 256 hidden, 512 positions and max_seq_len
	tokenTypes bool
	labels     int // intent labels written to model.json; default the graph's 4
	manifest   func(m map[string]any)
}

// writeBundle writes a bundle with a small random BERT (heads intent/4 and emotion/3).
func writeBundle(tb testing.TB, o bundleOpts) string {
	tb.Helper()
	dir := tb.TempDir()
	cfg := onnx.BERTConfig{
		Vocab: len(smallVocab), Hidden: 32, Layers: 2, Heads: 2, MaxPositions: 64, TokenTypes: o.tokenTypes,
		Outputs: []onnx.Head{{Name: "intent", Labels: 4}, {Name: "emotion", Labels: 3}}, Seed: 3,
	}
	maxSeqLen := 16
	if o.big {
		cfg.Hidden, cfg.Layers, cfg.Heads, cfg.MaxPositions, maxSeqLen = 256, 4, 4, 512, 512
	}
	bert, err := onnx.RandomBERT(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	must(tb, os.WriteFile(filepath.Join(dir, "model.onnx"), bert.Model().Marshal(), 0o644))
	tj, err := models.BertTokenizerJSON(smallVocab, true)
	must(tb, err)
	must(tb, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	n := o.labels
	if n == 0 {
		n = 4
	}
	var intents []string
	for i := range n {
		intents = append(intents, fmt.Sprintf("intent_%d", i))
	}
	m := map[string]any{
		"name": "test", "version": "1", "max_seq_len": maxSeqLen,
		"inputs": map[string]any{},
		"heads": []any{
			map[string]any{"name": "intent", "output": "intent_logits", "labels": intents},
			map[string]any{"name": "emotion", "output": "emotion_logits", "labels": []string{"neutral", "happy", "angry"}},
		},
	}
	if o.tokenTypes {
		m["inputs"] = map[string]any{"token_type_ids": "token_type_ids"}
	}
	if o.manifest != nil {
		o.manifest(m)
	}
	data, err := json.Marshal(m)
	must(tb, err)
	must(tb, os.WriteFile(filepath.Join(dir, "model.json"), data, 0o644))
	return dir
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func load(tb testing.TB, dir string, cfg models.Config) *models.Classifier {
	tb.Helper()
	c, err := models.Load(testenv.Runtime(tb), dir, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestClassifyBatchesGiveSameAnswers(t *testing.T) {
	for _, types := range []bool{false, true} {
		c := load(t, writeBundle(t, bundleOpts{tokenTypes: types}), models.Config{})
		texts := []string{"i want to refund my order", "我要退款", "hello", "where is the package ?", "取消订单，谢谢"}
		batch, err := c.Classify(t.Context(), texts)
		must(t, err)
		for i, text := range texts {
			one, err := c.Classify(t.Context(), []string{text})
			must(t, err)
			for h := range one[0].Heads {
				a, b := one[0].Heads[h], batch[i].Heads[h]
				if a.Label != b.Label {
					t.Errorf("%q head %s: alone %s, in batch %s", text, a.Head, a.Label, b.Label)
				}
				var sum float64
				for k := range a.Scores {
					sum += float64(a.Scores[k])
					if math.Abs(float64(a.Scores[k]-b.Scores[k])) > 1e-5 {
						t.Errorf("%q head %s label %d: alone %.6f, in batch %.6f", text, a.Head, k, a.Scores[k], b.Scores[k])
					}
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Errorf("%q head %s: scores sum to %f", text, a.Head, sum)
				}
			}
		}
		if r, ok := batch[0].Head("emotion"); !ok || r.Confidence <= 0 || len(r.Scores) != 3 {
			t.Errorf("emotion head: %+v", r)
		}
	}
}

// TestServesHuggingFaceShape loads a graph shaped like a Hugging Face BERT sequence
// classifier export: three inputs, one output named "logits".
func TestServesHuggingFaceShape(t *testing.T) {
	dir := t.TempDir()
	bert, err := onnx.RandomBERT(onnx.BERTConfig{Vocab: len(smallVocab), Hidden: 32, Layers: 1, Heads: 2, MaxPositions: 64,
		TokenTypes: true, Outputs: []onnx.Head{{Name: "intent", Labels: 3, Output: "logits"}}})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "model.onnx"), bert.Model().Marshal(), 0o644))
	tj, err := models.BertTokenizerJSON(smallVocab, true)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"name": "hf", "version": "1",
		"inputs": {"token_type_ids": "token_type_ids"},
		"heads": [{"name": "intent", "output": "logits", "labels": ["refund", "order_status", "greeting"]}]}`), 0o644))
	c := load(t, dir, models.Config{})
	res, err := c.Classify(t.Context(), []string{"我要退款", "hello"})
	must(t, err)
	if len(res) != 2 || len(res[0].Heads) != 1 || res[0].Heads[0].Head != "intent" || len(res[0].Heads[0].Scores) != 3 {
		t.Errorf("%+v", res)
	}
}

func TestClassifyConcurrentCallers(t *testing.T) {
	c := load(t, writeBundle(t, bundleOpts{}), models.Config{MaxBatch: 8, Workers: 2, QueueSize: 400, Session: models.SessionConfig{IntraOpThreads: 1}})
	texts := []string{"i want to refund my order", "我要退款", "hello", "人工客服", "cancel please"}
	want, err := c.Classify(t.Context(), texts)
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for g := range 300 {
		wg.Go(func() {
			i := g % len(texts)
			got, err := c.Classify(context.Background(), []string{texts[i]})
			if err != nil {
				errs <- err
				return
			}
			for h := range got[0].Heads {
				if got[0].Heads[h].Label != want[i].Heads[h].Label ||
					math.Abs(float64(got[0].Heads[h].Confidence-want[i].Heads[h].Confidence)) > 1e-5 {
					errs <- fmt.Errorf("%q: got %+v, want %+v", texts[i], got[0].Heads[h], want[i].Heads[h])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestBatchesWaitOnlyWhenCompanyIsLikely: with MaxWait 500 ms, texts that come 800 ms apart
// run at once (waiting would only add to their latency), while a text that follows a burst
// (20 texts 5 ms apart) waits for company, as batching under load needs.
func TestBatchesWaitOnlyWhenCompanyIsLikely(t *testing.T) {
	const wait = 500 * time.Millisecond
	bundle := writeBundle(t, bundleOpts{})
	slow := load(t, bundle, models.Config{MaxWait: wait, Workers: 1})
	for i := range 3 {
		if i > 0 {
			time.Sleep(800 * time.Millisecond)
		}
		start := time.Now()
		_, err := slow.Classify(t.Context(), []string{"where is my order"})
		must(t, err)
		if took := time.Since(start); took >= wait*4/5 {
			t.Errorf("text %d of a slow pace took %v: it waited for company that was not coming", i, took)
		}
	}
	busy := load(t, bundle, models.Config{MaxWait: wait, Workers: 1})
	var wg sync.WaitGroup
	for i := range 20 {
		time.Sleep(5 * time.Millisecond)
		wg.Go(func() {
			if _, err := busy.Classify(context.Background(), []string{fmt.Sprint("burst ", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	_, err := busy.Classify(t.Context(), []string{"where is my order"})
	must(t, err)
	if took := time.Since(start); took < wait {
		t.Errorf("a text right after a burst took %v: it did not wait for company (MaxWait %v)", took, wait)
	}
}

func TestClassifyBadInput(t *testing.T) {
	c := load(t, writeBundle(t, bundleOpts{}), models.Config{})
	cases := map[string]string{
		"empty":      "",
		"whitespace": " \t\n ",
		"100KB":      strings.Repeat("refund my order ", 6400),
		"invalid":    "\xff\xfe退款\xc3",
		"control":    "\x00\x01\x1b[31mrefund\x7f",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := c.Classify(t.Context(), []string{text})
			must(t, err)
			r := res[0]
			if len(r.Heads) != 2 || r.Tokens < 2 || r.Tokens > 16 {
				t.Fatalf("result %+v", r)
			}
			if r.Truncated != (name == "100KB") {
				t.Errorf("truncated = %v", r.Truncated)
			}
		})
	}
}

func TestClassifyOverloadedAndCancelled(t *testing.T) {
	// One text per run and room for four requests: 100 texts cannot all wait.
	c := load(t, writeBundle(t, bundleOpts{}), models.Config{QueueSize: 4, MaxBatch: 1, Workers: 1})
	if _, err := c.Classify(t.Context(), slices.Repeat([]string{"hello"}, 100)); !errors.Is(err, models.ErrOverloaded) {
		t.Errorf("100 texts through a queue of 4: got %v, want ErrOverloaded", err)
	}
	if _, err := c.Classify(t.Context(), []string{"hello", "我要退款"}); err != nil {
		t.Errorf("after overload: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Classify(ctx, []string{"hello"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
	if _, err := c.Classify(t.Context(), []string{"hello"}); err != nil {
		t.Errorf("after a cancelled call: %v", err)
	}
}

func TestClassifyAfterClose(t *testing.T) {
	c, err := models.Load(testenv.Runtime(t), writeBundle(t, bundleOpts{}), models.Config{})
	must(t, err)
	must(t, c.Close())
	must(t, c.Close())
	if _, err := c.Classify(t.Context(), []string{"hello"}); !errors.Is(err, models.ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}

func TestLoadRefusesBadBundles(t *testing.T) {
	rt := testenv.Runtime(t)
	int32Model := func(dir string) {
		g := onnx.NewGraph("int32")
		ids := g.Input("input_ids", onnx.Int32, onnx.Sym("b"), onnx.Sym("s"))
		g.Input("attention_mask", onnx.Int64, onnx.Sym("b"), onnx.Sym("s"))
		f := g.Op("Cast", []string{ids}, onnx.IntAttr("to", int64(onnx.Float)))
		out := g.Rename(g.Op("ReduceSum", []string{f, g.Ints("axes", []int64{1}, []int64{1})}), "intent_logits")
		g.Output(out, onnx.Float, onnx.Sym("b"))
		must(t, os.WriteFile(filepath.Join(dir, "model.onnx"), (&onnx.Model{Graph: g}).Marshal(), 0o644))
	}
	cases := []struct {
		name  string
		edit  func(dir string)
		opts  bundleOpts
		wants []string
	}{
		{name: "missing model", edit: func(d string) { os.Remove(filepath.Join(d, "model.onnx")) }, wants: []string{"model.onnx", "no such file"}},
		{name: "missing tokenizer", edit: func(d string) { os.Remove(filepath.Join(d, "tokenizer.json")) }, wants: []string{"tokenizer.json", "no such file"}},
		{name: "missing manifest", edit: func(d string) { os.Remove(filepath.Join(d, "model.json")) }, wants: []string{"model.json", "no such file"}},
		{name: "bad manifest", edit: func(d string) { os.WriteFile(filepath.Join(d, "model.json"), []byte("{\n \"name\": 3\n}"), 0o644) }, wants: []string{"model.json", "line 2", "name"}},
		{name: "label count", opts: bundleOpts{labels: 5}, wants: []string{"model.onnx", `head "intent"`, "5 labels", "4 columns"}},
		{name: "output name", opts: bundleOpts{manifest: func(m map[string]any) { m["heads"].([]any)[1].(map[string]any)["output"] = "logits" }}, wants: []string{`head "emotion"`, `no output "logits"`}},
		{name: "input name", opts: bundleOpts{manifest: func(m map[string]any) { m["inputs"] = map[string]any{"input_ids": "ids"} }}, wants: []string{`graph input "input_ids" is not named`}},
		{name: "missing token types", opts: bundleOpts{tokenTypes: true, manifest: func(m map[string]any) { m["inputs"] = map[string]any{} }}, wants: []string{`"token_type_ids" is not named`}},
		{name: "int32 input", edit: int32Model, opts: bundleOpts{manifest: func(m map[string]any) { m["heads"] = m["heads"].([]any)[:1] }}, wants: []string{`"input_ids"`, "INT32", "int64"}},
		{name: "bad tokenizer", edit: func(d string) {
			os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece", "vocab": 7}}`), 0o644)
		}, wants: []string{"tokenizer.json", "malformed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeBundle(t, tc.opts)
			if tc.edit != nil {
				tc.edit(dir)
			}
			_, err := models.Load(rt, dir, models.Config{})
			if err == nil {
				t.Fatal("loaded a bad bundle")
			}
			for _, w := range tc.wants {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func BenchmarkClassify(b *testing.B) {
	c := load(b, writeBundle(b, bundleOpts{}), models.Config{})
	texts := []string{"i want to refund my order", "我要退款", "where is the package ?"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Classify(context.Background(), []string{texts[i%len(texts)]}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// TestCancelledRunIsTerminated cancels a long run (64 texts of 512 tokens through a 4×256
// BERT: seconds of work) while it runs. Run checks ctx only before starting, so an error that
// wraps context.Canceled can only come from RunOptions.Terminate stopping ONNX Runtime.
func TestCancelledRunIsTerminated(t *testing.T) {
	c := load(t, writeBundle(t, bundleOpts{big: true}), models.Config{})
	rows := make([][]int64, 64)
	for i := range rows {
		rows[i] = make([]int64, 512)
		for k := range rows[i] {
			rows[i][k] = int64(5 + (i*31+k*7)%(len(smallVocab)-5))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := c.Run(ctx, rows); !errors.Is(err, context.Canceled) {
		t.Fatalf("run cancelled after 30ms: %v", err)
	}
	if _, err := c.Run(t.Context(), rows[:1]); err != nil {
		t.Fatalf("next run: %v", err)
	}
}

func TestCUDAFallsBackToCPU(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c := load(t, writeBundle(t, bundleOpts{}), models.Config{Session: models.SessionConfig{Provider: "cuda"}, Logger: log})
	if c.Provider() != "cpu" {
		t.Skipf("CUDA is available here (provider %s)", c.Provider())
	}
	if n := strings.Count(logs.String(), "CUDA execution provider unavailable"); n != 1 {
		t.Errorf("want one warning line, got %d:\n%s", n, logs.String())
	}
	if _, err := c.Classify(t.Context(), []string{"hello"}); err != nil {
		t.Error(err)
	}
	if _, err := models.Load(testenv.Runtime(t), writeBundle(t, bundleOpts{}), models.Config{Session: models.SessionConfig{Provider: "tpu"}}); err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Errorf("unknown provider: %v", err)
	}
}
