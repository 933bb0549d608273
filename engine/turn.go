package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/kb"
)

// This file is the path of one customer message:
//
//	check → NLU → load → decide → save (compare-and-set) → effects → answer
//
// decide is the policy. It changes the loaded conversation into the next state and returns
// the answer with a list of effects (queue a handoff, relay to the agent, count a KB
// exposure or outcome, log); it does no I/O of its own except through what it is given: the
// KB lookup, asked at most once per message, and the flow's HTTP actions, which a turn
// needs before it can answer and which go through a recorder that makes each call once per
// stable key. update saves the state with compare-and-set; after a conflict (another node
// took a turn of the same conversation meanwhile) decide runs again on the fresh state, and
// only the effects of the decision that was saved run, once. Within one process, turns of
// one conversation take a lock, so conflicts only come from other processes.

// Message takes one customer message through the pipeline and answers it. A message whose
// MessageID the conversation has answered before is answered again from the record and
// changes nothing. Errors: Invalid, Conflict (closed conversation, a message id used for
// another text, or too many concurrent changes), Overloaded, Unavailable, Canceled.
func (e *Engine) Message(ctx context.Context, id string, req MessageRequest) (*MessageResult, error) {
	start := e.now()
	m, err := e.machine()
	if err != nil {
		return nil, err
	}
	if err := checkMessage(id, req); err != nil {
		return nil, err
	}
	u, err := e.understand(ctx, m.Bot(), req)
	if err != nil {
		return nil, err
	}
	u.start = start
	ask := e.asker(ctx, req.Text, u.lang)
	var digest string // only a message with an id is kept for retries
	if req.MessageID != "" {
		digest = digestOf(req.Text)
	}
	create := func() *conversation.Conversation {
		c := conversation.New(id, e.now())
		c.Customer, c.Channel, c.Metadata = req.Customer, req.Channel, req.Metadata
		return c
	}
	var res *MessageResult
	err = e.update(ctx, id, create, func(c *conversation.Conversation) (plan, error) {
		if a, ok := c.Answered(req.MessageID); ok {
			if a.Digest != digest {
				return plan{}, Errorf(Conflict, "message_id %q was sent before with another text; use a new id for a new message", req.MessageID)
			}
			res = &MessageResult{}
			if err := json.Unmarshal(a.Reply, res); err != nil {
				return plan{}, err
			}
			res.Replayed = true
			return plan{effects: e.resend(c)}, nil // nothing to save; queue what it queued, again
		}
		if req.MessageID != "" && slices.ContainsFunc(c.Turns, func(t conversation.Turn) bool { return t.MessageID == req.MessageID }) {
			return plan{}, Errorf(Conflict, "message_id %q was recorded already; its reply is no longer kept (the last %d are)", req.MessageID, conversation.MaxAnswers)
		}
		if c.Closed {
			return plan{}, Errorf(Conflict, "conversation %s is closed; start a new one", id)
		}
		r, effects, err := e.decide(ctx, m, c, req, u, ask)
		if err != nil {
			return plan{}, err
		}
		if req.MessageID != "" {
			reply, _ := json.Marshal(r)
			c.Remember(conversation.Answer{MessageID: req.MessageID, Digest: digest, Reply: reply})
		}
		res = r
		return plan{write: true, effects: effects}, nil
	})
	if err != nil {
		return nil, err
	}
	res.TookMS = float64(e.now().Sub(start).Microseconds()) / 1000
	return res, nil
}

