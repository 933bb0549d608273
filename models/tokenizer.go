package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// Tokenizer turns text into model input ids. It loads a Hugging Face tokenizer.json with
// sugarme's pretrained.FromFile and, when the file describes the BERT pipeline (BertNormalizer,
// BertPreTokenizer, WordPiece, [CLS] $A [SEP]), encodes through a direct implementation of that
// pipeline that gives sugarme's ids several times faster (see TestTokenizerMatchesSugarme).
// Other pipelines, and texts that contain an added token, go through sugarme itself.
// A Tokenizer is read-only after loading and safe for concurrent use.
type Tokenizer struct {
	slow *tokenizer.Tokenizer
	fast *wordPiece // nil when the file needs sugarme's general pipeline
}

// wordPiece is the BERT pipeline: normalize and split per rune, then greedy longest-match
// WordPiece. It reproduces sugarme v0.3.0, quirks included: whitespace is [ \t\n\f\r] only,
// strip_accents removes combining marks without decomposing first, "##" is always the prefix.
type wordPiece struct {
	vocab          map[string]int64
	unk            int64
	maxWordRunes   int // words longer than this become [UNK]
	maxPieceRunes  int // longest vocabulary entry, bounding the match loop
	prefix, suffix []int64
	cleanText      bool
	chinese        bool
	lowercase      bool
	stripAccents   bool
	rawTriggers    []string // added tokens matched on the raw text
	normTriggers   []string // added tokens matched on the normalized text
}

// LoadTokenizer reads a Hugging Face tokenizer.json. Errors name the file.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	slow, err := loadSugarme(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// kefu pads and truncates per batch; the file's own settings would double that work.
	slow.WithPadding(nil)
	slow.WithTruncation(nil)
	t := &Tokenizer{slow: slow}
	t.fast, err = parseWordPiece(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// loadSugarme calls pretrained.FromFile, which panics on some malformed files.
func loadSugarme(path string) (tk *tokenizer.Tokenizer, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed tokenizer: %v", r)
		}
	}()
	return pretrained.FromFile(path)
}

// Fast reports whether the tokenizer uses kefu's direct BERT pipeline.
func (t *Tokenizer) Fast() bool { return t.fast != nil }

// VocabSize is the number of ids the tokenizer can produce.
func (t *Tokenizer) VocabSize() int { return t.slow.GetVocabSize(true) }

// Encode appends the ids of text, with the template's special tokens, to dst and returns it.
// With maxLen > 0 the content is cut so that the whole encoding has at most maxLen ids
// (the special tokens are kept), and encoding stops early, so a long text costs no more than
// a text of maxLen tokens.
func (t *Tokenizer) Encode(dst []int64, text string, maxLen int) ([]int64, error) {
	if t.fast != nil && !t.fast.triggered(text) {
		return t.fast.encode(dst, text, maxLen), nil
	}
	if !utf8.ValidString(text) {
		// sugarme can log.Fatal on invalid UTF-8 next to an added token; clean_text would
		// drop the invalid bytes anyway.
		text = strings.ToValidUTF8(text, "")
	}
	out, err := t.encodeSlow(dst, text, maxLen)
	if err != nil {
		// sugarme panics on some texts with invalid UTF-8 or control characters; BERT's
		// clean_text removes those before anything else, so encode the text without them.
		return t.encodeSlow(dst, cleanText(text), maxLen)
	}
	return out, nil
}

// cleanText removes what BertNormalizer's clean_text removes: NUL, U+FFFD, invalid UTF-8,
// and control and format characters other than tab, newline and carriage return.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0 || r == utf8.RuneError || isControl(r) {
			return -1
		}
		return r
	}, s)
}

// EncodeSugarme encodes with sugarme only; tests and benchmarks compare it with Encode.
func (t *Tokenizer) EncodeSugarme(dst []int64, text string, maxLen int) ([]int64, error) {
	return t.encodeSlow(dst, text, maxLen)
}

func (t *Tokenizer) encodeSlow(dst []int64, text string, maxLen int) (out []int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tokenize: %v", r)
		}
	}()
	enc, err := t.slow.EncodeSingle(text, true)
	if err != nil {
		return dst, fmt.Errorf("tokenize: %w", err)
	}
	ids := enc.Ids
	if maxLen > 0 && len(ids) > maxLen {
		// Keep the template's trailing special tokens.
		tail := 0
		for i := len(enc.SpecialTokenMask) - 1; i >= 0 && enc.SpecialTokenMask[i] == 1; i-- {
			tail++
		}
		tail = min(tail, maxLen)
		ids = append(ids[:maxLen-tail:maxLen-tail], ids[len(ids)-tail:]...)
	}
	for _, id := range ids {
		dst = append(dst, int64(id))
	}
	return dst, nil
}

