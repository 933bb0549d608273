// Package redisstore keeps conversations and the results of their action calls in Redis, so
// that many kefu processes share them.
//
// Keys:
//
//	PREFIX:{conv:ID}:state    hash {v: version, d: conversation JSON, t: token of the last save}; TTL renewed each save
//	PREFIX:{conv:ID}:log      stream of every turn (optional, trimmed), same TTL
//	PREFIX:call:{KEY}         result of the action call KEY (dialogs.Recorder), 24 hours
//
// A conversation's keys share a Redis Cluster hash tag, so its save script touches one slot.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/segmentio/encoding/json" // encoding/json's API, about twice as fast on a conversation record (README: Performance)
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/internal/redisx"
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
	cache map[string]*conversation.Conversation // id → as last saved here
	order []string                              // insertion order, for eviction
}

var _ conversation.Store = (*Store)(nil)

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
	return &Store{rdb: rdb, opt: opt, cache: map[string]*conversation.Conversation{}}
}

// LoadForTurn is Load for a turn that will save with compare-and-set: the conversation as
// this process last saved it when it has it (it may be stale; the save then conflicts and
// the caller rereads with Load), else from Redis.
func (s *Store) LoadForTurn(ctx context.Context, id string) (*conversation.Conversation, error) {
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

func (s *Store) remember(id string, c *conversation.Conversation) {
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

// Load returns the conversation, conversation.ErrNotFound, or conversation.ErrUnavailable.
func (s *Store) Load(ctx context.Context, id string) (*conversation.Conversation, error) {
	state, _ := s.keys(id)
	data, err := s.rdb.HGet(ctx, state, "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, conversation.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var c conversation.Conversation
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("conversation %s: stored state is not valid: %w", id, err)
	}
	c.MarkStored()
	return &c, nil
}

// save: KEYS state, log; ARGV version, next version, data, ttl ms, log max, token, turns…
//
// The token is new for every Save call. A command that go-redis sends again after its
// reply was lost finds its own write (version next, same token) and succeeds instead of
// reporting a conflict, so the turn is not taken twice.
var save = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then
  if v == ARGV[2] and redis.call('HGET', KEYS[1], 't') == ARGV[6] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 't', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #ARGV > 6 then
  for i = 7, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'turn', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1`)

// Save writes c if the stored version is still c.Version (0: new) and renews its TTL;
// conversation.ErrConflict otherwise. On success c.Version is the new version.
func (s *Store) Save(ctx context.Context, c *conversation.Conversation) error {
	next := *c
	next.Version++
	data, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	state, log := s.keys(c.ID)
	args := []any{c.Version, next.Version, data, s.opt.TTL.Milliseconds(), s.opt.Transcript, conversation.RandomID()}
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
		return conversation.ErrConflict
	}
	c.Version = next.Version
	s.remember(c.ID, c.Clone())
	c.MarkStored()
	return nil
}

// erase: KEYS state, log; ARGV version. 1 erased, 0 changed, -1 none.
var erase = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1`)

// Delete erases the conversation and its transcript if it is stored at c.Version:
// conversation.ErrNotFound if there is none, conversation.ErrConflict if it changed.
func (s *Store) Delete(ctx context.Context, c *conversation.Conversation) error {
	s.Forget(c.ID)
	state, log := s.keys(c.ID)
	n, err := erase.Run(ctx, s.rdb, []string{state, log}, c.Version).Int()
	switch {
	case err != nil:
		return unavailable(err)
	case n == -1:
		return conversation.ErrNotFound
	case n == 0:
		return conversation.ErrConflict
	}
	return nil
}

// Transcript returns every turn kept in the transcript stream, oldest first.
func (s *Store) Transcript(ctx context.Context, id string) ([]conversation.Turn, error) {
	_, log := s.keys(id)
	msgs, err := s.rdb.XRange(ctx, log, "-", "+").Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]conversation.Turn, 0, len(msgs))
	for _, m := range msgs {
		var t conversation.Turn
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

// unavailable marks a Redis error as conversation.ErrUnavailable; the caller's own
// cancellation or deadline stays what it is.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", conversation.ErrUnavailable, err)
}

// Calls keeps the results of action calls in Redis (dialogs.Recorder), where every node
// sees them: a call is made once per key, whichever node's turn makes it, and a turn that
// reruns after a conflict gets the kept result.
type Calls struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	poll   time.Duration
}

// NewCalls returns the record under prefix ("" → "kefu"); results are kept for ttl
// (0: 24 hours).
func NewCalls(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Calls {
	if prefix == "" {
		prefix = "kefu"
	}
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return &Calls{rdb: rdb, prefix: prefix, ttl: ttl, poll: 5 * time.Millisecond}
}

// pending marks a call in flight; results are JSON and never start with a NUL byte.
const pending = "\x00pending"

// release: KEYS call; drops the claim of a call that was abandoned.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`)

// Erase forgets the conversation's call results (dialogs.Recorder).
// The keys are found with SCAN, on every master of a cluster.
func (r *Calls) Erase(ctx context.Context, conv string) error {
	err := redisx.Keys(ctx, r.rdb, r.prefix+":call:{"+conv+":*", func(key string) error { return r.rdb.Del(ctx, key).Err() })
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Once returns the result kept under key. Without one it claims the key for lease, makes
// the call and keeps its result; while another node's call is in flight it waits for that
// result. A claim whose node died lapses after lease and the call is made again (with the
// same key, which actions send as their Idempotency-Key). A call whose ctx ended is not
// kept. Errors: conversation.ErrUnavailable, or ctx's.
func (r *Calls) Once(ctx context.Context, key string, lease time.Duration, fn func(context.Context) []byte) ([]byte, error) {
	k := r.prefix + ":call:{" + key + "}"
	for {
		claimed, err := r.rdb.SetNX(ctx, k, pending, lease).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		if claimed {
			res := fn(ctx)
			if ctx.Err() != nil {
				release.Run(context.WithoutCancel(ctx), r.rdb, []string{k}, pending)
				return nil, ctx.Err()
			}
			if err := r.rdb.Set(context.WithoutCancel(ctx), k, res, r.ttl).Err(); err != nil {
				return nil, unavailable(err)
			}
			return res, nil
		}
		v, err := r.rdb.Get(ctx, k).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			continue // the claim lapsed or was released: claim it
		case err != nil:
			return nil, unavailable(err)
		case string(v) != pending:
			return v, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(r.poll):
		}
	}
}
