package train

import (
	"math"
	"math/rand/v2"
)

// net is the trained network. Every head owns a block of the embedding table's columns:
// x = Σ w·E[row] / ‖w‖ over the text's features (the block's columns), h = ReLU(x + b),
// logits = h·W + c.
type net struct {
	cols  int       // total columns of E
	E     []float32 // [rows, cols]
	heads []*headNet
}

type headNet struct {
	name   string
	group  int // the data set (output head) this network belongs to; an ensemble has several
	labels []string
	off, h int       // block of E's columns
	b      []float32 // [h]
	W      []float32 // [h, labels]
	c      []float32 // [labels]
}

func newNet(rows int, heads []*headNet, rng *rand.Rand) *net {
	n := &net{heads: heads}
	for _, hd := range heads {
		hd.off = n.cols
		n.cols += hd.h
		L := len(hd.labels)
		hd.b = make([]float32, hd.h)
		hd.W = make([]float32, hd.h*L)
		hd.c = make([]float32, L)
		limit := math.Sqrt(6 / float64(hd.h+L))
		for i := range hd.W {
			hd.W[i] = float32((rng.Float64()*2 - 1) * limit)
		}
	}
	n.E = make([]float32, rows*n.cols)
	for i := range n.E {
		n.E[i] = float32(rng.NormFloat64() * 0.1)
	}
	return n
}

// scaleLogits multiplies the last layer of output head group's networks by f, which divides
// its logits by the temperature 1/f.
func (n *net) scaleLogits(group int, f float64) {
	for _, hd := range n.heads {
		if hd.group != group {
			continue
		}
		for i := range hd.W {
			hd.W[i] *= float32(f)
		}
		for i := range hd.c {
			hd.c[i] *= float32(f)
		}
	}
}

// scratch holds one worker's buffers for one example.
type scratch struct {
	x, z, h, dz []float32
	dl          []float32 // dL/dlogits
	drop        []bool
	p, logits   []float64
	inv         float32 // 1/‖w‖ of the last text forward saw
}

func newScratch(n *net) *scratch {
	maxH, maxL := 0, 0
	for _, hd := range n.heads {
		maxH, maxL = max(maxH, hd.h), max(maxL, len(hd.labels))
	}
	return &scratch{x: make([]float32, maxH), z: make([]float32, maxH), h: make([]float32, maxH),
		dz: make([]float32, maxH), dl: make([]float32, maxL), drop: make([]bool, maxH), p: make([]float64, maxL), logits: make([]float64, maxL)}
}

// norm is 1/‖w‖ of a text's features, den added to the squared norm.
func norm(feats []feature, den float32) float32 {
	s := float64(den)
	for _, f := range feats {
		s += float64(f.w) * float64(f.w)
	}
	return float32(1 / math.Sqrt(s+1e-6))
}

// forward computes the head's class probabilities into s.p (and keeps the activations for
// backward); den is added to the squared norm of feats (see vecFeatures). dropout > 0 drops
// hidden units with that probability, drawing from rng.
func (n *net) forward(hd *headNet, feats []feature, den float32, s *scratch, dropout float32, rng *rand.Rand) []float64 {
	x := s.x[:hd.h]
	clear(x)
	inv := norm(feats, den)
	s.inv = inv
	for _, f := range feats {
		row := n.E[int(f.row)*n.cols+hd.off : int(f.row)*n.cols+hd.off+hd.h]
		w := f.w * inv
		for j, v := range row {
			x[j] += w * v
		}
	}
	h := s.h[:hd.h]
	scale := 1 / (1 - dropout)
	for j := range h {
		z := x[j] + hd.b[j]
		s.z[j] = z
		switch {
		case z <= 0:
			h[j] = 0
		case dropout > 0 && rng.Float32() < dropout:
			h[j], s.drop[j] = 0, true
			continue
		case dropout > 0:
			h[j] = z * scale
		default:
			h[j] = z
		}
		s.drop[j] = false
	}
	L := len(hd.labels)
	p := s.p[:L]
	for k := range p {
		p[k] = float64(hd.c[k])
	}
	for j, v := range h {
		if v == 0 {
			continue
		}
		w := hd.W[j*L : (j+1)*L]
		for k := range p {
			p[k] += float64(v * w[k])
		}
	}
	copy(s.logits, p)
	softmax(p)
	return p
}

func softmax(p []float64) {
	m := math.Inf(-1)
	for _, v := range p {
		m = max(m, v)
	}
	var sum float64
	for k, v := range p {
		p[k] = math.Exp(v - m)
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
}

// grads accumulates one worker's dense gradients.
type grads struct {
	b, W, c [][]float32 // per head
	loss    float64
	n       int
}

func newGrads(n *net) *grads {
	g := &grads{}
	for _, hd := range n.heads {
		g.b = append(g.b, make([]float32, hd.h))
		g.W = append(g.W, make([]float32, len(hd.W)))
		g.c = append(g.c, make([]float32, len(hd.c)))
	}
	return g
}

func (g *grads) reset() {
	for i := range g.b {
		clear(g.b[i])
		clear(g.W[i])
		clear(g.c[i])
	}
	g.loss, g.n = 0, 0
}

// backward adds the gradients of the cross-entropy loss (with label smoothing) of one example
// after forward, and writes dL/dx into dx.
func (n *net) backward(k int, hd *headNet, label int, smooth float64, weight float32, s *scratch, g *grads, dropout float32, dx []float32) {
	L := len(hd.labels)
	p := s.p[:L]
	g.loss += -math.Log(max(p[label], 1e-12)) * float64(weight)
	g.n++
	dl := s.dl[:L]
	for c := range p {
		y := smooth / float64(L)
		if c == label {
			y += 1 - smooth
		}
		dl[c] = float32(p[c]-y) * weight
		g.c[k][c] += dl[c]
	}
	scale := 1 / (1 - dropout)
	for j := range hd.h {
		hv := s.h[j]
		w := hd.W[j*L : (j+1)*L]
		gw := g.W[k][j*L : (j+1)*L]
		var dh float32
		for c, d := range dl {
			if hv != 0 {
				gw[c] += hv * d
			}
			dh += w[c] * d
		}
		dz := float32(0)
		if s.z[j] > 0 && !s.drop[j] {
			dz = dh
			if dropout > 0 {
				dz *= scale
			}
		}
		g.b[k][j] += dz
		dx[j] = dz
	}
}

// adam is Adam's state for one parameter slice.
type adam struct {
	m, v []float32
}

func newAdam(n int) *adam { return &adam{m: make([]float32, n), v: make([]float32, n)} }

const (
	beta1 = 0.9
	beta2 = 0.999
)

// step applies one Adam update to p[i] with gradient g[i]; c1 and c2 are the bias corrections
// for the parameter's step count.
func (a *adam) step(p, g []float32, off int, lr, c1, c2 float32) {
	m, v := a.m[off:off+len(p)], a.v[off:off+len(p)]
	for i, gi := range g {
		m[i] = beta1*m[i] + (1-beta1)*gi
		v[i] = beta2*v[i] + (1-beta2)*gi*gi
		p[i] -= lr * (m[i] / c1) / (float32(math.Sqrt(float64(v[i]/c2))) + 1e-8)
	}
}
