package kb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	bleveindex "github.com/blevesearch/bleve_index_api"
)

// How text is indexed. Every question and answer goes into two fields:
//
//   - words: Unicode word segmentation, lower case, English stop words removed, Porter
//     stemming. Chinese comes out of the segmenter one character per token, so this field is
//     also the per-character field that lets a one-character query ("退") match. A search
//     looks for single Chinese characters in the questions only: in answers, which are long,
//     a character is everywhere and its bigrams already say which word it is part of (this
//     cut a Chinese search on the demo KB by 10 % and changed no ranking of the paraphrase
//     test).
//   - bigrams: Chinese characters as overlapping bigrams (bleve's cjk_bigram), everything
//     else dropped. A bigram match is evidence of a Chinese word, which single characters are
//     not.
//
// Scoring is BM25 (k1 1.2, b 0.75, bleve's constants) on a scorch index; bleve's
// NewMemOnly would score with TF-IDF instead. Questions weigh QuestionBoost times answers.
const (
	fieldQWords   = "q_words"
	fieldQBigrams = "q_bigrams"
	fieldAWords   = "a_words"
	fieldABigrams = "a_bigrams"
	fieldLang     = "lang"

	analyzerWords    = "kefu_words"
	analyzerBigrams  = "kefu_bigrams"
	filterHanBigrams = "kefu_han_bigrams"

	// QuestionBoost is how much more a match in the questions counts than one in the answers.
	QuestionBoost = 3.0
	// MaxQueryBytes is where a query is cut (at a character boundary).
	MaxQueryBytes = 512
	// langAll is the lang field's value for articles of every language.
	langAll = "all"
)

var registerOnce sync.Once

// hanBigrams keeps the Chinese bigrams of a token stream: tokens of two or more characters
// that contain a Han character. Lone characters are the words field's job.
type hanBigrams struct{}

func (hanBigrams) Filter(in analysis.TokenStream) analysis.TokenStream {
	out := in[:0]
	for _, t := range in {
		if utf8.RuneCount(t.Term) < 2 {
			continue
		}
		for _, r := range string(t.Term) {
			if unicode.Is(unicode.Han, r) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func newMapping() (*mapping.IndexMappingImpl, error) {
	var regErr error
	registerOnce.Do(func() {
		regErr = registry.RegisterTokenFilter(filterHanBigrams, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
			return hanBigrams{}, nil
		})
	})
	if regErr != nil {
		return nil, regErr
	}
	im := bleve.NewIndexMapping()
	im.ScoringModel = bleveindex.BM25Scoring
	if err := im.AddCustomAnalyzer(analyzerWords, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unicodetok.Name,
		"token_filters": []string{en.PossessiveName, lowercase.Name, en.StopName, porter.Name},
	}); err != nil {
		return nil, err
	}
	if err := im.AddCustomAnalyzer(analyzerBigrams, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unicodetok.Name,
		"token_filters": []string{cjk.WidthName, lowercase.Name, cjk.BigramName, filterHanBigrams},
	}); err != nil {
		return nil, err
	}
	doc := bleve.NewDocumentStaticMapping()
	text := func(analyzer string) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store, f.IncludeInAll, f.IncludeTermVectors, f.DocValues = false, false, false, false
		return f
	}
	doc.AddFieldMappingsAt(fieldQWords, text(analyzerWords))
	doc.AddFieldMappingsAt(fieldQBigrams, text(analyzerBigrams))
	doc.AddFieldMappingsAt(fieldAWords, text(analyzerWords))
	doc.AddFieldMappingsAt(fieldABigrams, text(analyzerBigrams))
	kw := bleve.NewKeywordFieldMapping()
	kw.Store, kw.IncludeInAll, kw.DocValues = false, false, false
	doc.AddFieldMappingsAt(fieldLang, kw)
	im.DefaultMapping = doc
	im.DefaultAnalyzer = analyzerWords
	return im, nil
}

// indexDoc is what bleve indexes of an article.
type indexDoc struct {
	QWords   []string `json:"q_words"`
	QBigrams []string `json:"q_bigrams"`
	AWords   []string `json:"a_words"`
	ABigrams []string `json:"a_bigrams"`
	Lang     string   `json:"lang"`
}

func newIndexDoc(a *Article) indexDoc {
	d := indexDoc{QWords: a.Questions, QBigrams: a.Questions, Lang: a.Lang}
	if d.Lang == "" {
		d.Lang = langAll
	}
	for _, ans := range a.Answers {
		for _, l := range Langs {
			if t := ans.Text[l]; t != "" {
				d.AWords = append(d.AWords, t)
				d.ABigrams = append(d.ABigrams, t)
			}
		}
	}
	return d
}

