package train

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/kefu-ai/kefu/models"
)

// Specials are the tokens every kefu vocabulary starts with, at these ids.
var Specials = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}

// LearnVocab learns a WordPiece vocabulary from texts. Texts are split the way the written
// tokenizer will split them (lowercased, accents stripped, every CJK character and punctuation
// mark a word of its own). The vocabulary holds the special tokens, every character seen
// (alone and as a "##" continuation, so no word of a known script becomes [UNK]), the words
// seen at least minCount times (most frequent first), and then word endings ("##ing",
// "##ed", …) seen in at least minCount distinct words, so that an unseen inflection of a known
// word splits into the word and its ending. The result is at most maxSize tokens (characters
// are always kept) and is deterministic.
func LearnVocab(texts []string, maxSize, minCount int) []string {
	words := map[string]int{}
	for _, t := range texts {
		for _, w := range models.PreTokenize(t, true) {
			words[w]++
		}
	}
	vocab := slices.Clone(Specials)
	seen := map[string]bool{}
	add := func(tok string) {
		if !seen[tok] {
			seen[tok] = true
			vocab = append(vocab, tok)
		}
	}
	for _, s := range Specials {
		seen[s] = true
	}
	chars := map[string]bool{}
	for w := range words {
		for _, r := range w {
			chars[string(r)] = true
		}
	}
	for _, c := range slices.Sorted(maps.Keys(chars)) {
		add(c)
		if !isAlone(c) {
			add("##" + c)
		}
	}
	type count struct {
		tok string
		n   int
	}
	byCount := func(m map[string]int) []count {
		var out []count
		for tok, n := range m {
			if n >= minCount && !seen[tok] {
				out = append(out, count{tok, n})
			}
		}
		slices.SortFunc(out, func(a, b count) int {
			return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.tok, b.tok))
		})
		return out
	}
	endings := map[string]int{}
	for w := range words {
		r := []rune(w)
		for n := 2; n <= 5 && n < len(r)-1; n++ {
			endings["##"+string(r[len(r)-n:])]++
		}
	}
	for _, c := range byCount(words) {
		if len(vocab) >= maxSize {
			break
		}
		add(c.tok)
	}
	for _, c := range byCount(endings) {
		if len(vocab) >= maxSize {
			break
		}
		add(c.tok)
	}
	return vocab
}

// isAlone reports whether a character always stands as a word of its own (CJK characters and
// punctuation), so its "##" form can never occur.
func isAlone(c string) bool {
	w := models.PreTokenize("a"+c, true)
	return len(w) == 2
}
