// Package analytics keeps the service's figures: how many conversations the bot resolved by
// itself, how many it handed off and why, how long people took to accept them, CSAT, the
// bot's response times, the intent mix and the questions nothing answered.
//
// The engine reports what happened (a turn, a handoff, an agent's acceptance, a CSAT score,
// a conversation's end) to a Recorder as effects of the change that was saved, so a turn
// that reruns after a conflict counts once. The Recorder turns each report into counter
// increments in hour and day buckets, one JSON line for export, and the few things it must
// remember between reports (the open conversations, the SLA timers of handoffs), and hands
// them to a Store: analytics/redisstore (many nodes, one Redis) or analytics/boltstore (the
// single node's embedded file). Figures are read back by adding up buckets (Summary,
// Series), so a period of 90 days reads 90 day buckets and at most 48 hour buckets,
// however many conversations it had.
package analytics

import (
	"context"
	"errors"
	"github.com/segmentio/encoding/json" // encoding/json's API, about twice as fast on a conversation record (README: Performance)
	"strings"
	"time"
)

// ErrUnavailable: the analytics store cannot be reached.
var ErrUnavailable = errors.New("analytics store unavailable")

// Store keeps counters, lines and claimable sets; every method is atomic on its own.
type Store interface {
	// Apply adds b: counters, lines and puts. A put to a member claimed before is dropped.
	Apply(ctx context.Context, b *Batch) error
	// Claim takes c.Member out of c.Set once: the first claim of a member succeeds (true)
	// and applies b with it, later ones return false and apply nothing. With c.Before set,
	// a member whose score is after it is not claimed (it became active again).
	Claim(ctx context.Context, c Claim, b *Batch) (bool, error)
	// Due lists up to n members of set with a score at or before t, lowest first.
	Due(ctx context.Context, set string, t time.Time, n int) ([]Item, error)
	// Latest lists up to n members of set with a score before t, highest first.
	Latest(ctx context.Context, set string, t time.Time, n int) ([]Item, error)
	// Counters adds up the counters of each group of buckets: one map per group (empty when
	// its buckets hold nothing).
	Counters(ctx context.Context, groups [][]string) ([]map[string]int64, error)
	// Lines calls fn with each line of kind (Events, Questions) whose time is in [from, to).
	Lines(ctx context.Context, kind string, from, to time.Time, fn func(Line) error) error
	// Forget removes every line that names conversation conv, and conv from Recent.
	Forget(ctx context.Context, conv string) error
	// Prune drops counters and lines from before linesBefore and claims from before
	// claimsBefore.
	Prune(ctx context.Context, linesBefore, claimsBefore time.Time) error
}

// Kinds of lines.
const (
	Events    = "events"    // every event, for export
	Questions = "questions" // customer messages nothing answered
)

// Sets of claimable members.
const (
	Open   = "open"   // conversations not yet ended, scored by their last turn
	Timers = "sla"    // handoffs waiting for an agent, scored by their SLA deadline
	Recent = "recent" // conversations by id, scored by their last turn (the console's list)
)

// Batch is what one Apply (or a successful Claim) adds.
type Batch struct {
	// Counters: bucket (HourBucket, DayBucket) → field → increment.
	Counters map[string]map[string]int64
	Lines    []Line
	Puts     []Put

	hourOf    int64            // the unix hour whose buckets these are
	hour, day map[string]int64 // its counters
}

// Line is one JSON line of a kind, at a time.
type Line struct {
	Kind         string
	At           time.Time
	Conversation string
	JSON         []byte
}

// Put sets member of set to score and info, unless the member was claimed, or holds a
// higher Seq already (a late report of an older turn).
type Put struct {
	Set, Member string
	Score       time.Time
	Seq         int
	Info        []byte
}

// Claim names a member to take out of a set at At.
type Claim struct {
	Set, Member string
	At, Before  time.Time
}

// Item is a member of a set with its score and info.
type Item struct {
	Member string
	Score  time.Time
	Info   []byte
}

