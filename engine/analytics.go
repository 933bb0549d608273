package engine

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/handoff"
)

// The service's figures (package analytics) are effects: each turn and event reports what
// happened once its change is saved, and Watch, running on every node, writes the buffered
// reports, sends the SLA breaches that are due and ends idle conversations.

// recordTurn reports c's last turn, which took since start to answer.
func (e *Engine) recordTurn(c *conversation.Conversation, start time.Time, kbAsked bool, policy handoff.Policy) effect {
	if e.cfg.Analytics == nil {
		return nil
	}
	t := c.Last()
	negative := policy.Negative(t.Emotion)
	wasNegative := slices.ContainsFunc(c.Turns[:len(c.Turns)-1], func(t conversation.Turn) bool { return policy.Negative(t.Emotion) })
	at := analytics.Turn{At: t.At, Conversation: c.ID, Instance: c.Instance, Channel: c.Channel, Lang: t.Lang, Text: t.Text, Seq: t.Seq,
		Source: t.Source, Intent: t.Intent, Confidence: t.Confidence, Emotion: t.Emotion, Negative: negative, Article: t.Article,
		KBAsked: kbAsked, HandedOff: c.Handoff != nil, WasNegative: wasNegative}
	if h := c.Handoff; t.Source == "handoff" && h != nil {
		at.Handoff = &analytics.Handoff{ID: h.ID, Reason: h.Reason, Priority: h.Priority, Queue: h.Queue, Skills: h.Skills, First: h.First, Deadline: h.Deadline}
	}
	return func(ctx context.Context) error {
		at.Response = e.now().Sub(start)
		return e.cfg.Analytics.Turn(ctx, at)
	}
}

// recordEnd reports that c ended at.
func (e *Engine) recordEnd(c *conversation.Conversation, at time.Time) effect {
	if e.cfg.Analytics == nil {
		return nil
	}
	end := analytics.End{At: at, Conversation: c.ID, Instance: c.Instance, Channel: c.Channel, Lang: c.Lang, HandedOff: c.Handoff != nil}
	if len(c.Turns) > 0 {
		s := c.Last().Source
		end.Resolved = s == "dialog" || s == "kb"
	}
	if c.Active() {
		end.HandoffID = c.Handoff.ID
	}
	return func(ctx context.Context) error {
		_, err := e.cfg.Analytics.Ended(ctx, end)
		return err
	}
}

// recordEvent reports an event on c; before is c as loaded (its earlier CSAT score).
func (e *Engine) recordEvent(ev Event, before int, c *conversation.Conversation, at time.Time) effect {
	r := e.cfg.Analytics
	if r == nil {
		return nil
	}
	switch ev.Type {
	case "csat":
		return func(ctx context.Context) error { return r.CSAT(ctx, at, c.ID, c.Channel, c.Lang, ev.Score, before) }
	case "agent.accepted":
		h := *c.Handoff
		a := analytics.Accept{At: at, Since: h.At, Deadline: h.Deadline, Conversation: c.ID, Channel: c.Channel, Lang: c.Lang,
			Handoff: h.ID, Priority: h.Priority, Queue: h.Queue, Agent: h.Agent}
		return func(ctx context.Context) error { return r.Accepted(ctx, a) }
	case "agent.released":
		id := c.Handoff.ID
		return func(ctx context.Context) error { return r.Released(ctx, at, c.ID, c.Channel, c.Lang, id) }
	case "conversation.closed":
		return e.recordEnd(c, at)
	}
	return nil
}

// Watch writes the buffered turns ten times a second (and whenever the buffer is full) and
// runs Tick every second, until ctx ends.
func (e *Engine) Watch(ctx context.Context) {
	r := e.cfg.Analytics
	if r == nil {
		<-ctx.Done()
		return
	}
	flush, tick := time.NewTicker(100*time.Millisecond), time.NewTicker(time.Second)
	defer flush.Stop()
	defer tick.Stop()
	warn := func(err error) {
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Warn("analytics", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			r.Flush(ctx) // what is buffered, before the process goes
			cancel()
			return
		case <-flush.C:
			warn(r.Flush(ctx))
		case <-r.Full():
			warn(r.Flush(ctx))
		case <-tick.C:
			warn(e.Tick(ctx))
		}
	}
}

