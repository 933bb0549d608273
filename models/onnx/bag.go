package onnx

import "fmt"

// BagHead is one head of a bag-of-tokens linear model: logits = Bias + Σ Weights[token]
// over the tokens the attention mask keeps.
type BagHead struct {
	Name    string
	Labels  int
	Weights []float32 // [vocab, Labels] row-major
	Bias    []float32 // [Labels]
}

// Bag writes a bag-of-tokens linear classifier with the Hugging Face interface (input_ids and
// attention_mask, int64 [batch, seq]; one Name+"_logits" output per head). It is the shape of
// a multinomial naive Bayes or logistic regression model over token counts.
func Bag(vocab int, heads ...BagHead) (*Model, error) {
	g := NewGraph("bag")
	batch, seq := Sym("batch"), Sym("sequence")
	ids := g.Input("input_ids", Int64, batch, seq)
	mask := g.Input("attention_mask", Int64, batch, seq)
	keep := g.Op("Unsqueeze", []string{g.Op("Cast", []string{mask}, IntAttr("to", int64(Float))), g.Ints("axis2", []int64{1}, []int64{2})})
	axis1 := g.Ints("axis1", []int64{1}, []int64{1})
	for _, h := range heads {
		if len(h.Weights) != vocab*h.Labels || len(h.Bias) != h.Labels {
			return nil, fmt.Errorf("bag: head %q: weights %d and bias %d do not fit %d×%d", h.Name, len(h.Weights), len(h.Bias), vocab, h.Labels)
		}
		rows := g.Op("Gather", []string{g.Floats(h.Name+".w", []int64{int64(vocab), int64(h.Labels)}, h.Weights), ids})
		sum := g.Op("ReduceSum", []string{g.Op("Mul", []string{rows, keep}), axis1}, IntAttr("keepdims", 0))
		out := g.Rename(g.Op("Add", []string{sum, g.Floats(h.Name+".b", []int64{int64(h.Labels)}, h.Bias)}), h.Name+"_logits")
		g.Output(out, Float, batch, Fixed(int64(h.Labels)))
	}
	return &Model{Graph: g, Producer: "kefu", Version: 1}, nil
}