// Index is the search index over published articles: a bleve scorch index held in memory
// (rebuilt from the store at start), plus each article's questions, analysed once, for the
// confidence.
type Index struct {
	idx     bleve.Index
	dir     string
	words   analysis.Analyzer
	bigrams analysis.Analyzer

	mu        sync.RWMutex
	questions map[string][]question
	dict      map[string]uint32 // the questions' terms ("w" or "b", then the term) → id
	// df is, by term id, the number of searchable articles whose questions have the term:
	// bleve's document frequency in the question fields, kept here so that a search need not
	// open a term reader per query term before the search proper.
	df map[uint32]int32
}

// question is one of an article's questions and its terms: its distinct words, then its
// distinct Chinese bigrams, in the order they first occur, as ids of Index.dict. Analysing
// the questions of every hit at every search cost more than the search itself.
type question struct {
	text  string
	terms []uint32
}

// termKeys are text's distinct words and bigrams, as keys of Index.dict.
func (x *Index) termKeys(text string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, part := range []struct {
		prefix   string
		analyzer analysis.Analyzer
	}{{"w", x.words}, {"b", x.bigrams}} {
		for _, tok := range part.analyzer.Analyze([]byte(text)) {
			if k := part.prefix + string(tok.Term); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// NewIndex returns an empty index.
func NewIndex() (*Index, error) {
	im, err := newMapping()
	if err != nil {
		return nil, err
	}
	// The index lives in a temporary directory, rebuilt from the store at every start (the
	// store is the source of truth). Not in memory: scorch without a path never merges its
	// segments, so every edit would add one and searches would slow down for ever.
	dir, err := os.MkdirTemp("", "kefu-kb-index-*")
	if err != nil {
		return nil, fmt.Errorf("kb index: %w", err)
	}
	idx, err := bleve.NewUsing(filepath.Join(dir, "index"), im, scorch.Name, scorch.Name, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("kb index: %w", err)
	}
	return &Index{
		idx: idx, dir: dir, words: im.AnalyzerNamed(analyzerWords), bigrams: im.AnalyzerNamed(analyzerBigrams),
		questions: map[string][]question{}, dict: map[string]uint32{}, df: map[uint32]int32{},
	}, nil
}

// Close releases the index and removes its files.
func (x *Index) Close() error {
	err := x.idx.Close()
	return errors.Join(err, os.RemoveAll(x.dir))
}

// Put indexes the articles that are published and removes the others (drafts, deletions)
// from the index, in one batch.
func (x *Index) Put(articles ...*Article) error {
	b := x.idx.NewBatch()
	for _, a := range articles {
		if a.Status == Published && !a.Deleted {
			if err := b.Index(a.ID, newIndexDoc(a)); err != nil {
				return fmt.Errorf("kb index %q: %w", a.ID, err)
			}
		} else {
			b.Delete(a.ID)
		}
	}
	if err := x.idx.Batch(b); err != nil {
		return fmt.Errorf("kb index: %w", err)
	}
	keys := make([][][]string, len(articles))
	for i, a := range articles {
		if a.Status == Published && !a.Deleted {
			for _, q := range a.Questions {
				keys[i] = append(keys[i], x.termKeys(q))
			}
		}
	}
	x.mu.Lock()
	for i, a := range articles {
		x.count(x.questions[a.ID], -1)
		if a.Status != Published || a.Deleted {
			delete(x.questions, a.ID)
			continue
		}
		qs := make([]question, len(a.Questions))
		for j, text := range a.Questions {
			qs[j].text = text
			for _, k := range keys[i][j] {
				id, ok := x.dict[k]
				if !ok {
					id = uint32(len(x.dict))
					x.dict[k] = id
				}
				qs[j].terms = append(qs[j].terms, id)
			}
		}
		x.questions[a.ID] = qs
		x.count(qs, 1)
	}
	x.mu.Unlock()
	return nil
}

// count adds d to the document frequency of each distinct term of one article's questions.
// The caller holds x.mu.
func (x *Index) count(qs []question, d int32) {
	seen := map[uint32]bool{}
	for _, q := range qs {
		for _, id := range q.terms {
			if !seen[id] {
				seen[id] = true
				x.df[id] += d
			}
		}
	}
}

// Len is the number of searchable articles.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.questions)
}

// Hit is one search result.
type Hit struct {
	ID string `json:"id" required:"true"`
	// Score is the BM25 score bleve gives the article for this query; comparable only
	// within one query.
	Score float64 `json:"score" required:"true"`
	// Confidence is the share of the query's information that the article's closest
	// question contains, in [0, 1]: the IDF-weighted fraction of the query's terms (words and
	// Chinese bigrams) that occur in that question. It does not depend on the query's length
	// or the index's size, so one threshold serves every query (see Confident).
	Confidence float64 `json:"confidence" required:"true"`
	// Question is the article's question closest to the query.
	Question string `json:"question" required:"true"`
}

// Search returns the k best published articles for text in lang ("" for any), best first;
// equal scores are ordered by id. The text is analysed as words, never parsed as query
// syntax, and cut at MaxQueryBytes.
func (x *Index) Search(ctx context.Context, text, lang string, k int) ([]Hit, error) {
	text = truncate(strings.TrimSpace(text), MaxQueryBytes)
	if text == "" {
		return nil, &ValidationError{Field: "q", Msg: "is empty"}
	}
	if lang != "" && !slices.Contains(Langs, lang) {
		return nil, &ValidationError{Field: "lang", Msg: fmt.Sprintf("must be zh, en or empty, got %q", lang)}
	}
	if k < 1 || k > 100 {
		return nil, &ValidationError{Field: "k", Msg: fmt.Sprintf("must be between 1 and 100, got %d", k)}
	}
	terms := x.queryTerms(text)
	var err error
	// Articles in another language are left out. Without a language the query goes to bleve
	// as it is: NewBooleanQuery would wrap it in a conjunction of one, which costs a call per
	// match (8 % of a search on a large KB).
	var mustNot []query.Query
	for _, l := range Langs {
		if lang != "" && l != lang {
			t := bleve.NewTermQuery(l)
			t.SetField(fieldLang)
			mustNot = append(mustNot, t)
		}
	}
	inLang := func(q query.Query) query.Query {
		if len(mustNot) == 0 {
			return q
		}
		return &query.BooleanQuery{Must: q, MustNot: query.NewDisjunctionQuery(mustNot)}
	}
	var top []*search.DocumentMatch
	if all := terms.allCommon(); all != nil {
		if top, err = x.top(ctx, inLang(all), k); err != nil {
			return nil, fmt.Errorf("kb search: %w", err)
		}
	}
	if len(top) == 0 {
		if top, err = x.top(ctx, inLang(terms.query()), k); err != nil {
			return nil, fmt.Errorf("kb search: %w", err)
		}
	}
	hits := make([]Hit, 0, len(top))
	x.mu.RLock()
	defer x.mu.RUnlock()
	weights := terms.byID(x.dict)
	for _, h := range top {
		hit := Hit{ID: h.ID, Score: h.Score}
		for _, q := range x.questions[h.ID] {
			if c := terms.coverage(weights, q); c > hit.Confidence || hit.Question == "" {
				hit.Confidence, hit.Question = c, q.text
			}
		}
		hits = append(hits, hit)
	}
	return hits, nil
}

// top returns q's k best matches, by score and then by id. Sorting on the id makes bleve
// read the id of every match, the most costly part of a search on a large index; so it asks
// for the 2k best by score alone and orders them itself, which gives the same k whenever the
// k-th score is above the last one fetched (every match that ties with the k-th is then among
// them). Otherwise (a tie that runs past 2k) it asks again, sorted by id.
func (x *Index) top(ctx context.Context, q query.Query, k int) ([]*search.DocumentMatch, error) {
	n := 2 * k
	res, err := x.idx.SearchInContext(ctx, bleve.NewSearchRequestOptions(q, n, 0, false))
	if err != nil {
		return nil, err
	}
	hits := res.Hits
	if len(hits) == n && hits[k-1].Score == hits[n-1].Score {
		req := bleve.NewSearchRequestOptions(q, k, 0, false)
		req.SortBy([]string{"-_score", "_id"})
		if res, err = x.idx.SearchInContext(ctx, req); err != nil {
			return nil, err
		}
		return res.Hits, nil
	}
	slices.SortStableFunc(hits, func(a, b *search.DocumentMatch) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return hits[:min(k, len(hits))], nil
}

// queryTerms holds the query's distinct terms per field with their IDF, and the terms to
// search for.
type queryTerms struct {
	words, bigrams map[string]float64
	total          float64
	search, common map[string][]query.Query // by field
	each           []query.Query            // per common term: its question or answer field
}

// Common terms: a query term found in the questions of more than CommonShare of the
// articles, and of at least CommonMin, is not searched for (unless the query has nothing
// else). Scanning its postings costs more than anything else in a query on a large KB and
// it barely moves the ranking (the idea of Lucene's CommonTermsQuery); the confidence
// still counts it. A query of common terms only ("退款" on a KB where both characters and
// the word are everywhere) asks first for the articles that have every one of them, as
// CommonTermsQuery does, and only when there are none for those that have any.
const (
	CommonShare = 0.01
	CommonMin   = 1000
)

// query is the disjunction of the query's terms in the question fields (boosted) and the
// answer fields.
func (qt *queryTerms) query() query.Query {
	byField := qt.search
	if len(byField) == 0 {
		byField = qt.common
	}
	return disjunction(byField)
}

// allCommon is, for a query of common terms only, the conjunction of its terms (each in a
// question or an answer field); nil for other queries.
func (qt *queryTerms) allCommon() query.Query {
	if len(qt.search) > 0 || len(qt.each) < 2 {
		return nil
	}
	return bleve.NewConjunctionQuery(qt.each...)
}

func disjunction(byField map[string][]query.Query) query.Query {
	var fields []query.Query
	for _, f := range []string{fieldQWords, fieldQBigrams, fieldAWords, fieldABigrams} {
		if len(byField[f]) > 0 {
			fields = append(fields, bleve.NewDisjunctionQuery(byField[f]...))
		}
	}
	return bleve.NewDisjunctionQuery(fields...)
}

func (x *Index) queryTerms(text string) *queryTerms {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.questions)
	qt := &queryTerms{words: map[string]float64{}, bigrams: map[string]float64{},
		search: map[string][]query.Query{}, common: map[string][]query.Query{}}
	common := max(CommonShare*float64(n), CommonMin)
	add := func(dst map[string]float64, prefix string, analyzer analysis.Analyzer, qField, aField string) {
		for _, tok := range analyzer.Analyze([]byte(text)) {
			term := string(tok.Term)
			if _, ok := dst[term]; ok {
				continue
			}
			var df int32
			if id, ok := x.dict[prefix+term]; ok {
				df = x.df[id]
			}
			// BM25's IDF, as bleve computes it.
			idf := math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
			dst[term] = idf
			qt.total += idf
			q, a := bleve.NewTermQuery(term), bleve.NewTermQuery(term)
			q.SetField(qField)
			q.SetBoost(QuestionBoost)
			a.SetField(aField)
			dst := qt.search
			if float64(df) > common {
				dst = qt.common
				qt.each = append(qt.each, q)
			}
			dst[qField] = append(dst[qField], q)
			if float64(df) <= common && !(aField == fieldAWords && loneHan(term)) {
				dst[aField] = append(dst[aField], a)
			}
		}
	}
	add(qt.words, "w", x.words, fieldQWords, fieldAWords)
	add(qt.bigrams, "b", x.bigrams, fieldQBigrams, fieldABigrams)
	return qt
}

// byID is the IDF of each of the query's terms that some question has, by its id in dict.
func (qt *queryTerms) byID(dict map[string]uint32) map[uint32]float64 {
	out := make(map[uint32]float64, len(qt.words)+len(qt.bigrams))
	for prefix, terms := range map[string]map[string]float64{"w": qt.words, "b": qt.bigrams} {
		for term, idf := range terms {
			if id, ok := dict[prefix+term]; ok {
				out[id] = idf
			}
		}
	}
	return out
}

// coverage is the IDF-weighted share of the query's terms (weights, from byID) found in q.
func (qt *queryTerms) coverage(weights map[uint32]float64, q question) float64 {
	if qt.total == 0 {
		return 0
	}
	var found float64
	for _, id := range q.terms {
		found += weights[id]
	}
	return found / qt.total
}

// loneHan reports whether term is one Chinese character.
func loneHan(term string) bool {
	r, size := utf8.DecodeRuneInString(term)
	return size == len(term) && unicode.Is(unicode.Han, r)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Compact merges the index's segments into one. A bulk load leaves dozens, and a search
// reads every segment (on 100,000 articles one segment answers in about two thirds of the
// time); later edits add small segments that scorch's own merger folds in.
func (x *Index) Compact(ctx context.Context) error {
	r, err := x.idx.Advanced()
	if err != nil {
		return err
	}
	if s, ok := r.(*scorch.Scorch); ok {
		return s.ForceMerge(ctx, nil)
	}
	return nil
}
