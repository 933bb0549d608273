// Package train is kefu's own trainer: it learns a WordPiece vocabulary and a TF-IDF-weighted
// n-gram network (see features.go and model.go) from labelled texts on CPU, and writes an
// ordinary model bundle (model.onnx, tokenizer.json, model.json) that ONNX Runtime serves
// through kefu's model contract. One model can carry several heads (intent, emotion) trained
// from different data sets.
package train

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kefu-ai/kefu/models"
)

// Dataset is the training data of one head.
type Dataset struct {
	Head   string
	Texts  []string
	Labels []string
	Where  []string // "file:line" of each example, for messages; may be nil
	// ValidTexts and ValidLabels, when given, are the validation set for early stopping
	// (a published dev split, say) instead of a share of the training data.
	ValidTexts, ValidLabels []string
}

// Config controls training. The zero value of a field means its default.
type Config struct {
	Name, Version string // written to model.json; default "kefu-model", "1"
	Hidden        int    // hidden units per head (default 112)
	// Epochs is the number of passes over the data; 0 lets the data's size choose:
	// 8 × √(10,000 / texts), between 3 and 32 (AutoEpochs).
	Epochs   int
	Patience int // with EarlyStop: stop after this many epochs without a better validation score (default 4)
	// EarlyStop keeps the epoch with the best validation score (and refits for that many).
	// Without it every run takes all Epochs, the learning rate falling to 0 at the last, which
	// is then the model: on small validation sets the best epoch is mostly noise, and a refit
	// for few epochs with the decay squeezed into them under-trains (see README).
	EarlyStop    bool
	BatchSize    int     // examples per update (default 32)
	LR           float64 // Adam learning rate (default 0.002)
	Dropout      float64 // hidden-unit dropout (default 0.3)
	FeatureDrop  float64 // probability of dropping each feature occurrence in training (default 0.2)
	Smoothing    float64 // label smoothing (default 0.1)
	Balance      map[string]float64
	MinDF        int     // word n-grams need this many texts (default 3)
	SkipGrams    bool    // also pairs of tokens one apart ("my _ order")
	CharWeight   float64 // weight of character n-grams relative to whole tokens (default 0.5)
	Vectors      *Vectors
	VectorWords  int     // with Vectors: the most frequent vector words added to the vocabulary (0: none)
	VectorWeight float64 // with Vectors: weight of a token's vector relative to its unigram (default 3)
	MaxVocab     int     // vocabulary size limit (default 30000)
	MaxSeqLen    int     // tokens per text (default 128)
	ValidSplit   float64 // share of each label held out for validation and early stopping (0: none)
	Ensemble     int     // independently initialised networks per head, logits averaged (default 1)
	LRDecay      bool    // let the learning rate fall linearly to 0 over Epochs (and over the refit)
	Refit        bool    // train again on all data (validation included) for the chosen number of epochs
	// Calibrate lists heads whose confidences are calibrated by temperature scaling (Guo et al.
	// 2017): one temperature per head, fitted on the validation set to minimise its negative
	// log-likelihood, folded into the head's last layer.
	Calibrate []string
	Seed      uint64 // default 1
	Workers   int    // default runtime.NumCPU()
	Progress  io.Writer
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Hidden, 112)
	def(&c.Patience, 4)
	def(&c.BatchSize, 32)
	def(&c.MinDF, 2)
	def(&c.MaxVocab, 30000)
	def(&c.MaxSeqLen, 128)
	def(&c.Workers, runtime.NumCPU())
	def(&c.Ensemble, 1)
	deff(&c.LR, 0.002)
	deff(&c.Dropout, 0.3)
	deff(&c.FeatureDrop, 0.2)
	deff(&c.Smoothing, 0.1)
	deff(&c.CharWeight, 0.5)
	deff(&c.VectorWeight, 3)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Name == "" {
		c.Name = "kefu-model"
	}
	if c.Version == "" {
		c.Version = "1"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Report is what training did; it is written into model.json under "training".
type Report struct {
	Method   string        `json:"method"`
	Seed     uint64        `json:"seed"`
	Vocab    int           `json:"vocab"`
	Features FeatureCount  `json:"features"`
	Vectors  *VectorReport `json:"word_vectors,omitempty"`
	Hidden   int           `json:"hidden_per_head"`
	Ensemble int           `json:"ensemble"`
	Epochs   int           `json:"epochs"`
	Best     int           `json:"best_epoch"`
	Refit    bool          `json:"refit_on_all_data"`
	Seconds  float64       `json:"seconds"`
	Heads    []HeadReport  `json:"heads"`
	Warnings []string      `json:"warnings,omitempty"`
}

// FeatureCount sizes the feature space.
type FeatureCount struct {
	Tokens    int `json:"tokens"`
	CharGrams int `json:"char_ngrams"`
	Bigrams   int `json:"word_bigrams"`
	Trigrams  int `json:"word_trigrams"`
	Skip      int `json:"skip_bigrams,omitempty"`
}

// VectorReport says how pretrained word vectors were used.
type VectorReport struct {
	Dim    int `json:"dim"`
	Tokens int `json:"tokens_with_vector"`
	Added  int `json:"words_added_to_vocabulary"`
}

// HeadReport is one head's data and validation figures.
type HeadReport struct {
	Name          string         `json:"name"`
	Examples      int            `json:"examples"`
	Train         int            `json:"train"`
	Valid         int            `json:"valid"`
	Labels        map[string]int `json:"label_counts"`
	ValidAccuracy float64        `json:"valid_accuracy"`
	ValidMacroF1  float64        `json:"valid_macro_f1"`
	// Temperature divides the head's logits (1: not calibrated); NLL and ECE are the validation
	// set's negative log-likelihood and expected calibration error (10 bins) before and after.
	Temperature float64      `json:"temperature,omitempty"`
	Calibration *Calibration `json:"calibration,omitempty"`
}

// Calibration is what temperature scaling did to a head's validation set.
type Calibration struct {
	NLLBefore float64 `json:"nll_before"`
	NLLAfter  float64 `json:"nll_after"`
	ECEBefore float64 `json:"ece_before"`
	ECEAfter  float64 `json:"ece_after"`
}

// example is one encoded training text.
type example struct {
	head  int
	label int
	feats []feature
	den   float32 // added to the squared norm of feats (see vecFeatures)
}

// Train learns a model from sets and writes its bundle to out. The bundle is written to a
// temporary directory beside out and renamed into place at the end, so out never holds a
// half-written bundle; an existing out is replaced only when training succeeds.
func Train(ctx context.Context, cfg Config, sets []Dataset, out string) (*Report, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	rep := &Report{Method: "TF-IDF weighted bag of tokens, character 2-5-grams and word 2-3-grams → ReLU layer → softmax, per head (kefu train)", Seed: cfg.Seed, Hidden: cfg.Hidden, Ensemble: cfg.Ensemble}
	warnings, err := check(sets)
	if err != nil {
		return nil, err
	}
	rep.Warnings = warnings
	if cfg.Epochs == 0 {
		n := 0
		for _, s := range sets {
			n += len(s.Texts)
		}
		cfg.Epochs = AutoEpochs(n)
		fmt.Fprintf(cfg.Progress, "%d epochs for %d texts\n", cfg.Epochs, n)
	}
	for _, w := range warnings {
		fmt.Fprintln(cfg.Progress, "warning:", w)
	}
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}

	var all []string
	for _, s := range sets {
		all = append(all, s.Texts...)
	}
	vocab := LearnVocab(all, cfg.MaxVocab, 1)
	if cfg.Vectors != nil {
		learned := len(vocab)
		vocab = cfg.Vectors.extend(vocab, cfg.VectorWords)
		rep.Vectors = &VectorReport{Dim: cfg.Vectors.Dim, Added: len(vocab) - learned}
		rep.Method += "; pretrained word vectors through a learned projection"
	}
	tj, err := models.BertTokenizerJSON(vocab, true)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "tokenizer.json"), tj, 0o644); err != nil {
		return nil, err
	}
	tok, err := models.LoadTokenizer(filepath.Join(tmp, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	rep.Vocab = len(vocab)

	encoded := make([][][]int64, len(sets))
	var docs [][]int64
	for i, s := range sets {
		for _, t := range s.Texts {
			ids, err := tok.Encode(nil, t, cfg.MaxSeqLen)
			if err != nil {
				return nil, err
			}
			encoded[i] = append(encoded[i], ids)
			docs = append(docs, ids)
		}
	}
	fz := newFeaturizer(vocab, docs, featureConfig{minDF: cfg.MinDF, skip: cfg.SkipGrams, charWeight: cfg.CharWeight, vectors: cfg.Vectors, vectorWeight: cfg.VectorWeight})
	encode := func(head, label int, ids []int64) example {
		feats, den := fz.vecFeatures(fz.features(nil, ids), ids)
		return example{head: head, label: label, feats: feats, den: den}
	}
	rep.Features = FeatureCount{Tokens: len(vocab), CharGrams: fz.charRows, Bigrams: fz.table2.count(), Trigrams: fz.table3.count(), Skip: fz.tableS.count()}
	if rep.Vectors != nil {
		for _, v := range fz.vecs {
			if v != nil {
				rep.Vectors.Tokens++
			}
		}
		fmt.Fprintf(cfg.Progress, "word vectors: %d dimensions; %d tokens have one, %d of them added to the vocabulary\n", rep.Vectors.Dim, rep.Vectors.Tokens, rep.Vectors.Added)
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b656675))
	var heads []*headNet
	var trainSet, validSet []example
	heldOut := make([]bool, len(sets)) // the head's validation examples come from its training data
	internal := false
	for i, s := range sets {
		labels := slices.Sorted(maps.Keys(counts(s.Labels)))
		index := map[string]int{}
		for j, l := range labels {
			index[l] = j
		}
		first := len(heads)
		for range cfg.Ensemble {
			heads = append(heads, &headNet{name: s.Head, group: i, labels: labels, h: cfg.Hidden})
		}
		share := cfg.ValidSplit
		if len(s.ValidTexts) > 0 {
			share = 0 // a separate validation set: train on every example
		}
		tr, va := split(s.Labels, share, rng)
		valid := len(va)
		for _, j := range va {
			validSet = append(validSet, encode(i, index[s.Labels[j]], encoded[i][j]))
		}
		heldOut[i] = len(va) > 0
		internal = internal || heldOut[i]
		for j, text := range s.ValidTexts {
			label, ok := index[s.ValidLabels[j]]
			if !ok {
				continue
			}
			ids, err := tok.Encode(nil, text, cfg.MaxSeqLen)
			if err != nil {
				return nil, err
			}
			validSet = append(validSet, encode(i, label, ids))
			valid++
		}
		if skipped := len(s.ValidTexts) - valid; skipped > 0 {
			w := fmt.Sprintf("head %s: %d validation examples have labels the training data lacks; left out", s.Head, skipped)
			rep.Warnings = append(rep.Warnings, w)
			fmt.Fprintln(cfg.Progress, "warning:", w)
		}
		for _, j := range tr {
			ex := encode(i, index[s.Labels[j]], encoded[i][j])
			for m := range cfg.Ensemble {
				ex.head = first + m
				trainSet = append(trainSet, ex)
			}
		}
		rep.Heads = append(rep.Heads, HeadReport{Name: s.Head, Examples: len(s.Texts), Train: len(tr), Valid: valid, Labels: counts(s.Labels)})
	}
	fmt.Fprintf(cfg.Progress, "vocabulary %d tokens; features: %d character n-grams, %d word bigrams, %d word trigrams\n",
		len(vocab), fz.charRows, rep.Features.Bigrams, rep.Features.Trigrams)
	for _, h := range rep.Heads {
		fmt.Fprintf(cfg.Progress, "head %s: %d labels, %d train, %d validation examples\n", h.Name, len(h.Labels), h.Train, h.Valid)
	}

	netSeed := rng.Uint64()
	n := newNet(fz.rows, heads, rand.New(rand.NewPCG(netSeed, 1)))
	t := newTrainer(cfg, n, fz, sets)
	best, bestScore, bestSnap := 0, math.Inf(-1), (*snapshot)(nil)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.LRDecay {
			t.decay = [2]int{(epoch - 1) * len(trainSet), cfg.Epochs * len(trainSet)}
		}
		loss := t.epoch(trainSet, epoch)
		rep.Epochs = epoch
		line := fmt.Sprintf("epoch %2d/%d  loss %.4f", epoch, cfg.Epochs, loss)
		if len(validSet) == 0 {
			fmt.Fprintf(cfg.Progress, "%s  %.1fs\n", line, time.Since(start).Seconds())
			best = epoch
			continue
		}
		accs, f1s := t.evaluate(validSet)
		score := 0.0
		for i, s := range sets {
			line += fmt.Sprintf("  %s acc %.4f F1 %.4f", s.Head, accs[i], f1s[i])
			score += f1s[i] / float64(len(sets))
		}
		mark := ""
		// Without early stopping the last epoch is the model: n holds it, and only its figures
		// and calibration are kept.
		if cfg.EarlyStop && score > bestScore || !cfg.EarlyStop && epoch == cfg.Epochs {
			best, bestScore, mark = epoch, score, " *"
			if cfg.EarlyStop && (!cfg.Refit || !internal) {
				bestSnap = n.snapshot()
			}
			for i := range sets {
				rep.Heads[i].ValidAccuracy, rep.Heads[i].ValidMacroF1 = accs[i], f1s[i]
				if slices.Contains(cfg.Calibrate, sets[i].Head) {
					temp, cal := t.calibrate(validSet, i)
					rep.Heads[i].Temperature, rep.Heads[i].Calibration = temp, &cal
				}
			}
		}
		fmt.Fprintf(cfg.Progress, "%s  %.1fs%s\n", line, time.Since(start).Seconds(), mark)
		if cfg.EarlyStop && epoch-best >= cfg.Patience {
			break
		}
	}
	switch {
	case cfg.Refit && internal && len(validSet) > 0:
		all := slices.Clip(trainSet)
		for _, ex := range validSet {
			if !heldOut[ex.head] {
				continue // a separate validation set is never trained on
			}
			for m := range cfg.Ensemble {
				all = append(all, example{head: ex.head*cfg.Ensemble + m, label: ex.label, feats: ex.feats, den: ex.den})
			}
		}
		fmt.Fprintf(cfg.Progress, "refit on all %d training examples (ensemble copies included) for %d epochs\n", len(all), best)
		n = newNet(fz.rows, heads, rand.New(rand.NewPCG(netSeed, 1)))
		t = newTrainer(cfg, n, fz, sets)
		for epoch := 1; epoch <= best; epoch++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if cfg.LRDecay {
				t.decay = [2]int{(epoch - 1) * len(all), best * len(all)}
			}
			loss := t.epoch(all, epoch)
			fmt.Fprintf(cfg.Progress, "refit %2d/%d  loss %.4f  %.1fs\n", epoch, best, loss, time.Since(start).Seconds())
		}
		rep.Refit = true
	case bestSnap != nil:
		n.restore(bestSnap)
	}
	for i, h := range rep.Heads {
		if h.Temperature > 0 {
			n.scaleLogits(i, 1/h.Temperature)
			fmt.Fprintf(cfg.Progress, "head %s: temperature %.3f; validation NLL %.4f → %.4f, ECE %.4f → %.4f\n",
				h.Name, h.Temperature, h.Calibration.NLLBefore, h.Calibration.NLLAfter, h.Calibration.ECEBefore, h.Calibration.ECEAfter)
		}
	}
	rep.Best = best
	rep.Seconds = math.Round(time.Since(start).Seconds()*1000) / 1000
	if err := export(tmp, cfg, n, fz, rep); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return rep, nil
}