// hfFile is the part of tokenizer.json the direct pipeline reads.
type hfFile struct {
	AddedTokens []struct {
		Content    string `json:"content"`
		Normalized bool   `json:"normalized"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type   string            `json:"type"`
		Cls    []json.RawMessage `json:"cls"`
		Sep    []json.RawMessage `json:"sep"`
		Single []map[string]struct {
			ID     string `json:"id"`
			TypeID int    `json:"type_id"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
	} `json:"post_processor"`
	Model struct {
		Type                 string           `json:"type"`
		UnkToken             string           `json:"unk_token"`
		MaxInputCharsPerWord *int             `json:"max_input_chars_per_word"`
		Vocab                map[string]int64 `json:"vocab"`
	} `json:"model"`
}

var errNotBERT = errors.New("not the BERT pipeline")

// parseWordPiece builds the direct pipeline, or returns nil when the file describes another
// pipeline. It returns an error only for a file sugarme accepted but that is inconsistent.
func parseWordPiece(data []byte) (*wordPiece, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil // sugarme read it; leave it to sugarme
	}
	w, err := f.wordPiece()
	if errors.Is(err, errNotBERT) {
		return nil, nil
	}
	return w, err
}

func (f *hfFile) wordPiece() (*wordPiece, error) {
	if f.Model.Type != "WordPiece" || f.PreTokenizer == nil || f.PreTokenizer.Type != "BertPreTokenizer" ||
		f.PostProcessor == nil || (f.Normalizer != nil && f.Normalizer.Type != "BertNormalizer") {
		return nil, errNotBERT
	}
	w := &wordPiece{vocab: f.Model.Vocab, maxWordRunes: 100}
	unk := f.Model.UnkToken
	if unk == "" {
		unk = "[UNK]"
	}
	id, ok := w.vocab[unk]
	if !ok {
		return nil, fmt.Errorf("unknown-token %q is not in the vocabulary", unk)
	}
	w.unk = id
	if f.Model.MaxInputCharsPerWord != nil {
		w.maxWordRunes = *f.Model.MaxInputCharsPerWord
	}
	for tok := range w.vocab {
		w.maxPieceRunes = max(w.maxPieceRunes, utf8.RuneCountInString(strings.TrimPrefix(tok, "##")))
	}
	if n := f.Normalizer; n != nil {
		flag := func(b *bool) bool { return b != nil && *b }
		w.cleanText, w.chinese, w.lowercase, w.stripAccents =
			flag(n.CleanText), flag(n.HandleChineseChars), flag(n.Lowercase), flag(n.StripAccents)
	}
	if err := f.template(w); err != nil {
		return nil, err
	}
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			continue
		}
		if a.Normalized {
			w.normTriggers = append(w.normTriggers, a.Content)
		} else {
			w.rawTriggers = append(w.rawTriggers, a.Content)
		}
	}
	return w, nil
}

// template reads the special tokens placed around a single sequence.
func (f *hfFile) template(w *wordPiece) error {
	p := f.PostProcessor
	switch p.Type {
	case "BertProcessing":
		cls, err := tokenID(p.Cls)
		if err != nil {
			return err
		}
		sep, err := tokenID(p.Sep)
		if err != nil {
			return err
		}
		w.prefix, w.suffix = []int64{cls}, []int64{sep}
		return nil
	case "TemplateProcessing":
		seen := false
		for _, piece := range p.Single {
			if seq, ok := piece["Sequence"]; ok {
				if seen || seq.TypeID != 0 {
					return errNotBERT
				}
				seen = true
				continue
			}
			sp, ok := piece["SpecialToken"]
			if !ok || sp.TypeID != 0 {
				return errNotBERT
			}
			st, ok := p.SpecialTokens[sp.ID]
			if !ok {
				return fmt.Errorf("post_processor: special token %q has no ids", sp.ID)
			}
			if seen {
				w.suffix = append(w.suffix, st.IDs...)
			} else {
				w.prefix = append(w.prefix, st.IDs...)
			}
		}
		if !seen {
			return errNotBERT
		}
		return nil
	}
	return errNotBERT
}

func tokenID(pair []json.RawMessage) (int64, error) {
	var id int64
	if len(pair) != 2 || json.Unmarshal(pair[1], &id) != nil {
		return 0, errors.New("post_processor: cls and sep must be [token, id]")
	}
	return id, nil
}

// triggered reports whether text may contain an added token, which only sugarme splits out.
func (w *wordPiece) triggered(text string) bool {
	for _, s := range w.rawTriggers {
		if strings.Contains(text, s) {
			return true
		}
	}
	if len(w.normTriggers) > 0 {
		norm := w.normalize(text)
		for _, s := range w.normTriggers {
			if strings.Contains(norm, s) {
				return true
			}
		}
	}
	return false
}