// decide applies one message to c, the conversation as loaded (changed in place, unsaved),
// and returns kefu's answer and the effects to run once c is saved.
func (e *Engine) decide(ctx context.Context, m *dialogs.Machine, c *conversation.Conversation, req MessageRequest, u understanding,
	ask func(*conversation.Conversation) (*kb.Reply, error)) (*MessageResult, []effect, error) {
	bot := m.Bot()
	policy := bot.Handoff.Policy
	now := e.now()
	effects := e.resend(c) // the last turn's deliveries once more, in case they were never queued
	c.Outgoing = nil
	if req.Lang == "" && c.Lang != "" && u.lang != c.Lang && weakLanguage(req.Text) {
		u.lang = c.Lang // "KF20261122" or "ok" in a Chinese conversation stays Chinese
	}
	c.Updated, c.Lang = now, u.lang
	if err := mergeCustomer(&c.Customer, req.Customer); err != nil {
		return nil, nil, err
	}
	if req.Channel != "" {
		c.Channel = req.Channel
	}
	t := conversation.Turn{At: now, MessageID: req.MessageID, Text: req.Text, Lang: u.lang, Intent: u.intent.Name,
		Confidence: u.intent.Confidence, Emotion: u.emotion.Label, EmotionScore: u.emotion.Score}
	res := &MessageResult{Conversation: c.ID, MessageID: req.MessageID, Intent: u.intent, Emotion: u.emotion, Lang: u.lang, Messages: []Message{}}

	kbAsked := false
	switch reason := policy.Trigger(req.Text, u.reading()); {
	case c.Active():
		// A person has the conversation: the bot stays silent and relays the message.
		t.Source, res.Source = "agent", "handoff"
		c.AddTurn(t)
		effects = append(effects, e.deliver(c, handoff.NewRelay(c).Delivery()))
	case reason != "":
		c.AddTurn(t)
		effects = append(effects, e.handOff(bot, c, reason, now, res)...)
	default:
		out := m.Step(ctx, &c.Dialog, dialogs.Input{Text: req.Text, Lang: u.lang, Intent: u.intent.Name, Confidence: u.intent.Confidence, Now: now,
			Conversation: c.ID, Instance: c.Instance, Turn: c.TurnCount + 1, Customer: c.Customer, Calls: e.cfg.Calls})
		if out.Err != nil {
			return nil, nil, Translate(out.Err)
		}
		for _, err := range out.ActionErrors {
			effects = append(effects, e.log(slog.LevelWarn, "dialog action failed", "conversation", c.ID, "err", err))
		}
		resolved := out.Handled && !out.Failed
		t.Source, t.Replies = "dialog", out.Replies
		if !out.Handled {
			kbAsked = e.cfg.KB != nil
			reply, err := ask(c)
			if err != nil {
				return nil, nil, Translate(err)
			}
			if reply != nil && reply.Found {
				resolved, res.KB = true, reply
				c.LastArticle, t.Article = reply.Article, reply.Article
				t.Source, t.Replies = "kb", []string{reply.Text}
				effects = append(effects, e.expose(c, req.Text, u.lang, reply))
			}
		}
		if resolved {
			policy.Resolved(c)
		} else if reason := policy.Unresolved(c, u.intent.Confidence); reason != "" {
			c.AddTurn(t)
			effects = append(effects, e.handOff(bot, c, reason, now, res)...)
			break
		} else if len(t.Replies) == 0 {
			t.Source, t.Replies = "clarify", []string{bot.Responses["clarify"].Pick(u.lang, c.TurnCount)}
			c.Clarified = true
		}
		c.AddTurn(t)
		res.Source = t.Source
	}
	effects = append(effects, e.recordTurn(c, u.start, kbAsked, policy))
	for _, r := range c.Last().Replies {
		res.Messages = append(res.Messages, Message{Text: r})
	}
	res.Turn, res.Flow, res.State, res.Slots = c.TurnCount, c.Flow, c.State, c.Slots
	if res.Slots == nil {
		res.Slots = map[string]string{}
	}
	if c.Active() {
		res.Handoff = handoffInfo(c)
	}
	return res, effects, nil
}

// handOff gives c to a person: the customer is told, and once the state is saved the
// delivery is queued and the KB hears that its last answer did not resolve the question.
func (e *Engine) handOff(bot *dialogs.Bot, c *conversation.Conversation, reason string, now time.Time, res *MessageResult) []effect {
	last := c.Last()
	last.Source = "handoff"
	last.Replies = []string{bot.Responses["handoff"].Pick(c.Lang, c.TurnCount)}
	p := bot.Handoff.Policy.Start(c, reason, now)
	res.Source = "handoff"
	effects := []effect{
		e.deliver(c, p.Delivery()),
		e.log(slog.LevelInfo, "handoff", "conversation", c.ID, "reason", reason, "priority", p.Priority, "key", p.ID),
	}
	if c.LastArticle != "" {
		effects = append(effects, e.feedback(kb.Feedback{Article: c.LastArticle, Customer: c.Customer.ID, Conversation: c.ID, Handoff: true}))
	}
	return effects
}

// An effect is something a turn does to the world once its state is saved.
type effect func(ctx context.Context) error

// plan is what a change decided: save the record, or erase it (neither: nothing changed),
// and the effects to run once that succeeded.
type plan struct {
	write, erase bool
	effects      []effect
}

// maxConflicts bounds the reruns of one change.
const maxConflicts = 50

