// Package boltstore keeps analytics in the single node's embedded bbolt file (kefu.db),
// each write one transaction.
//
// Buckets under "analytics":
//
//	c/<bucket>        "channel|lang|metric" → count (8 bytes, big-endian)
//	events, questions time (ns, 8 bytes) + sequence (8 bytes) → JSON line
//	set.<name>        member → score (ms) + seq + info
//	due.<name>        score (ms) + member → nothing (the set by score)
//	gone.<name>       member → claimed at (ms)
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
)

var root = []byte("analytics")

// Store is an analytics.Store in a bbolt database shared with other kefu stores.
type Store struct{ db *bolt.DB }

var _ analytics.Store = (*Store)(nil)

// New returns the store in db.
func New(db *bolt.DB) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		r, err := tx.CreateBucketIfNotExists(root)
		if err != nil {
			return err
		}
		for _, name := range []string{"c", analytics.Events, analytics.Questions} {
			if _, err := r.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		for _, set := range []string{analytics.Open, analytics.Timers, analytics.Recent} {
			for _, kind := range []string{"set.", "due.", "gone."} {
				if _, err := r.CreateBucketIfNotExists([]byte(kind + set)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.Path(), err)
	}
	return &Store{db: db}, nil
}

// Open returns the store in a database opened read-only (kefu analytics export); an
// error when the file holds no analytics.
func Open(db *bolt.DB) (*Store, error) {
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(root) == nil {
			return fmt.Errorf("%s holds no analytics (written by kefu serve since analytics exist)", db.Path())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

func be(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// members is one claimable set: member → score (8 bytes) + seq (8) + info, the same
// members by score, and the claimed ones.
type members struct{ set, due, gone *bolt.Bucket }

func setOf(tx *bolt.Tx, name string) (members, error) {
	r := tx.Bucket(root)
	m := members{r.Bucket([]byte("set." + name)), r.Bucket([]byte("due." + name)), r.Bucket([]byte("gone." + name))}
	if m.set == nil {
		return m, fmt.Errorf("no set %q", name)
	}
	return m, nil
}

// get returns member's stored value (nil: not there).
func (m members) get(member string) []byte {
	if v := m.set.Get([]byte(member)); len(v) >= 16 {
		return v
	}
	return nil
}

// remove takes member out of the set and its score index (a claim also remembers it in
// gone).
func (m members) remove(member string) error {
	v := m.get(member)
	if v == nil {
		return nil
	}
	if err := m.due.Delete(append(bytes.Clone(v[:8]), member...)); err != nil {
		return err
	}
	return m.set.Delete([]byte(member))
}

func apply(tx *bolt.Tx, b *analytics.Batch) error {
	if b == nil {
		return nil
	}
	r := tx.Bucket(root)
	c := r.Bucket([]byte("c"))
	for name, fields := range b.Counters {
		bk, err := c.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		for f, n := range fields {
			var old int64
			if v := bk.Get([]byte(f)); len(v) == 8 {
				old = int64(binary.BigEndian.Uint64(v))
			}
			if err := bk.Put([]byte(f), be(old+n)); err != nil {
				return err
			}
		}
	}
	for _, l := range b.Lines {
		bk := r.Bucket([]byte(l.Kind))
		if bk == nil {
			return fmt.Errorf("no lines of kind %q", l.Kind)
		}
		seq, _ := bk.NextSequence()
		if err := bk.Put(append(be(l.At.UnixNano()), be(int64(seq))...), l.JSON); err != nil {
			return err
		}
	}
	for _, p := range b.Puts {
		m, err := setOf(tx, p.Set)
		if err != nil {
			return err
		}
		if m.gone.Get([]byte(p.Member)) != nil {
			continue
		}
		if v := m.get(p.Member); v != nil && int64(binary.BigEndian.Uint64(v[8:16])) > int64(p.Seq) {
			continue
		}
		if err := m.remove(p.Member); err != nil {
			return err
		}
		v := append(append(be(p.Score.UnixMilli()), be(int64(p.Seq))...), p.Info...)
		if err := m.set.Put([]byte(p.Member), v); err != nil {
			return err
		}
		if err := m.due.Put(append(be(p.Score.UnixMilli()), p.Member...), nil); err != nil {
			return err
		}
	}
	return nil
}

// Apply adds b in one transaction.
func (s *Store) Apply(_ context.Context, b *analytics.Batch) error {
	return s.db.Update(func(tx *bolt.Tx) error { return apply(tx, b) })
}

// Claim takes cl.Member once and applies b with it.
func (s *Store) Claim(_ context.Context, cl analytics.Claim, b *analytics.Batch) (bool, error) {
	claimed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		m, err := setOf(tx, cl.Set)
		if err != nil {
			return err
		}
		if m.gone.Get([]byte(cl.Member)) != nil {
			return nil
		}
		if v := m.get(cl.Member); v != nil && !cl.Before.IsZero() && int64(binary.BigEndian.Uint64(v[:8])) > cl.Before.UnixMilli() {
			return nil
		}
		if err := m.remove(cl.Member); err != nil {
			return err
		}
		if err := m.gone.Put([]byte(cl.Member), be(cl.At.UnixMilli())); err != nil {
			return err
		}
		claimed = true
		return apply(tx, b)
	})
	return claimed, err
}

// Due lists up to n members of set scored at or before t.
func (s *Store) Due(_ context.Context, set string, t time.Time, n int) ([]analytics.Item, error) {
	var out []analytics.Item
	err := s.db.View(func(tx *bolt.Tx) error {
		m, err := setOf(tx, set)
		if err != nil {
			return err
		}
		cur := m.due.Cursor()
		for k, _ := cur.First(); k != nil && len(out) < n && int64(binary.BigEndian.Uint64(k[:8])) <= t.UnixMilli(); k, _ = cur.Next() {
			out = m.item(out, k)
		}
		return nil
	})
	return out, err
}

// item appends the member the score index key k names, with its score and info.
func (m members) item(out []analytics.Item, k []byte) []analytics.Item {
	if v := m.get(string(k[8:])); v != nil {
		out = append(out, analytics.Item{Member: string(k[8:]), Score: time.UnixMilli(int64(binary.BigEndian.Uint64(k[:8]))).UTC(), Info: bytes.Clone(v[16:])})
	}
	return out
}

// Latest lists up to n members of set scored before t, highest first.
func (s *Store) Latest(_ context.Context, set string, t time.Time, n int) ([]analytics.Item, error) {
	var out []analytics.Item
	err := s.db.View(func(tx *bolt.Tx) error {
		m, err := setOf(tx, set)
		if err != nil {
			return err
		}
		cur := m.due.Cursor()
		k, _ := cur.Seek(be(t.UnixMilli())) // the first at or after t: start before it
		if k == nil {
			k, _ = cur.Last()
		} else {
			k, _ = cur.Prev()
		}
		for ; k != nil && len(out) < n; k, _ = cur.Prev() {
			out = m.item(out, k)
		}
		return nil
	})
	return out, err
}

// Counters adds up each group of buckets.
func (s *Store) Counters(_ context.Context, groups [][]string) ([]map[string]int64, error) {
	out := make([]map[string]int64, len(groups))
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(root).Bucket([]byte("c"))
		for i, names := range groups {
			m := map[string]int64{}
			for _, name := range names {
				if bk := c.Bucket([]byte(name)); bk != nil {
					bk.ForEach(func(k, v []byte) error {
						if len(v) == 8 {
							m[string(k)] += int64(binary.BigEndian.Uint64(v))
						}
						return nil
					})
				}
			}
			out[i] = m
		}
		return nil
	})
	return out, err
}

