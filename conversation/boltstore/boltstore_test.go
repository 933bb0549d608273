package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/boltstore"
)

func open(t *testing.T, path string) (*bolt.DB, *boltstore.Store) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.New(db, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

// TestEmbeddedStoreKeepsConversationsAcrossRestarts: compare-and-set saves and deletes,
// and what was saved is there when the file is opened again.
func TestEmbeddedStoreKeepsConversationsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kefu.db")
	db, s := open(t, path)
	c := conversation.New("c1", time.Now())
	c.AddTurn(conversation.Turn{Text: "我的订单到哪了"})
	if err := s.Save(ctx, c); err != nil || c.Version != 1 {
		t.Fatalf("save: %v, version %d", err, c.Version)
	}
	stale := *c
	stale.Version = 0
	if err := s.Save(ctx, &stale); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("a stale save: %v", err)
	}
	c.AddTurn(conversation.Turn{Text: "KF20261122"})
	if err := s.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	gone := conversation.New("gone", time.Now())
	s.Save(ctx, gone)
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, s = open(t, path)
	defer db.Close()
	got, err := s.Load(ctx, "c1")
	if err != nil || got.Version != 2 || got.TurnCount != 2 || got.Turns[1].Text != "KF20261122" {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	if _, err := s.Load(ctx, "gone"); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("a deleted conversation: %v", err)
	}
	if err := s.Delete(ctx, &conversation.Conversation{ID: "c1", Version: 1}); !errors.Is(err, conversation.ErrConflict) {
		t.Fatalf("a stale delete: %v", err)
	}
}