// AutoEpochs is the number of passes for n training texts when Config.Epochs is 0:
// 8 × √(10,000 / n), rounded, between 3 and 32. A small set needs more passes than a large
// one, which overfits with as many (README, "How the defaults were chosen").
func AutoEpochs(n int) int {
	e := int(math.Round(8 * math.Sqrt(10000/float64(max(n, 1)))))
	return min(max(e, 3), 32)
}

func counts(labels []string) map[string]int {
	m := map[string]int{}
	for _, l := range labels {
		m[l]++
	}
	return m
}

// split holds out share of each label's examples for validation (at least one stays in
// training), deterministically for rng.
func split(labels []string, share float64, rng *rand.Rand) (train, valid []int) {
	byLabel := map[string][]int{}
	for i, l := range labels {
		byLabel[l] = append(byLabel[l], i)
	}
	for _, l := range slices.Sorted(maps.Keys(byLabel)) {
		idx := byLabel[l]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		k := 0
		if share > 0 {
			k = min(len(idx)-1, int(math.Round(share*float64(len(idx)))))
		}
		valid = append(valid, idx[:k]...)
		train = append(train, idx[k:]...)
	}
	slices.Sort(train)
	slices.Sort(valid)
	return train, valid
}

// check refuses data that cannot train a head and lists what training can live with.
func check(sets []Dataset) ([]string, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("no training data")
	}
	var warnings []string
	heads := map[string]bool{}
	for _, s := range sets {
		if heads[s.Head] {
			return nil, fmt.Errorf("head %q given twice", s.Head)
		}
		heads[s.Head] = true
		if len(s.Texts) == 0 || len(s.Texts) != len(s.Labels) {
			return nil, fmt.Errorf("head %s: no examples", s.Head)
		}
		where := func(i int) string {
			if i < len(s.Where) {
				return s.Where[i]
			}
			return fmt.Sprintf("example %d", i+1)
		}
		c := counts(s.Labels)
		if len(c) < 2 {
			return nil, fmt.Errorf("head %s: %d label(s); a classifier needs at least two", s.Head, len(c))
		}
		first := map[string]int{}
		for i, l := range s.Labels {
			if c[l] == 1 {
				warnings = append(warnings, fmt.Sprintf("%s: label %q has only this example; it is never validated", where(i), l))
			}
			key := strings.Join(models.PreTokenize(s.Texts[i], true), " ")
			if j, ok := first[key]; ok && s.Labels[j] != l {
				warnings = append(warnings, fmt.Sprintf("%s: same text as %s but label %q, not %q", where(i), where(j), l, s.Labels[j]))
			} else if !ok {
				first[key] = i
			}
		}
	}
	return warnings, nil
}

