// Package redisstore keeps analytics in Redis, shared by every kefu node: counters in one
// hash per hour and per day, every event on one stream (with the consumer group
// "warehouse" for loaders), unanswered questions on one stream per day, and the open
// conversations and SLA timers in sorted sets. Each write is one Lua script, so a node's
// batch lands whole or not at all. Every key carries the hash tag {analytics}.
//
// Keys under PREFIX:{analytics}:
//
//	c:h:2026-12-01T13, c:d:2026-12-01   hash "channel|lang|metric" → count
//	events                              stream of {"j": event JSON}
//	q:2026-12-01                        stream of {"j": question JSON}
//	set:open, info:open, gone:open      zset member → score (ms), hash member → seq|info,
//	set:sla, info:sla, gone:sla         zset member → claimed at (ms)
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/segmentio/encoding/json" // encoding/json's API, about twice as fast on a conversation record (README: Performance)
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/analytics"
)

// Group is the consumer group created on the events stream for warehouse loaders.
const Group = "warehouse"

// maxQuestions bounds each day's stream of unanswered questions (approximately).
const maxQuestions = 20000

// Store is an analytics.Store on Redis.
type Store struct {
	rdb       redis.UniversalClient
	p         string // PREFIX:{analytics}:
	retention time.Duration
}

var _ analytics.Store = (*Store)(nil)

// New returns the store under prefix; counters and lines are kept for retention (0: 90
// days).
func New(rdb redis.UniversalClient, prefix string, retention time.Duration) *Store {
	if retention <= 0 {
		retention = 90 * 24 * time.Hour
	}
	return &Store{rdb: rdb, p: prefix + ":{analytics}:", retention: retention}
}

// Setup creates the events stream's consumer group (once; later calls find it).
func (s *Store) Setup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.p+"events", Group, "$").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable(err)
	}
	return nil
}

// EventsKey is the stream every event goes to.
func (s *Store) EventsKey() string { return s.p + "events" }

var script = redis.NewScript(`
local a = cjson.decode(ARGV[1])
local cl = a.claim
if type(cl) == 'table' then
  if redis.call('ZSCORE', KEYS[cl.gone], cl.m) then return 0 end
  if cl.before > 0 then
    local s = redis.call('ZSCORE', KEYS[cl.z], cl.m)
    if s and tonumber(s) > cl.before then return 0 end
  end
  redis.call('ZREM', KEYS[cl.z], cl.m)
  redis.call('HDEL', KEYS[cl.info], cl.m)
  redis.call('ZADD', KEYS[cl.gone], cl.at, cl.m)
end
for _, c in ipairs(a.c) do redis.call('HINCRBY', KEYS[c[1]], c[2], c[3]) end
for _, e in ipairs(a.exp) do redis.call('EXPIREAT', KEYS[e[1]], e[2]) end
for _, x in ipairs(a.x) do
  if x[3] > 0 then
    redis.call('XADD', KEYS[x[1]], 'MAXLEN', '~', x[3], '*', 'j', x[2])
  else
    redis.call('XADD', KEYS[x[1]], '*', 'j', x[2])
  end
end
for _, p in ipairs(a.p) do
  if not redis.call('ZSCORE', KEYS[p[3]], p[4]) then
    local old = redis.call('HGET', KEYS[p[2]], p[4])
    local seq = -1
    if old then seq = tonumber(string.match(old, '^(%d+)|')) or -1 end
    if seq <= p[6] then
      redis.call('HSET', KEYS[p[2]], p[4], p[6] .. '|' .. p[7])
      redis.call('ZADD', KEYS[p[1]], p[5], p[4])
    end
  end
end
return 1
`)

// call is one run of the script: its keys, and its argument as the script decodes it.
type call struct {
	keys  []string
	index map[string]int
	Claim *claimArg `json:"claim"`
	C     [][3]any  `json:"c"`
	Exp   [][2]any  `json:"exp"`
	X     [][3]any  `json:"x"`
	P     [][7]any  `json:"p"`
}

type claimArg struct {
	Z      int    `json:"z"`
	Info   int    `json:"info"`
	Gone   int    `json:"gone"`
	Member string `json:"m"`
	At     int64  `json:"at"`
	Before int64  `json:"before"`
}

// key returns name's 1-based index in KEYS.
func (c *call) key(name string) int {
	if i, ok := c.index[name]; ok {
		return i
	}
	c.keys = append(c.keys, name)
	c.index[name] = len(c.keys)
	return len(c.keys)
}

