package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// desk is a handoff receiver: it takes delay per delivery, fails while failing is set,
// and counts the deliveries it accepted and the attempts it saw, per key.
type desk struct {
	delay    time.Duration
	failing  atomic.Bool
	mu       sync.Mutex
	accepted map[string]int
	attempts map[string]int
}

func newDesk(delay time.Duration) *desk {
	return &desk{delay: delay, accepted: map[string]int{}, attempts: map[string]int{}}
}

func (d *desk) deliver(ctx context.Context, del handoff.Delivery) error {
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts[del.Key]++
	if d.failing.Load() {
		return fmt.Errorf("desk down")
	}
	d.accepted[del.Key]++
	return nil
}

func (d *desk) count(keys ...string) (accepted, attempted int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if d.accepted[k] > 0 {
			accepted++
		}
		if d.attempts[k] > 0 {
			attempted++
		}
	}
	return
}

func waitFor(t *testing.T, limit time.Duration, what string, done func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !done() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestTwoNodesAndASlowDeskPostEachHandoffOnce: a desk taking a second per delivery, two
// nodes, 50 handoffs: each is POSTed once (a node claims an entry right before posting it,
// so the other's retry pass never takes one still waiting in a batch), and the nodes'
// pools of 8 deliver them in parallel.
func TestTwoNodesAndASlowDeskPostEachHandoffOnce(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := prefix[:len(prefix)-1]
	opt := handoff.Options{Backoff: 200 * time.Millisecond, MaxBackoff: time.Second, Timeout: 2 * time.Second, Concurrency: 8}
	d := newDesk(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var keys []string
	a := redisstore.NewOutbox(rdb, p, "node-a", opt, nil)
	for i := range 50 {
		keys = append(keys, fmt.Sprintf("c%d:handoff:x", i))
		if err := a.Enqueue(ctx, handoff.Delivery{Key: keys[i], Kind: "handoff", Body: []byte("{}"), Enqueued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"node-a", "node-b"} {
		box := redisstore.NewOutbox(rdb, p, name, opt, nil)
		wg.Add(1)
		go func() { defer wg.Done(); box.Run(ctx, d.deliver) }()
	}
	took := waitFor(t, 30*time.Second, "50 handoffs delivered", func() bool { n, _ := d.count(keys...); return n == 50 })
	time.Sleep(2 * time.Second) // a duplicate would arrive by now
	d.mu.Lock()
	for _, k := range keys {
		if d.attempts[k] != 1 {
			t.Errorf("%s was POSTed %d times", k, d.attempts[k])
		}
	}
	d.mu.Unlock()
	if took > 12*time.Second {
		t.Errorf("50 one-second deliveries over two nodes of 8 took %s", took)
	}
	t.Logf("50 handoffs through a 1 s desk, two nodes: %s", took.Round(100*time.Millisecond))
}

// TestNewHandoffsAreNotHeldBehindOldOnesInBackoff: 100 old deliveries in a long back-off,
// then 10 new ones that failed once: when the desk recovers, the new ones arrive within
// their own short back-off, although every old one comes before them in the pending list.
func TestNewHandoffsAreNotHeldBehindOldOnesInBackoff(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := prefix[:len(prefix)-1]
	opt := handoff.Options{Backoff: 200 * time.Millisecond, MaxBackoff: time.Minute, MaxAttempts: 50, Timeout: time.Second}
	d := newDesk(0)
	d.failing.Store(true)
	ctx := context.Background()
	run := func() (stop func()) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		box := redisstore.NewOutbox(rdb, p, "node", opt, nil)
		go func() { defer close(done); box.Run(c, d.deliver) }()
		return func() { cancel(); <-done }
	}
	box := redisstore.NewOutbox(rdb, p, "node", opt, nil)
	enqueue := func(name string, n int) []string {
		var keys []string
		for i := range n {
			keys = append(keys, fmt.Sprintf("%s%d:handoff:x", name, i))
			box.Enqueue(ctx, handoff.Delivery{Key: keys[i], Kind: "handoff", Body: []byte("{}"), Enqueued: time.Now()})
		}
		return keys
	}
	old := enqueue("old", 100)
	stop := run()
	waitFor(t, 10*time.Second, "old ones attempted", func() bool { _, n := d.count(old...); return n == 100 })
	stop()
	// They have failed many times: put them in a long back-off (retry count 10 → a minute).
	stream := p + ":{outbox}:stream"
	pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "kefu", Start: "-", End: "+", Count: 1000}).Result()
	if err != nil || len(pend) != 100 {
		t.Fatalf("pending %d %v", len(pend), err)
	}
	for _, e := range pend {
		rdb.Do(ctx, "XCLAIM", stream, "kefu", "node", 0, e.ID, "RETRYCOUNT", 10, "JUSTID")
	}
	stop = run()
	defer stop()
	fresh := enqueue("new", 10)
	waitFor(t, 10*time.Second, "new ones attempted", func() bool { _, n := d.count(fresh...); return n == 10 })
	d.failing.Store(false)
	took := waitFor(t, 10*time.Second, "new ones delivered after the desk recovered", func() bool { n, _ := d.count(fresh...); return n == 10 })
	if took > 5*time.Second { // behind 100 old ones the first 64 only were ever looked at: never
		t.Errorf("the new handoffs took %s after the desk recovered; their back-off is about 1.2 s", took)
	}
	if n, _ := d.count(old...); n > 0 {
		t.Errorf("%d old ones delivered before their back-off", n)
	}
	t.Logf("new handoffs delivered %s after the desk recovered, behind 100 in back-off", took.Round(10*time.Millisecond))
}
