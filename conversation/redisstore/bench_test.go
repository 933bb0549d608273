package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

var convSink *conversation.Conversation

// BenchmarkSave: one turn's save on the test Redis (compare-and-set script, 10 turns of
// state), with and without the transcript stream, and a load.
func BenchmarkSave(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	for _, transcript := range []int64{0, 1000} {
		b.Run(fmt.Sprint("transcript=", transcript), func(b *testing.B) {
			// A prefix of its own per run: with -count, a run must not find the last one's record.
			s := redisstore.New(rdb, redisstore.Options{Prefix: fmt.Sprint(prefix, transcript, "-", time.Now().UnixNano()), Transcript: transcript})
			c := conversation.New("bench", time.Now())
			for i := range 10 {
				c.AddTurn(conversation.Turn{Text: fmt.Sprint("我的订单 KF1234567", i, " 到哪了"), Intent: "order_status", Replies: []string{"请提供订单号"}})
			}
			b.ReportAllocs()
			for b.Loop() {
				c.AddTurn(conversation.Turn{Text: "where is my order", Intent: "order_status", Replies: []string{"Your order number?"}})
				if err := s.Save(b.Context(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("load", func(b *testing.B) {
		s := redisstore.New(rdb, redisstore.Options{Prefix: fmt.Sprint(prefix, "load-", time.Now().UnixNano())})
		c := conversation.New("bench", time.Now())
		for i := range 10 {
			c.AddTurn(conversation.Turn{Text: fmt.Sprint("message ", i), Replies: []string{"reply"}})
		}
		if err := s.Save(b.Context(), c); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			got, err := s.Load(b.Context(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			convSink = got
		}
	})
}
