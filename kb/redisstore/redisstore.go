// Package redisstore keeps kefu's knowledge base in Redis so that many kefu processes share
// it: the articles and experiments, every version, the audit log, a stream of changes every
// node follows to keep its search index in step, and the experiments' counters.
//
// Keys (all under one Redis Cluster hash tag, so a commit's keys share a slot):
//
//	PREFIX:{kb}:versions            hash  "article:ID"|"experiment:ID" → latest version
//	PREFIX:{kb}:articles            hash  ID → current article (JSON); deleted ones removed
//	PREFIX:{kb}:experiments         hash  ID → experiment (JSON)
//	PREFIX:{kb}:history:ID          list  every version of article ID (JSON), oldest first
//	PREFIX:{kb}:changes             stream of committed changes (trimmed to about 100,000)
//	PREFIX:{kb}:audit               stream of audit entries (trimmed to about 100,000)
//	PREFIX:{kb}:counts:EXP          hash  "VARIANT|field" → count
//	PREFIX:{kb}:seen:EXP:CONV       string, set once per conversation (TTL 30 days)
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/kb"
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// Prefix starts every key; default "kefu".
	Prefix string
	// Block is how long one read of the change stream waits; default 1 s.
	Block time.Duration
	// SeenTTL is how long a conversation's exposure marker lives; default 30 days.
	SeenTTL time.Duration
}

// Store is a kb.Store on Redis.
type Store struct {
	rdb redis.UniversalClient
	opt Options
	p   string // PREFIX:{kb}:
}

var _ kb.Store = (*Store)(nil)

// New returns a store on rdb; the caller owns (and closes) rdb.
func New(rdb redis.UniversalClient, opt Options) *Store {
	if opt.Prefix == "" {
		opt.Prefix = "kefu"
	}
	if opt.Block == 0 {
		opt.Block = time.Second
	}
	if opt.SeenTTL == 0 {
		opt.SeenTTL = 30 * 24 * time.Hour
	}
	return &Store{rdb: rdb, opt: opt, p: opt.Prefix + ":{kb}:"}
}

func (s *Store) key(parts ...string) string { return s.p + strings.Join(parts, ":") }

// Load implements kb.Store. The cursor is read before the records, so a change committed
// meanwhile is reported again by Watch (applying it twice is harmless: versions decide).
func (s *Store) Load(ctx context.Context) (*kb.Snapshot, error) {
	snap := &kb.Snapshot{Cursor: "0-0"}
	last, err := s.rdb.XRevRangeN(ctx, s.key("changes"), "+", "-", 1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(last) > 0 {
		snap.Cursor = last[0].ID
	}
	vers, err := s.rdb.HGetAll(ctx, s.key("versions")).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	snap.Versions = make(map[string]int64, len(vers))
	for k, v := range vers {
		if k == "~generation" { // set by the first commit: a store with content has it
			snap.Generation = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis %s field %q: %q is not a version", s.key("versions"), k, v)
		}
		snap.Versions[k] = n
	}
	arts, err := s.rdb.HGetAll(ctx, s.key("articles")).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	for id, v := range arts {
		var a kb.Article
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("redis %s field %q: %w", s.key("articles"), id, err)
		}
		snap.Articles = append(snap.Articles, a)
	}
	exps, err := s.rdb.HGetAll(ctx, s.key("experiments")).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	for id, v := range exps {
		var e kb.Experiment
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, fmt.Errorf("redis %s field %q: %w", s.key("experiments"), id, err)
		}
		snap.Experiments = append(snap.Experiments, e)
	}
	return snap, nil
}

// commitScript checks every change's version, then writes all of them, in one atomic step.
// KEYS: versions, articles, experiments, changes, audit, then one history key per change.
// ARGV: n, then per change: key ("article:ID"), kind, id, version, deleted (0/1), record
// JSON, change JSON, audit JSON.
var commitScript = redis.NewScript(`
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local k, v = ARGV[2 + i*8], tonumber(ARGV[5 + i*8])
  local cur = tonumber(redis.call('HGET', KEYS[1], k) or '0')
  if cur ~= v - 1 then
    return redis.error_reply('CONFLICT ' .. k .. ' is at version ' .. cur .. ', not ' .. (v - 1))
  end
end
redis.call('HSETNX', KEYS[1], '~generation', ARGV[2 + n*8])
for i = 0, n - 1 do
  local b = 2 + i*8
  local k, kind, id, v, deleted = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4]
  local record, change, audit = ARGV[b+5], ARGV[b+6], ARGV[b+7]
  redis.call('HSET', KEYS[1], k, v)
  local h = KEYS[2]
  if kind == 'experiment' then h = KEYS[3] end
  if deleted == '1' then redis.call('HDEL', h, id) else redis.call('HSET', h, id, record) end
  if kind == 'article' then redis.call('RPUSH', KEYS[6 + i], record) end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'change', change)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '100000', '*', 'audit', audit)
end
return n
`)

