package train

import (
	"math"
	"slices"
	"strings"
)

// The model's features are computed inside the ONNX graph from input_ids alone:
//
//   - each token stands for its own unigram feature plus the character n-grams of its text
//     (2 to 5 characters, "<" marking a word's start), folded at export into one table row
//     per vocabulary id;
//   - each pair and triple of adjacent tokens ([CLS] and [SEP] included, so a text's first and
//     last words are features of their own) has a key, a*V+b or (a*V+b)*V+c for vocabulary
//     size V, looked up in a hash table stored in the graph: bucket key mod P, kept only where
//     the stored key equals the key, so an n-gram never seen in training weighs nothing.
//
// Every feature carries a fixed IDF weight; a text's vector is the weighted sum of its
// features' rows divided by the Euclidean norm of the weights (TF-IDF with length
// normalisation), which the graph computes the same way.

// feature is one occurrence: a row of the embedding table and its IDF weight.
type feature struct {
	row int32
	w   float32
}

// featurizer maps token ids to features.
type featurizer struct {
	vocab     int
	tokFeats  [][]feature // per vocabulary id: unigram and character n-grams
	rows      int         // rows of the training table
	table2    hashTable   // bigram keys
	table3    hashTable   // trigram keys
	tableS    hashTable   // skip-bigram keys: tokens i and i+2
	ngWeights []float32   // IDF of each n-gram, by its row relative to ngStart
	ngStart   int32       // first n-gram row
	charRows  int         // rows of character n-grams
	vecBase   int32       // first row of the word-vector projection (when vectors are used)
	vecs      [][]float32 // per vocabulary id: its weighted unit word vector, or nil
	vecW2     []float32   // per vocabulary id: the squared weight of its vector
}

// hashTable stores n-gram keys with two choices of bucket: key mod P, else P + key mod Q
// (P and Q distinct primes, about twice the number of keys each). A key lives in the first of
// its buckets that was free when it was inserted; one that found both taken is not a feature.
type hashTable struct {
	p, q int64
	keys []int64 // -1 where empty; len p+q
	rows []int32 // the n-gram's row, relative to the first n-gram row
}

func newHashTable(n int) hashTable {
	p := nextPrime(2*n + 3)
	q := nextPrime(p + 1)
	h := hashTable{p: int64(p), q: int64(q), keys: make([]int64, p+q), rows: make([]int32, p+q)}
	for i := range h.keys {
		h.keys[i] = -1
	}
	return h
}

func (h *hashTable) buckets(key int64) (int64, int64) { return key % h.p, h.p + key%h.q }

func (h *hashTable) insert(key int64, row int32) bool {
	b1, b2 := h.buckets(key)
	for _, b := range [2]int64{b1, b2} {
		if h.keys[b] == -1 {
			h.keys[b], h.rows[b] = key, row
			return true
		}
	}
	return false
}

func (h *hashTable) lookup(key int64) (int32, bool) {
	if len(h.keys) == 0 {
		return 0, false
	}
	b1, b2 := h.buckets(key)
	switch key {
	case h.keys[b1]:
		return h.rows[b1], true
	case h.keys[b2]:
		return h.rows[b2], true
	}
	return 0, false
}

// count is the number of keys stored.
func (h *hashTable) count() int {
	n := 0
	for _, k := range h.keys {
		if k >= 0 {
			n++
		}
	}
	return n
}

func bigram(v int, a, b int64) int64     { return a*int64(v) + b }
func trigram(v int, a, b, c int64) int64 { return (a*int64(v)+b)*int64(v) + c }

// charGrams lists the character n-grams of a vocabulary token.
func charGrams(tok string) []string {
	var s []rune
	if rest, ok := strings.CutPrefix(tok, "##"); ok {
		s = []rune(rest)
	} else {
		s = append([]rune{'<'}, []rune(tok)...)
	}
	if len(s) <= 2 { // a single character: its unigram says it all
		return nil
	}
	var out []string
	for n := 2; n <= 5; n++ {
		for i := 0; i+n <= len(s); i++ {
			out = append(out, string(s[i:i+n]))
		}
	}
	return out
}

// newFeaturizer counts document frequencies over the encoded training texts and builds the
// feature space: every vocabulary id, every character n-gram of the vocabulary, and the word
// bigrams and trigrams (and, with skip, pairs of tokens one apart) seen in at least minDF texts.
// featureConfig is what shapes the feature space (see Config).
type featureConfig struct {
	minDF        int
	skip         bool
	charWeight   float64
	vectors      *Vectors
	vectorWeight float64
}

