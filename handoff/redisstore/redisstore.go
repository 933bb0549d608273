// Package redisstore is a durable handoff outbox on Redis, shared by every kefu process.
//
// Keys:
//
//	PREFIX:{outbox}:stream    stream of deliveries, consumer group "kefu"
//	PREFIX:{outbox}:key:KEY   idempotency marker of an enqueued delivery (7 days)
//	PREFIX:{outbox}:errors    hash entry id → last delivery error
//	PREFIX:{outbox}:dead      stream of dead letters
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/internal/redisx"
)

// Outbox is a durable outbox on a Redis stream with a consumer group: a delivery stays
// pending until it succeeds; one that failed, or whose process died mid-delivery, is
// claimed again (by any process) after the back-off; after MaxAttempts it moves to the
// dead-letter stream.
type Outbox struct {
	rdb      redis.UniversalClient
	opt      handoff.Options
	p        string
	consumer string
	report   func(error)
}

var _ handoff.Outbox = (*Outbox)(nil)

// NewOutbox returns the outbox under prefix ("" → "kefu"); consumer names this process in
// the group (unique per process); report hears Redis errors while Run retries them (nil:
// none).
func NewOutbox(rdb redis.UniversalClient, prefix, consumer string, opt handoff.Options, report func(error)) *Outbox {
	if prefix == "" {
		prefix = "kefu"
	}
	return &Outbox{rdb: rdb, opt: opt, p: prefix + ":{outbox}:", consumer: consumer, report: report}
}

const group = "kefu"

var enqueue = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[5]) then
  redis.call('XADD', KEYS[1], '*', 'key', ARGV[1], 'kind', ARGV[2], 'body', ARGV[3], 'at', ARGV[4])
  return 1
end
return 0`)

// Enqueue adds d unless a delivery with its key was enqueued in the last 7 days.
func (o *Outbox) Enqueue(ctx context.Context, d handoff.Delivery) error {
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

// Erase implements handoff.Outbox: the conversation's entries in the stream (acknowledged
// and deleted) and in the dead letters, their errors and their idempotency markers. It
// reads both streams in pages; a delivery being attempted right now may still arrive.
func (o *Outbox) Erase(ctx context.Context, conv string) error {
	prefix := conv + ":"
	for _, stream := range []string{o.p + "stream", o.p + "dead"} {
		for start := "-"; ; {
			msgs, err := o.rdb.XRangeN(ctx, stream, start, "+", 500).Result()
			if err != nil {
				return unavailable(err)
			}
			for _, m := range msgs {
				key := str(m.Values["key"])
				if !strings.HasPrefix(key, prefix) {
					continue
				}
				pipe := o.rdb.TxPipeline()
				if stream == o.p+"stream" {
					pipe.XAck(ctx, stream, group, m.ID)
					pipe.HDel(ctx, o.p+"errors", m.ID)
				}
				pipe.XDel(ctx, stream, m.ID)
				pipe.Del(ctx, o.p+"key:"+key)
				if _, err := pipe.Exec(ctx); err != nil {
					return unavailable(err)
				}
			}
			if len(msgs) < 500 {
				break
			}
			start = "(" + msgs[len(msgs)-1].ID
		}
	}
	// Markers of deliveries already delivered (the stream no longer names them).
	err := redisx.Keys(ctx, o.rdb, o.p+"key:"+prefix+"*", func(key string) error { return o.rdb.Del(ctx, key).Err() })
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Dead lists the dead letters, oldest first (at most 1,000).
func (o *Outbox) Dead(ctx context.Context) ([]handoff.DeadLetter, error) {
	msgs, err := o.rdb.XRangeN(ctx, o.p+"dead", "-", "+", 1000).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]handoff.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		dl := handoff.DeadLetter{Delivery: delivery(m)}
		dl.Attempts, _ = strconv.Atoi(str(m.Values["attempts"]))
		dl.Error = str(m.Values["error"])
		if ms, err := strconv.ParseInt(str(m.Values["dead_at"]), 10, 64); err == nil {
			dl.At = time.UnixMilli(ms)
		}
		out = append(out, dl)
	}
	return out, nil
}

// Retry puts the dead letter with key back on the stream (its marker stays: the key is
// still taken), in one transaction.
func (o *Outbox) Retry(ctx context.Context, key string) error {
	start := "-"
	for {
		msgs, err := o.rdb.XRangeN(ctx, o.p+"dead", start, "+", 500).Result()
		if err != nil {
			return unavailable(err)
		}
		for _, m := range msgs {
			if str(m.Values["key"]) != key {
				continue
			}
			pipe := o.rdb.TxPipeline()
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: o.p + "stream", Values: map[string]any{
				"key": key, "kind": str(m.Values["kind"]), "body": str(m.Values["body"]), "at": str(m.Values["at"])}})
			pipe.XDel(ctx, o.p+"dead", m.ID)
			if _, err := pipe.Exec(ctx); err != nil {
				return unavailable(err)
			}
			return nil
		}
		if len(msgs) < 500 {
			return handoff.ErrNoDeadLetter
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func delivery(m redis.XMessage) handoff.Delivery {
	d := handoff.Delivery{Key: str(m.Values["key"]), Kind: str(m.Values["kind"]), Body: []byte(str(m.Values["body"]))}
	if ms, err := strconv.ParseInt(str(m.Values["at"]), 10, 64); err == nil {
		d.Enqueued = time.UnixMilli(ms)
	}
	return d
}

// Run delivers until ctx ends: new entries, then due retries, with at most
// Options.Concurrency deliveries in flight. Redis errors are retried after a second (and
// reported).
func (o *Outbox) Run(ctx context.Context, deliver handoff.Deliver) {
	report := o.report
	stream := o.p + "stream"
	for ctx.Err() == nil {
		err := o.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
		if err == nil || isBusyGroup(err) {
			break
		}
		o.fail(ctx, report, err)
	}
	slots := make(chan struct{}, o.opt.Defaults().Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	// send runs one delivery in the pool; it waits for a free slot (so a slow desk slows
	// reading, never piles up work).
	send := func(m redis.XMessage, claim bool) bool {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if claim && !o.own(ctx, m.ID) {
				return // another node claimed it meanwhile: it delivers it
			}
			o.attempt(ctx, m, deliver, report)
		}()
		return true
	}
	for ctx.Err() == nil {
		free := cap(slots) - len(slots)
		if free == 0 {
			select { // every slot busy: wait for one before reading more
			case slots <- struct{}{}:
				<-slots
			case <-ctx.Done():
			}
			continue
		}
		res, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: o.consumer,
			Streams: []string{stream, ">"}, Count: int64(free), Block: 200 * time.Millisecond}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if isNoGroup(err) {
				o.rdb.XGroupCreateMkStream(ctx, stream, group, "0")
			}
			o.fail(ctx, report, err)
			continue
		}
		for _, st := range res {
			for _, m := range st.Messages {
				send(m, true)
			}
		}
		if err := o.retry(ctx, send); err != nil {
			o.fail(ctx, report, err)
		}
	}
}

// ownScript renews this consumer's claim of a pending entry just before it is posted, and
// only if it still holds it: an entry read a while ago (waiting for a free slot) may have
// been claimed by another node's retry meanwhile, and must then not be posted twice. The
// renewal resets the entry's idle time, so no other node claims it during the attempt.
// KEYS: stream. ARGV: group, consumer, id.
var ownScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] == nil or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1`)

