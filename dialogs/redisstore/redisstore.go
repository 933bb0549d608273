// Package redisstore keeps conversations and the handoff outbox in Redis, so that many kefu
// processes share them.
//
// Keys:
//
//	PREFIX:{conv:ID}:state    hash {v: version, d: conversation JSON}; TTL renewed each save
//	PREFIX:{conv:ID}:log      stream of every turn (optional, trimmed), same TTL
//	PREFIX:{outbox}:stream    stream of deliveries, consumer group "kefu"
//	PREFIX:{outbox}:key:KEY   idempotency marker of an enqueued delivery (7 days)
//	PREFIX:{outbox}:errors    hash entry id → last delivery error
//	PREFIX:{outbox}:dead      stream of dead letters
//
// A conversation's keys share a Redis Cluster hash tag, so its save script touches one slot.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/dialogs"
)

// Options configure a Store; the zero value is the default.
type Options struct {
	// Prefix starts every key; default "kefu".
	Prefix string
	// TTL of an idle conversation; default 24 hours.
	TTL time.Duration
	// Transcript keeps every turn in a stream trimmed to about this many entries; 0 keeps
	// only the recent turns in the state.
	Transcript int64
	// Cache keeps this many conversations as last saved by this process, so that the next
	// turn (LoadForTurn) needs no read from Redis; a save over a stale copy fails its
	// compare-and-set and the turn reruns on a fresh read. Default 10,000; -1 disables.
	Cache int
}

// Store is a conversation store on Redis.
type Store struct {
	rdb   redis.UniversalClient
	opt   Options
	mu    sync.Mutex
	cache map[string]*dialogs.Conversation // id → as last saved here
	order []string                         // insertion order, for eviction
}

// New returns a store on rdb; the caller owns (and closes) rdb.
func New(rdb redis.UniversalClient, opt Options) *Store {
	if opt.Prefix == "" {
		opt.Prefix = "kefu"
	}
	if opt.TTL == 0 {
		opt.TTL = 24 * time.Hour
	}
	if opt.Cache == 0 {
		opt.Cache = 10000
	}
	return &Store{rdb: rdb, opt: opt, cache: map[string]*dialogs.Conversation{}}
}

// LoadForTurn is Load for a turn that will save with compare-and-set: the conversation as
// this process last saved it when it has it (it may be stale; the save then conflicts and
// the caller reruns the turn after Forget), else from Redis.
func (s *Store) LoadForTurn(ctx context.Context, id string) (*dialogs.Conversation, error) {
	s.mu.Lock()
	cached, ok := s.cache[id]
	s.mu.Unlock()
	if !ok {
		return s.Load(ctx, id)
	}
	c := cached.Clone()
	c.MarkStored()
	return c, nil
}

// Forget drops the cached copy of a conversation.
func (s *Store) Forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

func (s *Store) remember(id string, c *dialogs.Conversation) {
	if s.opt.Cache < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[id]; !ok {
		s.order = append(s.order, id)
		for len(s.order) > s.opt.Cache {
			delete(s.cache, s.order[0])
			s.order = s.order[1:]
		}
	}
	s.cache[id] = c
}

func (s *Store) keys(id string) (state, log string) {
	p := s.opt.Prefix + ":{conv:" + id + "}:"
	return p + "state", p + "log"
}

// Load returns the conversation, dialogs.ErrNotFound, or dialogs.ErrUnavailable.
func (s *Store) Load(ctx context.Context, id string) (*dialogs.Conversation, error) {
	state, _ := s.keys(id)
	data, err := s.rdb.HGet(ctx, state, "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, dialogs.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var c dialogs.Conversation
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("conversation %s: stored state is not valid: %w", id, err)
	}
	c.MarkStored()
	return &c, nil
}