// Tick writes the buffered reports, queues a handoff.sla_breached delivery for each
// handoff whose SLA target passed without an agent (once, whichever node sees it first:
// the outbox keeps one per key and the figure is claimed once), and, at most once a
// minute, ends the conversations idle for Idle, and once an hour prunes figures past
// Retention.
func (e *Engine) Tick(ctx context.Context) error {
	r := e.cfg.Analytics
	if r == nil {
		return nil
	}
	now := e.now()
	due, err := r.DueTimers(ctx, now, 100)
	if err != nil {
		return err
	}
	for _, t := range due {
		b := handoff.Breach{Handoff: t.Handoff, Conversation: t.Conversation, Priority: t.Priority, Queue: t.Queue,
			Since: t.Since, Deadline: t.Deadline, At: now.UTC()}
		if err := e.cfg.Outbox.Enqueue(ctx, b.Delivery()); err != nil {
			return err
		}
		if ok, err := r.Breached(ctx, t, now); err != nil {
			return err
		} else if ok {
			e.cfg.Logger.Info("handoff SLA breached", "conversation", t.Conversation, "handoff", t.Handoff, "priority", t.Priority, "queue", t.Queue)
		}
	}
	if now.Sub(e.swept) < time.Minute {
		return nil
	}
	e.swept = now
	if _, err := r.EndIdle(ctx, now.Add(-e.cfg.Idle)); err != nil {
		return err
	}
	if now.Sub(e.pruned) < time.Hour {
		return nil
	}
	e.pruned = now
	return r.Store().Prune(ctx, now.Add(-e.cfg.Retention), now.Add(-max(2*e.cfg.Idle, 24*time.Hour)))
}

// AnalyticsQuery selects the period of figures and, optionally, one channel and language.
type AnalyticsQuery struct {
	From    string `query:"from" doc:"RFC 3339 time or YYYY-MM-DD (UTC midnight), rounded down to the hour; default 7 days before to"`
	To      string `query:"to" doc:"RFC 3339 time or YYYY-MM-DD, exclusive, rounded down to the hour; default the end of the current hour"`
	Channel string `query:"channel" doc:"only this channel (as counted: lower case; - for none)"`
	Lang    string `query:"lang" enum:"zh,en"`
}

