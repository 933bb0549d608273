package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/kefu-ai/kefu/models"
	"github.com/kefu-ai/kefu/models/onnx"
)

// export writes model.onnx and model.json into dir (tokenizer.json is already there).
func export(dir string, cfg Config, n *net, fz *featurizer, rep *Report) error {
	model := graph(n, fz)
	m := models.Manifest{Name: cfg.Name, Version: cfg.Version, MaxSeqLen: cfg.MaxSeqLen}
	for i, hd := range n.heads {
		if i > 0 && n.heads[i-1].group == hd.group {
			continue
		}
		m.Heads = append(m.Heads, models.HeadSpec{Name: hd.name, Output: hd.name + "_logits", Activation: "softmax", Labels: hd.labels})
	}
	var err error
	if m.Training, err = json.Marshal(rep); err != nil {
		return err
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model.Marshal(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "model.json"), append(mj, '\n'), 0o644)
}

// graph expresses the network in ONNX: the features of features.go computed from input_ids
// and attention_mask, the normalised weighted sum, and one ReLU layer and softmax logits per
// head. A token's unigram and character n-gram rows are folded into one row per vocabulary id.
func graph(n *net, fz *featurizer) *onnx.Model {
	V, C := fz.vocab, n.cols
	row := func(r int32) []float32 { return n.E[int(r)*C : int(r+1)*C] }
	tokT, tokW := make([]float32, V*C), make([]float32, V)
	for id, feats := range fz.tokFeats {
		dst := tokT[id*C : (id+1)*C]
		for _, f := range feats {
			for j, v := range row(f.row) {
				dst[j] += f.w * v
			}
			tokW[id] += f.w * f.w
		}
		if fz.vecs != nil && fz.vecs[id] != nil {
			for d, x := range fz.vecs[id] {
				for j, v := range row(fz.vecBase + int32(d)) {
					dst[j] += x * v
				}
			}
			tokW[id] += fz.vecW2[id]
		}
	}
	K := len(fz.ngWeights)
	ngT, ngW := make([]float32, (K+1)*C), make([]float32, K+1) // row K: nothing
	for r, w := range fz.ngWeights {
		dst := ngT[r*C : (r+1)*C]
		for j, v := range row(fz.ngStart + int32(r)) {
			dst[j] = w * v
		}
		ngW[r] = w * w
	}

	g := onnx.NewGraph("kefu-train")
	batch, seq := onnx.Sym("batch"), onnx.Sym("sequence")
	ids := g.Input("input_ids", onnx.Int64, batch, seq)
	mask := g.Input("attention_mask", onnx.Int64, batch, seq)
	ints := func(name string, v ...int64) string { return g.Ints(name, []int64{int64(len(v))}, v) }
	scalar := func(name string, v int64) string { return g.Ints(name, nil, []int64{v}) }
	axis1 := ints("axis1", 1)
	sum := func(x string) string { return g.Op("ReduceSum", []string{x, axis1}, onnx.IntAttr("keepdims", 0)) }
	nSlice := 0
	slice := func(x string, from, to int64) string {
		nSlice++
		return g.Op("Slice", []string{x, ints(fmt.Sprint("slice", nSlice, ".from"), from), ints(fmt.Sprint("slice", nSlice, ".to"), to), axis1})
	}
	boolOf := func(x string) string { return g.Op("Cast", []string{x}, onnx.IntAttr("to", int64(onnx.Bool))) }
	zero := scalar("zero", 0)

	// Tokens: padding reads row 0 ([PAD]), which is all zeros.
	tokIDs := g.Op("Where", []string{boolOf(mask), ids, zero})
	tokTable := g.Halves("token_rows", []int64{int64(V), int64(C)}, tokT)
	tokWeight := g.Floats("token_weight2", []int64{int64(V)}, tokW)
	toFloat := func(x string) string { return g.Op("Cast", []string{x}, onnx.IntAttr("to", int64(onnx.Float))) }
	num := sum(toFloat(g.Op("Gather", []string{tokTable, tokIDs})))
	den := sum(g.Op("Gather", []string{tokWeight, tokIDs}))

	ngTable := g.Halves("ngram_rows", []int64{int64(K + 1), int64(C)}, ngT)
	ngWeight := g.Floats("ngram_weight2", []int64{int64(K + 1)}, ngW)
	vocab, none := scalar("vocab", int64(V)), g.Int32s("no_ngram", nil, []int64{int64(K)})
	ngram := func(name string, h hashTable, key, keep string) {
		rows := make([]int64, len(h.rows))
		for i, r := range h.rows {
			rows[i] = int64(r)
			if h.keys[i] < 0 {
				rows[i] = int64(K)
			}
		}
		keys := g.Ints(name+".keys", []int64{int64(len(h.keys))}, h.keys)
		rowT := g.Int32s(name+".rows", []int64{int64(len(rows))}, rows)
		b1 := g.Op("Mod", []string{key, scalar(name+".p", h.p)})
		b2 := g.Op("Add", []string{g.Op("Mod", []string{key, scalar(name+".q", h.q)}), scalar(name+".p2", h.p)})
		hit1 := g.Op("Equal", []string{g.Op("Gather", []string{keys, b1}), key})
		hit2 := g.Op("Equal", []string{g.Op("Gather", []string{keys, b2}), key})
		r := g.Op("Where", []string{hit2, g.Op("Gather", []string{rowT, b2}), none})
		r = g.Op("Where", []string{hit1, g.Op("Gather", []string{rowT, b1}), r})
		r = g.Op("Where", []string{boolOf(keep), r, none})
		num = g.Op("Add", []string{num, sum(toFloat(g.Op("Gather", []string{ngTable, r})))})
		den = g.Op("Add", []string{den, sum(g.Op("Gather", []string{ngWeight, r}))})
	}
	const end = math.MaxInt64
	a, b := slice(ids, 0, -1), slice(ids, 1, end)
	key2 := g.Op("Add", []string{g.Op("Mul", []string{a, vocab}), b})
	ngram("bigram", fz.table2, key2, g.Op("Mul", []string{slice(mask, 0, -1), slice(mask, 1, end)}))
	a, b, c := slice(ids, 0, -2), slice(ids, 1, -1), slice(ids, 2, end)
	key3 := g.Op("Add", []string{g.Op("Mul", []string{g.Op("Add", []string{g.Op("Mul", []string{a, vocab}), b}), vocab}), c})
	keep3 := g.Op("Mul", []string{g.Op("Mul", []string{slice(mask, 0, -2), slice(mask, 1, -1)}), slice(mask, 2, end)})
	ngram("trigram", fz.table3, key3, keep3)
	if len(fz.tableS.keys) > 0 {
		keyS := g.Op("Add", []string{g.Op("Mul", []string{a, vocab}), c})
		ngram("skip_bigram", fz.tableS, keyS, g.Op("Mul", []string{slice(mask, 0, -2), slice(mask, 2, end)}))
	}

	norm := g.Op("Sqrt", []string{g.Op("Add", []string{den, g.Scalar("eps", 1e-6)})})
	x := g.Op("Div", []string{num, g.Op("Unsqueeze", []string{norm, axis1})})
	var outputs []string
	for _, hd := range n.heads {
		L := int64(len(hd.labels))
		xs := slice(x, int64(hd.off), int64(hd.off+hd.h))
		h := g.Op("Relu", []string{g.Op("Add", []string{xs, g.Floats(fmt.Sprint(hd.name, hd.off, ".b"), []int64{int64(hd.h)}, hd.b)})})
		logits := g.Op("Add", []string{g.Op("MatMul", []string{h, g.Floats(fmt.Sprint(hd.name, hd.off, ".W"), []int64{int64(hd.h), L}, hd.W)}), g.Floats(fmt.Sprint(hd.name, hd.off, ".c"), []int64{L}, hd.c)})
		if hd.group < len(outputs) { // another member of an ensemble: average the logits
			outputs[hd.group] = g.Op("Add", []string{outputs[hd.group], logits})
		} else {
			outputs = append(outputs, logits)
		}
	}
	for i, hd := range n.heads {
		if i > 0 && n.heads[i-1].group == hd.group {
			continue
		}
		members := 0
		for _, o := range n.heads {
			if o.group == hd.group {
				members++
			}
		}
		logits := outputs[hd.group]
		if members > 1 {
			logits = g.Op("Mul", []string{logits, g.Scalar(hd.name+".mean", 1/float32(members))})
		}
		g.Output(g.Rename(logits, hd.name+"_logits"), onnx.Float, batch, onnx.Fixed(int64(len(hd.labels))))
	}
	return &onnx.Model{Graph: g, Producer: "kefu train", Version: 1}
}
