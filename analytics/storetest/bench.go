package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/analytics"
)

// Fill writes the counters of days days of 100,000 conversations a day (eight channel and
// language pairs, every metric the recorder writes: about 1,300 fields a bucket) into s:
// one day bucket per day and the 24 hour buckets of the first and last days, the ones a
// summary of the period reads. It returns the period.
func Fill(tb testing.TB, s analytics.Store, days int) analytics.Query {
	tb.Helper()
	end := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	fields := map[string]int64{}
	for _, ch := range []string{"web", "app", "wechat", "-"} {
		for _, lang := range []string{"zh", "en"} {
			f := func(m string, n int64) { fields[ch+"|"+lang+"|"+m] = n }
			f("conv", 12500)
			f("msg", 50000)
			for _, src := range []string{"dialog", "kb", "clarify", "handoff", "agent"} {
				f("src."+src, 10000)
			}
			for i := range 32 {
				f(fmt.Sprintf("int.intent_%02d", i), 1500)
			}
			for _, m := range []string{"neg", "kb.ask", "kb.hit", "ho", "ho.conv", "end", "auto", "csat.n", "csat.sum", "rel"} {
				f(m, 1000)
			}
			for i := range 28 {
				f(fmt.Sprintf("rt.%d", i), 1700)
			}
			for _, r := range []string{"requested", "complaint", "complaint_keywords", "negative_emotion", "unresolved", "low_confidence"} {
				f("ho.r."+r, 200)
			}
			for _, q := range []string{"vip", "after_sales", "payments", "general"} {
				f("ho.q."+q, 300)
			}
			for _, p := range []string{"normal", "high", "urgent"} {
				f("ho.p."+p, 400)
				f("acc."+p, 390)
				f("sla."+p+".met", 350)
				f("sla."+p+".breached", 40)
				for i := range 28 {
					f(fmt.Sprintf("tta.%s.%d", p, i), 14)
				}
			}
			for i := 1; i <= 5; i++ {
				f(fmt.Sprintf("csat.%d", i), 200)
			}
		}
	}
	ctx := context.Background()
	put := func(bucket string) {
		if err := s.Apply(ctx, &analytics.Batch{Counters: map[string]map[string]int64{bucket: fields}}); err != nil {
			tb.Fatal(err)
		}
	}
	for d := start; d.Before(end); d = d.Add(24 * time.Hour) {
		put(analytics.DayBucket(d))
	}
	for h := range 24 {
		put(analytics.HourBucket(start.Add(-time.Duration(h+1) * time.Hour)))
		put(analytics.HourBucket(end.Add(time.Duration(h) * time.Hour)))
	}
	return analytics.Query{From: start.Add(-12 * time.Hour), To: end.Add(12 * time.Hour)}
}

// BenchSummary measures a summary of q on s: read from the store every time ("cold"),
// and through the cache of final buckets a running kefu reads through ("warm").
func BenchSummary(b *testing.B, s analytics.Store, q analytics.Query) {
	b.Run("cold", func(b *testing.B) { benchSummary(b, s, q) })
	b.Run("warm", func(b *testing.B) { benchSummary(b, analytics.Cached(s, nil), q) })
}

func benchSummary(b *testing.B, s analytics.Store, q analytics.Query) {
	b.ReportAllocs()
	for b.Loop() {
		sum, err := analytics.Summarize(context.Background(), s, q)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Conversations == 0 {
			b.Fatal("no conversations")
		}
	}
}
