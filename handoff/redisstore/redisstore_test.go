package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/outboxtest"
	"github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestOutboxSurvivesADeadConsumerAndAFlakyReceiver: one process takes a delivery and dies
// before finishing it; another claims it after the back-off. A receiver failing half the
// time gets every delivery, each key accepted once; one that always fails ends as a dead
// letter with its error.
func TestOutboxSurvivesADeadConsumerAndAFlakyReceiver(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := prefix[:len(prefix)-1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt := handoff.Options{Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxAttempts: 6, Timeout: 50 * time.Millisecond}

	// The dying process: reads one delivery and never acknowledges it.
	dying := redisstore.NewOutbox(rdb, p, "dying", opt, nil)
	if err := dying.Enqueue(ctx, handoff.Delivery{Key: "k0", Kind: "handoff", Body: []byte(`{"n":0}`), Enqueued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	dctx, kill := context.WithCancel(ctx)
	took := make(chan struct{})
	go dying.Run(dctx, func(ctx context.Context, d handoff.Delivery) error {
		close(took)
		<-ctx.Done() // killed mid-delivery
		return ctx.Err()
	})
	<-took
	kill()

	var mu sync.Mutex
	got := map[string]int{}
	tries := map[string]int{}
	deliver := func(ctx context.Context, d handoff.Delivery) error {
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
		if err := dying.Enqueue(ctx, handoff.Delivery{Key: k, Kind: "handoff", Body: []byte(`{}`), Enqueued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} { // two live processes share the work
		o := redisstore.NewOutbox(rdb, p, name, opt, func(err error) { t.Log(err) })
		wg.Add(1)
		go func() { defer wg.Done(); o.Run(ctx, deliver) }()
	}
	o := redisstore.NewOutbox(rdb, p, "observer", opt, nil)
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

// TestOnCluster: the outbox's checks again on a local Redis Cluster (three masters, three
// replicas): its stream, group and markers share the hash tag {outbox}.
func TestOnCluster(t *testing.T) {
	testenv.UseRedis(t, testenv.StartCluster(t).Client(t))
	t.Run("dead consumer, flaky receiver", TestOutboxSurvivesADeadConsumerAndAFlakyReceiver)
	t.Run("two nodes, slow desk", TestTwoNodesAndASlowDeskPostEachHandoffOnce)
	t.Run("retry a dead letter", TestRetryDeadLetter)
}

func TestRetryDeadLetter(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	outboxtest.RetryDeadLetter(t, redisstore.NewOutbox(rdb, strings.TrimSuffix(prefix, ":"), "node", outboxtest.Options, nil))
}
