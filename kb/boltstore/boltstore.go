// Package boltstore keeps the knowledge base's experiment counters in an embedded bbolt
// file (the single node's kefu.db), committed as they change, so that a crash loses no
// count. Articles stay in the journal (kb.Journal).
//
// Bucket "kb-counts": EXP|VARIANT|FIELD → int64; bucket "kb-marks": EXP|KIND|CONV → the
// variant shown (kind seen) or "1".
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/kb"
)

var (
	countsB = []byte("kb-counts")
	marksB  = []byte("kb-marks")
)

// Counters implements kb.Counters on db.
type Counters struct{ db *bolt.DB }

var _ kb.Counters = (*Counters)(nil)

// New returns the counters in db.
func New(db *bolt.DB) (*Counters, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{countsB, marksB} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.Path(), err)
	}
	return &Counters{db: db}, nil
}

func mark(exp, kind, conv string) []byte { return []byte(exp + "|" + kind + "|" + conv) }

func add(b *bolt.Bucket, exp, variant, field string, n int64) error {
	k := []byte(exp + "|" + variant + "|" + field)
	var cur int64
	if v := b.Get(k); len(v) == 8 {
		cur = int64(binary.BigEndian.Uint64(v))
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(cur+n))
	return b.Put(k, buf[:])
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", kb.ErrUnavailable, err)
}

// Expose implements kb.Counters.
func (c *Counters) Expose(_ context.Context, exp, variant, conv string) (bool, error) {
	first := false
	// Batch coalesces concurrent writers into one commit and may run a function twice:
	// every result is set afresh on each run.
	err := c.db.Batch(func(tx *bolt.Tx) error {
		first = false
		marks := tx.Bucket(marksB)
		if marks.Get(mark(exp, "seen", conv)) != nil {
			return nil
		}
		first = true
		if err := marks.Put(mark(exp, "seen", conv), []byte(variant)); err != nil {
			return err
		}
		return add(tx.Bucket(countsB), exp, variant, "exposures", 1)
	})
	return first, unavailable(err)
}

// Outcome implements kb.Counters.
func (c *Counters) Outcome(_ context.Context, exp, conv, kind string, fields map[string]int64) (bool, error) {
	counted := false
	err := c.db.Batch(func(tx *bolt.Tx) error {
		counted = false
		marks := tx.Bucket(marksB)
		variant := marks.Get(mark(exp, "seen", conv))
		if variant == nil || marks.Get(mark(exp, kind, conv)) != nil {
			return nil
		}
		counted = true
		if err := marks.Put(mark(exp, kind, conv), []byte("1")); err != nil {
			return err
		}
		for f, n := range fields {
			if err := add(tx.Bucket(countsB), exp, string(variant), f, n); err != nil {
				return err
			}
		}
		return nil
	})
	return counted, unavailable(err)
}

// Counts implements kb.Counters.
func (c *Counters) Counts(_ context.Context, exp string) (map[string]kb.Counts, error) {
	out := map[string]kb.Counts{}
	prefix := []byte(exp + "|")
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(countsB).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			variant, field, ok := strings.Cut(string(k[len(prefix):]), "|")
			if !ok || len(v) != 8 {
				continue
			}
			cnt := out[variant]
			cnt.Add(field, int64(binary.BigEndian.Uint64(v)))
			out[variant] = cnt
		}
		return nil
	})
	return out, unavailable(err)
}

// Forget implements kb.Counters.
func (c *Counters) Forget(_ context.Context, exp, conv string) error {
	return unavailable(c.db.Update(func(tx *bolt.Tx) error {
		marks := tx.Bucket(marksB)
		for _, kind := range []string{"seen", kb.OutcomeUnresolved, kb.OutcomeCSAT, kb.OutcomeThumb} {
			if err := marks.Delete(mark(exp, kind, conv)); err != nil {
				return err
			}
		}
		return nil
	}))
}
