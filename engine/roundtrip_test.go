package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/analytics"
	anredis "github.com/kefu-ai/kefu/analytics/redisstore"
	"github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/handoff"
	boxredis "github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// roundTrips counts what a client sends to Redis: each command or pipeline is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// TestATurnIsOneRedisRoundTrip: with conversations, the handoff outbox, action results and
// the service's figures in Redis, as kefu serve --redis runs, a turn of a conversation this
// node last saved sends Redis one script (the compare-and-set save) and nothing else: its
// state comes from the node's copy, and its figures are written after the reply, batched
// with other turns'.
func TestATurnIsOneRedisRoundTrip(t *testing.T) {
	shared, prefix := testenv.Redis(t)
	opt := shared.(*redis.Client).Options()
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	count := &roundTrips{}
	rdb.AddHook(count)
	p := prefix + "rt"
	cfg := demoConfig(t)
	cfg.Store = redisstore.New(rdb, redisstore.Options{Prefix: p})
	cfg.Calls = redisstore.NewCalls(rdb, p, time.Hour)
	cfg.Outbox = boxredis.NewOutbox(rdb, p, "node0", handoff.Options{}, nil)
	figures := anredis.New(rdb, p, 0)
	if err := figures.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg.Analytics = analytics.NewRecorder(figures, nil)
	eng := engine.New(cfg)
	turn := func(id, text string) (int64, *engine.MessageResult) {
		t.Helper()
		before := count.n.Load()
		res, err := eng.Message(t.Context(), id, engine.MessageRequest{Text: text})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		return count.n.Load() - before, res
	}
	turn("warm", "hello") // loads the save script into Redis
	first, _ := turn("c1", "hello")
	if first != 2 {
		t.Errorf("a new conversation's first turn: %d round trips, want 2 (a read that finds nothing, the save)", first)
	}
	for _, text := range []string{"where is my order", "how long does a refund take to arrive", "谢谢", "可以开发票吗", "I want to change my address"} {
		n, res := turn("c1", text)
		if n != 1 {
			t.Errorf("%q (%s): %d round trips, want 1", text, res.Source, n)
		}
	}
}
