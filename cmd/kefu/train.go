package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/eval"
	"github.com/kefu-ai/kefu/models/train"
)

func trainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", "--data FILE[,FILE…] [flags] --out DIR", stderr)
	data := fs.String("data", "", "labelled training data: files or folders, comma-separated (required)")
	head := fs.String("head", "intent", "head that --data trains: intent or emotion")
	emotionData := fs.String("emotion-data", "", "also train an emotion head from these files")
	load := dataFlags(fs)
	out := fs.String("out", "", "bundle directory to write (required); replaced only when training succeeds")
	validData := fs.String("valid-data", "", "validation files for early stopping instead of --valid-split (the head of --data; never trained on)")
	public := fs.String("public", "", "also learn from public data sets mapped onto the bot's labels by this file's train sets (cmd/kefu/bot/realtext.yaml)")
	publicDir := fs.String("public-dir", "../shared/data", "with --public: the folder its paths are relative to")
	config := trainFlags(fs, "workers")
	quiet := fs.Bool("quiet", false, "print no progress")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		fmt.Fprintln(stderr, "kefu train: --data and --out are required")
		fs.Usage()
		return errUsage
	}
	if *head != "intent" && *head != "emotion" {
		return fmt.Errorf("--head %q: want intent or emotion", *head)
	}
	cfg, err := config()
	if err != nil {
		return err
	}
	sets := []train.Dataset{}
	add := func(list, head string) error {
		ex, err := load(list, head)
		if err != nil {
			return err
		}
		sets = append(sets, dataset(head, ex))
		return nil
	}
	if err := add(*data, *head); err != nil {
		return err
	}
	if *validData != "" {
		ex, err := load(*validData, *head)
		if err != nil {
			return err
		}
		for _, e := range ex {
			sets[0].ValidTexts, sets[0].ValidLabels = append(sets[0].ValidTexts, e.Text), append(sets[0].ValidLabels, e.Label)
		}
	}
	if *emotionData != "" {
		if *head == "emotion" {
			return fmt.Errorf("--emotion-data with --head emotion: --data already trains the emotion head")
		}
		if err := add(*emotionData, "emotion"); err != nil {
			return err
		}
	}
	if *public != "" {
		spec, err := eval.ReadRealText(*public)
		if err != nil {
			return err
		}
		byHead, err := spec.TrainExamples(*publicDir)
		if err != nil {
			return fmt.Errorf("--public: %w", err)
		}
		for _, h := range slices.Sorted(maps.Keys(byHead)) {
			i := slices.IndexFunc(sets, func(d train.Dataset) bool { return d.Head == h })
			if i < 0 {
				sets, i = append(sets, train.Dataset{Head: h}), len(sets)
			}
			more := dataset(h, byHead[h])
			sets[i].Texts, sets[i].Labels, sets[i].Where = append(sets[i].Texts, more.Texts...), append(sets[i].Labels, more.Labels...), append(sets[i].Where, more.Where...)
			fmt.Fprintf(stderr, "%s: %d %s examples from public data\n", *public, len(more.Texts), h)
		}
	}
	progress := stderr
	if *quiet {
		progress = io.Discard
	}
	cfg.Progress = progress
	start := time.Now()
	rep, err := train.Train(ctx, cfg, sets, *out)
	if err != nil {
		return err
	}
	size := int64(0)
	if st, err := os.Stat(*out + "/model.onnx"); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "wrote %s: %d epochs (best %d), %.1f s, model.onnx %.1f MB\n", *out, rep.Epochs, rep.Best, time.Since(start).Seconds(), float64(size)/1e6)
	for _, h := range rep.Heads {
		if h.Valid > 0 {
			fmt.Fprintf(stdout, "  %s: validation accuracy %.4f, macro-F1 %.4f (%d examples)\n", h.Name, h.ValidAccuracy, h.ValidMacroF1, h.Valid)
		}
	}
	return nil
}

func dataset(head string, ex []eval.Example) train.Dataset {
	d := train.Dataset{Head: head}
	for _, e := range ex {
		d.Texts = append(d.Texts, e.Text)
		d.Labels = append(d.Labels, e.Label)
		d.Where = append(d.Where, fmt.Sprintf("%s:%d", e.File, e.Line))
	}
	return d
}

