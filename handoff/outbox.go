package handoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

var (
	// ErrUnavailable: the outbox's store cannot be reached.
	ErrUnavailable = errors.New("handoff outbox unavailable")
	// ErrNoDeadLetter: no dead letter has the key given.
	ErrNoDeadLetter = errors.New("no dead letter with this key")
)

// Delivery is a message for the people side (a handoff, a relayed customer message), sent
// at least once; Key is its idempotency key, the same on every attempt, so the receiver
// keeps one per key. Enqueuing a key twice keeps the first.
type Delivery struct {
	Key      string    `json:"key" required:"true"`
	Kind     string    `json:"kind" required:"true"` // KindHandoff or KindMessage
	Body     []byte    `json:"body" required:"true"`
	Enqueued time.Time `json:"enqueued" required:"true"`
}

// DeadLetter is a delivery that failed every attempt.
type DeadLetter struct {
	Delivery
	Attempts int       `json:"attempts" required:"true"`
	Error    string    `json:"error" required:"true"`
	At       time.Time `json:"at" required:"true"`
}

// Outbox carries deliveries to the handoff API (inmem.Outbox, redisstore.Outbox).
type Outbox interface {
	// Enqueue adds d unless a delivery with its key was enqueued before.
	Enqueue(ctx context.Context, d Delivery) error
	// Depth counts deliveries not yet delivered.
	Depth(ctx context.Context) (int64, error)
	// Erase removes every delivery of conversation conv, pending or dead, and its
	// idempotency markers (delivery keys start with "CONV:").
	Erase(ctx context.Context, conv string) error
	// Dead lists deliveries that failed every attempt, oldest first.
	Dead(ctx context.Context) ([]DeadLetter, error)
	// Retry puts the dead letter with key back in the queue, its attempts counted afresh;
	// ErrNoDeadLetter when there is none with that key.
	Retry(ctx context.Context, key string) error
	// Run delivers until ctx ends.
	Run(ctx context.Context, deliver Deliver)
}

// Deliver sends one delivery; an error means try again later.
type Deliver func(ctx context.Context, d Delivery) error

// Options tune deliveries: bot.yaml's handoff section. Zero values are the defaults.
type Options struct {
	// Backoff is the wait before the first retry, doubled after each failure up to
	// MaxBackoff; defaults 1s and 5m.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxAttempts before a delivery becomes a dead letter; default 12.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout bounds one delivery attempt; default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is how many deliveries one node has in flight at once; default 8.
	Concurrency int `yaml:"concurrency"`
}

// Defaults returns o with every zero field set to its default.
func (o Options) Defaults() Options {
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
		o.Timeout = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	return o
}

// Jitter spreads d over [0.8d, 1.2d], so that deliveries failed together are not retried
// all at the same instant by every node.
func Jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Wait is how long to wait after the attempts-th failed attempt.
func (o Options) Wait(attempts int) time.Duration {
	o = o.Defaults()
	d := o.Backoff
	for i := 1; i < attempts && d < o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.MaxBackoff)
}

// Attempt runs deliver once within the attempt timeout.
func (o Options) Attempt(ctx context.Context, deliver Deliver, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, o.Defaults().Timeout)
	defer cancel()
	return deliver(ctx, d)
}

// RunPool is the delivery loop of a single node's outbox (in memory, embedded file): it
// asks next for a due delivery, runs attempt on it with at most n in flight, and when
// nothing is due waits for wake or the wait next returned, until ctx ends. It returns once
// every attempt has returned.
func RunPool[T any](ctx context.Context, n int, wake <-chan struct{}, next func() (T, bool, time.Duration), attempt func(T)) {
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select { // a free slot first
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		it, ok, wait := next()
		if !ok {
			<-slots
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(wait):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			attempt(it)
		}()
	}
}
