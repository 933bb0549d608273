package inmem

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
)

// TestInMemoryStoreSweepsExpiredConversations: conversations nobody reads again do not
// stay in memory past their TTL.
func TestInMemoryStoreSweepsExpiredConversations(t *testing.T) {
	s := NewStore(time.Hour)
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	for i := range 100 {
		if err := s.Save(context.Background(), conversation.New(fmt.Sprint("old-", i), now)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Hour)
	if err := s.Save(context.Background(), conversation.New("new", now)); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("%d conversations held two hours later, want 1", n)
	}
}