// save: KEYS state, log; ARGV version, next version, data, ttl ms, log max, turns…
var save = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #ARGV > 5 then
  for i = 6, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'turn', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1`)

// Save writes c if the stored version is still c.Version (0: new) and renews its TTL;
// dialogs.ErrConflict otherwise. On success c.Version is the new version.
func (s *Store) Save(ctx context.Context, c *dialogs.Conversation) error {
	next := *c
	next.Version++
	data, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	state, log := s.keys(c.ID)
	args := []any{c.Version, next.Version, data, s.opt.TTL.Milliseconds(), s.opt.Transcript}
	if s.opt.Transcript > 0 {
		for _, t := range c.Pending() {
			b, _ := json.Marshal(t)
			args = append(args, b)
		}
	}
	ok, err := save.Run(ctx, s.rdb, []string{state, log}, args...).Int()
	if err != nil {
		s.Forget(c.ID)
		return unavailable(err)
	}
	if ok == 0 {
		s.Forget(c.ID)
		return dialogs.ErrConflict
	}
	c.Version = next.Version
	s.remember(c.ID, c.Clone())
	c.MarkStored()
	return nil
}

// Delete erases the conversation and its transcript; dialogs.ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	s.Forget(id)
	state, log := s.keys(id)
	n, err := s.rdb.Del(ctx, state, log).Result()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return dialogs.ErrNotFound
	}
	return nil
}

// Transcript returns every turn kept in the transcript stream, oldest first.
func (s *Store) Transcript(ctx context.Context, id string) ([]dialogs.Turn, error) {
	_, log := s.keys(id)
	msgs, err := s.rdb.XRange(ctx, log, "-", "+").Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]dialogs.Turn, 0, len(msgs))
	for _, m := range msgs {
		var t dialogs.Turn
		if s, ok := m.Values["turn"].(string); ok && json.Unmarshal([]byte(s), &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", dialogs.ErrUnavailable, err)
}

// Outbox is a durable outbox on a Redis stream with a consumer group: a delivery stays
// pending until it succeeds; one that failed, or whose process died mid-delivery, is
// claimed again (by any process) after the back-off; after MaxAttempts it moves to the
// dead-letter stream.
type Outbox struct {
	rdb      redis.UniversalClient
	opt      dialogs.OutboxOptions
	p        string
	consumer string
}

// NewOutbox returns the outbox under prefix ("" → "kefu"); consumer names this process in
// the group (unique per process).
func NewOutbox(rdb redis.UniversalClient, prefix, consumer string, opt dialogs.OutboxOptions) *Outbox {
	if prefix == "" {
		prefix = "kefu"
	}
	return &Outbox{rdb: rdb, opt: opt, p: prefix + ":{outbox}:", consumer: consumer}
}

const group = "kefu"

var enqueue = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[5]) then
  redis.call('XADD', KEYS[1], '*', 'key', ARGV[1], 'kind', ARGV[2], 'body', ARGV[3], 'at', ARGV[4])
  return 1
end
return 0`)

// Enqueue adds d unless a delivery with its key was enqueued in the last 7 days.
func (o *Outbox) Enqueue(ctx context.Context, d dialogs.Delivery) error {
	err := enqueue.Run(ctx, o.rdb, []string{o.p + "stream", o.p + "key:" + d.Key},
		d.Key, d.Kind, d.Body, d.Enqueued.UnixMilli(), (7 * 24 * time.Hour).Milliseconds()).Err()
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Depth counts deliveries not yet delivered (new and being retried).
func (o *Outbox) Depth(ctx context.Context) (int64, error) {
	n, err := o.rdb.XLen(ctx, o.p+"stream").Result()
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// Dead lists the dead letters, oldest first (at most 1,000).
func (o *Outbox) Dead(ctx context.Context) ([]dialogs.DeadLetter, error) {
	msgs, err := o.rdb.XRangeN(ctx, o.p+"dead", "-", "+", 1000).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]dialogs.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		dl := dialogs.DeadLetter{Delivery: delivery(m)}
		dl.Attempts, _ = strconv.Atoi(str(m.Values["attempts"]))
		dl.Error = str(m.Values["error"])
		if ms, err := strconv.ParseInt(str(m.Values["dead_at"]), 10, 64); err == nil {
			dl.At = time.UnixMilli(ms)
		}
		out = append(out, dl)
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func delivery(m redis.XMessage) dialogs.Delivery {
	d := dialogs.Delivery{Key: str(m.Values["key"]), Kind: str(m.Values["kind"]), Body: []byte(str(m.Values["body"]))}
	if ms, err := strconv.ParseInt(str(m.Values["at"]), 10, 64); err == nil {
		d.Enqueued = time.UnixMilli(ms)
	}
	return d
}

// Run delivers until ctx ends: new entries first, then due retries. Redis errors are
// retried after a second (reported through report, which may be nil).
func (o *Outbox) Run(ctx context.Context, deliver dialogs.Deliver, report func(error)) {
	stream := o.p + "stream"
	for ctx.Err() == nil {
		err := o.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
		if err == nil || isBusyGroup(err) {
			break
		}
		o.fail(ctx, report, err)
	}
	for ctx.Err() == nil {
		res, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: o.consumer,
			Streams: []string{stream, ">"}, Count: 16, Block: 200 * time.Millisecond}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if isNoGroup(err) {
				o.rdb.XGroupCreateMkStream(ctx, stream, group, "0")
			}
			o.fail(ctx, report, err)
			continue
		}
		for _, st := range res {
			for _, m := range st.Messages {
				o.attempt(ctx, m, deliver, report)
			}
		}
		if err := o.retry(ctx, deliver, report); err != nil {
			o.fail(ctx, report, err)
		}
	}
}

