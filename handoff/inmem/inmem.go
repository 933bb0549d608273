// Package inmem is a handoff outbox in this process (the embedded default): deliveries are
// retried with back-off while the process lives, and lost if it stops. Use
// handoff/redisstore for durability.
package inmem

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kefu-ai/kefu/handoff"
)

// Outbox is an outbox in memory.
type Outbox struct {
	opt   handoff.Options
	mu    sync.Mutex
	queue []*item
	seen  map[string]bool
	dead  []handoff.DeadLetter
	wake  chan struct{}
}

type item struct {
	d        handoff.Delivery
	attempts int
	due      time.Time
	busy     bool // being delivered now
}

var _ handoff.Outbox = (*Outbox)(nil)

// NewOutbox returns an empty outbox.
func NewOutbox(opt handoff.Options) *Outbox {
	return &Outbox{opt: opt.Defaults(), seen: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Enqueue adds d unless its key was enqueued before.
func (o *Outbox) Enqueue(_ context.Context, d handoff.Delivery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[d.Key] {
		return nil
	}
	o.seen[d.Key] = true
	o.queue = append(o.queue, &item{d: d})
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Depth counts deliveries waiting or being retried.
func (o *Outbox) Depth(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.queue)), nil
}

// Erase implements handoff.Outbox.
func (o *Outbox) Erase(_ context.Context, conv string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	mine := func(key string) bool { return strings.HasPrefix(key, conv+":") }
	o.queue = slices.DeleteFunc(o.queue, func(it *item) bool { return mine(it.d.Key) })
	o.dead = slices.DeleteFunc(o.dead, func(d handoff.DeadLetter) bool { return mine(d.Key) })
	for k := range o.seen {
		if mine(k) {
			delete(o.seen, k)
		}
	}
	return nil
}

// Dead lists dead letters, oldest first.
func (o *Outbox) Dead(context.Context) ([]handoff.DeadLetter, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]handoff.DeadLetter(nil), o.dead...), nil
}

// Run delivers until ctx ends, in order of due time, with at most Options.Concurrency
// deliveries in flight.
func (o *Outbox) Run(ctx context.Context, deliver handoff.Deliver) {
	handoff.RunPool(ctx, o.opt.Concurrency, o.wake, o.next, func(it *item) { o.attempt(ctx, it, deliver) })
}

// next finds a due delivery nobody is delivering (and marks it), or the wait until one is due.
func (o *Outbox) next() (*item, bool, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	wait := time.Hour
	for _, it := range o.queue {
		if it.busy {
			continue
		}
		if !it.due.After(now) {
			it.busy = true
			return it, true, 0
		}
		wait = min(wait, it.due.Sub(now))
	}
	return nil, false, wait
}

// attempt delivers it once and records the outcome.
func (o *Outbox) attempt(ctx context.Context, it *item, deliver handoff.Deliver) {
	err := o.opt.Attempt(ctx, deliver, it.d)
	o.mu.Lock()
	defer o.mu.Unlock()
	defer func() { // a slot is free: look again
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}()
	it.busy = false
	if ctx.Err() != nil {
		return // shutting down: it stays queued
	}
	it.attempts++
	if err == nil || it.attempts >= o.opt.MaxAttempts {
		if err != nil {
			o.dead = append(o.dead, handoff.DeadLetter{Delivery: it.d, Attempts: it.attempts, Error: err.Error(), At: time.Now()})
		}
		o.queue = slices.DeleteFunc(o.queue, func(x *item) bool { return x == it })
		return
	}
	it.due = time.Now().Add(handoff.Jitter(o.opt.Wait(it.attempts)))
}

// Retry puts the dead letter with key back in the queue.
func (o *Outbox) Retry(_ context.Context, key string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := slices.IndexFunc(o.dead, func(d handoff.DeadLetter) bool { return d.Key == key })
	if i < 0 {
		return handoff.ErrNoDeadLetter
	}
	o.queue = append(o.queue, &item{d: o.dead[i].Delivery})
	o.dead = slices.Delete(o.dead, i, i+1)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}
