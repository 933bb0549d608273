package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

func TestSaveIsCompareAndSetWithTTLAndTranscript(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	s := redisstore.New(rdb, redisstore.Options{Prefix: prefix[:len(prefix)-1], TTL: time.Hour, Transcript: 100})
	if _, err := s.Load(ctx, "c1"); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("missing conversation: %v", err)
	}
	a := conversation.New("c1", time.Now())
	a.AddTurn(conversation.Turn{Text: "你好"})
	if err := s.Save(ctx, a); err != nil || a.Version != 1 {
		t.Fatalf("save: %v v%d", err, a.Version)
	}
	b, err := s.Load(ctx, "c1")
	if err != nil || b.Turns[0].Text != "你好" {
		t.Fatalf("load: %v %+v", err, b)
	}
	a.AddTurn(conversation.Turn{Text: "where is my order"})
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.AddTurn(conversation.Turn{Text: "lost"})
	if err := s.Save(ctx, b); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("stale save must conflict: %v", err)
	}
	key := prefix + "{conv:c1}:state"
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL %v, want about an hour", ttl)
	}
	turns, err := s.Transcript(ctx, "c1")
	if err != nil || len(turns) != 2 || turns[1].Text != "where is my order" {
		t.Fatalf("transcript %v %+v", err, turns)
	}
	if err := s.Delete(ctx, b); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("erasing a stale copy must conflict: %v", err)
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, key, prefix+"{conv:c1}:log").Val(); n != 0 {
		t.Fatalf("delete left %d keys", n)
	}
	if err := s.Delete(ctx, a); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestSaveIsRecordedOnceWhenRepliesAreLost: the proxy loses a third of Redis's replies
// after Redis ran the command; go-redis sends the command again, and the save script knows
// its own write: every save succeeds, and every turn is recorded exactly once.
func TestSaveIsRecordedOnceWhenRepliesAreLost(t *testing.T) {
	_, prefix := testenv.Redis(t)
	px := testenv.NewProxy(t, testenv.RedisAddr())
	rdb := redis.NewClient(&redis.Options{Addr: px.Addr, MaxRetries: 10, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s := redisstore.New(rdb, redisstore.Options{Prefix: prefix[:len(prefix)-1], Transcript: 1000, Cache: -1})
	if err := rdb.Ping(ctx).Err(); err != nil { // load the script before replies go missing
		t.Fatal(err)
	}
	var n atomic.Int64
	px.DropReplies(func(reply []byte) bool { // the script's integer replies, not the handshakes
		return reply[0] == ':' && n.Add(1)%3 == 0
	})
	const turns = 200
	c := conversation.New("lossy", time.Now())
	for i := range turns {
		c.AddTurn(conversation.Turn{Text: fmt.Sprint("message ", i)})
		if err := s.Save(ctx, c); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	px.DropReplies(nil)
	if px.Dropped.Load() < turns/4 {
		t.Fatalf("only %d replies were lost; the test proves nothing", px.Dropped.Load())
	}
	got, err := s.Load(ctx, "lossy")
	if err != nil || got.TurnCount != turns || got.Version != turns {
		t.Fatalf("stored %v: %d turns, version %d; want %d", err, got.TurnCount, got.Version, turns)
	}
	log, _ := s.Transcript(ctx, "lossy")
	seen := map[string]int{}
	for _, tr := range log {
		seen[tr.Text]++
	}
	if len(log) != turns || len(seen) != turns {
		t.Fatalf("transcript has %d entries, %d distinct; want %d each", len(log), len(seen), turns)
	}
}

// TestCallsAreMadeOnceAcrossNodes: two nodes ask for the same call at the same moment; the
// backend is called once and both get its result; a later ask gets the kept result.
func TestCallsAreMadeOnceAcrossNodes(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := prefix[:len(prefix)-1]
	nodes := []*redisstore.Calls{redisstore.NewCalls(rdb, p, time.Hour), redisstore.NewCalls(rdb, p, time.Hour)}
	var calls atomic.Int32
	call := func(context.Context) []byte {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return []byte(`{"fields":{"refund_id":"RF1"}}`)
	}
	for round := range 20 {
		key := fmt.Sprint("conv:inst:3:confirm:refund:", round)
		var wg sync.WaitGroup
		results := make([]string, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := nodes[i%2].Once(t.Context(), key, time.Second, call)
				if err != nil {
					t.Error(err)
				}
				results[i] = string(b)
			}()
		}
		wg.Wait()
		for _, r := range results {
			if r != `{"fields":{"refund_id":"RF1"}}` {
				t.Fatalf("round %d: results %q", round, results)
			}
		}
	}
	if n := calls.Load(); n != 20 {
		t.Fatalf("backend called %d times for 20 keys asked 4 times each", n)
	}
	// A call abandoned (its ctx ended) is not kept: the next ask calls again.
	ctx, cancel := context.WithCancel(t.Context())
	_, err := nodes[0].Once(ctx, "abandoned", time.Second, func(context.Context) []byte { cancel(); return []byte(`{}`) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v", err)
	}
	b, err := nodes[1].Once(t.Context(), "abandoned", time.Second, func(context.Context) []byte { return []byte(`{"again":true}`) })
	if err != nil || string(b) != `{"again":true}` {
		t.Fatalf("after an abandoned call: %q %v", b, err)
	}
}

// TestOnCluster: the store's checks again on a local Redis Cluster (three masters, three
// replicas): a conversation's keys share its hash tag, and erasure scans every master.
func TestOnCluster(t *testing.T) {
	testenv.UseRedis(t, testenv.StartCluster(t).Client(t))
	t.Run("compare-and-set", TestSaveIsCompareAndSetWithTTLAndTranscript)
	t.Run("calls", TestCallsAreMadeOnceAcrossNodes)
}
