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
//
// The graph is built for few nodes, since ONNX Runtime spends about a microsecond on each
// node of a run, which is most of a short text's cost: token and n-gram rows share one table
// (token ids first, then the n-grams, row 0 being [PAD]: zeros, weight 0, and also what an
// unknown n-gram reads), so one Gather and one ReduceSum of it take every feature; both
// buckets of an n-gram are probed at once, the miss among them reading row 0; an ensemble's
// networks are one wider layer.
func graph(n *net, fz *featurizer) *onnx.Model {
	V, C := fz.vocab, n.cols
	K := len(fz.ngWeights)
	row := func(r int32) []float32 { return n.E[int(r)*C : int(r+1)*C] }
	table, weight2 := make([]float32, (V+K)*C), make([]float32, V+K)
	for id, feats := range fz.tokFeats {
		dst := table[id*C : (id+1)*C]
		for _, f := range feats {
			for j, v := range row(f.row) {
				dst[j] += f.w * v
			}
			weight2[id] += f.w * f.w
		}
		if fz.vecs != nil && fz.vecs[id] != nil {
			for d, x := range fz.vecs[id] {
				for j, v := range row(fz.vecBase + int32(d)) {
					dst[j] += x * v
				}
			}
			weight2[id] += fz.vecW2[id]
		}
	}
	for r, w := range fz.ngWeights {
		dst := table[(V+r)*C : (V+r+1)*C]
		for j, v := range row(fz.ngStart + int32(r)) {
			dst[j] = w * v
		}
		weight2[V+r] = w * w
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
	// Padding becomes [PAD] (id 0). No stored n-gram holds id 0 (newFeaturizer leaves them
	// out), so an n-gram that reaches into the padding finds nothing.
	tok := g.Op("Where", []string{g.Op("Cast", []string{mask}, onnx.IntAttr("to", int64(onnx.Bool))), ids, scalar("pad", 0)})
	rows := []string{g.Op("Cast", []string{tok}, onnx.IntAttr("to", int64(onnx.Int32)))}

	vocab, nothing := scalar("vocab", int64(V)), g.Int32s("nothing", nil, []int64{0})
	axis2 := ints("axis2", 2)
	lookup := func(name string, h hashTable, key string) {
		r := make([]int64, len(h.rows))
		for i, x := range h.rows {
			if h.keys[i] >= 0 {
				r[i] = int64(V) + int64(x)
			}
		}
		keys := g.Ints(name+".keys", []int64{int64(len(h.keys))}, h.keys)
		rowOf := g.Int32s(name+".rows", []int64{int64(len(r))}, r)
		k := g.Op("Unsqueeze", []string{key, axis2})                                                                 // [batch, n, 1]
		b := g.Op("Add", []string{g.Op("Mod", []string{k, ints(name+".pq", h.p, h.q)}), ints(name+".base", 0, h.p)}) // [batch, n, 2]
		hit := g.Op("Equal", []string{g.Op("Gather", []string{keys, b}), k})
		found := g.Op("Where", []string{hit, g.Op("Gather", []string{rowOf, b}), nothing})
		// At most one bucket holds the key and a miss reads row 0: their sum is the row.
		rows = append(rows, g.Op("ReduceSum", []string{found, axis2}, onnx.IntAttr("keepdims", 0)))
	}
	const end = math.MaxInt64
	a, b := slice(tok, 0, -1), slice(tok, 1, end)
	lookup("bigram", fz.table2, g.Op("Add", []string{g.Op("Mul", []string{a, vocab}), b}))
	a, b, c := slice(tok, 0, -2), slice(tok, 1, -1), slice(tok, 2, end)
	av := g.Op("Mul", []string{a, vocab})
	lookup("trigram", fz.table3, g.Op("Add", []string{g.Op("Mul", []string{g.Op("Add", []string{av, b}), vocab}), c}))
	if len(fz.tableS.keys) > 0 {
		lookup("skip_bigram", fz.tableS, g.Op("Add", []string{av, c}))
	}
	all := g.Op("Concat", rows, onnx.IntAttr("axis", 1))
	tableT := g.Halves("feature_rows", []int64{int64(V + K), int64(C)}, table)
	weightT := g.Floats("feature_weight2", []int64{int64(V + K)}, weight2)
	// The table is stored in half precision and cast whole: ONNX Runtime folds the cast into a
	// float32 table when the session loads, so a run gathers floats and converts nothing.
	num := sum(g.Op("Gather", []string{g.Op("Cast", []string{tableT}, onnx.IntAttr("to", int64(onnx.Float))), all}))
	den := sum(g.Op("Gather", []string{weightT, all}))
	norm := g.Op("Sqrt", []string{g.Op("Add", []string{den, g.Scalar("eps", 1e-6)})})
	x := g.Op("Div", []string{num, g.Op("Unsqueeze", []string{norm, axis1})})

	// Each output head's networks own adjacent columns; an ensemble's M networks act as one
	// layer of M×h units whose second matrix is theirs stacked and divided by M, which is the
	// mean of their logits.
	for i := 0; i < len(n.heads); {
		first := n.heads[i]
		j := i
		for j < len(n.heads) && n.heads[j].group == first.group {
			j++
		}
		members := n.heads[i:j]
		i = j
		L, M := len(first.labels), float32(len(members))
		from, to := first.off, members[len(members)-1].off+members[len(members)-1].h
		var bias, W []float32
		c := make([]float32, L)
		for _, hd := range members {
			bias = append(bias, hd.b...)
			for _, w := range hd.W {
				W = append(W, w/M)
			}
			for k, v := range hd.c {
				c[k] += v / M
			}
		}
		xs := x
		if from != 0 || to != C {
			xs = slice(x, int64(from), int64(to))
		}
		name := fmt.Sprint(first.name, first.off)
		h := g.Op("Relu", []string{g.Op("Add", []string{xs, g.Floats(name+".b", []int64{int64(to - from)}, bias)})})
		logits := g.Op("Add", []string{g.Op("MatMul", []string{h, g.Floats(name+".W", []int64{int64(to - from), int64(L)}, W)}), g.Floats(name+".c", []int64{int64(L)}, c)})
		g.Output(g.Rename(logits, first.name+"_logits"), onnx.Float, batch, onnx.Fixed(int64(L)))
	}
	return &onnx.Model{Graph: g, Producer: "kefu train", Version: 1}
}
