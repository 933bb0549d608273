// Package boltstore keeps conversations in an embedded bbolt file: the single-node default
// (no Redis) that survives a crash. Every save is committed (fsync) before the turn answers.
//
// Bucket "conversations": id → {"expires": unix ms, "conv": the record}.
package boltstore

import (
	"context"
	"fmt"
	"github.com/segmentio/encoding/json" // encoding/json's API, about twice as fast on a conversation record (README: Performance)
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/conversation"
)

var bucket = []byte("conversations")

// Store is a conversation.Store on a bbolt database shared with other kefu stores.
type Store struct {
	db    *bolt.DB
	ttl   time.Duration
	now   func() time.Time
	swept time.Time
}

var _ conversation.Store = (*Store)(nil)

type stored struct {
	Expires int64                      `json:"expires"`
	Conv    *conversation.Conversation `json:"conv"`
}

// New returns the store in db; idle conversations are forgotten after ttl (0: 24 hours).
func New(db *bolt.DB, ttl time.Duration) (*Store, error) {
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.Path(), err)
	}
	return &Store{db: db, ttl: ttl, now: time.Now}, nil
}

func (s *Store) get(tx *bolt.Tx, id string) (*conversation.Conversation, error) {
	v := tx.Bucket(bucket).Get([]byte(id))
	if v == nil {
		return nil, conversation.ErrNotFound
	}
	var st stored
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, fmt.Errorf("%s: conversation %q is not a record: %w", s.db.Path(), id, err)
	}
	if s.now().UnixMilli() > st.Expires {
		return nil, conversation.ErrNotFound
	}
	return st.Conv, nil
}

// Load returns the conversation, or conversation.ErrNotFound.
func (s *Store) Load(_ context.Context, id string) (*conversation.Conversation, error) {
	var c *conversation.Conversation
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = s.get(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.MarkStored()
	return c, nil
}

// Save writes c if the stored version is still c.Version (0: new), then bumps c.Version;
// conversation.ErrConflict otherwise. The write is on disk when Save returns.
func (s *Store) Save(_ context.Context, c *conversation.Conversation) error {
	now := s.now()
	err := s.db.Batch(func(tx *bolt.Tx) error {
		var cur int64
		switch old, err := s.get(tx, c.ID); {
		case err == nil:
			cur = old.Version
		case err != conversation.ErrNotFound:
			return err
		}
		if cur != c.Version {
			return conversation.ErrConflict
		}
		next := c.Clone()
		next.Version++
		data, err := json.Marshal(stored{Expires: now.Add(s.ttl).UnixMilli(), Conv: next})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucket)
		if err := b.Put([]byte(c.ID), data); err != nil {
			return err
		}
		if now.Sub(s.swept) > time.Minute { // expired conversations go, not only when read again
			s.swept = now
			return sweep(b, now)
		}
		return nil
	})
	if err != nil {
		return translate(err)
	}
	c.Version++
	c.MarkStored()
	return nil
}

func sweep(b *bolt.Bucket, now time.Time) error {
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var st struct {
			Expires int64 `json:"expires"`
		}
		if json.Unmarshal(v, &st) == nil && now.UnixMilli() > st.Expires {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return err
}

// Delete erases c if it is stored at c.Version.
func (s *Store) Delete(_ context.Context, c *conversation.Conversation) error {
	return translate(s.db.Batch(func(tx *bolt.Tx) error {
		old, err := s.get(tx, c.ID)
		if err != nil {
			return err
		}
		if old.Version != c.Version {
			return conversation.ErrConflict
		}
		return tx.Bucket(bucket).Delete([]byte(c.ID))
	}))
}

// Ping answers whether the database is open.
func (s *Store) Ping(context.Context) error {
	return translate(s.db.View(func(*bolt.Tx) error { return nil }))
}

// translate keeps the store's own errors and marks the database's as unavailable.
func translate(err error) error {
	switch err {
	case nil, conversation.ErrNotFound, conversation.ErrConflict:
		return err
	}
	return fmt.Errorf("%w: %v", conversation.ErrUnavailable, err)
}
