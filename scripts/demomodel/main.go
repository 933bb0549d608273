// Command demomodel builds kefu's embedded demo model from the demo NLU examples: a WordPiece
// vocabulary of the examples' words and characters, and a multinomial naive Bayes classifier
// (intent and emotion heads) written as an ONNX graph with models/onnx. It is a fixture that
// stands in until kefu's own trainer produces the bundled model.
//
//	go run ./scripts/demomodel [-nlu cmd/kefu/bot/nlu/demo.yaml] [-out cmd/kefu/bot/model]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/kefu-ai/kefu/eval"
	"github.com/kefu-ai/kefu/models"
	"github.com/kefu-ai/kefu/models/onnx"
)

func main() {
	nluPath := flag.String("nlu", "cmd/kefu/bot/nlu/demo.yaml", "NLU examples (kefu YAML)")
	out := flag.String("out", "cmd/kefu/bot/model", "bundle directory to write")
	flag.Parse()
	if err := build(*nluPath, *out); err != nil {
		log.Fatal(err)
	}
}

func build(nluPath, out string) error {
	data, err := os.ReadFile(nluPath)
	if err != nil {
		return err
	}
	examples, err := eval.ParseNLU(nluPath, data)
	if err != nil {
		return err
	}
	vocab := vocabulary(examples)
	tj, err := models.BertTokenizerJSON(vocab, true)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".model-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "tokenizer.json"), tj, 0o644); err != nil {
		return err
	}
	tok, err := models.LoadTokenizer(filepath.Join(tmp, "tokenizer.json"))
	if err != nil {
		return err
	}
	manifest := models.Manifest{Name: "kefu-demo", Version: "0.1.0", MaxSeqLen: 64}
	var heads []onnx.BagHead
	report := map[string]any{
		"method":   "multinomial naive Bayes over WordPiece tokens (fixture built by scripts/demomodel)",
		"data":     nluPath,
		"examples": len(examples),
	}
	for _, head := range []string{"intent", "emotion"} {
		var texts, labels []string
		for _, e := range examples {
			if e.Head == head {
				texts, labels = append(texts, e.Text), append(labels, e.Label)
			}
		}
		h, acc, err := naiveBayes(tok, len(vocab), head, texts, labels)
		if err != nil {
			return err
		}
		heads = append(heads, h.bag)
		manifest.Heads = append(manifest.Heads, models.HeadSpec{Name: head, Output: head + "_logits", Labels: h.labels})
		report[head] = map[string]any{"examples": len(texts), "labels": len(h.labels), "train_accuracy": acc}
	}
	model, err := onnx.Bag(len(vocab), heads...)
	if err != nil {
		return err
	}
	if manifest.Training, err = json.Marshal(report); err != nil {
		return err
	}
	mj, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "model.onnx"), model.Marshal(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "model.json"), append(mj, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d tokens, %d examples\n", out, len(vocab), len(examples))
	return nil
}

// vocabulary lists the special tokens, every lowercased word and CJK character of the
// examples, and single letters and digits (with ## forms) so any word splits into pieces.
func vocabulary(examples []eval.Example) []string {
	seen := map[string]bool{}
	var words []string
	add := func(w string) {
		if w != "" && !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	for _, e := range examples {
		var word strings.Builder
		flush := func() { add(word.String()); word.Reset() }
		for _, r := range strings.ToLower(e.Text) {
			switch {
			case unicode.IsSpace(r):
				flush()
			case unicode.Is(unicode.Han, r) || unicode.IsPunct(r) || unicode.IsSymbol(r):
				flush()
				add(string(r))
			case unicode.Is(unicode.Mn, r):
			default:
				word.WriteRune(r)
			}
		}
		flush()
	}
	for _, r := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		add(string(r))
		add("##" + string(r))
	}
	slices.Sort(words)
	return append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, words...)
}

type nbHead struct {
	labels []string
	bag    onnx.BagHead
}

// naiveBayes fits multinomial naive Bayes with add-½ smoothing. Each token's weights are
// centred across labels (softmax does not change), so tokens never seen weigh nothing.
func naiveBayes(tok *models.Tokenizer, vocab int, head string, texts, labels []string) (*nbHead, float64, error) {
	names := slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(labels)))))
	index := map[string]int{}
	for i, l := range names {
		index[l] = i
	}
	L := len(names)
	counts := make([]float64, vocab*L)
	totals := make([]float64, L)
	docs := make([]float64, L)
	encoded := make([][]int64, len(texts))
	for i, text := range texts {
		ids, err := tok.Encode(nil, text, 64)
		if err != nil {
			return nil, 0, err
		}
		ids = ids[1 : len(ids)-1] // drop [CLS] and [SEP]
		encoded[i] = ids
		c := index[labels[i]]
		docs[c]++
		for _, id := range ids {
			counts[int(id)*L+c]++
			totals[c]++
		}
	}
	const alpha = 0.5
	w := make([]float32, vocab*L)
	for t := 5; t < vocab; t++ { // special tokens keep weight 0
		var mean float64
		row := make([]float64, L)
		for c := range L {
			row[c] = math.Log((counts[t*L+c] + alpha) / (totals[c] + alpha*float64(vocab)))
			mean += row[c] / float64(L)
		}
		for c := range L {
			w[t*L+c] = float32(row[c] - mean)
		}
	}
	bias := make([]float32, L)
	for c := range L {
		bias[c] = float32(math.Log(docs[c] / float64(len(texts))))
	}
	right := 0
	for i, ids := range encoded {
		best, bestScore := 0, math.Inf(-1)
		for c := range L {
			s := float64(bias[c])
			for _, id := range ids {
				s += float64(w[int(id)*L+c])
			}
			if s > bestScore {
				best, bestScore = c, s
			}
		}
		if names[best] == labels[i] {
			right++
		}
	}
	return &nbHead{labels: names, bag: onnx.BagHead{Name: head, Labels: L, Weights: w, Bias: bias}}, float64(right) / float64(len(texts)), nil
}