// trainer runs the optimisation: data-parallel forward and backward over Workers goroutines,
// then sparse Adam updates of the embedding rows a batch touched (each worker owns the rows
// whose number is its index modulo Workers), so results do not depend on scheduling.
type trainer struct {
	cfg     Config
	n       *net
	adamE   *adam
	adamB   []*adam
	adamW   []*adam
	adamC   []*adam
	gradE   []float32
	stamp   []int32 // per row and head: the step that last touched it
	step    int32
	scratch []*scratch
	grads   []*grads
	weights [][]float32 // per head, per label: loss weight
	kept    [][]feature // per batch position: the features kept after feature dropout
	inv     []float32   // per batch position: 1/‖w‖ of the kept features
	dx      [][]float32
	seed    uint64
	touched [][]int32
	fixed   int32  // features from this row on are never dropped (0: none)
	decay   [2]int // when set: examples done before this epoch, and in all epochs; lr falls linearly to 0
}

func newTrainer(cfg Config, n *net, fz *featurizer, sets []Dataset) *trainer {
	t := &trainer{cfg: cfg, n: n, adamE: newAdam(len(n.E)), gradE: make([]float32, len(n.E)),
		stamp: make([]int32, fz.rows*len(n.heads)), seed: cfg.Seed, fixed: fz.vecBase}
	for _, hd := range n.heads {
		t.adamB = append(t.adamB, newAdam(len(hd.b)))
		t.adamW = append(t.adamW, newAdam(len(hd.W)))
		t.adamC = append(t.adamC, newAdam(len(hd.c)))
		c := counts(sets[hd.group].Labels)
		w := make([]float32, len(hd.labels))
		alpha := cfg.Balance[hd.name]
		var sum float64
		for k, l := range hd.labels {
			w[k] = float32(math.Pow(float64(len(sets[hd.group].Labels))/float64(len(hd.labels)*c[l]), alpha))
			sum += float64(w[k]) * float64(c[l])
		}
		for k := range w { // mean weight 1 over the examples
			w[k] *= float32(float64(len(sets[hd.group].Labels)) / sum)
		}
		t.weights = append(t.weights, w)
	}
	for range cfg.Workers {
		t.scratch = append(t.scratch, newScratch(n))
		t.grads = append(t.grads, newGrads(n))
		t.touched = append(t.touched, nil)
	}
	t.kept = make([][]feature, cfg.BatchSize)
	t.inv = make([]float32, cfg.BatchSize)
	t.dx = make([][]float32, cfg.BatchSize)
	for i := range t.dx {
		t.dx[i] = make([]float32, cfg.Hidden)
	}
	return t
}

