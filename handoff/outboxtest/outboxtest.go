// Package outboxtest checks what every handoff.Outbox must do with its dead letters.
package outboxtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/handoff"
)

// Options are the delivery options the outbox under test must be built with: few, fast
// attempts.
var Options = handoff.Options{Backoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxAttempts: 2, Timeout: time.Second}

// RetryDeadLetter: a delivery the desk refused every attempt is a dead letter; once the desk
// is fixed, Retry puts it back and it is delivered once; the dead letter is gone, and a
// second Retry finds none.
func RetryDeadLetter(t *testing.T, box handoff.Outbox) {
	t.Helper()
	ctx := context.Background()
	var fixed atomic.Bool
	var mu sync.Mutex
	got := map[string]int{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		box.Run(runCtx, func(_ context.Context, d handoff.Delivery) error {
			if !fixed.Load() {
				return errors.New("desk down")
			}
			mu.Lock()
			got[d.Key]++
			mu.Unlock()
			return nil
		})
	}()
	defer func() { stop(); <-done }()
	key := "retry-me:handoff:1"
	if err := box.Enqueue(ctx, handoff.Delivery{Key: key, Kind: handoff.KindHandoff, Body: []byte(`{"type":"handoff"}`), Enqueued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	wait("a dead letter", func() bool { d, _ := box.Dead(ctx); return len(d) == 1 })
	if err := box.Retry(ctx, "no-such:handoff:1"); !errors.Is(err, handoff.ErrNoDeadLetter) {
		t.Errorf("retrying an unknown key: %v", err)
	}
	fixed.Store(true)
	if err := box.Retry(ctx, key); err != nil {
		t.Fatal(err)
	}
	wait("the retried delivery", func() bool { mu.Lock(); defer mu.Unlock(); return got[key] == 1 })
	if d, _ := box.Dead(ctx); len(d) != 0 {
		t.Errorf("dead letters after the retry: %+v", d)
	}
	if err := box.Retry(ctx, key); !errors.Is(err, handoff.ErrNoDeadLetter) {
		t.Errorf("a second retry: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if got[key] != 1 {
		t.Errorf("delivered %d times", got[key])
	}
}
