package kb_test

import (
	"context"
	"fmt"

	"github.com/kefu-ai/kefu/kb"
)

// A knowledge base on an in-memory journal: publish two articles, then answer a Chinese and
// an English question with BM25 and the confidence kefu uses to call an answer found.
func ExampleKB() {
	ctx := context.Background()
	j, _ := kb.OpenJournal("") // "": in memory
	defer j.Close()
	k, err := kb.Open(ctx, j, kb.Options{})
	if err != nil {
		panic(err)
	}
	defer k.Close()
	for _, a := range []kb.Article{
		{ID: "refund-time", Status: kb.Published, Questions: []string{"退款多久到账", "how long does a refund take"},
			Answers: []kb.Answer{{ID: "v1", Text: map[string]string{"zh": "退款 1–3 个工作日到账。", "en": "Refunds arrive in 1–3 working days."}}}},
		{ID: "gift-wrap", Status: kb.Published, Questions: []string{"可以礼品包装吗", "can you gift wrap my order"},
			Answers: []kb.Answer{{ID: "v1", Text: map[string]string{"zh": "结账时选择礼品包装。", "en": "Choose gift wrap at checkout."}}}},
	} {
		if _, err := k.Create(ctx, a, "editor"); err != nil {
			panic(err)
		}
	}
	for _, q := range []kb.Question{{Text: "我的退款多久能到账？", Lang: "zh"}, {Text: "how long until my refund arrives", Lang: "en"}} {
		r, err := k.Answer(ctx, q)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s → %s (found %v): %s\n", q.Text, r.Article, r.Found, r.Text)
	}
	// Output:
	// 我的退款多久能到账？ → refund-time (found true): 退款 1–3 个工作日到账。
	// how long until my refund arrives → refund-time (found true): Refunds arrive in 1–3 working days.
}
