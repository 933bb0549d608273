package boltstore_test

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics/boltstore"
	"github.com/kefu-ai/kefu/analytics/storetest"
)

func TestStore(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := boltstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}

// BenchmarkSummary90Days: a summary over 90 days of 100,000 conversations a day (the
// issue's bound: 100 ms).
func BenchmarkSummary90Days(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := boltstore.New(db)
	if err != nil {
		b.Fatal(err)
	}
	storetest.BenchSummary(b, s, storetest.Fill(b, s, 90))
}