func (o *Outbox) fail(ctx context.Context, report func(error), err error) {
	if ctx.Err() != nil {
		return
	}
	if report != nil {
		report(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

// attempt delivers m once; success removes it, failure records the error for later.
func (o *Outbox) attempt(ctx context.Context, m redis.XMessage, deliver dialogs.Deliver, report func(error)) {
	err := o.opt.Attempt(ctx, deliver, delivery(m))
	if ctx.Err() != nil {
		return // shutting down: the entry stays pending and is claimed again later
	}
	pipe := o.rdb.TxPipeline()
	if err == nil {
		pipe.XAck(ctx, o.p+"stream", group, m.ID)
		pipe.XDel(ctx, o.p+"stream", m.ID)
		pipe.HDel(ctx, o.p+"errors", m.ID)
	} else {
		pipe.HSet(ctx, o.p+"errors", m.ID, err.Error())
	}
	if _, perr := pipe.Exec(ctx); perr != nil && report != nil {
		report(perr)
	}
}

// retry claims pending entries whose back-off has passed: they are delivered again, or
// moved to the dead letters after MaxAttempts.
func (o *Outbox) retry(ctx context.Context, deliver dialogs.Deliver, report func(error)) error {
	opt := o.opt.Defaults()
	stream := o.p + "stream"
	pending, err := o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group,
		Idle: opt.Backoff, Start: "-", End: "+", Count: 64}).Result()
	if err != nil {
		return err
	}
	for _, p := range pending {
		// An attempt in flight elsewhere is never claimed: idle must exceed its timeout.
		wait := opt.Wait(int(p.RetryCount)) + opt.Timeout
		if p.Idle < wait {
			continue
		}
		msgs, err := o.rdb.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: group, Consumer: o.consumer,
			MinIdle: wait, Messages: []string{p.ID}}).Result()
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			if p.RetryCount >= int64(opt.MaxAttempts) {
				// Claimed by us but deleted meanwhile: drop the pending entry.
				o.rdb.XAck(ctx, stream, group, p.ID)
			}
			continue // another process claimed it first
		}
		if p.RetryCount >= int64(opt.MaxAttempts) {
			lastErr, _ := o.rdb.HGet(ctx, o.p+"errors", p.ID).Result()
			m := msgs[0]
			pipe := o.rdb.TxPipeline()
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: o.p + "dead", MaxLen: 100000, Approx: true, Values: map[string]any{
				"key": str(m.Values["key"]), "kind": str(m.Values["kind"]), "body": str(m.Values["body"]), "at": str(m.Values["at"]),
				"attempts": p.RetryCount, "error": lastErr, "dead_at": time.Now().UnixMilli()}})
			pipe.XAck(ctx, stream, group, p.ID)
			pipe.XDel(ctx, stream, p.ID)
			pipe.HDel(ctx, o.p+"errors", p.ID)
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
			continue
		}
		o.attempt(ctx, msgs[0], deliver, report)
	}
	return nil
}

func isBusyGroup(err error) bool { return strings.HasPrefix(err.Error(), "BUSYGROUP") }
func isNoGroup(err error) bool   { return strings.HasPrefix(err.Error(), "NOGROUP") }