func newFeaturizer(vocab []string, docs [][]int64, fc featureConfig) *featurizer {
	minDF, skip, vectors := fc.minDF, fc.skip, fc.vectors
	V := len(vocab)
	f := &featurizer{vocab: V}
	charID := map[string]int32{}
	tokGrams := make([][]int32, V)
	for id, tok := range vocab {
		if id < len(Specials) {
			continue
		}
		for _, g := range charGrams(tok) {
			r, ok := charID[g]
			if !ok {
				r = int32(V + len(charID))
				charID[g] = r
			}
			if !slices.Contains(tokGrams[id], r) {
				tokGrams[id] = append(tokGrams[id], r)
			}
		}
	}
	f.charRows = len(charID)
	base := V + len(charID)
	df := make([]int32, base)
	ng := map[int64]int32{}
	seen := map[int64]bool{}
	for _, ids := range docs {
		clear(seen)
		mark := func(k int64) bool {
			if seen[k] {
				return false
			}
			seen[k] = true
			return true
		}
		for _, id := range ids {
			if mark(-1 - id) {
				df[id]++
			}
			for _, g := range tokGrams[id] {
				if mark(-1 - int64(g)) {
					df[g]++
				}
			}
		}
		// No n-gram holds [PAD] (id 0, which only a text spelling "[PAD]" has): the graph
		// reads padding as [PAD], and an n-gram reaching into it must find nothing.
		for i := 0; i+1 < len(ids); i++ {
			if k := bigram(V, ids[i], ids[i+1]); ids[i] != 0 && ids[i+1] != 0 && mark(k) {
				ng[k]++
			}
		}
		for i := 0; i+2 < len(ids); i++ {
			if ids[i] == 0 || ids[i+2] == 0 {
				continue
			}
			if k := trigram(V, ids[i], ids[i+1], ids[i+2]) | 1<<62; ids[i+1] != 0 && mark(k) {
				ng[k]++
			}
			if k := bigram(V, ids[i], ids[i+2]) | 1<<61; skip && mark(k) {
				ng[k]++
			}
		}
	}
	n := float64(len(docs))
	idf := func(d int32) float32 { return float32(math.Log((1+n)/(1+float64(d))) + 1) }
	var keys2, keys3, keysS []int64
	for k, d := range ng {
		switch {
		case int(d) < minDF:
		case k&(1<<62) != 0:
			keys3 = append(keys3, k&^(1<<62))
		case k&(1<<61) != 0:
			keysS = append(keysS, k&^(1<<61))
		default:
			keys2 = append(keys2, k)
		}
	}
	slices.Sort(keys2)
	slices.Sort(keys3)
	slices.Sort(keysS)
	f.ngStart = int32(base)
	weights := []float32{}
	build := func(keys []int64, tag int64) hashTable {
		h := newHashTable(len(keys))
		for _, k := range keys {
			if h.insert(k, int32(len(weights))) {
				weights = append(weights, idf(ng[k|tag]))
			}
		}
		return h
	}
	f.table2 = build(keys2, 0)
	f.table3 = build(keys3, 1<<62)
	if skip {
		f.tableS = build(keysS, 1<<61)
	}
	f.rows = base + len(weights)
	f.tokFeats = make([][]feature, V)
	for id := len(Specials); id < V; id++ {
		var feats []feature
		if df[id] > 0 {
			feats = append(feats, feature{row: int32(id), w: idf(df[id])})
		}
		for _, g := range tokGrams[id] {
			if df[g] > 0 {
				feats = append(feats, feature{row: g, w: float32(fc.charWeight) * idf(df[g])})
			}
		}
		f.tokFeats[id] = feats
	}
	if vectors != nil {
		f.vecBase = int32(f.rows)
		f.rows += vectors.Dim
		f.vecs = make([][]float32, V)
		f.vecW2 = make([]float32, V)
		for id := len(Specials); id < V; id++ {
			u := vectors.Vec(vocab[id])
			if u == nil {
				continue
			}
			w := float32(fc.vectorWeight) * idf(df[id])
			f.vecs[id] = make([]float32, len(u))
			for i, x := range u {
				f.vecs[id][i] = w * x
			}
			f.vecW2[id] = w * w
		}
	}
	f.ngWeights = weights
	return f
}

// vecFeatures appends the text's summed word vector as features of the projection rows and
// returns the correction to the squared norm: the graph adds each token's squared vector
// weight, not the square of the sum.
func (f *featurizer) vecFeatures(dst []feature, ids []int64) ([]feature, float32) {
	if f.vecs == nil {
		return dst, 0
	}
	sum := make([]float32, f.rows-int(f.vecBase))
	var w2 float32
	for _, id := range ids {
		if v := f.vecs[id]; v != nil {
			for i, x := range v {
				sum[i] += x
			}
			w2 += f.vecW2[id]
		}
	}
	for i, x := range sum {
		dst = append(dst, feature{row: f.vecBase + int32(i), w: x})
		w2 -= x * x
	}
	return dst, w2
}

// features appends the features of one encoded text.
func (f *featurizer) features(dst []feature, ids []int64) []feature {
	for _, id := range ids {
		dst = append(dst, f.tokFeats[id]...)
	}
	for i := 0; i+1 < len(ids); i++ {
		if r, ok := f.table2.lookup(bigram(f.vocab, ids[i], ids[i+1])); ok {
			dst = append(dst, feature{row: f.ngStart + r, w: f.ngWeights[r]})
		}
	}
	for i := 0; i+2 < len(ids); i++ {
		if r, ok := f.table3.lookup(trigram(f.vocab, ids[i], ids[i+1], ids[i+2])); ok {
			dst = append(dst, feature{row: f.ngStart + r, w: f.ngWeights[r]})
		}
		if r, ok := f.tableS.lookup(bigram(f.vocab, ids[i], ids[i+2])); ok {
			dst = append(dst, feature{row: f.ngStart + r, w: f.ngWeights[r]})
		}
	}
	return dst
}

func nextPrime(n int) int {
	for ; ; n++ {
		prime := n > 1
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}
