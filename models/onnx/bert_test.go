package onnx_test

import (
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models/onnx"
)

// TestBERTMatchesReference runs the written graph in ONNX Runtime and compares every head's
// logits with a plain Go forward pass over the same weights, on a padded batch.
func TestBERTMatchesReference(t *testing.T) {
	testenv.Runtime(t)
	for _, types := range []bool{false, true} {
		cfg := onnx.BERTConfig{
			Vocab: 60, Hidden: 32, Layers: 2, Heads: 4, Intermediate: 48, MaxPositions: 16,
			TokenTypes: types, Seed: 7,
			Outputs: []onnx.Head{{Name: "intent", Labels: 5}, {Name: "emotion", Labels: 3}},
		}
		m, err := onnx.RandomBERT(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rows := [][]int64{{2, 17, 5, 9, 33, 3}, {2, 41, 3}, {2, 8, 8, 59, 3}}
		const seq = 6
		ids, mask := make([]int64, len(rows)*seq), make([]int64, len(rows)*seq)
		for i, r := range rows {
			for j, v := range r {
				ids[i*seq+j], mask[i*seq+j] = v, 1
			}
		}
		names := []string{"input_ids", "attention_mask"}
		if types {
			names = append(names, "token_type_ids")
		}
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(m.Model().Marshal(), names, []string{"intent_logits", "emotion_logits"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		shape := ort.NewShape(int64(len(rows)), seq)
		var inputs []ort.Value
		for _, d := range [][]int64{ids, mask, make([]int64, len(ids))}[:len(names)] {
			v, err := ort.NewTensor(shape, d)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Destroy()
			inputs = append(inputs, v)
		}
		outputs := make([]ort.Value, 2)
		if err := s.Run(inputs, outputs); err != nil {
			t.Fatal(err)
		}
		for h, head := range cfg.Outputs {
			got := outputs[h].(*ort.Tensor[float32]).GetData()
			for i, r := range rows {
				want := reference(m, r, h)
				for k := range head.Labels {
					if d := math.Abs(float64(got[i*head.Labels+k] - want[k])); d > 1e-4 {
						t.Errorf("types=%v head %s row %d label %d: onnx %.6f, reference %.6f", types, head.Name, i, k, got[i*head.Labels+k], want[k])
					}
				}
			}
			outputs[h].Destroy()
		}
		s.Destroy()
	}
}

// reference is BERT's forward pass for one unpadded sequence, written plainly.
func reference(m *onnx.BERT, ids []int64, head int) []float32 {
	c := m.Config
	H, I, S := c.Hidden, c.Intermediate, len(ids)
	hd := H / c.Heads
	x := make([][]float64, S)
	for s, id := range ids {
		x[s] = make([]float64, H)
		for k := range H {
			x[s][k] = float64(m.Word[int(id)*H+k]) + float64(m.Pos[s*H+k]) + float64(m.Type[k])
		}
		x[s] = norm(x[s], m.EmbNormG, m.EmbNormB)
	}
	for _, l := range m.Layers {
		q, k, v := matmul(x, l.Q, l.QB, H, H), matmul(x, l.K, l.KB, H, H), matmul(x, l.V, l.VB, H, H)
		ctx := make([][]float64, S)
		for s := range S {
			ctx[s] = make([]float64, H)
		}
		for h := range c.Heads {
			off := h * hd
			for s := range S {
				scores := make([]float64, S)
				top := math.Inf(-1)
				for t := range S {
					for d := range hd {
						scores[t] += q[s][off+d] * k[t][off+d]
					}
					scores[t] /= math.Sqrt(float64(hd))
					top = math.Max(top, scores[t])
				}
				var sum float64
				for t := range S {
					scores[t] = math.Exp(scores[t] - top)
					sum += scores[t]
				}
				for t := range S {
					for d := range hd {
						ctx[s][off+d] += scores[t] / sum * v[t][off+d]
					}
				}
			}
		}
		o := matmul(ctx, l.O, l.OB, H, H)
		for s := range S {
			for d := range H {
				o[s][d] += x[s][d]
			}
			x[s] = norm(o[s], l.AttnNormG, l.AttnNormB)
		}
		up := matmul(x, l.Up, l.UpB, H, I)
		for s := range S {
			for d := range I {
				up[s][d] = 0.5 * up[s][d] * (1 + math.Erf(up[s][d]/math.Sqrt2))
			}
		}
		down := matmul(up, l.Down, l.DownB, I, H)
		for s := range S {
			for d := range H {
				down[s][d] += x[s][d]
			}
			x[s] = norm(down[s], l.OutNormG, l.OutNormB)
		}
	}
	pooled := matmul(x[:1], m.Pool, m.PoolB, H, H)[0]
	for d := range pooled {
		pooled[d] = math.Tanh(pooled[d])
	}
	n := c.Outputs[head].Labels
	logits := matmul([][]float64{pooled}, m.HeadW[head], m.HeadB[head], H, n)[0]
	out := make([]float32, n)
	for i, v := range logits {
		out[i] = float32(v)
	}
	return out
}

func matmul(x [][]float64, w, b []float32, in, out int) [][]float64 {
	y := make([][]float64, len(x))
	for s := range x {
		y[s] = make([]float64, out)
		for o := range out {
			acc := float64(b[o])
			for i := range in {
				acc += x[s][i] * float64(w[i*out+o])
			}
			y[s][o] = acc
		}
	}
	return y
}

func norm(x []float64, g, b []float32) []float64 {
	var mean, variance float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= float64(len(x))
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = (v-mean)/math.Sqrt(variance+1e-12)*float64(g[i]) + float64(b[i])
	}
	return y
}