// Commit implements kb.Store.
func (s *Store) Commit(ctx context.Context, changes []kb.Change) error {
	keys := []string{s.key("versions"), s.key("articles"), s.key("experiments"), s.key("changes"), s.key("audit")}
	args := []any{len(changes)}
	for _, c := range changes {
		kind, id, deleted := "experiment", "", "0"
		var record []byte
		var err error
		if c.Article != nil {
			kind, id = "article", c.Article.ID
			if c.Article.Deleted {
				deleted = "1"
			}
			record, err = json.Marshal(c.Article)
		} else {
			id = c.Experiment.ID
			record, err = json.Marshal(c.Experiment)
		}
		if err != nil {
			return err
		}
		change, err := json.Marshal(c)
		if err != nil {
			return err
		}
		audit, err := json.Marshal(c.Audit)
		if err != nil {
			return err
		}
		keys = append(keys, s.key("history", id))
		args = append(args, c.Key(), kind, id, c.Version(), deleted, record, change, audit)
	}
	// The generation is set with the first write, in the same script: a store with content
	// always has one.
	args = append(args, fmt.Sprintf("%x", time.Now().UnixNano()))
	err := commitScript.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil && strings.HasPrefix(err.Error(), "CONFLICT ") {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "CONFLICT "), kb.ErrConflict)
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// History implements kb.Store.
func (s *Store) History(ctx context.Context, id string) ([]kb.Article, error) {
	vals, err := s.rdb.LRange(ctx, s.key("history", id), 0, -1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(vals) == 0 {
		return nil, kb.ErrNotFound
	}
	out := make([]kb.Article, len(vals))
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("redis %s: %w", s.key("history", id), err)
		}
	}
	return out, nil
}

// Audit implements kb.Store.
func (s *Store) Audit(ctx context.Context, limit int) ([]kb.AuditEntry, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.key("audit"), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]kb.AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		var a kb.AuditEntry
		if v, ok := m.Values["audit"].(string); ok && json.Unmarshal([]byte(v), &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// Watch implements kb.Store: it reads the change stream after cursor until ctx ends or
// Redis fails.
func (s *Store) Watch(ctx context.Context, cursor string, apply func(kb.Change)) error {
	for {
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.key("changes"), cursor}, Count: 1000, Block: s.opt.Block}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return unavailable(err)
		}
		for _, st := range res {
			for _, m := range st.Messages {
				cursor = m.ID
				var c kb.Change
				v, _ := m.Values["change"].(string)
				if err := json.Unmarshal([]byte(v), &c); err != nil || (c.Article == nil) == (c.Experiment == nil) {
					return fmt.Errorf("redis %s entry %s: not a change", s.key("changes"), m.ID)
				}
				apply(c)
			}
		}
	}
}

// onceScript sets a marker and, only if it was not set, increments a counter: atomically,
// so a process dying in between cannot lose or double a count.
// KEYS: marker, counts. ARGV: variant, TTL in ms, counter field.
var onceScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  return 1
end
return 0
`)

func (s *Store) once(ctx context.Context, marker, exp, variant, field, conv string) (bool, error) {
	n, err := onceScript.Run(ctx, s.rdb, []string{s.key(marker, exp, conv), s.key("counts", exp)},
		variant, s.opt.SeenTTL.Milliseconds(), variant+"|"+field).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// Expose implements kb.Counters.
func (s *Store) Expose(ctx context.Context, exp, variant, conv string) (bool, error) {
	return s.once(ctx, "seen", exp, variant, "exposures", conv)
}

// outcomeScript counts an outcome for the variant an exposed conversation was shown (its
// exposure marker holds it), once per kind: an unexposed conversation or a repeat counts
// nothing. KEYS: exposure marker, outcome marker, counts. ARGV: TTL in ms, then field and
// increment pairs.
var outcomeScript = redis.NewScript(`
local variant = redis.call('GET', KEYS[1])
if not variant then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[3], variant .. '|' .. ARGV[i], ARGV[i+1])
end
return 1
`)

// Outcome implements kb.Counters.
func (s *Store) Outcome(ctx context.Context, exp, conv, kind string, fields map[string]int64) (bool, error) {
	args := []any{s.opt.SeenTTL.Milliseconds()}
	for f, n := range fields {
		args = append(args, f, n)
	}
	n, err := outcomeScript.Run(ctx, s.rdb, []string{s.key("seen", exp, conv), s.key(kind, exp, conv), s.key("counts", exp)}, args...).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// Forget implements kb.Counters.
func (s *Store) Forget(ctx context.Context, exp, conv string) error {
	if err := s.rdb.Del(ctx, s.key("seen", exp, conv), s.key(kb.OutcomeUnresolved, exp, conv), s.key(kb.OutcomeCSAT, exp, conv), s.key(kb.OutcomeThumb, exp, conv)).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Counts implements kb.Counters.
func (s *Store) Counts(ctx context.Context, exp string) (map[string]kb.Counts, error) {
	vals, err := s.rdb.HGetAll(ctx, s.key("counts", exp)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := map[string]kb.Counts{}
	for k, v := range vals {
		variant, field, ok := strings.Cut(k, "|")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		c := out[variant]
		c.Add(field, n)
		out[variant] = c
	}
	return out, nil
}

// Close implements kb.Store; the Redis client belongs to the caller.
func (s *Store) Close() error { return nil }

// unavailable wraps a Redis failure as kb.ErrUnavailable.
// unavailable marks a Redis error as kb.ErrUnavailable; the caller's own cancellation or
// deadline stays what it is (as in every store of kefu).
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: redis: %v", kb.ErrUnavailable, err)
}