// normalize applies BertNormalizer to the whole text (used only for added-token checks).
func (w *wordPiece) normalize(text string) string {
	var b strings.Builder
	for _, r := range text {
		r, keep, han := w.normRune(r)
		switch {
		case !keep:
		case han:
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normRune maps one rune through BertNormalizer: the rune after lowercasing, whether it is
// kept, and whether it is a CJK character that stands as a word of its own.
func (w *wordPiece) normRune(r rune) (rune, bool, bool) {
	if w.cleanText && (r == 0 || r == utf8.RuneError || isControl(r)) {
		return r, false, false
	}
	if w.chinese && isCJK(r) {
		return r, true, true
	}
	if w.lowercase {
		r = unicode.ToLower(r)
	}
	if w.stripAccents && unicode.Is(unicode.Mn, r) {
		return r, false, false
	}
	return r, true, false
}

// encode runs the pipeline over text. Words are cut at whitespace, punctuation and CJK
// characters; each word is looked up piece by piece without allocating.
func (w *wordPiece) encode(dst []int64, text string, maxLen int) []int64 {
	dst = append(dst, w.prefix...)
	limit := -1
	if maxLen > 0 {
		limit = len(dst) + max(0, maxLen-len(w.prefix)-len(w.suffix))
	}
	var wordBuf [256]byte
	var bounds [128]int
	sp := splitter{w: w, text: text}
	for limit < 0 || len(dst) < limit {
		word, starts, ok := sp.next(wordBuf[:0], bounds[:0])
		if !ok {
			break
		}
		dst = w.pieces(dst, word, starts, limit)
	}
	return append(dst, w.suffix...)
}

// splitter walks the normalized words of a text. next appends a word's bytes to word and the
// byte offset where each of its runes starts to starts; with both backed by the caller's
// arrays, splitting allocates nothing.
type splitter struct {
	w       *wordPiece
	text    string
	pending rune // a punctuation or CJK rune that ended the previous word, or 0
}

func (s *splitter) next(word []byte, starts []int) ([]byte, []int, bool) {
	if s.pending > 0 {
		word, starts = utf8.AppendRune(word, s.pending), append(starts, 0)
		s.pending = 0
		return word, starts, true
	}
	for i, r := range s.text {
		r, keep, alone := s.w.normRune(r)
		if !keep {
			continue
		}
		switch {
		case alone || isPunct(r):
			s.text = s.text[i+utf8.RuneLen(r):]
			if len(word) > 0 {
				s.pending = r
			} else {
				word, starts = utf8.AppendRune(word, r), append(starts, 0)
			}
			return word, starts, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f':
			if len(word) > 0 {
				s.text = s.text[i+1:]
				return word, starts, true
			}
		default:
			starts = append(starts, len(word))
			word = utf8.AppendRune(word, r)
		}
	}
	s.text = ""
	return word, starts, len(word) > 0
}

// PreTokenize splits text into the words a BERT tokenizer written by BertTokenizerJSON sees
// before WordPiece: control characters dropped, CJK characters and punctuation standing
// alone, and (with lowercase) lowercased with accents removed. Vocabulary learning uses it.
func PreTokenize(text string, lowercase bool) []string {
	sp := splitter{w: &wordPiece{cleanText: true, chinese: true, lowercase: lowercase, stripAccents: lowercase}, text: text}
	var out []string
	for {
		word, _, ok := sp.next(nil, nil)
		if !ok {
			return out
		}
		out = append(out, string(word))
	}
}

// pieces appends the WordPiece ids of one word: greedy longest match from the left, "##" on
// continuations, the whole word as [UNK] when any part has no match or it is too long.
func (w *wordPiece) pieces(dst []int64, word []byte, starts []int, limit int) []int64 {
	n := len(starts)
	if n > w.maxWordRunes {
		return append(dst, w.unk)
	}
	var keyBuf [258]byte
	mark := len(dst)
	for start := 0; start < n; {
		end := min(n, start+w.maxPieceRunes)
		found := false
		for ; end > start; end-- {
			key := keyBuf[:0]
			if start > 0 {
				key = append(key, '#', '#')
			}
			stop := len(word)
			if end < n {
				stop = starts[end]
			}
			key = append(key, word[starts[start]:stop]...)
			if id, ok := w.vocab[string(key)]; ok {
				dst = append(dst, id)
				found = true
				break
			}
		}
		if !found {
			return append(dst[:mark], w.unk)
		}
		start = end
	}
	if limit >= 0 && len(dst) > limit {
		dst = dst[:limit]
	}
	return dst
}

// isControl, isPunct and isCJK are BERT's character classes as sugarme defines them.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

func isPunct(r rune) bool {
	if r < 0x80 {
		return (r >= 0x21 && r <= 0x2f) || (r >= 0x3a && r <= 0x40) || (r >= 0x5b && r <= 0x60) || (r >= 0x7b && r <= 0x7e)
	}
	return unicode.Is(unicode.P, r)
}

func isCJK(r rune) bool {
	// sugarme's table lists 0x3400-0x4DBF (CJK Extension A) after 0x4E00-0x9FFF; the
	// unicode package's linear search stops at the first range above r, so sugarme never
	// treats Extension A as Chinese. Neither does kefu, to give the same ids.
	return (r >= 0x4e00 && r <= 0x9fff) || (r >= 0xf900 && r <= 0xfaff) ||
		(r >= 0x20000 && r <= 0x2a6df) || (r >= 0x2a700 && r <= 0x2b73f) || (r >= 0x2b740 && r <= 0x2b81f) ||
		(r >= 0x2b820 && r <= 0x2ceaf) || (r >= 0x2f800 && r <= 0x2fa1f)
}
