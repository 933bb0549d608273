package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/dialogs/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

func TestSaveIsCompareAndSetWithTTLAndTranscript(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	s := redisstore.New(rdb, redisstore.Options{Prefix: prefix[:len(prefix)-1], TTL: time.Hour, Transcript: 100})
	if _, err := s.Load(ctx, "c1"); !errors.Is(err, dialogs.ErrNotFound) {
		t.Fatalf("missing conversation: %v", err)
	}
	a := &dialogs.Conversation{ID: "c1"}
	a.AddTurn(dialogs.Turn{Text: "你好"})
	if err := s.Save(ctx, a); err != nil || a.Version != 1 {
		t.Fatalf("save: %v v%d", err, a.Version)
	}
	b, err := s.Load(ctx, "c1")
	if err != nil || b.Turns[0].Text != "你好" {
		t.Fatalf("load: %v %+v", err, b)
	}
	a.AddTurn(dialogs.Turn{Text: "where is my order"})
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.AddTurn(dialogs.Turn{Text: "lost"})
	if err := s.Save(ctx, b); !errors.Is(err, dialogs.ErrConflict) {
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
	if err := s.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, key, prefix+"{conv:c1}:log").Val(); n != 0 {
		t.Fatalf("delete left %d keys", n)
	}
	if err := s.Delete(ctx, "c1"); !errors.Is(err, dialogs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestOutboxSurvivesADeadConsumerAndAFlakyReceiver: one process takes a delivery and dies
// before finishing it; another claims it after the back-off. A receiver failing half the
// time gets every delivery, each key accepted once; one that always fails ends as a dead
// letter with its error.
func TestOutboxSurvivesADeadConsumerAndAFlakyReceiver(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := prefix[:len(prefix)-1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt := dialogs.OutboxOptions{Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxAttempts: 6, Timeout: 50 * time.Millisecond}

	// The dying process: reads one delivery and never acknowledges it.
	dying := redisstore.NewOutbox(rdb, p, "dying", opt)
	if err := dying.Enqueue(ctx, dialogs.Delivery{Key: "k0", Kind: "handoff", Body: []byte(`{"n":0}`), Enqueued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	dctx, kill := context.WithCancel(ctx)
	took := make(chan struct{})
	go dying.Run(dctx, func(ctx context.Context, d dialogs.Delivery) error {
		close(took)
		<-ctx.Done() // killed mid-delivery
		return ctx.Err()
	}, nil)
	<-took
	kill()

	var mu sync.Mutex
	got := map[string]int{}
	tries := map[string]int{}
	deliver := func(ctx context.Context, d dialogs.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		tries[d.Key]++
		if tries[d.Key]%2 == 1 { // every first try fails: the receiver is down half the time
			return errors.New("receiver down")
		}
		if d.Key == "poison" {
			return errors.New("422 unprocessable")
		}
		got[d.Key]++
		return nil
	}
	for _, k := range []string{"k1", "k2", "k3", "k1", "poison"} { // k1 twice: kept once
		if err := dying.Enqueue(ctx, dialogs.Delivery{Key: k, Kind: "handoff", Body: []byte(`{}`), Enqueued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} { // two live processes share the work
		o := redisstore.NewOutbox(rdb, p, name, opt)
		wg.Add(1)
		go func() { defer wg.Done(); o.Run(ctx, deliver, func(err error) { t.Log(err) }) }()
	}
	o := redisstore.NewOutbox(rdb, p, "observer", opt)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		dead, _ := o.Dead(ctx)
		depth, _ := o.Depth(ctx)
		if depth == 0 && len(dead) == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"k0", "k1", "k2", "k3"} {
		if got[k] != 1 {
			t.Errorf("%s delivered %d times, want 1 (all: %v)", k, got[k], got)
		}
	}
	dead, _ := o.Dead(context.Background())
	if len(dead) != 1 || dead[0].Key != "poison" || dead[0].Attempts != 6 || dead[0].Error == "" {
		t.Fatalf("dead letters %+v", dead)
	}
}