// parallel runs fn(w) for every worker w and waits.
func (t *trainer) parallel(fn func(w int)) {
	var wg sync.WaitGroup
	for w := 1; w < t.cfg.Workers; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); fn(w) }()
	}
	fn(0)
	wg.Wait()
}

// epoch makes one pass over data in a seeded random order and returns the mean loss.
func (t *trainer) epoch(data []example, epoch int) float64 {
	rng := rand.New(rand.NewPCG(t.seed, uint64(epoch)))
	order := rng.Perm(len(data))
	var loss float64
	for lo := 0; lo < len(order); lo += t.cfg.BatchSize {
		batch := order[lo:min(lo+t.cfg.BatchSize, len(order))]
		lr := t.cfg.LR
		if t.decay[1] > 0 {
			lr *= 1 - float64(t.decay[0]+lo)/float64(t.decay[1])
		}
		loss += t.batch(data, batch, uint64(epoch)<<32|uint64(lo), float32(lr))
	}
	return loss / float64(len(data))
}

func (t *trainer) batch(data []example, batch []int, key uint64, lr float32) float64 {
	n, W := t.n, t.cfg.Workers
	drop, fdrop := float32(t.cfg.Dropout), float32(t.cfg.FeatureDrop)
	scale := float32(1) / float32(len(batch))
	t.parallel(func(w int) {
		g, s := t.grads[w], t.scratch[w]
		g.reset()
		for bi := w; bi < len(batch); bi += W {
			ex := &data[batch[bi]]
			rng := rand.New(rand.NewPCG(t.seed^key, uint64(bi)))
			kept := t.kept[bi][:0]
			for _, f := range ex.feats {
				if (t.fixed > 0 && f.row >= t.fixed) || rng.Float32() >= fdrop {
					kept = append(kept, f)
				}
			}
			if len(kept) == 0 && len(ex.feats) > 0 {
				kept = append(kept, ex.feats[rng.IntN(len(ex.feats))])
			}
			t.kept[bi] = kept
			hd := n.heads[ex.head]
			n.forward(hd, kept, ex.den, s, drop, rng)
			t.inv[bi] = s.inv
			n.backward(ex.head, hd, ex.label, t.cfg.Smoothing, t.weights[ex.head][ex.label]*scale, s, g, drop, t.dx[bi][:hd.h])
		}
	})
	t.step++
	step := t.step
	c1 := 1 - float32(math.Pow(beta1, float64(step)))
	c2 := 1 - float32(math.Pow(beta2, float64(step)))
	heads := len(n.heads)
	t.parallel(func(w int) {
		touched := t.touched[w][:0]
		for bi, i := range batch {
			ex := &data[i]
			hd := n.heads[ex.head]
			kept := t.kept[bi]
			inv := t.inv[bi]
			dx := t.dx[bi][:hd.h]
			for _, f := range kept {
				if int(f.row)%W != w {
					continue
				}
				key := f.row*int32(heads) + int32(ex.head)
				off := int(f.row)*n.cols + hd.off
				g := t.gradE[off : off+hd.h]
				if t.stamp[key] != step {
					t.stamp[key] = step
					touched = append(touched, key)
					clear(g)
				}
				c := f.w * inv
				for j, d := range dx {
					g[j] += c * d
				}
			}
		}
		for _, key := range touched {
			row, head := int(key)/heads, int(key)%heads
			hd := n.heads[head]
			off := row*n.cols + hd.off
			t.adamE.step(n.E[off:off+hd.h], t.gradE[off:off+hd.h], off, lr, c1, c2)
		}
		t.touched[w] = touched
	})
	var loss float64
	for k, hd := range n.heads {
		g0 := t.grads[0]
		for w := 1; w < W; w++ {
			add(g0.b[k], t.grads[w].b[k])
			add(g0.W[k], t.grads[w].W[k])
			add(g0.c[k], t.grads[w].c[k])
		}
		t.adamB[k].step(hd.b, g0.b[k], 0, lr, c1, c2)
		t.adamW[k].step(hd.W, g0.W[k], 0, lr, c1, c2)
		t.adamC[k].step(hd.c, g0.c[k], 0, lr, c1, c2)
	}
	for w := range W {
		loss += t.grads[w].loss / float64(scale)
	}
	return loss
}