// Lines reads kind's lines in [from, to), in time order.
func (s *Store) Lines(_ context.Context, kind string, from, to time.Time, fn func(analytics.Line) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(root).Bucket([]byte(kind))
		if bk == nil {
			return fmt.Errorf("no lines of kind %q", kind)
		}
		cur := bk.Cursor()
		end := to.UnixNano()
		for k, v := cur.Seek(be(from.UnixNano())); k != nil; k, v = cur.Next() {
			at := int64(binary.BigEndian.Uint64(k[:8]))
			if at >= end {
				break
			}
			if err := fn(analytics.Line{Kind: kind, At: time.Unix(0, at).UTC(), JSON: bytes.Clone(v)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Forget deletes the lines that name conv (reading them all: erasure is rare).
func (s *Store) Forget(_ context.Context, conv string) error {
	needle := []byte(`"conversation":"` + conv + `"`)
	return s.db.Update(func(tx *bolt.Tx) error {
		recent, err := setOf(tx, analytics.Recent)
		if err != nil {
			return err
		}
		if err := recent.remove(conv); err != nil {
			return err
		}
		for _, kind := range []string{analytics.Events, analytics.Questions} {
			if err := deleteWhere(tx.Bucket(root).Bucket([]byte(kind)), func(_, v []byte) bool { return bytes.Contains(v, needle) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Prune drops counter buckets and lines from before linesBefore and claims made before
// claimsBefore.
func (s *Store) Prune(_ context.Context, linesBefore, claimsBefore time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		r := tx.Bucket(root)
		c := r.Bucket([]byte("c"))
		var old [][]byte
		c.ForEach(func(k, _ []byte) error {
			if t, ok := analytics.BucketTime(string(k)); ok && t.Before(linesBefore.Add(-24*time.Hour)) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range old {
			if err := c.DeleteBucket(k); err != nil {
				return err
			}
		}
		for _, kind := range []string{analytics.Events, analytics.Questions} {
			// Lines are keyed by time: delete from the first until the cutoff.
			cur := r.Bucket([]byte(kind)).Cursor()
			for k, _ := cur.First(); k != nil && int64(binary.BigEndian.Uint64(k[:8])) < linesBefore.UnixNano(); k, _ = cur.First() {
				if err := cur.Delete(); err != nil {
					return err
				}
			}
		}
		recent, err := setOf(tx, analytics.Recent)
		if err != nil {
			return err
		}
		for k, _ := recent.due.Cursor().First(); k != nil && int64(binary.BigEndian.Uint64(k[:8])) < claimsBefore.UnixMilli(); k, _ = recent.due.Cursor().First() {
			if err := recent.remove(string(k[8:])); err != nil {
				return err
			}
			if err := recent.due.Delete(bytes.Clone(k)); err != nil { // an index entry whose member is gone
				return err
			}
		}
		for _, set := range []string{analytics.Open, analytics.Timers} {
			if err := deleteWhere(r.Bucket([]byte("gone."+set)), func(_, v []byte) bool {
				return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < claimsBefore.UnixMilli()
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteWhere deletes bk's entries for which doomed is true (reading them all).
func deleteWhere(bk *bolt.Bucket, doomed func(k, v []byte) bool) error {
	var keys [][]byte
	bk.ForEach(func(k, v []byte) error {
		if doomed(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range keys {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
