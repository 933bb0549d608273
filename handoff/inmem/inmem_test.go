package inmem_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/inmem"
	"github.com/kefu-ai/kefu/handoff/outboxtest"
)

func TestMemOutboxRetriesWithBackoffThenDeadLetters(t *testing.T) {
	o := inmem.NewOutbox(handoff.Options{Backoff: time.Millisecond, MaxAttempts: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.Run(ctx, func(ctx context.Context, d handoff.Delivery) error {
			n := calls.Add(1)
			if d.Key == "ok" && n >= 2 {
				return nil
			}
			return errors.New("down")
		})
	}()
	o.Enqueue(ctx, handoff.Delivery{Key: "ok"})
	o.Enqueue(ctx, handoff.Delivery{Key: "ok"}) // a repeat key is ignored
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := o.Depth(ctx); n > 0 && time.Now().Before(deadline); n, _ = o.Depth(ctx) {
		time.Sleep(time.Millisecond)
	}
	if calls.Load() != 2 {
		t.Fatalf("ok delivered after %d calls, want 2", calls.Load())
	}
	o.Enqueue(ctx, handoff.Delivery{Key: "never"})
	for dead, _ := o.Dead(ctx); len(dead) == 0 && time.Now().Before(deadline); dead, _ = o.Dead(ctx) {
		time.Sleep(time.Millisecond)
	}
	dead, _ := o.Dead(ctx)
	if len(dead) != 1 || dead[0].Key != "never" || dead[0].Attempts != 3 || dead[0].Error != "down" {
		t.Fatalf("dead letters %+v", dead)
	}
	if w := (handoff.Options{Backoff: time.Second, MaxBackoff: 10 * time.Second}).Wait(5); w != 10*time.Second {
		t.Fatalf("backoff after 5 failures %v, want the 10s cap", w)
	}
	if w := (handoff.Options{Backoff: time.Second}).Wait(3); w != 4*time.Second {
		t.Fatalf("backoff after 3 failures %v, want 4s", w)
	}
	cancel()
	<-done
}

func TestRetryDeadLetter(t *testing.T) {
	outboxtest.RetryDeadLetter(t, inmem.NewOutbox(outboxtest.Options))
}