func (o *Outbox) own(ctx context.Context, id string) bool {
	n, err := ownScript.Run(ctx, o.rdb, []string{o.p + "stream"}, group, o.consumer, id).Int()
	return err == nil && n == 1
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
func (o *Outbox) attempt(ctx context.Context, m redis.XMessage, deliver handoff.Deliver, report func(error)) {
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

// retry pages through every pending entry idle past the shortest back-off and claims
// those whose own back-off has passed: each is delivered again through send, or moved to
// the dead letters after MaxAttempts. Old entries in a long back-off never hide new ones.
func (o *Outbox) retry(ctx context.Context, send func(redis.XMessage, bool) bool) error {
	opt := o.opt.Defaults()
	stream := o.p + "stream"
	for start := "-"; ctx.Err() == nil; {
		pending, err := o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group,
			Idle: opt.Backoff, Start: start, End: "+", Count: 200}).Result()
		if err != nil {
			return err
		}
		if err := o.retryPage(ctx, pending, send); err != nil {
			return err
		}
		if len(pending) < 200 {
			return nil
		}
		start = "(" + pending[len(pending)-1].ID
	}
	return nil
}

func (o *Outbox) retryPage(ctx context.Context, pending []redis.XPendingExt, send func(redis.XMessage, bool) bool) error {
	opt := o.opt.Defaults()
	stream := o.p + "stream"
	for _, p := range pending {
		// An attempt in flight elsewhere is never claimed: idle must exceed its timeout.
		wait := handoff.Jitter(opt.Wait(int(p.RetryCount))) + opt.Timeout
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
		if !send(msgs[0], true) { // claimed just now; renewed again when a slot is free
			return nil
		}
	}
	return nil
}

func isBusyGroup(err error) bool { return strings.HasPrefix(err.Error(), "BUSYGROUP") }
func isNoGroup(err error) bool   { return strings.HasPrefix(err.Error(), "NOGROUP") }

// unavailable marks a Redis error as handoff.ErrUnavailable; the caller's own cancellation
// or deadline stays what it is.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", handoff.ErrUnavailable, err)
}