// add counts n in field of the hour and the day of at.
func (b *Batch) add(at time.Time, field string, n int64) {
	if h := at.Unix() / 3600; b.hour == nil || h != b.hourOf { // most adds are in the hour of the last
		b.hourOf, b.hour, b.day = h, b.bucket(HourBucket(at)), b.bucket(DayBucket(at))
	}
	b.hour[field] += n
	b.day[field] += n
}

func (b *Batch) bucket(name string) map[string]int64 {
	if b.Counters == nil {
		b.Counters = map[string]map[string]int64{}
	}
	m := b.Counters[name]
	if m == nil {
		m = map[string]int64{}
		b.Counters[name] = m
	}
	return m
}

func (b *Batch) merge(o *Batch) {
	if b.Counters == nil && len(o.Counters) > 0 {
		b.Counters, b.hour = o.Counters, nil // take them whole
		o.Counters, o.hour = nil, nil
	}
	for k, fields := range o.Counters {
		m := b.bucket(k)
		for f, n := range fields {
			m[f] += n
		}
	}
	b.Lines = append(b.Lines, o.Lines...)
	b.Puts = append(b.Puts, o.Puts...)
}

func (b *Batch) empty() bool { return len(b.Counters) == 0 && len(b.Lines) == 0 && len(b.Puts) == 0 }

// HourBucket and DayBucket name the buckets that count what happened at t (UTC).
func HourBucket(t time.Time) string { return "h:" + t.UTC().Format("2006-01-02T15") }
func DayBucket(t time.Time) string  { return "d:" + t.UTC().Format("2006-01-02") }

