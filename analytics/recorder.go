package analytics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"
)

// Recorder turns the engine's reports into counters, lines and set members. A turn is
// only buffered (Flush writes the buffer: engine.Watch does ten times a second, and at
// once when FlushTurns turns wait, so that no write is large enough to hold the store up
// for the turns around it); everything else,
// and a turn that hands off, is written at once with what is buffered, because other
// nodes act on it (an SLA timer, an ended conversation).
type Recorder struct {
	store Store // written to
	read  Store // read through, with the final buckets cached (Cached)
	now   func() time.Time

	mu       sync.Mutex
	pending  Batch
	turns    int           // turns in pending
	full     chan struct{} // FlushTurns turns wait
	channels map[string]bool
}

// FlushTurns is how many buffered turns make the buffer full (Full).
const FlushTurns = 100

// NewRecorder returns a recorder writing to s; now is the clock (nil: time.Now).
func NewRecorder(s Store, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: s, read: Cached(s, now), now: now, channels: map[string]bool{}, full: make(chan struct{}, 1)}
}

// Full says that FlushTurns turns wait in the buffer.
func (r *Recorder) Full() <-chan struct{} { return r.full }

// Store is where r writes, to read figures from: the counters of buckets that can no
// longer change come from memory after the first read.
func (r *Recorder) Store() Store { return r.read }

