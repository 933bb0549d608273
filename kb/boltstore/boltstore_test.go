package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/kb/boltstore"
)

// TestEmbeddedCountersSurviveAReopen: exposures and outcomes are on disk as they happen
// (no save at shutdown), count once per conversation, and only for exposed ones.
func TestEmbeddedCountersSurviveAReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kefu.db")
	db, _ := bolt.Open(path, 0o600, nil)
	c, err := boltstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c.Expose(ctx, "e", "short", "conv-1")
	}
	c.Outcome(ctx, "e", "conv-1", kb.OutcomeCSAT, kb.RateFields(4, 0))
	c.Outcome(ctx, "e", "conv-1", kb.OutcomeCSAT, kb.RateFields(1, 0))
	c.Outcome(ctx, "e", "never-shown", kb.OutcomeUnresolved, map[string]int64{"unresolved": 1})
	db.Close() // as after a crash: nothing else was written
	db, _ = bolt.Open(path, 0o600, nil)
	defer db.Close()
	c, _ = boltstore.New(db)
	counts, err := c.Counts(ctx, "e")
	got := counts["short"]
	if err != nil || got.Exposures != 1 || got.CSATN != 1 || got.CSATSum != 4 || got.Unresolved != 0 || len(counts) != 1 {
		t.Fatalf("counts %+v %v", counts, err)
	}
	c.Forget(ctx, "e", "conv-1")
	if first, _ := c.Expose(ctx, "e", "v1", "conv-1"); !first {
		t.Errorf("a forgotten conversation is exposed again as new")
	}
}
