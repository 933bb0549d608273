package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/boltstore"
	"github.com/kefu-ai/kefu/handoff/outboxtest"
)

// TestEmbeddedOutboxDeliversAfterARestart: deliveries queued while the desk is down stay
// on disk across a restart and go out afterwards, each once; one that always fails ends
// as a dead letter; Erase removes a conversation's.
func TestEmbeddedOutboxDeliversAfterARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kefu.db")
	opt := handoff.Options{Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 3, Timeout: time.Second}
	db, _ := bolt.Open(path, 0o600, nil)
	box, err := boltstore.New(db, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a:handoff:1", "b:handoff:1", "a:handoff:1", "erase:handoff:1", "doomed:handoff:1"} {
		box.Enqueue(ctx, handoff.Delivery{Key: k, Kind: "handoff", Body: []byte("{}")})
	}
	if n, _ := box.Depth(ctx); n != 4 {
		t.Fatalf("depth %d, want 4 (one key twice)", n)
	}
	box.Erase(ctx, "erase")
	db.Close() // the process dies with everything pending

	db, _ = bolt.Open(path, 0o600, nil)
	defer db.Close()
	box, _ = boltstore.New(db, opt)
	var mu sync.Mutex
	got := map[string]int{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		box.Run(runCtx, func(_ context.Context, d handoff.Delivery) error {
			if d.Key == "doomed:handoff:1" {
				return errors.New("desk refuses it")
			}
			mu.Lock()
			got[d.Key]++
			mu.Unlock()
			return nil
		})
	}()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if dead, _ := box.Dead(ctx); len(dead) == 1 {
			break
		}
	}
	stop()
	<-done
	dead, _ := box.Dead(ctx)
	if got["a:handoff:1"] != 1 || got["b:handoff:1"] != 1 || got["erase:handoff:1"] != 0 || len(dead) != 1 || dead[0].Attempts != 3 {
		t.Fatalf("delivered %v, dead %+v", got, dead)
	}
	if n, _ := box.Depth(ctx); n != 0 {
		t.Errorf("depth %d after delivery", n)
	}
}

func TestRetryDeadLetter(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	box, err := boltstore.New(db, outboxtest.Options)
	if err != nil {
		t.Fatal(err)
	}
	outboxtest.RetryDeadLetter(t, box)
}