func add(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// evaluate returns each output head's accuracy and macro-F1 on data, whose examples name
// the output head (data set) in head. An ensemble's logits are averaged.
func (t *trainer) evaluate(data []example) (acc, f1 []float64) {
	pred := make([]int, len(data))
	t.parallel(func(w int) {
		s := t.scratch[w]
		var sum []float64
		for i := w; i < len(data); i += t.cfg.Workers {
			sum = t.sumLogits(sum[:0], &data[i], s)
			pred[i] = argmax(sum)
		}
	})
	groups := 0
	for _, hd := range t.n.heads {
		groups = max(groups, hd.group+1)
	}
	for k := range groups {
		var gold, got []int
		labels := 0
		for i, ex := range data {
			if ex.head == k {
				gold, got = append(gold, ex.label), append(got, pred[i])
			}
		}
		for _, hd := range t.n.heads {
			if hd.group == k {
				labels = len(hd.labels)
			}
		}
		a, f := score(gold, got, labels)
		acc, f1 = append(acc, a), append(f1, f)
	}
	return acc, f1
}

// calibrate fits the temperature of output head group on data's examples of it: the T that
// minimises the mean negative log-likelihood of softmax(logits/T), found by golden-section
// search over log T in [1/8, 8]. It returns T and the figures before and after.
func (t *trainer) calibrate(data []example, group int) (float64, Calibration) {
	var logits [][]float64
	var gold []int
	members := 0
	for _, hd := range t.n.heads {
		if hd.group == group {
			members++
		}
	}
	for i := range data {
		if data[i].head == group {
			logits, gold = append(logits, nil), append(gold, data[i].label)
		}
	}
	if len(gold) == 0 {
		return 0, Calibration{}
	}
	t.parallel(func(w int) {
		s := t.scratch[w]
		k := 0
		for i := range data {
			ex := &data[i]
			if ex.head != group {
				continue
			}
			if k%t.cfg.Workers == w {
				sum := t.sumLogits(nil, ex, s)
				for j := range sum {
					sum[j] /= float64(members)
				}
				logits[k] = sum
			}
			k++
		}
	})
	nll := func(temp float64) float64 {
		var total float64
		p := make([]float64, len(logits[0]))
		for i, l := range logits {
			tempered(p, l, temp)
			total -= math.Log(max(p[gold[i]], 1e-12))
		}
		return total / float64(len(gold))
	}
	lo, hi := math.Log(1.0/8), math.Log(8.0)
	phi := (math.Sqrt(5) - 1) / 2
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(math.Exp(a)), nll(math.Exp(b))
	for range 40 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(math.Exp(b))
		}
	}
	temp := math.Exp((lo + hi) / 2)
	return temp, Calibration{NLLBefore: nll(1), NLLAfter: nll(temp), ECEBefore: ece(logits, gold, 1), ECEAfter: ece(logits, gold, temp)}
}

