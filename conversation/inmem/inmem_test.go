package inmem_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/inmem"
)

func TestMemStoreCompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := inmem.NewStore(0)
	if _, err := s.Load(ctx, "x"); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("load missing: %v", err)
	}
	a := conversation.New("x", time.Now())
	if err := s.Save(ctx, a); err != nil || a.Version != 1 {
		t.Fatalf("first save: %v v%d", err, a.Version)
	}
	b, _ := s.Load(ctx, "x")
	a.Lang = "zh"
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, b); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
	if err := s.Delete(ctx, b); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("erasing a stale copy: %v", err)
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, a); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestCallsOnce: concurrent asks for one key make one call and share its result; a call
// whose ctx ended is not kept.
func TestCallsOnce(t *testing.T) {
	r := inmem.NewCalls(0)
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := r.Once(t.Context(), "k", time.Second, func(context.Context) []byte {
				calls.Add(1)
				time.Sleep(20 * time.Millisecond)
				return []byte(`{"ok":1}`)
			})
			if err != nil || string(b) != `{"ok":1}` {
				t.Errorf("%q %v", b, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d calls for one key", calls.Load())
	}
	ctx, cancel := context.WithCancel(t.Context())
	if _, err := r.Once(ctx, "gone", time.Second, func(context.Context) []byte { cancel(); return []byte(`{}`) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned: %v", err)
	}
	if b, _ := r.Once(t.Context(), "gone", time.Second, func(context.Context) []byte { return []byte(`{"again":1}`) }); string(b) != `{"again":1}` {
		t.Fatalf("after an abandoned call: %q", b)
	}
}
