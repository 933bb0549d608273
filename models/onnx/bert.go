package onnx

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
)

// BERTConfig sizes a BERT-shaped encoder with classification heads.
type BERTConfig struct {
	Vocab        int    // vocabulary size; required
	Hidden       int    // hidden size; default 256
	Layers       int    // transformer layers; default 4
	Heads        int    // attention heads; default Hidden/64
	Intermediate int    // feed-forward size; default 4*Hidden
	MaxPositions int    // position embeddings; default 512
	TokenTypes   bool   // whether the graph takes token_type_ids, as Hugging Face BERT does
	Outputs      []Head // classification heads; default one head "intent" of 8 labels
	Seed         uint64 // weights are drawn from N(0, 0.02) with this seed
}

// Head is one classification output: logits [batch, Labels] named Output, by default
// Name+"_logits" (a Hugging Face export names its one output "logits").
type Head struct {
	Name   string
	Labels int
	Output string
}

// BERTLayer holds one transformer layer's weights, matrices row-major [in, out].
type BERTLayer struct {
	Q, K, V, O           []float32
	QB, KB, VB, OB       []float32
	AttnNormG, AttnNormB []float32
	Up, UpB, Down, DownB []float32
	OutNormG, OutNormB   []float32
}

// BERT is a BERT-shaped model's configuration and weights.
type BERT struct {
	Config             BERTConfig
	Word, Pos, Type    []float32 // [Vocab,H], [MaxPositions,H], [2,H]
	EmbNormG, EmbNormB []float32
	Layers             []BERTLayer
	Pool, PoolB        []float32
	HeadW, HeadB       [][]float32 // per head: [H,Labels], [Labels]
}

func (c BERTConfig) withDefaults() (BERTConfig, error) {
	if c.Vocab <= 0 {
		return c, fmt.Errorf("bert: vocabulary size must be positive, got %d", c.Vocab)
	}
	if c.Hidden == 0 {
		c.Hidden = 256
	}
	if c.Layers == 0 {
		c.Layers = 4
	}
	if c.Heads == 0 {
		c.Heads = max(1, c.Hidden/64)
	}
	if c.Intermediate == 0 {
		c.Intermediate = 4 * c.Hidden
	}
	if c.MaxPositions == 0 {
		c.MaxPositions = 512
	}
	if len(c.Outputs) == 0 {
		c.Outputs = []Head{{Name: "intent", Labels: 8}}
	}
	if c.Hidden%c.Heads != 0 {
		return c, fmt.Errorf("bert: hidden size %d is not a multiple of %d heads", c.Hidden, c.Heads)
	}
	for _, h := range c.Outputs {
		if h.Labels <= 0 || h.Name == "" {
			return c, fmt.Errorf("bert: head %q needs a name and a positive label count", h.Name)
		}
	}
	return c, nil
}

// RandomBERT draws a BERT-shaped model's weights. Its cost per token is that of a real
// BERT of the same size, which is what benchmarks need; its predictions are noise.
func RandomBERT(cfg BERTConfig) (*BERT, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b656675))
	normal := func(n int) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.02)
		}
		return w
	}
	around := func(n int, center float32) []float32 {
		w := normal(n)
		for i := range w {
			w[i] += center
		}
		return w
	}
	H, I := cfg.Hidden, cfg.Intermediate
	m := &BERT{
		Config:   cfg,
		Word:     normal(cfg.Vocab * H),
		Pos:      normal(cfg.MaxPositions * H),
		Type:     normal(2 * H),
		EmbNormG: around(H, 1),
		EmbNormB: normal(H),
		Pool:     normal(H * H),
		PoolB:    normal(H),
	}
	for range cfg.Layers {
		m.Layers = append(m.Layers, BERTLayer{
			Q: normal(H * H), K: normal(H * H), V: normal(H * H), O: normal(H * H),
			QB: normal(H), KB: normal(H), VB: normal(H), OB: normal(H),
			AttnNormG: around(H, 1), AttnNormB: normal(H),
			Up: normal(H * I), UpB: normal(I), Down: normal(I * H), DownB: normal(H),
			OutNormG: around(H, 1), OutNormB: normal(H),
		})
	}
	for _, h := range cfg.Outputs {
		m.HeadW = append(m.HeadW, normal(H*h.Labels))
		m.HeadB = append(m.HeadB, normal(h.Labels))
	}
	return m, nil
}