// tempered sets p to softmax(logits/temp).
func tempered(p, logits []float64, temp float64) {
	for j, v := range logits {
		p[j] = v / temp
	}
	softmax(p)
}

// ece is the expected calibration error over 10 equal-width confidence bins.
func ece(logits [][]float64, gold []int, temp float64) float64 {
	var conf, acc [10]float64
	var n [10]int
	p := make([]float64, len(logits[0]))
	for i, l := range logits {
		tempered(p, l, temp)
		k := argmax(p)
		b := min(int(p[k]*10), 9)
		conf[b] += p[k]
		n[b]++
		if k == gold[i] {
			acc[b]++
		}
	}
	var e float64
	for b := range 10 {
		if n[b] > 0 {
			e += math.Abs(conf[b]-acc[b]) / float64(len(gold))
		}
	}
	return e
}

// sumLogits appends to dst the logits of ex's output head, summed over its ensemble.
func (t *trainer) sumLogits(dst []float64, ex *example, s *scratch) []float64 {
	for _, hd := range t.n.heads {
		if hd.group != ex.head {
			continue
		}
		t.n.forward(hd, ex.feats, ex.den, s, 0, nil)
		if len(dst) == 0 {
			dst = append(dst, s.logits[:len(hd.labels)]...)
		} else {
			for k := range dst {
				dst[k] += s.logits[k]
			}
		}
	}
	return dst
}

