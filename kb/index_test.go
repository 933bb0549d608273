package kb

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// TestTiesComeBackByIDPastTheFirstFetch: with more equal scores than the index fetches by
// score alone (2k), the k results are still the k smallest ids, as with fewer.
func TestTiesComeBackByIDPastTheFirstFetch(t *testing.T) {
	idx, err := NewIndex()
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	var arts []*Article
	var want []string
	for _, i := range []int{17, 3, 29, 11, 0, 23, 8, 14, 5, 26, 2, 20, 9, 28, 1, 13, 24, 6, 19, 4, 27, 10, 16, 7, 21, 12, 25, 15, 22, 18} {
		a := article(fmt.Sprintf("gift-%02d", i), []string{"gift wrapping"}, "", "yes")
		arts, want = append(arts, &a), append(want, a.ID)
	}
	slices.Sort(want)
	other := article("other", []string{"gift card balance"}, "", "no")
	if err := idx.Put(append(arts, &other)...); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{3, 10, 15, 40} {
		hits, err := idx.Search(context.Background(), "gift wrapping", "", k)
		if err != nil {
			t.Fatal(err)
		}
		got := ids(hits)
		exp := append(slices.Clone(want), "other")[:min(k, len(want)+1)]
		if !slices.Equal(got, exp) {
			t.Errorf("k=%d: %v, want %v", k, got, exp)
		}
	}
}

// TestCommonTermsOnly: on a KB where every query term is common, the articles that have
// all of them come first; a query whose common terms no article has together still finds
// articles with some of them.
func TestCommonTermsOnly(t *testing.T) {
	idx, err := NewIndex()
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	var arts []*Article
	for i := range 2400 { // each word in 1,200 questions: common (CommonMin 1,000)
		q := fmt.Sprintf("refund for order %d", i)
		if i%2 == 1 {
			q = fmt.Sprintf("shipping policy %d", i)
		}
		a := article(fmt.Sprintf("r%04d", i), []string{q}, "", "answer")
		arts = append(arts, &a)
	}
	both := article("both", []string{"refund shipping"}, "", "answer")
	if err := idx.Put(append(arts, &both)...); err != nil {
		t.Fatal(err)
	}
	terms := idx.queryTerms("refund shipping")
	if len(terms.search) != 0 || terms.allCommon() == nil {
		t.Fatalf("refund and shipping should both be common here: %+v", terms)
	}
	hits, err := idx.Search(context.Background(), "refund shipping", "", 5)
	if err != nil || len(hits) == 0 || hits[0].ID != "both" || hits[0].Confidence != 1 {
		t.Errorf("refund shipping: %+v %v, want the article with both first", hits, err)
	}
	hits, err = idx.Search(context.Background(), "order policy", "", 5)
	if err != nil || len(hits) != 5 {
		t.Errorf("order policy (no article has both): %v %v, want 5 hits", ids(hits), err)
	}
}

// TestDocumentFrequencyIsBleves: the document frequencies the index keeps for the IDF and
// the common terms are bleve's own, for every question term, after articles are added,
// edited (questions changed, one repeated within an article), unpublished and deleted.
func TestDocumentFrequencyIsBleves(t *testing.T) {
	idx, err := NewIndex()
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	a := article("a", []string{"where is my refund", "退款到账了吗"}, "", "soon")
	b := article("b", []string{"refund refund please", "refund status"}, "", "soon")
	c := article("c", []string{"退款多久到账"}, "zh", "三天")
	d := article("d", []string{"change my address"}, "en", "here")
	check := func(step string) {
		t.Helper()
		r, err := idx.idx.Advanced()
		if err != nil {
			t.Fatal(err)
		}
		reader, err := r.Reader()
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		n, err := reader.DocCount()
		if err != nil {
			t.Fatal(err)
		}
		if int(n) != idx.Len() {
			t.Errorf("%s: bleve has %d documents, the index %d articles", step, n, idx.Len())
		}
		for key, id := range idx.dict {
			field := fieldQWords
			if key[0] == 'b' {
				field = fieldQBigrams
			}
			tfr, err := reader.TermFieldReader(context.Background(), []byte(key[1:]), field, false, false, false)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := idx.df[id], int32(tfr.Count()); got != want {
				t.Errorf("%s: %s %q in %d articles, bleve says %d", step, field, key[1:], got, want)
			}
			tfr.Close()
		}
	}
	if err := idx.Put(&a, &b, &c, &d); err != nil {
		t.Fatal(err)
	}
	check("added")
	b.Questions = []string{"shipping status"}
	c.Questions = []string{"退款多久到账", "退款到账了吗"}
	if err := idx.Put(&b, &c); err != nil {
		t.Fatal(err)
	}
	check("edited")
	a.Status = Draft
	d.Deleted = true
	if err := idx.Put(&a, &d); err != nil {
		t.Fatal(err)
	}
	check("unpublished and deleted")
	if idx.df[idx.dict["wrefund"]] != 0 || idx.df[idx.dict["b退款"]] != 1 {
		t.Errorf("refund in %d articles (want 0), 退款 in %d (want 1)", idx.df[idx.dict["wrefund"]], idx.df[idx.dict["b退款"]])
	}
}
