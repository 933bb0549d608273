package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/kefu-ai/kefu/kb"
)

// benchKB measures the knowledge base on generated articles: how fast the index is built,
// top-10 query latency by query length, and memory.
func benchKB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench kb", "[flags]", stderr)
	n := fs.Int("articles", 100000, "articles to generate (half Chinese, half English)")
	queries := fs.Int("queries", 2000, "queries per query length")
	seed := fs.Uint64("seed", 1, "random seed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the queries here")
	batchSize := fs.Int("batch", 1000, "articles per index batch")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	gen := newTextGen(*seed)
	articles := make([]*kb.Article, *n)
	for i := range articles {
		zh := i%2 == 0
		a := &kb.Article{ID: fmt.Sprintf("a%06d", i), Status: kb.Published}
		for range 3 {
			a.Questions = append(a.Questions, gen.text(zh, 4+gen.r.IntN(9)))
		}
		lang := "en"
		if zh {
			lang = "zh"
		}
		a.Answers = []kb.Answer{{ID: "v1", Text: map[string]string{lang: gen.text(zh, 20+gen.r.IntN(20))}}}
		articles[i] = a
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	idx, err := kb.NewIndex()
	if err != nil {
		return err
	}
	defer idx.Close()
	start := time.Now()
	batch := *batchSize
	for i := 0; i < len(articles); i += batch {
		if err := idx.Put(articles[i:min(i+batch, len(articles))]...); err != nil {
			return err
		}
	}
	build := time.Since(start)
	start = time.Now()
	if err := idx.Compact(ctx); err != nil { // as a KB does after loading more than one batch
		return err
	}
	merge := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Fprintf(stdout, "kb index: %d articles (3 questions + 1 answer each, half zh, half en) in %.1f s = %.0f articles/s, then merged into one segment in %.1f s; Go heap %.0f MiB with the articles (%.0f MiB before indexing)\n",
		*n, build.Seconds(), float64(*n)/build.Seconds(), merge.Seconds(), float64(after.HeapAlloc)/(1<<20), float64(before.HeapAlloc)/(1<<20))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stdout, "top-10 query latency, %d queries per length, one goroutine:\n", *queries)
	var all []float64
	for words := 1; words <= 10; words++ {
		lat := make([]float64, 0, *queries)
		for q := range *queries {
			text := gen.text(q%2 == 0, words)
			t0 := time.Now()
			if _, err := idx.Search(ctx, text, "", 10); err != nil {
				return err
			}
			lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		}
		slices.Sort(lat)
		all = append(all, lat...)
		fmt.Fprintf(stdout, "  %2d words: p50 %.3f ms, p99 %.3f ms\n", words, quantile(lat, 0.5), quantile(lat, 0.99))
	}
	slices.Sort(all)
	fmt.Fprintf(stdout, "  all:      p50 %.3f ms, p99 %.3f ms\n", quantile(all, 0.5), quantile(all, 0.99))
	return nil
}

// textGen writes text from Zipf-distributed vocabularies: English words built from
// syllables plus the demo KB's words, and Chinese characters from the common range.
type textGen struct {
	r      *rand.Rand
	en, zh []string
	zen    *rand.Zipf
	zzh    *rand.Zipf
}

func newTextGen(seed uint64) *textGen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &textGen{r: r}
	seen := map[string]bool{}
	if data, err := bot.ReadFile("bot/kb/faq.yaml"); err == nil {
		for _, w := range strings.FieldsFunc(string(data), func(c rune) bool { return !unicode.IsLetter(c) }) {
			w = strings.ToLower(w)
			if !seen[w] {
				seen[w] = true
				if unicode.Is(unicode.Han, []rune(w)[0]) {
					for _, c := range w {
						g.zh = append(g.zh, string(c))
					}
				} else {
					g.en = append(g.en, w)
				}
			}
		}
	}
	syll := []string{"ka", "lo", "mi", "ter", "ran", "sel", "po", "dun", "vi", "gre", "ba", "son", "tal", "eth", "qu", "ir"}
	for len(g.en) < 20000 {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		g.en = append(g.en, b.String())
	}
	for c := rune(0x4E00); len(g.zh) < 4000; c++ {
		g.zh = append(g.zh, string(c))
	}
	g.zen = rand.NewZipf(r, 1.1, 2, uint64(len(g.en)-1))
	g.zzh = rand.NewZipf(r, 1.1, 2, uint64(len(g.zh)-1))
	return g
}

// text returns n words of English, or n×2 Chinese characters (about as much meaning).
func (g *textGen) text(zh bool, n int) string {
	var b strings.Builder
	for i := range n {
		if zh {
			b.WriteString(g.zh[g.zzh.Uint64()])
			b.WriteString(g.zh[g.zzh.Uint64()])
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.en[g.zen.Uint64()])
	}
	return b.String()
}
