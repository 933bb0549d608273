package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
	anbolt "github.com/kefu-ai/kefu/analytics/boltstore"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

var resultSink *engine.MessageResult

// demoEngine is the demo bot on the demo model with the bundled KB, conversations in
// memory: kefu serve without Redis, minus HTTP.
func demoEngine(b *testing.B, figures ...*analytics.Recorder) *engine.Engine {
	cfg := demoConfig(b)
	if len(figures) > 0 {
		cfg.Analytics = figures[0]
	}
	return engine.New(cfg)
}

// demoConfig is demoEngine's configuration, for a test to add a store to.
func demoConfig(tb testing.TB) engine.Config {
	tb.Helper()
	rt := testenv.Runtime(tb)
	bundle := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot")
	// MaxWait 1µs: a serial loop measures the turn, not the batcher's 1 ms wait for company.
	clf, err := models.Load(rt, filepath.Join(bundle, "model"), models.Config{MaxWait: time.Microsecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { clf.Close() })
	bot, err := dialogs.Load(os.DirFS(bundle), ".")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(bundle, "kb", "faq.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	articles, err := kb.ParseYAML(path, data)
	if err != nil {
		tb.Fatal(err)
	}
	j, _ := kb.OpenJournal("")
	k, err := kb.Open(tb.Context(), j, kb.Options{MinConfidence: 0.3})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.Close(); j.Close() })
	if _, err := k.Import(tb.Context(), articles, "bench", false); err != nil {
		tb.Fatal(err)
	}
	return engine.Config{NLU: clf, Bot: dialogs.NewMachine(bot, nil), KB: k}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTurn: one customer message through the whole in-process turn (NLU, policy,
// dialog or KB, save in memory), one sub-benchmark per kind of turn. Each conversation takes
// a few turns, so its state stays small. cpu-µs/op is the process's CPU time per turn,
// background work (the analytics flush) included.
func BenchmarkTurn(b *testing.B) { turns(b, demoEngine(b)) }

// BenchmarkTurnAnalytics is BenchmarkTurn with the service's figures recorded in an
// embedded kefu.db and flushed every second, as kefu serve without Redis does: the
// recording's cost is the difference (benchstat; README, Service figures).
func BenchmarkTurnAnalytics(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st, err := anbolt.New(db)
	if err != nil {
		b.Fatal(err)
	}
	eng := demoEngine(b, analytics.NewRecorder(st, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Watch(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	turns(b, eng)
}

func turns(b *testing.B, eng *engine.Engine) {
	for _, tc := range []struct {
		name  string
		texts []string
	}{
		{"dialog", []string{"你好", "hello", "thank you", "谢谢"}},
		{"kb", []string{"退款多久能到账", "how long does a refund take to arrive", "可以开发票吗", "do you ship abroad"}},
		{"slot", []string{"帮我查一下我的订单到哪了", "I want to change my address"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				text := tc.texts[i%len(tc.texts)]
				r, err := eng.Message(b.Context(), fmt.Sprintf("bench-%s-%d", tc.name, i/4), engine.MessageRequest{Text: text})
				if err != nil {
					b.Fatal(err)
				}
				resultSink = r
				i++
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
	b.Run("parallel", func(b *testing.B) { // steady state: callers on every core, batches fill
		b.ReportAllocs()
		var n atomic.Int64
		cpu := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				r, err := eng.Message(b.Context(), fmt.Sprintf("bench-p-%d", i/4), engine.MessageRequest{Text: "how long does a refund take to arrive"})
				if err != nil {
					b.Error(err)
					return
				}
				resultSink = r
			}
		})
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}
