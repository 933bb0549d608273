// Package boltstore is the handoff outbox in an embedded bbolt file: the single-node
// default (no Redis) that survives a crash. A delivery is on disk before Enqueue returns and
// leaves only when delivered or dead, so a process killed with deliveries pending sends
// them after its restart.
//
// Buckets: "outbox" key → pending delivery; "outbox-keys" key → enqueued-at (the
// idempotency markers, 7 days); "outbox-dead" sequence → dead letter.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/handoff"
)

var (
	pendingB = []byte("outbox")
	keysB    = []byte("outbox-keys")
	deadB    = []byte("outbox-dead")
)

const keep = 7 * 24 * time.Hour

// Outbox is a durable outbox on a bbolt database shared with other kefu stores.
type Outbox struct {
	db   *bolt.DB
	opt  handoff.Options
	wake chan struct{}

	mu   sync.Mutex
	busy map[string]bool // being delivered now
}

var _ handoff.Outbox = (*Outbox)(nil)

type entry struct {
	handoff.Delivery
	Attempts int       `json:"attempts"`
	Due      time.Time `json:"due"`
	Error    string    `json:"error,omitempty"`
}

// New returns the outbox in db.
func New(db *bolt.DB, opt handoff.Options) (*Outbox, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{pendingB, keysB, deadB} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.Path(), err)
	}
	return &Outbox{db: db, opt: opt.Defaults(), wake: make(chan struct{}, 1), busy: map[string]bool{}}, nil
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", handoff.ErrUnavailable, err)
}

// Enqueue adds d unless a delivery with its key was enqueued in the last 7 days; it is on
// disk when Enqueue returns.
func (o *Outbox) Enqueue(_ context.Context, d handoff.Delivery) error {
	err := o.db.Batch(func(tx *bolt.Tx) error {
		keys := tx.Bucket(keysB)
		if v := keys.Get([]byte(d.Key)); v != nil && time.Since(time.UnixMilli(int64(binary.BigEndian.Uint64(v)))) < keep {
			return nil
		}
		var at [8]byte
		binary.BigEndian.PutUint64(at[:], uint64(time.Now().UnixMilli()))
		if err := keys.Put([]byte(d.Key), at[:]); err != nil {
			return err
		}
		data, err := json.Marshal(entry{Delivery: d})
		if err != nil {
			return err
		}
		return tx.Bucket(pendingB).Put([]byte(d.Key), data)
	})
	if err != nil {
		return unavailable(err)
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Depth counts deliveries not yet delivered.
func (o *Outbox) Depth(context.Context) (int64, error) {
	var n int
	err := o.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(pendingB).Stats().KeyN; return nil })
	return int64(n), unavailable(err)
}

// Dead lists the dead letters, oldest first (at most 1,000).
func (o *Outbox) Dead(context.Context) ([]handoff.DeadLetter, error) {
	out := []handoff.DeadLetter{}
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(deadB).ForEach(func(_, v []byte) error {
			var d handoff.DeadLetter
			if len(out) < 1000 && json.Unmarshal(v, &d) == nil {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, unavailable(err)
}

// Erase removes the conversation's pending and dead deliveries and their markers.
func (o *Outbox) Erase(_ context.Context, conv string) error {
	prefix := []byte(conv + ":")
	return unavailable(o.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{pendingB, keysB} {
			b := tx.Bucket(name)
			var del [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				del = append(del, append([]byte(nil), k...))
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		dead := tx.Bucket(deadB)
		var del [][]byte
		dead.ForEach(func(k, v []byte) error {
			var d handoff.DeadLetter
			if json.Unmarshal(v, &d) == nil && bytes.HasPrefix([]byte(d.Key), prefix) {
				del = append(del, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range del {
			if err := dead.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
}

// next finds a due delivery nobody is delivering (and marks it), or the wait until one is due.
func (o *Outbox) next() (*entry, bool, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var found *entry
	wait := time.Hour
	now := time.Now()
	o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(pendingB).ForEach(func(k, v []byte) error {
			if found != nil || o.busy[string(k)] {
				return nil
			}
			var e entry
			if json.Unmarshal(v, &e) != nil {
				return nil
			}
			if !e.Due.After(now) {
				found = &e
				return nil
			}
			wait = min(wait, e.Due.Sub(now))
			return nil
		})
	})
	if found == nil {
		return nil, false, wait
	}
	o.busy[found.Key] = true
	return found, true, 0
}

// Run delivers until ctx ends, with at most Options.Concurrency deliveries in flight.
func (o *Outbox) Run(ctx context.Context, deliver handoff.Deliver) {
	handoff.RunPool(ctx, o.opt.Concurrency, o.wake, o.next, func(e *entry) { o.attempt(ctx, e, deliver) })
}

// attempt delivers e once and records the outcome on disk.
func (o *Outbox) attempt(ctx context.Context, e *entry, deliver handoff.Deliver) {
	err := o.opt.Attempt(ctx, deliver, e.Delivery)
	defer func() {
		o.mu.Lock()
		delete(o.busy, e.Key)
		o.mu.Unlock()
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}()
	if ctx.Err() != nil {
		return // shutting down: it stays pending, on disk
	}
	o.db.Batch(func(tx *bolt.Tx) error {
		pending := tx.Bucket(pendingB)
		if pending.Get([]byte(e.Key)) == nil {
			return nil // erased meanwhile
		}
		next := *e // Batch may run this twice: e stays as it was
		next.Attempts++
		switch {
		case err == nil:
			return pending.Delete([]byte(e.Key))
		case next.Attempts >= o.opt.MaxAttempts:
			dead := tx.Bucket(deadB)
			seq, _ := dead.NextSequence()
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			data, _ := json.Marshal(handoff.DeadLetter{Delivery: e.Delivery, Attempts: next.Attempts, Error: err.Error(), At: time.Now()})
			if err := dead.Put(k[:], data); err != nil {
				return err
			}
			return pending.Delete([]byte(e.Key))
		}
		next.Due, next.Error = time.Now().Add(handoff.Jitter(o.opt.Wait(next.Attempts))), err.Error()
		data, _ := json.Marshal(next)
		return pending.Put([]byte(e.Key), data)
	})
}

// Retry puts the dead letter with key back among the pending deliveries.
func (o *Outbox) Retry(_ context.Context, key string) error {
	found := false
	err := o.db.Update(func(tx *bolt.Tx) error {
		dead := tx.Bucket(deadB)
		var k []byte
		var d handoff.DeadLetter
		dead.ForEach(func(dk, v []byte) error {
			var dl handoff.DeadLetter
			if k == nil && json.Unmarshal(v, &dl) == nil && dl.Key == key {
				k, d = bytes.Clone(dk), dl
			}
			return nil
		})
		if k == nil {
			return nil
		}
		found = true
		data, err := json.Marshal(entry{Delivery: d.Delivery})
		if err != nil {
			return err
		}
		if err := tx.Bucket(pendingB).Put([]byte(key), data); err != nil {
			return err
		}
		return dead.Delete(k)
	})
	if err != nil {
		return unavailable(err)
	}
	if !found {
		return handoff.ErrNoDeadLetter
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}