// update changes conversation id by compare-and-set: it loads the record (create makes one
// when there is none; without create, NotFound), lets change decide, saves or erases as
// planned, and runs change again on the fresh record after a conflict. The effects of the
// change that was saved run then, once; those of a change that lost are dropped.
func (e *Engine) update(ctx context.Context, id string, create func() *conversation.Conversation, change func(*conversation.Conversation) (plan, error)) error {
	mu := e.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	load, cached := e.cfg.Store.Load, false
	if cl, ok := e.cfg.Store.(cachedLoader); ok {
		load, cached = cl.LoadForTurn, true
	}
	for attempt := 0; ; attempt++ {
		c, err := load(ctx, id)
		exists := err == nil
		switch {
		case errors.Is(err, conversation.ErrNotFound) && create != nil:
			c = create()
		case err != nil:
			return Translate(err)
		}
		if err := checkAccess(ctx, c, exists); err != nil {
			return err
		}
		p, err := change(c)
		if err != nil && cached {
			// A refusal read off a cached copy (no handoff to accept, a closed
			// conversation) may be stale: another node changed it since. Read and decide
			// again before answering.
			load, cached = e.cfg.Store.Load, false
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case p.erase:
			err = e.cfg.Store.Delete(ctx, c)
		case p.write:
			err = e.cfg.Store.Save(ctx, c)
		}
		if errors.Is(err, conversation.ErrConflict) && attempt < maxConflicts {
			load, cached = e.cfg.Store.Load, false // a cached copy was stale: read
			if attempt > 0 {
				time.Sleep(time.Duration(rand.IntN(1000*attempt)) * time.Microsecond)
			}
			continue
		}
		if err != nil {
			return Translate(err)
		}
		e.run(ctx, id, p.effects)
		return nil
	}
}

// run runs effects after their save, even when the caller has gone (bounded by a timeout
// of its own); a failure is logged, never answered: the state is saved already.
func (e *Engine) run(ctx context.Context, id string, effects []effect) {
	if len(effects) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, f := range effects {
		if f == nil {
			continue
		}
		if err := f(ctx); err != nil {
			e.cfg.Logger.Error("turn effect failed after the save", "conversation", id, "err", err)
		}
	}
}

// deliver keeps d in c.Outgoing and returns the effect that queues it. The next turn (or a
// repeat of this message, or the conversation's erasure) queues c.Outgoing again, so that a
// delivery survives a process that stopped between saving and queueing; the outbox keeps
// one per key.
func (e *Engine) deliver(c *conversation.Conversation, d handoff.Delivery) effect {
	b, _ := json.Marshal(d)
	c.Outgoing = append(c.Outgoing, b)
	return func(ctx context.Context) error {
		if err := e.cfg.Outbox.Enqueue(ctx, d); err != nil {
			return errors.Join(errors.New("delivery "+d.Key+" not queued; the conversation's next turn queues it again"), err)
		}
		return nil
	}
}

// resend queues c.Outgoing (the last turn's deliveries) again.
func (e *Engine) resend(c *conversation.Conversation) []effect {
	var out []effect
	for _, b := range c.Outgoing {
		var d handoff.Delivery
		if json.Unmarshal(b, &d) == nil && d.Key != "" {
			out = append(out, func(ctx context.Context) error { return e.cfg.Outbox.Enqueue(ctx, d) })
		}
	}
	return out
}

// log is an effect that logs (so that a rerun turn does not log twice).
func (e *Engine) log(level slog.Level, msg string, args ...any) effect {
	return func(ctx context.Context) error {
		e.cfg.Logger.Log(ctx, level, msg, args...)
		return nil
	}
}

// expose counts a KB answer the customer saw in its experiment.
func (e *Engine) expose(c *conversation.Conversation, text, lang string, r *kb.Reply) effect {
	q := kb.Question{Text: text, Lang: lang, Customer: c.Customer.ID, Conversation: c.ID}
	return func(ctx context.Context) error { return e.cfg.KB.Expose(ctx, q, r) }
}

// feedback tells the KB how its answer did.
func (e *Engine) feedback(f kb.Feedback) effect {
	return func(ctx context.Context) error {
		if e.cfg.KB == nil {
			return nil
		}
		if err := e.cfg.KB.Feedback(ctx, f); err != nil && !errors.Is(err, kb.ErrNotFound) {
			return err
		}
		return nil
	}
}

// asker returns the KB lookup of one message: asked at most once, whatever the reruns.
func (e *Engine) asker(ctx context.Context, text, lang string) func(*conversation.Conversation) (*kb.Reply, error) {
	var reply *kb.Reply
	var err error
	asked := false
	return func(c *conversation.Conversation) (*kb.Reply, error) {
		if !asked && e.cfg.KB != nil {
			asked = true
			reply, err = e.cfg.KB.Find(ctx, kb.Question{Text: text, Lang: lang, Customer: c.Customer.ID, Conversation: c.ID})
			if errors.Is(err, kb.ErrNotFound) {
				reply, err = nil, nil
			}
		}
		return reply, err
	}
}

// digestOf identifies a message's text for its stored answer.
func digestOf(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:8])
}

// checkMessage refuses what no turn should take.
func checkMessage(id string, req MessageRequest) error {
	if err := CheckID(id); err != nil {
		return err
	}
	if err := checkText(req.Text); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(req.Text); n > MaxTextRunes {
		return Errorf(Invalid, "text is %d characters long; at most %d", n, MaxTextRunes)
	}
	if req.MessageID != "" && !idPattern.MatchString(req.MessageID) {
		return Errorf(Invalid, "message_id must match [A-Za-z0-9._:-]{1,128}, got %q", truncate(req.MessageID, 140))
	}
	return checkCustomer(req)
}
