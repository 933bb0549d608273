package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/kefu-ai/kefu/eval"
	"github.com/kefu-ai/kefu/models"
	"github.com/kefu-ai/kefu/models/onnx"
)

// benchReport is what `kefu bench` measures, printed as a table and optionally as JSON.
type benchReport struct {
	Model        string  `json:"model"`
	Provider     string  `json:"provider"`
	Texts        int     `json:"texts"`
	MeanTokens   float64 `json:"mean_tokens"`
	TokenizeFast float64 `json:"tokenize_us"`         // median µs per utterance, kefu's pipeline
	TokenizeSlow float64 `json:"tokenize_sugarme_us"` // median µs per utterance, sugarme
	Run1MS       float64 `json:"run_batch1_ms"`       // median ONNX Runtime run, batch 1
	RunBatchMS   float64 `json:"run_batchN_ms"`       // median ONNX Runtime run, batch --batch
	Batch        int     `json:"batch"`
	RawLimit     float64 `json:"raw_limit_per_s"` // texts/s at batch --batch, run back to back
	Concurrency  int     `json:"concurrency"`
	Throughput   float64 `json:"classify_per_s"`
	Ratio        float64 `json:"ratio_to_raw_limit"`
	P50MS        float64 `json:"classify_p50_ms"`
	P99MS        float64 `json:"classify_p99_ms"`
	Overloaded   int     `json:"overloaded"`
	Threads      int     `json:"intra_op_threads"`
	Workers      int     `json:"workers"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	DurationS    float64 `json:"duration_s"`
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "kb" {
		return benchKB(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "http" {
		return benchHTTP(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("bench", "[kb|http] [flags]", stderr)
	preset := fs.String("preset", "small", "model size: small (4 layers × 256 hidden), base (12 × 768, BERT-base cost) or demo (the embedded model)")
	layers := fs.Int("layers", 0, "transformer layers (overrides the preset)")
	hidden := fs.Int("hidden", 0, "hidden size (overrides the preset)")
	modelDir := fs.String("model", "", "benchmark this model bundle instead of a generated one")
	batch := fs.Int("batch", 32, "batch size of the raw ONNX Runtime limit")
	concurrency := fs.Int("concurrency", 64, "concurrent Classify callers")
	duration := fs.Duration("duration", 5*time.Second, "how long each timed phase runs")
	jsonOut := fs.String("json", "", "also write the figures to this JSON file")
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	texts, err := benchTexts()
	if err != nil {
		return err
	}
	dir := *modelDir
	if dir == "" {
		if dir, err = extractModel(); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if *preset != "demo" {
			if err := writeRandomBERT(dir, *preset, *layers, *hidden); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stderr, "loading %s …\n", dir)
	clf, _, closeModel, err := openModel(openRuntime, dir, *cfg)
	if err != nil {
		return err
	}
	defer closeModel()
	m := clf.Manifest()
	r := benchReport{
		Model: fmt.Sprintf("%s %s", m.Name, m.Version), Provider: clf.Provider(), Texts: len(texts),
		Batch: *batch, Concurrency: *concurrency, Threads: clf.Config().Session.IntraOpThreads, Workers: clf.Config().Workers,
		GOMAXPROCS: runtime.GOMAXPROCS(0), DurationS: duration.Seconds(),
	}

	// Tokenization: every text, several rounds, median per utterance.
	tok := clf.Tokenizer()
	rows := make([][]int64, len(texts))
	tokens := 0
	for i, t := range texts {
		if rows[i], err = tok.Encode(nil, t, m.MaxSeqLen); err != nil {
			return err
		}
		tokens += len(rows[i])
	}
	r.MeanTokens = float64(tokens) / float64(len(texts))
	perText := func(encode func([]int64, string, int) ([]int64, error)) (float64, error) {
		var rounds []float64
		buf := make([]int64, 0, m.MaxSeqLen)
		for range 15 {
			start := time.Now()
			for _, t := range texts {
				if buf, err = encode(buf[:0], t, m.MaxSeqLen); err != nil {
					return 0, err
				}
			}
			rounds = append(rounds, float64(time.Since(start).Nanoseconds())/1e3/float64(len(texts)))
		}
		return median(rounds), nil
	}
	if r.TokenizeFast, err = perText(tok.Encode); err != nil {
		return err
	}
	if r.TokenizeSlow, err = perText(tok.EncodeSugarme); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tokenize: %.2f µs/utterance (sugarme %.2f µs)\n", r.TokenizeFast, r.TokenizeSlow)

	// Raw ONNX Runtime: batches of the same texts run back to back, on as many goroutines as
	// the classifier has workers, without queue or tokenization. It returns the median run
	// time and the texts per second all goroutines together achieved.
	rawRun := func(size int) (float64, float64, error) {
		var mu sync.Mutex
		var times []float64
		var firstErr error
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(*duration / 2)
		for w := range r.Workers {
			wg.Go(func() {
				var mine []float64
				for i := w; time.Now().Before(deadline) || len(mine) < 5; i += r.Workers {
					b := make([][]int64, size)
					for k := range b {
						b[k] = rows[(i*size+k)%len(rows)]
					}
					t0 := time.Now()
					if _, err := clf.Run(ctx, b); err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						return
					}
					mine = append(mine, float64(time.Since(t0).Microseconds())/1e3)
				}
				mu.Lock()
				times = append(times, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		rate := float64(len(times)*size) / time.Since(start).Seconds()
		return median(times), rate, firstErr
	}
	if r.Run1MS, _, err = rawRun(1); err != nil {
		return err
	}
	if r.RunBatchMS, r.RawLimit, err = rawRun(*batch); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "raw run: batch 1 %.3f ms, batch %d %.3f ms → %.0f texts/s\n", r.Run1MS, *batch, r.RunBatchMS, r.RawLimit)

	// Classify under concurrent callers, each sending one text at a time.
	var mu sync.Mutex
	var latencies []float64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*duration)
	for g := range *concurrency {
		wg.Go(func() {
			var mine []float64
			overloaded := 0
			for i := g; time.Now().Before(deadline); i += *concurrency {
				t0 := time.Now()
				_, err := clf.Classify(ctx, []string{texts[i%len(texts)]})
				if err == models.ErrOverloaded {
					overloaded++
					continue
				}
				if err != nil {
					return
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1e3)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			r.Overloaded += overloaded
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.Sort(latencies)
	r.Throughput = float64(len(latencies)) / elapsed
	r.Ratio = r.Throughput / r.RawLimit
	r.P50MS, r.P99MS = quantile(latencies, 0.50), quantile(latencies, 0.99)

	fmt.Fprintf(stdout, `model                 %s (%s, %d workers × %d threads)
texts                 %d distinct, %.1f tokens on average
tokenize              %.2f µs/utterance (sugarme %.2f µs, %.1f× faster)
raw run, batch 1      %.3f ms
raw run, batch %-3d    %.3f ms  → limit %.0f texts/s on %d workers
Classify, %d callers  %.0f texts/s = %.2f × raw limit; p50 %.2f ms, p99 %.2f ms; %d overloaded
`, r.Model, r.Provider, r.Workers, r.Threads, r.Texts, r.MeanTokens, r.TokenizeFast, r.TokenizeSlow, r.TokenizeSlow/r.TokenizeFast,
		r.Run1MS, r.Batch, r.RunBatchMS, r.RawLimit, r.Workers, r.Concurrency, r.Throughput, r.Ratio, r.P50MS, r.P99MS, r.Overloaded)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
	}
	return nil
}

// writeRandomBERT replaces the bundle's model with a BERT-shaped one of random weights over the
// same tokenizer and labels.
func writeRandomBERT(dir, preset string, layers, hidden int) error {
	cfg := onnx.BERTConfig{Layers: 4, Hidden: 256}
	switch preset {
	case "small":
	case "base":
		cfg = onnx.BERTConfig{Layers: 12, Hidden: 768, Heads: 12, Vocab: 30522}
	default:
		return fmt.Errorf("--preset %q: want small, base or demo", preset)
	}
	if layers > 0 {
		cfg.Layers = layers
	}
	if hidden > 0 {
		cfg.Hidden, cfg.Heads = hidden, 0
	}
	data, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		return err
	}
	m, err := models.ParseManifest(data)
	if err != nil {
		return err
	}
	tok, err := models.LoadTokenizer(filepath.Join(dir, m.Tokenizer))
	if err != nil {
		return err
	}
	cfg.Vocab = max(cfg.Vocab, tok.VocabSize())
	for _, h := range m.Heads {
		cfg.Outputs = append(cfg.Outputs, onnx.Head{Name: h.Name, Labels: len(h.Labels)})
	}
	bert, err := onnx.RandomBERT(cfg)
	if err != nil {
		return err
	}
	for i := range m.Heads {
		m.Heads[i].Output = m.Heads[i].Name + "_logits"
	}
	m.Name = fmt.Sprintf("random-bert-%dx%d", cfg.Layers, cfg.Hidden)
	m.Training = nil
	mj, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), bert.Model().Marshal(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "model.json"), mj, 0o644)
}

// benchTexts are the embedded bot's NLU examples: short customer messages in both languages.
func benchTexts() ([]string, error) {
	files, err := fs.Glob(bot, "bot/nlu/*.yaml")
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, f := range files {
		data, err := bot.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ex, err := eval.ParseNLU(f, data)
		if err != nil {
			return nil, err
		}
		for _, e := range ex {
			texts = append(texts, e.Text)
		}
	}
	return texts, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// quantile reads the q-quantile of sorted xs (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
