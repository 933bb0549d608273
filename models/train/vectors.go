package train

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/models"
)

// Vectors are pretrained word vectors, most frequent word first. With them, each token that has
// a vector also contributes its unit vector, weighted like its own unigram (times
// Config.VectorWeight), through a learned projection to the hidden layer; the projection is
// folded into the token's table row at export, so the graph is the same as without them. The
// most frequent vector words the training text lacks can join the vocabulary
// (Config.VectorWords): an unseen word then lands near the seen words it resembles, which is
// what a bag of n-grams cannot do.
type Vectors struct {
	Dim   int
	Words []string
	index map[string]int
	data  []float32 // [len(Words), Dim], each row of unit length
}

// LoadVectors reads word vectors in the text format of GloVe and fastText ("word v1 … vD"
// per line, optionally after a "count dim" header line), the first limit words (0: all).
func LoadVectors(path string, limit int) (*Vectors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadVectors(f, path, limit)
}

// ReadVectors is LoadVectors from r; name is used in messages. A row that is not a word and
// Dim numbers is refused with its line; a word given twice keeps its first vector.
func ReadVectors(r io.Reader, name string, limit int) (*Vectors, error) {
	v := &Vectors{index: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if line == 1 && len(fields) == 2 {
			if _, err := strconv.Atoi(fields[0]); err == nil {
				continue // the "count dim" header
			}
		}
		word := fields[0]
		if !utf8.ValidString(word) {
			return nil, fmt.Errorf("%s:%d: the word is not UTF-8", name, line)
		}
		if v.Dim == 0 {
			v.Dim = len(fields) - 1
			if v.Dim == 0 {
				return nil, fmt.Errorf("%s:%d: %q has no vector", name, line, word)
			}
		}
		if len(fields)-1 != v.Dim {
			return nil, fmt.Errorf("%s:%d: %d numbers after %q, want %d like the first row", name, line, len(fields)-1, word, v.Dim)
		}
		row := make([]float32, v.Dim)
		var ss float64
		for i, s := range fields[1:] {
			x, err := strconv.ParseFloat(s, 32)
			if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("%s:%d: number %d of %q is %q, not a finite number", name, line, i+1, word, s)
			}
			row[i] = float32(x)
			ss += x * x
		}
		if _, dup := v.index[word]; dup || ss == 0 {
			continue
		}
		inv := 1 / math.Sqrt(ss)
		for i := range row {
			row[i] = float32(float64(row[i]) * inv)
		}
		v.index[word] = len(v.Words)
		v.Words = append(v.Words, word)
		v.data = append(v.data, row...)
		if limit > 0 && len(v.Words) >= limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	if len(v.Words) == 0 {
		return nil, fmt.Errorf("%s: no word vectors", name)
	}
	return v, nil
}

// Vec is the unit vector of word, or nil.
func (v *Vectors) Vec(word string) []float32 {
	i, ok := v.index[word]
	if !ok {
		return nil
	}
	return v.data[i*v.Dim : (i+1)*v.Dim]
}

// extend appends to vocab up to n of the most frequent vector words it lacks (whole words the
// tokenizer keeps as one word).
func (v *Vectors) extend(vocab []string, n int) []string {
	have := map[string]bool{}
	for _, t := range vocab {
		have[t] = true
	}
	for _, w := range v.Words {
		if n <= 0 {
			break
		}
		if have[w] {
			continue
		}
		if p := models.PreTokenize(w, true); len(p) != 1 || p[0] != w {
			continue
		}
		vocab = append(vocab, w)
		have[w] = true
		n--
	}
	return vocab
}