func (s *Store) build(b *analytics.Batch) *call {
	c := &call{index: map[string]int{}, C: [][3]any{}, Exp: [][2]any{}, X: [][3]any{}, P: [][7]any{}}
	if b == nil {
		return c
	}
	for bucket, fields := range b.Counters {
		k := c.key(s.p + "c:" + bucket)
		for f, n := range fields {
			if n != 0 {
				c.C = append(c.C, [3]any{k, f, n})
			}
		}
		if start, ok := analytics.BucketTime(bucket); ok {
			c.Exp = append(c.Exp, [2]any{k, start.Add(s.retention + 48*time.Hour).Unix()})
		}
	}
	for _, l := range b.Lines {
		switch l.Kind {
		case analytics.Events:
			c.X = append(c.X, [3]any{c.key(s.p + "events"), string(l.JSON), 0})
		case analytics.Questions:
			day := l.At.UTC().Format(time.DateOnly)
			k := c.key(s.p + "q:" + day)
			c.X = append(c.X, [3]any{k, string(l.JSON), maxQuestions})
			c.Exp = append(c.Exp, [2]any{k, l.At.UTC().Truncate(24 * time.Hour).Add(s.retention + 48*time.Hour).Unix()})
		}
	}
	for _, p := range b.Puts {
		z, info, gone := s.set(c, p.Set)
		c.P = append(c.P, [7]any{z, info, gone, p.Member, p.Score.UnixMilli(), p.Seq, string(p.Info)})
	}
	return c
}

func (s *Store) set(c *call, name string) (z, info, gone int) {
	return c.key(s.p + "set:" + name), c.key(s.p + "info:" + name), c.key(s.p + "gone:" + name)
}

func (s *Store) run(ctx context.Context, c *call) (bool, error) {
	arg, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	keys := c.keys
	if len(keys) == 0 {
		keys = []string{s.p + "events"} // a script needs a key to run in a cluster slot
	}
	n, err := script.Run(ctx, s.rdb, keys, arg).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// Apply adds b in one script.
func (s *Store) Apply(ctx context.Context, b *analytics.Batch) error {
	_, err := s.run(ctx, s.build(b))
	return err
}

// Claim takes cl.Member once and applies b with it.
func (s *Store) Claim(ctx context.Context, cl analytics.Claim, b *analytics.Batch) (bool, error) {
	c := s.build(b)
	z, info, gone := s.set(c, cl.Set)
	c.Claim = &claimArg{Z: z, Info: info, Gone: gone, Member: cl.Member, At: cl.At.UnixMilli()}
	if !cl.Before.IsZero() {
		c.Claim.Before = cl.Before.UnixMilli()
	}
	return s.run(ctx, c)
}

// Due lists up to n members of set scored at or before t.
func (s *Store) Due(ctx context.Context, set string, t time.Time, n int) ([]analytics.Item, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.p+"set:"+set, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Count: int64(n)}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return s.items(ctx, set, zs)
}

// items adds their info to the members zs.
func (s *Store) items(ctx context.Context, set string, zs []redis.Z) ([]analytics.Item, error) {
	if len(zs) == 0 {
		return nil, nil
	}
	members := make([]string, len(zs))
	for i, z := range zs {
		members[i] = z.Member.(string)
	}
	infos, err := s.rdb.HMGet(ctx, s.p+"info:"+set, members...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]analytics.Item, 0, len(zs))
	for i, z := range zs {
		it := analytics.Item{Member: members[i], Score: time.UnixMilli(int64(z.Score)).UTC()}
		if v, ok := infos[i].(string); ok {
			_, info, _ := strings.Cut(v, "|")
			it.Info = []byte(info)
		}
		out = append(out, it)
	}
	return out, nil
}

// Latest lists up to n members of set scored before t, highest first.
func (s *Store) Latest(ctx context.Context, set string, t time.Time, n int) ([]analytics.Item, error) {
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.p+"set:"+set, &redis.ZRangeBy{Max: "(" + strconv.FormatInt(t.UnixMilli(), 10), Min: "-inf", Count: int64(n)}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return s.items(ctx, set, zs)
}

// Counters reads every bucket in one pipeline and adds up each group's.
func (s *Store) Counters(ctx context.Context, groups [][]string) ([]map[string]int64, error) {
	pipe := s.rdb.Pipeline()
	var cmds [][]*redis.Cmd
	for _, names := range groups {
		g := make([]*redis.Cmd, len(names))
		for i, b := range names {
			g[i] = pipe.Do(ctx, "HGETALL", s.p+"c:"+b) // raw pairs: no map per bucket
		}
		cmds = append(cmds, g)
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, unavailable(err)
		}
	}
	out := make([]map[string]int64, len(groups))
	for i, g := range cmds {
		m := map[string]int64{}
		for _, cmd := range g {
			add(m, cmd.Val())
		}
		out[i] = m
	}
	return out, nil
}

// add adds the field/value pairs of an HGETALL reply (a list in RESP2, a map in RESP3) to m.
func add(m map[string]int64, reply any) {
	switch r := reply.(type) {
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			f, _ := r[i].(string)
			v, _ := r[i+1].(string)
			n, _ := strconv.ParseInt(v, 10, 64)
			m[f] += n
		}
	case map[any]any:
		for f, v := range r {
			fs, _ := f.(string)
			vs, _ := v.(string)
			n, _ := strconv.ParseInt(vs, 10, 64)
			m[fs] += n
		}
	}
}

