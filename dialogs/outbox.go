package dialogs

import (
	"context"
	"sync"
	"time"
)

// Delivery is a message for the people side (a handoff, a relayed customer message), sent
// at least once; Key is its idempotency key, the same on every attempt, so the receiver
// keeps one per key. Enqueuing a key twice keeps the first.
type Delivery struct {
	Key      string    `json:"key"`
	Kind     string    `json:"kind"` // handoff, message, released, closed
	Body     []byte    `json:"body"`
	Enqueued time.Time `json:"enqueued"`
}

// DeadLetter is a delivery that failed every attempt.
type DeadLetter struct {
	Delivery
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// OutboxOptions tune retries; zero values are the defaults.
type OutboxOptions struct {
	// Backoff is the wait before the first retry, doubled after each failure up to
	// MaxBackoff; defaults 1s and 5m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxAttempts before a delivery becomes a dead letter; default 12.
	MaxAttempts int
	// Timeout bounds one delivery attempt; default 10s.
	Timeout time.Duration
}

// Defaults fills in the default of every zero field.
func (o OutboxOptions) Defaults() OutboxOptions {
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

// Wait is how long to wait after the attempts-th failed attempt.
func (o OutboxOptions) Wait(attempts int) time.Duration {
	o = o.Defaults()
	d := o.Backoff
	for i := 1; i < attempts && d < o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.MaxBackoff)
}

// Deliver sends one delivery; an error means try again later.
type Deliver func(ctx context.Context, d Delivery) error

// MemOutbox is an outbox in this process (the embedded default): deliveries are retried
// with back-off while the process lives, and lost if it stops. Use the Redis outbox for
// durability.
type MemOutbox struct {
	opt   OutboxOptions
	mu    sync.Mutex
	queue []*memItem
	seen  map[string]bool
	dead  []DeadLetter
	wake  chan struct{}
}

type memItem struct {
	d        Delivery
	attempts int
	due      time.Time
}

// NewMemOutbox returns an empty outbox.
func NewMemOutbox(opt OutboxOptions) *MemOutbox {
	return &MemOutbox{opt: opt.Defaults(), seen: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Enqueue adds d unless its key was enqueued before.
func (o *MemOutbox) Enqueue(_ context.Context, d Delivery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[d.Key] {
		return nil
	}
	o.seen[d.Key] = true
	o.queue = append(o.queue, &memItem{d: d})
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Depth counts deliveries waiting or being retried.
func (o *MemOutbox) Depth(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.queue)), nil
}

// Dead lists dead letters, oldest first.
func (o *MemOutbox) Dead(context.Context) ([]DeadLetter, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]DeadLetter(nil), o.dead...), nil
}

// Run delivers until ctx ends, one delivery at a time, in order of due time.
func (o *MemOutbox) Run(ctx context.Context, deliver Deliver) {
	for {
		o.mu.Lock()
		var next *memItem
		now := time.Now()
		wait := time.Hour
		for _, it := range o.queue {
			if !it.due.After(now) {
				next = it
				break
			}
			wait = min(wait, it.due.Sub(now))
		}
		o.mu.Unlock()
		if next == nil {
			select {
			case <-ctx.Done():
				return
			case <-o.wake:
			case <-time.After(wait):
			}
			continue
		}
		err := o.opt.Attempt(ctx, deliver, next.d)
		if ctx.Err() != nil {
			return
		}
		o.mu.Lock()
		next.attempts++
		if err == nil || next.attempts >= o.opt.MaxAttempts {
			if err != nil {
				o.dead = append(o.dead, DeadLetter{Delivery: next.d, Attempts: next.attempts, Error: err.Error(), At: time.Now()})
			}
			for i, it := range o.queue {
				if it == next {
					o.queue = append(o.queue[:i], o.queue[i+1:]...)
					break
				}
			}
		} else {
			next.due = time.Now().Add(o.opt.Wait(next.attempts))
		}
		o.mu.Unlock()
	}
}

// Attempt runs deliver once within the attempt timeout.
func (o OutboxOptions) Attempt(ctx context.Context, deliver Deliver, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, o.Defaults().Timeout)
	defer cancel()
	return deliver(ctx, d)
}