// BucketTime is the start of a bucket named by HourBucket or DayBucket.
func BucketTime(name string) (time.Time, bool) {
	if t, err := time.Parse("h:2006-01-02T15", name); err == nil {
		return t, true
	}
	if t, err := time.Parse("d:2006-01-02", name); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// Event is one analytics event, as exported (one JSON object per line). Type is one of
// turn, conversation.started, conversation.ended, handoff, agent.accepted, agent.released,
// csat, handoff.sla_breached; the other fields are set where they apply.
type Event struct {
	At           time.Time `json:"at"`
	Type         string    `json:"type"`
	Conversation string    `json:"conversation"`
	Channel      string    `json:"channel,omitempty"`
	Lang         string    `json:"lang,omitempty"`
	Turn         int       `json:"turn,omitempty"`
	Source       string    `json:"source,omitempty"` // dialog, kb, clarify, handoff, agent
	Intent       string    `json:"intent,omitempty"`
	Confidence   float32   `json:"confidence,omitempty"`
	Emotion      string    `json:"emotion,omitempty"`
	Negative     bool      `json:"negative,omitempty"`
	Article      string    `json:"article,omitempty"`
	KBAsked      bool      `json:"kb_asked,omitempty"`
	ResponseMS   float64   `json:"response_ms,omitempty"`
	Handoff      string    `json:"handoff,omitempty"` // the handoff's id
	Reason       string    `json:"reason,omitempty"`
	Priority     string    `json:"priority,omitempty"`
	Queue        string    `json:"queue,omitempty"`
	Skills       []string  `json:"skills,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	WaitS        float64   `json:"wait_s,omitempty"`
	SLA          string    `json:"sla,omitempty"` // met or breached
	Score        int       `json:"score,omitempty"`
	AutoResolved *bool     `json:"auto_resolved,omitempty"`
	Text         string    `json:"text,omitempty"` // an unanswered question's text (questions only)
}

func (b *Batch) line(kind string, ev Event) {
	ev.At = ev.At.UTC()
	j, _ := json.Marshal(ev) // plain fields: cannot fail
	b.Lines = append(b.Lines, Line{Kind: kind, At: ev.At, Conversation: ev.Conversation, JSON: j})
}

// Histograms: the bot's response time in milliseconds and the time to an agent in
// seconds are counted in buckets with these upper bounds (the last one open); quantiles are
// read by interpolating within the bucket, so they are as exact as the buckets are narrow.
var (
	responseBounds = []float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000}
	waitBounds     = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 21600, 43200, 86400}
)

func bucketOf(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}

// Counter fields are "channel|lang|metric"; these are the metrics.
const (
	mConversations = "conv"     // conversations started (first customer message)
	mMessages      = "msg"      // customer messages
	mSource        = "src."     // + source
	mIntent        = "int."     // + intent
	mNegative      = "neg"      // messages read with a negative emotion
	mKBAsked       = "kb.ask"   // messages the KB was asked about
	mKBAnswered    = "kb.hit"   // … and answered
	mResponse      = "rt."      // + histogram bucket
	mHandoffs      = "ho"       // handoffs
	mHandedOff     = "ho.conv"  // conversations handed off (their first handoff)
	mReason        = "ho.r."    // + reason
	mQueue         = "ho.q."    // + queue
	mPriority      = "ho.p."    // + priority
	mEnded         = "end"      // conversations ended
	mAuto          = "auto"     // … auto-resolved
	mCSATCount     = "csat.n"   // CSAT responses
	mCSATSum       = "csat.sum" // their scores added
	mCSATScore     = "csat."    // + score 1–5
	mAccepted      = "acc."     // + priority: handoffs accepted
	mWait          = "tta."     // + priority + "." + histogram bucket
	mSLA           = "sla."     // + priority + ".met" / ".breached"
	mReleased      = "rel"      // conversations given back to the bot
)

func field(channel, lang, metric string) string { return channel + "|" + lang + "|" + metric }

// splitField undoes field.
func splitField(f string) (channel, lang, metric string, ok bool) {
	channel, rest, ok1 := strings.Cut(f, "|")
	lang, metric, ok2 := strings.Cut(rest, "|")
	return channel, lang, metric, ok1 && ok2
}

// Unset is what a missing channel is counted under.
const Unset = "-"

// maxChannels bounds the channel names one recorder counts separately; more are counted as
// "other", so that a frontend inventing channels cannot grow the counters without bound.
const maxChannels = 32

// channelName is c as counted: lower case, [a-z0-9._-], at most 32 bytes; "-" when unset,
// "other" otherwise.
func channelName(c string) string {
	if c == "" {
		return Unset
	}
	c = strings.ToLower(c)
	if len(c) > 32 || strings.ContainsFunc(c, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return "other"
	}
	return c
}

// openInfo is what the Open set remembers of a conversation until it ends.
type openInfo struct {
	Conversation string `json:"c"` // for erasure only; the member is not the id
	Channel      string `json:"ch"`
	Lang         string `json:"l"`
	HandedOff    bool   `json:"h,omitempty"`
	Resolved     bool   `json:"r,omitempty"`
}

// Conversation is a conversation as the Recent set keeps it: enough to list and filter.
type Conversation struct {
	ID        string    `json:"id"`
	Last      time.Time `json:"at"`
	Channel   string    `json:"ch"`
	Lang      string    `json:"l"`
	Turns     int       `json:"n"`
	Source    string    `json:"s"` // of the last turn
	Intent    string    `json:"i,omitempty"`
	Emotion   string    `json:"e,omitempty"`
	Negative  bool      `json:"neg,omitempty"` // some turn read with a negative emotion
	HandedOff bool      `json:"h,omitempty"`
	Text      string    `json:"t"` // the last message, cut at 100 characters
}

// timerInfo is an SLA timer: a handoff waiting for an agent.
type timerInfo struct {
	Handoff      string    `json:"id"`
	Conversation string    `json:"c"`
	Channel      string    `json:"ch"`
	Lang         string    `json:"l"`
	Priority     string    `json:"p"`
	Queue        string    `json:"q,omitempty"`
	Since        time.Time `json:"at"`
	Deadline     time.Time `json:"due"`
}

// Timer is a handoff whose SLA target passed without an agent accepting it.
type Timer struct {
	Handoff, Conversation, Channel, Lang, Priority, Queue string
	Since, Deadline                                       time.Time
}