// Model expresses the weights as an ONNX graph with the Hugging Face interface: inputs
// input_ids and attention_mask (and token_type_ids when configured), int64 [batch, seq];
// one float output per head, Name+"_logits" [batch, labels].
func (m *BERT) Model() *Model {
	c := m.Config
	H, I := int64(c.Hidden), int64(c.Intermediate)
	nh, hd := int64(c.Heads), int64(c.Hidden/c.Heads)
	g := NewGraph("bert")
	batch, seq := Sym("batch"), Sym("sequence")
	ids := g.Input("input_ids", Int64, batch, seq)
	mask := g.Input("attention_mask", Int64, batch, seq)
	var types string
	if c.TokenTypes {
		types = g.Input("token_type_ids", Int64, batch, seq)
	}

	zero, one := g.Ints("i0", nil, []int64{0}), g.Ints("i1", nil, []int64{1})
	seqLen := g.Op("Gather", []string{g.Op("Shape", []string{ids}), one})
	positions := g.Op("Range", []string{zero, seqLen, one})
	x := g.Op("Add", []string{
		g.Op("Gather", []string{g.Floats("word", []int64{int64(c.Vocab), H}, m.Word), ids}),
		g.Op("Gather", []string{g.Floats("pos", []int64{int64(c.MaxPositions), H}, m.Pos), positions}),
	})
	typeTable := g.Floats("type", []int64{2, H}, m.Type)
	if types != "" {
		x = g.Op("Add", []string{x, g.Op("Gather", []string{typeTable, types})})
	} else {
		// Hugging Face BERT without token_type_ids adds the embedding of type 0.
		x = g.Op("Add", []string{x, g.Op("Gather", []string{typeTable, zero})})
	}
	layerNorm := func(x, name string, gamma, beta []float32) string {
		return g.Op("LayerNormalization", []string{x, g.Floats(name+".g", []int64{H}, gamma), g.Floats(name+".b", []int64{H}, beta)},
			IntAttr("axis", -1), FloatAttr("epsilon", 1e-12))
	}
	dense := func(x, name string, w, b []float32, in, out int64) string {
		return g.Op("Add", []string{g.Op("MatMul", []string{x, g.Floats(name+".w", []int64{in, out}, w)}), g.Floats(name+".b", []int64{out}, b)})
	}
	x = layerNorm(x, "emb.norm", m.EmbNormG, m.EmbNormB)

	// Additive attention bias: 0 where attention_mask is 1, -10000 where it is 0; [batch,1,1,seq].
	maskF := g.Op("Cast", []string{mask}, IntAttr("to", int64(Float)))
	bias := g.Op("Mul", []string{g.Op("Sub", []string{g.Scalar("f1", 1), maskF}), g.Scalar("fneg", -10000)})
	bias = g.Op("Unsqueeze", []string{bias, g.Ints("axes12", []int64{2}, []int64{1, 2})})

	split := g.Ints("split_shape", []int64{4}, []int64{0, 0, nh, hd})
	merge := g.Ints("merge_shape", []int64{3}, []int64{0, 0, H})
	scale := g.Scalar("scale", float32(1/math.Sqrt(float64(hd))))
	invSqrt2 := g.Scalar("inv_sqrt2", float32(1/math.Sqrt2))
	half := g.Scalar("half", 0.5)
	for i, l := range m.Layers {
		p := fmt.Sprintf("l%d", i)
		heads := func(name string, w, b []float32, perm ...int64) string {
			return g.Op("Transpose", []string{g.Op("Reshape", []string{dense(x, p+name, w, b, H, H), split})}, IntsAttr("perm", perm...))
		}
		q := heads(".q", l.Q, l.QB, 0, 2, 1, 3)
		k := heads(".k", l.K, l.KB, 0, 2, 3, 1)
		v := heads(".v", l.V, l.VB, 0, 2, 1, 3)
		scores := g.Op("Add", []string{g.Op("Mul", []string{g.Op("MatMul", []string{q, k}), scale}), bias})
		probs := g.Op("Softmax", []string{scores}, IntAttr("axis", -1))
		ctx := g.Op("Reshape", []string{g.Op("Transpose", []string{g.Op("MatMul", []string{probs, v})}, IntsAttr("perm", 0, 2, 1, 3)), merge})
		x = layerNorm(g.Op("Add", []string{dense(ctx, p+".o", l.O, l.OB, H, H), x}), p+".attn_norm", l.AttnNormG, l.AttnNormB)
		up := dense(x, p+".up", l.Up, l.UpB, H, I)
		gelu := g.Op("Mul", []string{g.Op("Mul", []string{up, half}),
			g.Op("Add", []string{g.Scalar(p+".one", 1), g.Op("Erf", []string{g.Op("Mul", []string{up, invSqrt2})})})})
		x = layerNorm(g.Op("Add", []string{dense(gelu, p+".down", l.Down, l.DownB, I, H), x}), p+".out_norm", l.OutNormG, l.OutNormB)
	}
	cls := g.Op("Gather", []string{x, zero}, IntAttr("axis", 1))
	pooled := g.Op("Tanh", []string{dense(cls, "pool", m.Pool, m.PoolB, H, H)})
	for i, h := range c.Outputs {
		out := g.Rename(dense(pooled, "head."+h.Name, m.HeadW[i], m.HeadB[i], H, int64(h.Labels)), cmp.Or(h.Output, h.Name+"_logits"))
		g.Output(out, Float, batch, Fixed(int64(h.Labels)))
	}
	return &Model{Graph: g, Producer: "kefu", Version: 1}
}