func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// score is accuracy and macro-F1 over the labels that occur in gold or pred.
func score(gold, pred []int, labels int) (float64, float64) {
	if len(gold) == 0 {
		return 0, 0
	}
	tp, fp, fn := make([]int, labels), make([]int, labels), make([]int, labels)
	right := 0
	for i, g := range gold {
		if pred[i] == g {
			right++
			tp[g]++
		} else {
			fp[pred[i]]++
			fn[g]++
		}
	}
	var f1 float64
	present := 0
	for c := range labels {
		if tp[c]+fp[c]+fn[c] == 0 {
			continue
		}
		present++
		f1 += 2 * float64(tp[c]) / float64(2*tp[c]+fp[c]+fn[c])
	}
	return float64(right) / float64(len(gold)), f1 / float64(present)
}

// snapshot is a copy of the network's parameters.
type snapshot struct {
	E       []float32
	b, W, c [][]float32
}

func (n *net) snapshot() *snapshot {
	s := &snapshot{E: slices.Clone(n.E)}
	for _, hd := range n.heads {
		s.b, s.W, s.c = append(s.b, slices.Clone(hd.b)), append(s.W, slices.Clone(hd.W)), append(s.c, slices.Clone(hd.c))
	}
	return s
}

func (n *net) restore(s *snapshot) {
	copy(n.E, s.E)
	for i, hd := range n.heads {
		copy(hd.b, s.b[i])
		copy(hd.W, s.W[i])
		copy(hd.c, s.c[i])
	}
}