// period checks q against the retention and returns it as an analytics.Query.
func (e *Engine) period(q AnalyticsQuery) (analytics.Query, error) {
	if e.cfg.Analytics == nil {
		return analytics.Query{}, Errorf(Unavailable, "this server keeps no analytics")
	}
	now := e.now().UTC()
	to := now.Truncate(time.Hour).Add(time.Hour)
	var err error
	if q.To != "" {
		if to, err = parseTime("to", q.To); err != nil {
			return analytics.Query{}, err
		}
	}
	from := to.Add(-7 * 24 * time.Hour)
	if q.From != "" {
		if from, err = parseTime("from", q.From); err != nil {
			return analytics.Query{}, err
		}
	}
	from, to = from.Truncate(time.Hour), to.Truncate(time.Hour)
	switch oldest := now.Add(-e.cfg.Retention).Truncate(time.Hour); {
	case !from.Before(to):
		return analytics.Query{}, Errorf(Invalid, "from (%s) must be before to (%s), in whole hours", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case from.Before(oldest):
		return analytics.Query{}, Errorf(Invalid, "from (%s) is past the retention of %s: figures from before %s are not kept (--analytics-retention)",
			from.Format(time.RFC3339), e.cfg.Retention, oldest.Format(time.RFC3339))
	case to.After(now.Add(366 * 24 * time.Hour)):
		return analytics.Query{}, Errorf(Invalid, "to (%s) is more than a year ahead", to.Format(time.RFC3339))
	}
	return analytics.Query{From: from, To: to, Channel: strings.ToLower(q.Channel), Lang: q.Lang}, nil
}

// CheckPeriod says whether q is a period the figures can be read for. Errors: Invalid,
// Unavailable.
func (e *Engine) CheckPeriod(q AnalyticsQuery) error {
	_, err := e.period(q)
	return err
}

func parseTime(name, v string) (time.Time, error) {
	t, err := analytics.ParseTime(v)
	if err != nil {
		return time.Time{}, Errorf(Invalid, "%s must be an RFC 3339 time (2026-12-01T08:00:00+08:00) or a date (2026-12-01), got %q", name, truncate(v, 40))
	}
	return t, nil
}

// Summary is the service's figures over a period. Errors: Invalid (the period),
// Unavailable.
func (e *Engine) Summary(ctx context.Context, q AnalyticsQuery) (*analytics.Summary, error) {
	p, err := e.period(q)
	if err != nil {
		return nil, err
	}
	if err := e.cfg.Analytics.Flush(ctx); err != nil { // this node's last turns count
		return nil, Translate(err)
	}
	s, err := analytics.Summarize(ctx, e.cfg.Analytics.Store(), p)
	return s, Translate(err)
}

// SeriesQuery is an AnalyticsQuery for one metric per bucket.
type SeriesQuery struct {
	AnalyticsQuery
	Metric string `query:"metric" required:"true" enum:"conversations,messages,ended,auto_resolved,auto_resolution_rate,handoffs,handoff_rate,csat_responses,csat_mean,csat_satisfied_rate,bot_response_ms_p50,bot_response_ms_p95,kb_answer_rate,negative_emotion_share,sla_met,sla_breached"`
	Bucket string `query:"bucket" enum:"hour,day" default:"day"`
}

// Series charts one metric per hour or day. Errors: Invalid, Unavailable.
func (e *Engine) Series(ctx context.Context, q SeriesQuery) (*analytics.Series, error) {
	if !slices.Contains(analytics.Metrics, q.Metric) {
		return nil, Errorf(Invalid, "metric must be one of %s, got %q", strings.Join(analytics.Metrics, ", "), truncate(q.Metric, 40))
	}
	if q.Bucket != "hour" && q.Bucket != "day" {
		return nil, Errorf(Invalid, "bucket must be hour or day, got %q", truncate(q.Bucket, 20))
	}
	p, err := e.period(q.AnalyticsQuery)
	if err != nil {
		return nil, err
	}
	if q.Bucket == "hour" && p.To.Sub(p.From) > 31*24*time.Hour {
		return nil, Errorf(Invalid, "bucket hour covers at most 31 days; ask for bucket day")
	}
	if err := e.cfg.Analytics.Flush(ctx); err != nil {
		return nil, Translate(err)
	}
	s, err := analytics.Chart(ctx, e.cfg.Analytics.Store(), p, q.Metric, q.Bucket)
	return s, Translate(err)
}

// UnansweredQuery is an AnalyticsQuery for the unanswered questions.
type UnansweredQuery struct {
	AnalyticsQuery
	Limit int `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"how many groups"`
}

// Unanswered groups what customers asked that nothing answered. Errors: Invalid,
// Unavailable.
func (e *Engine) Unanswered(ctx context.Context, q UnansweredQuery) (*analytics.Unanswered, error) {
	p, err := e.period(q.AnalyticsQuery)
	if err != nil {
		return nil, err
	}
	if err := e.cfg.Analytics.Flush(ctx); err != nil {
		return nil, Translate(err)
	}
	u, err := analytics.Unanswer(ctx, e.cfg.Analytics.Store(), p, max(q.Limit, 1))
	return u, Translate(err)
}

// ExportEvents writes the period's events to w, one JSON object per line. Errors: Invalid,
// Unavailable.
func (e *Engine) ExportEvents(ctx context.Context, q AnalyticsQuery, w io.Writer) (int, error) {
	p, err := e.period(q)
	if err != nil {
		return 0, err
	}
	if err := e.cfg.Analytics.Flush(ctx); err != nil {
		return 0, Translate(err)
	}
	n, err := analytics.Export(ctx, e.cfg.Analytics.Store(), p.From, p.To, w)
	return n, Translate(err)
}

// ConversationsQuery selects recent conversations for the console's list.
type ConversationsQuery struct {
	Before                time.Time // only those whose last turn was before it (zero: now)
	Source, Channel, Lang string    // the last turn's source; "" any
	HandedOff, Negative   bool      // only those handed off / read with a negative emotion
	Limit                 int       // default 50
}

// Conversations lists recent conversations, the latest first, from the analytics index (no
// scan of the state store). Errors: Unavailable.
func (e *Engine) Conversations(ctx context.Context, q ConversationsQuery) ([]analytics.Conversation, error) {
	if e.cfg.Analytics == nil {
		return nil, Errorf(Unavailable, "this server keeps no analytics, so no list of conversations")
	}
	if q.Before.IsZero() {
		q.Before = e.now().Add(time.Second)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	ch := strings.ToLower(q.Channel)
	cs, err := e.cfg.Analytics.Conversations(ctx, q.Before, q.Limit, func(c analytics.Conversation) bool {
		return (q.Source == "" || c.Source == q.Source) && (ch == "" || c.Channel == ch) && (q.Lang == "" || c.Lang == q.Lang) &&
			(!q.HandedOff || c.HandedOff) && (!q.Negative || c.Negative)
	})
	return cs, Translate(err)
}