// trainFlags adds the flags that shape training (shared by kefu train and kefu eval --cv;
// workersFlag names the flag for training goroutines) and returns a function that reads them.
func trainFlags(fs *flag.FlagSet, workersFlag string) func() (train.Config, error) {
	valid := fs.Float64("valid-split", 0.1, "share of each label held out for validation and early stopping (0: none)")
	seed := fs.Uint64("seed", 1, "random seed; the same seed, data and --"+workersFlag+" give the same model")
	name := fs.String("name", "kefu-model", "model name written to model.json")
	ver := fs.String("model-version", "1", "model version written to model.json")
	hidden := fs.Int("hidden", 112, "hidden units per head")
	ensemble := fs.Int("ensemble", 4, "independently initialised networks per head, logits averaged")
	epochs := fs.Int("epochs", 0, "passes over the data, the learning rate falling to 0 over them (0: 8 × √(10,000 / texts), between 3 and 32)")
	patience := fs.Int("patience", 4, "with --early-stop: stop after this many epochs without a better validation macro-F1")
	earlyStop := fs.Bool("early-stop", false, "keep the epoch with the best validation macro-F1 (and refit for that many) instead of running all --epochs")
	minDF := fs.Int("min-df", 2, "word bigrams and trigrams must occur in this many texts")
	skip := fs.Bool("skip-grams", false, "also use pairs of tokens one apart as features")
	charWeight := fs.Float64("char-weight", 0.5, "weight of a token's character n-grams relative to the token itself")
	vectors := fs.String("vectors", "", "pretrained word vectors, GloVe or fastText text format (scripts/vectors.sh fetches GloVe 6B 100d)")
	vectorWords := fs.Int("vector-words", 20000, "with --vectors: add this many of the most frequent vector words the data lacks to the vocabulary")
	vectorWeight := fs.Float64("vector-weight", 3, "with --vectors: weight of a token's vector relative to the token itself")
	maxVocab := fs.Int("max-vocab", 30000, "vocabulary size limit")
	maxSeq := fs.Int("max-seq-len", 128, "tokens per text, [CLS] and [SEP] included")
	workers := fs.Int(workersFlag, 0, "training goroutines (default: one per CPU)")
	lr := fs.Float64("lr", 0.002, "Adam learning rate")
	dropout := fs.Float64("dropout", 0.3, "hidden-unit dropout")
	featDrop := fs.Float64("feature-drop", 0.2, "probability of dropping each feature occurrence in training")
	balance := fs.Float64("emotion-balance", 0.5, "class weight exponent for the emotion head: 0 none, 1 fully balanced")
	refit := fs.Bool("refit", true, "train again on all data (validation included) for the chosen number of epochs")
	calibrate := fs.String("calibrate", "emotion", "heads whose confidences are calibrated by temperature scaling on the validation set, comma-separated (\"\": none)")
	decay := fs.Bool("lr-decay", true, "let the learning rate fall linearly to 0 over --epochs (and over the refit)")
	return func() (train.Config, error) {
		if *valid < 0 || *valid >= 1 {
			return train.Config{}, fmt.Errorf("--valid-split %v: want 0 ≤ share < 1", *valid)
		}
		switch {
		case *charWeight <= 0:
			return train.Config{}, fmt.Errorf("--char-weight %v: want a weight > 0", *charWeight)
		case *vectorWeight <= 0:
			return train.Config{}, fmt.Errorf("--vector-weight %v: want a weight > 0", *vectorWeight)
		case *vectorWords < 0:
			return train.Config{}, fmt.Errorf("--vector-words %d: want a count ≥ 0", *vectorWords)
		case *epochs < 0:
			return train.Config{}, fmt.Errorf("--epochs %d: want a count ≥ 0", *epochs)
		}
		var vecs *train.Vectors
		if *vectors != "" {
			var err error
			if vecs, err = train.LoadVectors(*vectors, 0); err != nil {
				return train.Config{}, fmt.Errorf("--vectors: %w", err)
			}
		}
		return train.Config{
			CharWeight: *charWeight, Vectors: vecs, VectorWords: *vectorWords, VectorWeight: *vectorWeight,
			Name: *name, Version: *ver, Hidden: *hidden, Ensemble: *ensemble, Epochs: *epochs, Patience: *patience, EarlyStop: *earlyStop, MinDF: *minDF, SkipGrams: *skip,
			MaxVocab: *maxVocab, MaxSeqLen: *maxSeq, ValidSplit: *valid, Refit: *refit, LRDecay: *decay, Seed: *seed, Workers: *workers,
			LR: *lr, Dropout: *dropout, FeatureDrop: *featDrop, Balance: map[string]float64{"emotion": *balance},
			Calibrate: strings.FieldsFunc(*calibrate, func(r rune) bool { return r == ',' || r == ' ' }),
		}, nil
	}
}