// channel is c as counted, and "other" past the first maxChannels names.
func (r *Recorder) channel(c string) string {
	c = channelName(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.channels[c] {
		return c
	}
	if len(r.channels) >= maxChannels {
		return "other"
	}
	r.channels[c] = true
	return c
}

// Member is the Open set's member for a conversation instance: a digest, so that the set
// holds no conversation id.
func Member(conv, instance string) string {
	h := sha256.Sum256([]byte(conv + "\x00" + instance))
	return hex.EncodeToString(h[:12])
}

// Turn is one customer message and what the bot did with it.
type Turn struct {
	At                  time.Time
	Conversation        string
	Instance            string // conversation.Conversation.Instance
	Channel, Lang, Text string
	Seq                 int    // the turn's number in its conversation (1: it starts)
	Source              string // dialog, kb, clarify, handoff, agent
	Intent              string
	Confidence          float32
	Emotion             string
	Negative            bool // the emotion is one the policy counts as negative
	Article             string
	KBAsked             bool
	Response            time.Duration
	// Handoff is set when this turn handed the conversation off.
	Handoff *Handoff
	// HandedOff: the conversation has been handed off (now or before); WasNegative: an
	// earlier turn was read with a negative emotion.
	HandedOff, WasNegative bool
}

// Handoff is a conversation going to a person.
type Handoff struct {
	ID, Reason, Priority, Queue string
	Skills                      []string
	// First: the conversation's first handoff (counted as a handed-off conversation).
	First bool
	// Deadline is when its SLA target passes (zero: no target).
	Deadline time.Time
}

// IsUnanswered says whether a turn is a question nothing answered: the bot asked to
// rephrase, or handed off because it did not understand or could not help.
func IsUnanswered(source, reason string) bool {
	return source == "clarify" || source == "handoff" && (reason == "low_confidence" || reason == "unresolved")
}

// Turn records t: buffered, or written at once with the buffer when it hands off.
func (r *Recorder) Turn(ctx context.Context, t Turn) error {
	ch := r.channel(t.Channel)
	if t.Handoff != nil {
		var b Batch
		turnInto(&b, t, ch)
		return r.write(ctx, &b)
	}
	r.mu.Lock()
	turnInto(&r.pending, t, ch) // into the buffer: its buckets exist, little to allocate
	r.turns++
	full := r.turns >= FlushTurns
	r.mu.Unlock()
	if full {
		select {
		case r.full <- struct{}{}:
		default:
		}
	}
	return nil
}

// turnInto adds t, counted under channel ch, to b.
func turnInto(b *Batch, t Turn, ch string) {
	f := func(m string) string { return field(ch, t.Lang, m) }
	ev := Event{At: t.At, Type: "turn", Conversation: t.Conversation, Channel: ch, Lang: t.Lang, Turn: t.Seq, Source: t.Source,
		Intent: t.Intent, Confidence: t.Confidence, Emotion: t.Emotion, Negative: t.Negative, Article: t.Article, KBAsked: t.KBAsked,
		ResponseMS: float64(t.Response.Microseconds()) / 1000}
	if t.Seq == 1 {
		b.add(t.At, f(mConversations), 1)
		b.line(Events, Event{At: t.At, Type: "conversation.started", Conversation: t.Conversation, Channel: ch, Lang: t.Lang})
	}
	b.add(t.At, f(mMessages), 1)
	b.add(t.At, f(mSource+t.Source), 1)
	if t.Source != "agent" { // the bot read it and answered
		if t.Intent != "" {
			b.add(t.At, f(mIntent+t.Intent), 1)
		}
		if t.Negative {
			b.add(t.At, f(mNegative), 1)
		}
		if t.KBAsked {
			b.add(t.At, f(mKBAsked), 1)
		}
		if t.Source == "kb" {
			b.add(t.At, f(mKBAnswered), 1)
		}
		b.add(t.At, f(mResponse+strconv.Itoa(bucketOf(responseBounds, ev.ResponseMS))), 1)
	}
	b.line(Events, ev)
	reason := ""
	if h := t.Handoff; h != nil {
		reason = h.Reason
		b.add(t.At, f(mHandoffs), 1)
		if h.First {
			b.add(t.At, f(mHandedOff), 1)
		}
		b.add(t.At, f(mReason+h.Reason), 1)
		b.add(t.At, f(mQueue+h.Queue), 1)
		b.add(t.At, f(mPriority+h.Priority), 1)
		b.line(Events, Event{At: t.At, Type: "handoff", Conversation: t.Conversation, Channel: ch, Lang: t.Lang, Turn: t.Seq,
			Handoff: h.ID, Reason: h.Reason, Priority: h.Priority, Queue: h.Queue, Skills: h.Skills})
		if !h.Deadline.IsZero() {
			info, _ := json.Marshal(timerInfo{Handoff: h.ID, Conversation: t.Conversation, Channel: ch, Lang: t.Lang,
				Priority: h.Priority, Queue: h.Queue, Since: t.At.UTC(), Deadline: h.Deadline.UTC()})
			b.Puts = append(b.Puts, Put{Set: Timers, Member: h.ID, Score: h.Deadline, Info: info})
		}
	}
	if IsUnanswered(t.Source, reason) {
		b.line(Questions, Event{At: t.At, Type: "question", Conversation: t.Conversation, Channel: ch, Lang: t.Lang, Turn: t.Seq,
			Source: t.Source, Reason: reason, Intent: t.Intent, Confidence: t.Confidence, Text: t.Text})
	}
	text := []rune(t.Text)
	recent, _ := json.Marshal(Conversation{ID: t.Conversation, Last: t.At.UTC(), Channel: ch, Lang: t.Lang, Turns: t.Seq, Source: t.Source,
		Intent: t.Intent, Emotion: t.Emotion, Negative: t.Negative || t.WasNegative, HandedOff: t.HandedOff, Text: string(text[:min(len(text), 100)])})
	// Seq is the time: a conversation id started again (a new instance) counts from 1.
	b.Puts = append(b.Puts, Put{Set: Recent, Member: t.Conversation, Score: t.At, Seq: int(t.At.UnixMilli()), Info: recent})
	resolved := t.Source == "dialog" || t.Source == "kb"
	info, _ := json.Marshal(openInfo{Conversation: t.Conversation, Channel: ch, Lang: t.Lang, HandedOff: t.HandedOff, Resolved: resolved})
	b.Puts = append(b.Puts, Put{Set: Open, Member: Member(t.Conversation, t.Instance), Score: t.At, Seq: t.Seq, Info: info})
}

// write applies b with whatever is buffered.
func (r *Recorder) write(ctx context.Context, b *Batch) error {
	r.mu.Lock()
	all := r.pending
	r.pending, r.turns = Batch{}, 0
	r.mu.Unlock()
	all.merge(b)
	if all.empty() {
		return nil
	}
	if err := r.store.Apply(ctx, &all); err != nil {
		r.mu.Lock()
		all.merge(&r.pending) // keep it for the next flush, in order
		r.pending = all
		r.mu.Unlock()
		return err
	}
	return nil
}

// Flush writes what is buffered.
func (r *Recorder) Flush(ctx context.Context) error { return r.write(ctx, &Batch{}) }

// Accepted records that an agent accepted handoff id at; deadline is its SLA deadline
// (zero: none). It counts the time to the agent, and the SLA met when the acceptance came
// in time and the handoff's timer was still running (a timer that fired counted a breach).
func (r *Recorder) Accepted(ctx context.Context, a Accept) error {
	ch := r.channel(a.Channel)
	f := func(m string) string { return field(ch, a.Lang, m) }
	wait := a.At.Sub(a.Since).Seconds()
	var b Batch
	b.add(a.At, f(mAccepted+a.Priority), 1)
	b.add(a.At, f(mWait+a.Priority+"."+strconv.Itoa(bucketOf(waitBounds, wait))), 1)
	ev := Event{At: a.At, Type: "agent.accepted", Conversation: a.Conversation, Channel: ch, Lang: a.Lang, Handoff: a.Handoff,
		Priority: a.Priority, Queue: a.Queue, Agent: a.Agent, WaitS: wait}
	if a.Deadline.IsZero() {
		b.line(Events, ev)
		return r.write(ctx, &b)
	}
	if err := r.Flush(ctx); err != nil { // the timer may be in the buffer
		return err
	}
	var sla Batch
	ev.SLA = "met"
	if a.At.After(a.Deadline) {
		ev.SLA = "breached" // late, though no node had noticed yet
	}
	sla.add(a.At, f(mSLA+a.Priority+"."+ev.SLA), 1)
	claimed, err := r.store.Claim(ctx, Claim{Set: Timers, Member: a.Handoff, At: a.At}, &sla)
	if err != nil {
		return err
	}
	if !claimed {
		ev.SLA = "" // the breach was counted when the timer fired
	}
	b.line(Events, ev)
	return r.write(ctx, &b)
}

// Accept is an agent accepting a handoff.
type Accept struct {
	At, Since, Deadline                                          time.Time
	Conversation, Channel, Lang, Handoff, Priority, Queue, Agent string
}

// Released records that an agent gave a conversation back to the bot; its SLA timer, if
// still running, stops without a figure.
func (r *Recorder) Released(ctx context.Context, at time.Time, conv, channel, lang, handoffID string) error {
	ch := r.channel(channel)
	var b Batch
	b.add(at, field(ch, lang, mReleased), 1)
	b.line(Events, Event{At: at, Type: "agent.released", Conversation: conv, Channel: ch, Lang: lang, Handoff: handoffID})
	if err := r.write(ctx, &b); err != nil {
		return err
	}
	_, err := r.store.Claim(ctx, Claim{Set: Timers, Member: handoffID, At: at}, nil)
	return err
}

// CSAT records a satisfaction score; previous is the conversation's earlier score (0:
// none), which the new one replaces in the figures.
func (r *Recorder) CSAT(ctx context.Context, at time.Time, conv, channel, lang string, score, previous int) error {
	ch := r.channel(channel)
	f := func(m string) string { return field(ch, lang, m) }
	var b Batch
	if previous == 0 {
		b.add(at, f(mCSATCount), 1)
	} else {
		b.add(at, f(mCSATScore+strconv.Itoa(previous)), -1)
	}
	b.add(at, f(mCSATSum), int64(score-previous))
	b.add(at, f(mCSATScore+strconv.Itoa(score)), 1)
	b.line(Events, Event{At: at, Type: "csat", Conversation: conv, Channel: ch, Lang: lang, Score: score})
	return r.write(ctx, &b)
}

// End is a conversation ending (closed, erased, or idle too long).
type End struct {
	At                     time.Time
	Conversation, Instance string
	Channel, Lang          string
	HandedOff, Resolved    bool
	// HandoffID, when a person still has the conversation, stops its SLA timer.
	HandoffID string
}

// Ended records e once per conversation instance; false when it was recorded before.
// A conversation ended without a handoff whose last customer turn was resolved (dialog or
// KB) is auto-resolved.
func (r *Recorder) Ended(ctx context.Context, e End) (bool, error) {
	if err := r.Flush(ctx); err != nil {
		return false, err
	}
	if e.HandoffID != "" {
		if _, err := r.store.Claim(ctx, Claim{Set: Timers, Member: e.HandoffID, At: e.At}, nil); err != nil {
			return false, err
		}
	}
	return r.store.Claim(ctx, Claim{Set: Open, Member: Member(e.Conversation, e.Instance), At: e.At}, r.endBatch(e.At, e.Conversation,
		openInfo{Channel: r.channel(e.Channel), Lang: e.Lang, HandedOff: e.HandedOff, Resolved: e.Resolved}))
}

func (r *Recorder) endBatch(at time.Time, conv string, o openInfo) *Batch {
	var b Batch
	auto := !o.HandedOff && o.Resolved
	b.add(at, field(o.Channel, o.Lang, mEnded), 1)
	if auto {
		b.add(at, field(o.Channel, o.Lang, mAuto), 1)
	}
	b.line(Events, Event{At: at, Type: "conversation.ended", Conversation: conv, Channel: o.Channel, Lang: o.Lang, AutoResolved: &auto})
	return &b
}

// EndIdle ends the conversations whose last turn was at or before idleSince (their state
// has expired), each once whichever node runs it, counted now; it returns how many it ended.
func (r *Recorder) EndIdle(ctx context.Context, idleSince time.Time) (int, error) {
	if err := r.Flush(ctx); err != nil {
		return 0, err
	}
	n := 0
	for {
		items, err := r.store.Due(ctx, Open, idleSince, 100)
		if err != nil || len(items) == 0 {
			return n, err
		}
		for _, it := range items {
			var o openInfo
			if json.Unmarshal(it.Info, &o) != nil {
				o = openInfo{Channel: Unset}
			}
			now := r.now() // counted when noticed: buckets that have passed stay final (Cached)
			ok, err := r.store.Claim(ctx, Claim{Set: Open, Member: it.Member, At: now, Before: it.Score}, r.endBatch(now, o.Conversation, o))
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if len(items) < 100 {
			return n, nil
		}
	}
}

// DueTimers lists up to n handoffs whose SLA deadline is at or before t.
func (r *Recorder) DueTimers(ctx context.Context, t time.Time, n int) ([]Timer, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	items, err := r.store.Due(ctx, Timers, t, n)
	if err != nil {
		return nil, err
	}
	out := make([]Timer, 0, len(items))
	for _, it := range items {
		var ti timerInfo
		if json.Unmarshal(it.Info, &ti) != nil {
			continue
		}
		out = append(out, Timer{Handoff: ti.Handoff, Conversation: ti.Conversation, Channel: ti.Channel, Lang: ti.Lang, Priority: ti.Priority, Queue: ti.Queue, Since: ti.Since, Deadline: ti.Deadline})
	}
	return out, nil
}

// Breached counts t's breach once, whichever node calls it first (true), unless an agent
// accepted it or it was released meanwhile (false).
func (r *Recorder) Breached(ctx context.Context, t Timer, at time.Time) (bool, error) {
	var b Batch
	b.add(at, field(t.Channel, t.Lang, mSLA+t.Priority+".breached"), 1)
	b.line(Events, Event{At: at, Type: "handoff.sla_breached", Conversation: t.Conversation, Channel: t.Channel, Lang: t.Lang,
		Handoff: t.Handoff, Priority: t.Priority, Queue: t.Queue, WaitS: at.Sub(t.Since).Seconds(), SLA: "breached"})
	return r.store.Claim(ctx, Claim{Set: Timers, Member: t.Handoff, At: at}, &b)
}

// Forget removes what names conversation conv (its lines); the counters never do.
func (r *Recorder) Forget(ctx context.Context, conv string) error {
	if err := r.Flush(ctx); err != nil {
		return err
	}
	return r.store.Forget(ctx, conv)
}

// Conversations lists the conversations whose last turn was before t, the latest first, at
// most n of those that keep (nil: all).
func (r *Recorder) Conversations(ctx context.Context, t time.Time, n int, keep func(Conversation) bool) ([]Conversation, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	var out []Conversation
	for scanned := 0; len(out) < n && scanned < 20*n+1000; scanned += 200 { // a rare filter reads a bounded part
		items, err := r.store.Latest(ctx, Recent, t, 200)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			var c Conversation
			if json.Unmarshal(it.Info, &c) == nil && (keep == nil || keep(c)) && len(out) < n {
				out = append(out, c)
			}
			t = it.Score
		}
		if len(items) < 200 {
			break
		}
	}
	return out, nil
}