// lineHead is what Lines and Forget read of a line.
type lineHead struct {
	At           time.Time `json:"at"`
	Conversation string    `json:"conversation"`
}

// Lines reads kind's lines in [from, to). Events are found on the one stream by its ids
// (Redis's clock) a day either side of the period, then by their own time.
func (s *Store) Lines(ctx context.Context, kind string, from, to time.Time, fn func(analytics.Line) error) error {
	var streams []string
	lo, hi := "-", "+"
	switch kind {
	case analytics.Events:
		streams = []string{s.p + "events"}
		lo = strconv.FormatInt(from.Add(-24*time.Hour).UnixMilli(), 10)
		hi = strconv.FormatInt(to.Add(24*time.Hour).UnixMilli(), 10)
	case analytics.Questions:
		for d := from.UTC().Truncate(24 * time.Hour); d.Before(to); d = d.Add(24 * time.Hour) {
			streams = append(streams, s.p+"q:"+d.Format(time.DateOnly))
		}
	default:
		return fmt.Errorf("no lines of kind %q", kind)
	}
	for _, key := range streams {
		err := s.scan(ctx, key, lo, hi, func(_ string, j []byte) error {
			var h lineHead
			if json.Unmarshal(j, &h) != nil || h.At.Before(from) || !h.At.Before(to) {
				return nil
			}
			return fn(analytics.Line{Kind: kind, At: h.At, Conversation: h.Conversation, JSON: j})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scan pages through stream key from lo to hi.
func (s *Store) scan(ctx context.Context, key, lo, hi string, fn func(id string, j []byte) error) error {
	for {
		msgs, err := s.rdb.XRangeN(ctx, key, lo, hi, 1000).Result()
		if err != nil {
			return unavailable(err)
		}
		for _, m := range msgs {
			j, _ := m.Values["j"].(string)
			if err := fn(m.ID, []byte(j)); err != nil {
				return err
			}
		}
		if len(msgs) < 1000 {
			return nil
		}
		lo = "(" + msgs[len(msgs)-1].ID
	}
}

// Forget deletes the lines that name conv: it reads the events stream and the retained
// days' question streams through (erasure is rare; this is O(lines)).
func (s *Store) Forget(ctx context.Context, conv string) error {
	needle := []byte(`"conversation":"` + conv + `"`)
	keys := []string{s.p + "events"}
	now := time.Now().UTC()
	for d := now.Add(-s.retention - 48*time.Hour).Truncate(24 * time.Hour); !d.After(now.Add(48 * time.Hour)); d = d.Add(24 * time.Hour) {
		keys = append(keys, s.p+"q:"+d.Format(time.DateOnly))
	}
	pipe := s.rdb.TxPipeline()
	pipe.ZRem(ctx, s.p+"set:"+analytics.Recent, conv)
	pipe.HDel(ctx, s.p+"info:"+analytics.Recent, conv)
	if _, err := pipe.Exec(ctx); err != nil {
		return unavailable(err)
	}
	for _, key := range keys {
		var ids []string
		err := s.scan(ctx, key, "-", "+", func(id string, j []byte) error {
			if strings.Contains(string(j), string(needle)) {
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if err := s.rdb.XDel(ctx, key, ids...).Err(); err != nil {
				return unavailable(err)
			}
		}
	}
	return nil
}

// Prune trims the events stream to what Redis received since linesBefore and forgets
// claims made before claimsBefore; counter and question keys expire by themselves.
func (s *Store) Prune(ctx context.Context, linesBefore, claimsBefore time.Time) error {
	pipe := s.rdb.Pipeline()
	pipe.XTrimMinIDApprox(ctx, s.p+"events", strconv.FormatInt(max(0, linesBefore.UnixMilli()), 10), 0)
	for _, set := range []string{analytics.Open, analytics.Timers} {
		pipe.ZRemRangeByScore(ctx, s.p+"gone:"+set, "-inf", "("+strconv.FormatInt(claimsBefore.UnixMilli(), 10))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return unavailable(err)
	}
	// Conversations listed as recent whose state is long gone.
	old, err := s.rdb.ZRangeByScore(ctx, s.p+"set:"+analytics.Recent, &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(claimsBefore.UnixMilli(), 10), Count: 10000}).Result()
	if err != nil || len(old) == 0 {
		return unavailable(err)
	}
	pipe = s.rdb.TxPipeline()
	pipe.ZRem(ctx, s.p+"set:"+analytics.Recent, toAny(old)...)
	pipe.HDel(ctx, s.p+"info:"+analytics.Recent, old...)
	_, err = pipe.Exec(ctx)
	return unavailable(err)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// unavailable marks a Redis error as analytics.ErrUnavailable; the caller's own
// cancellation or deadline stays what it is.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", analytics.ErrUnavailable, err)
}
