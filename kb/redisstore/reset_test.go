package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/kb/redisstore"
)

// TestKBSurvivesARedisThatLostItsData: Redis restarts without persistence (its KB keys
// gone, the connections cut). The running nodes keep answering from their last copy, never
// empty, and write it back: afterwards the store holds the articles and experiments again
// and a node started then sees them.
func TestKBSurvivesARedisThatLostItsData(t *testing.T) {
	direct, prefix := testenv.Redis(t)
	p := strings.TrimSuffix(prefix, ":")
	proxy := testenv.NewProxy(t, testenv.RedisAddr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	opt := kb.Options{RetryWait: 50 * time.Millisecond}
	open := func() *kb.KB {
		k, err := kb.Open(ctx, redisstore.New(rdb, redisstore.Options{Prefix: p, Block: 100 * time.Millisecond}), opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	a, b := open(), open()
	for _, art := range []kb.Article{faq("refund-time", "how long does a refund take", "Five days."), faq("shipping", "do you ship abroad", "Yes.")} {
		if _, err := a.Create(ctx, art, "ann"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Publish(ctx, art.ID, "ann"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateExperiment(ctx, kb.Experiment{ID: "wording", Article: "refund-time", Variants: []kb.Arm{{Answer: "v1", Weight: 1}, {Answer: "v2", Weight: 1}}}, "ann"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { _, err := b.Experiment("wording"); return b.Len() == 2 && err == nil })

	proxy.Down() // Redis goes away...
	iter := direct.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) { // ...and comes back with nothing
		direct.Del(ctx, iter.Val())
	}
	proxy.Up(t)
	for _, k := range []*kb.KB{a, b} {
		for range 20 { // answers all along
			if r, err := k.Find(ctx, kb.Question{Text: "how long does a refund take", Lang: "en"}); err != nil || r.Article != "refund-time" {
				t.Fatalf("while the store is empty: %+v %v", r, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		n, _ := direct.HLen(ctx, p+":{kb}:articles").Result()
		return n == 2
	})
	c := open()
	if c.Len() != 2 {
		t.Errorf("a node started after the re-seed sees %d articles", c.Len())
	}
	if _, err := c.Experiment("wording"); err != nil {
		t.Errorf("the experiment was not written back: %v", err)
	}
}
