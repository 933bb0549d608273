package engine

import (
	"context"
	"errors"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/kb"
)

// Limits of a customer message and what comes with it.
const (
	MaxTextRunes          = 4000 // characters of a message
	MaxTagBytes           = 64   // a customer tag, a metadata key
	MaxMetadataValueBytes = 512  // a metadata value
)

// IDPattern is the shape of conversation and message ids.
const IDPattern = `^[A-Za-z0-9._:-]{1,128}$`

var idPattern = regexp.MustCompile(IDPattern)

// MessageRequest is one customer message.
type MessageRequest struct {
	Text     string                `json:"text" required:"true" minLength:"1" maxLength:"MaxTextRunes"`
	Lang     string                `json:"lang,omitempty" enum:"zh,en,auto"` // zh, en, or "" / auto
	Channel  string                `json:"channel,omitempty" doc:"where the customer writes from (web, app, wechat, …)"`
	Customer conversation.Customer `json:"customer"`
	Metadata map[string]string     `json:"metadata,omitempty"`
	// MessageID identifies the message for retries ([A-Za-z0-9._:-]{1,128}; the HTTP API
	// also takes it as the Idempotency-Key header): sent again, the message is answered
	// with the first reply and recorded once. Kept for the conversation's last 16 messages.
	MessageID string `json:"message_id,omitempty" pattern:"IDPattern" doc:"identifies the message for retries: sent again, it is answered with the first reply and recorded once"`
}

// MessageResult is kefu's answer to one message.
type MessageResult struct {
	Conversation string            `json:"conversation" required:"true"`
	MessageID    string            `json:"message_id,omitempty"`
	Turn         int               `json:"turn" required:"true"`
	Messages     []Message         `json:"messages" required:"true"`
	Intent       Intent            `json:"intent" required:"true"`
	Emotion      Emotion           `json:"emotion" required:"true"`
	Flow         string            `json:"flow,omitempty"`
	State        string            `json:"state,omitempty"`
	Slots        map[string]string `json:"slots" required:"true"`
	// Source: dialog, kb, clarify, handoff (handed off now, or the bot is silent while a
	// person has the conversation).
	Source  string       `json:"source" required:"true" enum:"dialog,kb,clarify,handoff"`
	KB      *kb.Reply    `json:"kb,omitempty"`
	Handoff *HandoffInfo `json:"handoff,omitempty"`
	Lang    string       `json:"lang" required:"true" enum:"zh,en"`
	// Replayed: this message id was answered before; this is that answer, and nothing was
	// recorded again.
	Replayed bool    `json:"replayed,omitempty"`
	TookMS   float64 `json:"took_ms" required:"true"`
}

// Message is one bot message.
type Message struct {
	Text string `json:"text" required:"true"`
}

// Intent is the understood intent.
type Intent struct {
	Name       string  `json:"name" required:"true"`
	Confidence float32 `json:"confidence" required:"true"`
}

// Emotion is the understood emotion.
type Emotion struct {
	Label string  `json:"label" required:"true"`
	Score float32 `json:"score" required:"true"`
}

// HandoffInfo tells the frontend that a person has (or is getting) the conversation.
type HandoffInfo struct {
	ID       string     `json:"id" required:"true"`
	Status   string     `json:"status" required:"true" enum:"queued,accepted,released"`
	Reason   string     `json:"reason" required:"true"`
	Priority string     `json:"priority" required:"true" enum:"normal,high,urgent"`
	Queue    string     `json:"queue" required:"true" doc:"where the bot's handoff.queues routed it"`
	At       time.Time  `json:"at" required:"true"`
	Deadline *time.Time `json:"deadline,omitempty" doc:"when its SLA target passes"`
	Agent    string     `json:"agent,omitempty" doc:"who accepted it"`
}

func handoffInfo(c *conversation.Conversation) *HandoffInfo {
	if c.Handoff == nil {
		return nil
	}
	h := c.Handoff
	out := &HandoffInfo{ID: h.ID, Status: h.Status, Reason: h.Reason, Priority: h.Priority, Queue: h.Queue, At: h.At, Agent: h.Agent}
	if !h.Deadline.IsZero() {
		d := h.Deadline
		out.Deadline = &d
	}
	return out
}

// ConversationView is a conversation as GET /v1/conversations/{id} shows it: what the
// customer said and was told, where the dialog stands, and who has it. The stored record
// (conversation.Conversation) keeps more, for the engine only.
type ConversationView struct {
	ID        string                `json:"id" required:"true"`
	Created   time.Time             `json:"created" required:"true"`
	Updated   time.Time             `json:"updated" required:"true"`
	Lang      string                `json:"lang" required:"true"`
	Channel   string                `json:"channel,omitempty"`
	Customer  conversation.Customer `json:"customer" required:"true"`
	Metadata  map[string]string     `json:"metadata,omitempty"`
	Flow      string                `json:"flow,omitempty"`
	State     string                `json:"state,omitempty"`
	Slots     map[string]string     `json:"slots" required:"true"`
	Handoff   *HandoffInfo          `json:"handoff,omitempty"`
	Closed    bool                  `json:"closed" required:"true"`
	CSAT      int                   `json:"csat,omitempty"`  // 1–5 once given
	Thumb     string                `json:"thumb,omitempty"` // up or down once given
	TurnCount int                   `json:"turn_count" required:"true"`
	// Turns are the recent turns (the last 50), oldest first.
	Turns []TurnView `json:"turns" required:"true"`
}

// TurnView is one customer message and the bot's replies.
type TurnView struct {
	Seq          int       `json:"seq" required:"true"`
	MessageID    string    `json:"message_id,omitempty"`
	At           time.Time `json:"at" required:"true"`
	Text         string    `json:"text" required:"true"`
	Lang         string    `json:"lang" required:"true"`
	Intent       string    `json:"intent,omitempty"`
	Confidence   float32   `json:"confidence" required:"true"`
	Emotion      string    `json:"emotion,omitempty"`
	EmotionScore float32   `json:"emotion_score" required:"true"`
	Source       string    `json:"source" required:"true"` // dialog, kb, clarify, handoff, agent
	Replies      []string  `json:"replies" required:"true"`
	Article      string    `json:"article,omitempty"`
}

func view(c *conversation.Conversation) *ConversationView {
	v := &ConversationView{ID: c.ID, Created: c.Created, Updated: c.Updated, Lang: c.Lang, Channel: c.Channel, Customer: c.Customer,
		Metadata: c.Metadata, Flow: c.Flow, State: c.State, Slots: c.Slots, Handoff: handoffInfo(c), Closed: c.Closed, CSAT: c.CSAT,
		TurnCount: c.TurnCount, Turns: make([]TurnView, 0, len(c.Turns))}
	if v.Slots == nil {
		v.Slots = map[string]string{}
	}
	switch c.Thumb {
	case 1:
		v.Thumb = "up"
	case -1:
		v.Thumb = "down"
	}
	for _, t := range c.Turns {
		replies := t.Replies
		if replies == nil {
			replies = []string{}
		}
		v.Turns = append(v.Turns, TurnView{Seq: t.Seq, MessageID: t.MessageID, At: t.At, Text: t.Text, Lang: t.Lang, Intent: t.Intent,
			Confidence: t.Confidence, Emotion: t.Emotion, EmotionScore: t.EmotionScore, Source: t.Source, Replies: replies, Article: t.Article})
	}
	return v
}

// understanding is the NLU's reading of one message.
type understanding struct {
	start    time.Time // when the message arrived
	lang     string
	intent   Intent
	emotion  Emotion
	negative float64 // sum of the policy's negative emotions' scores
}

func (u understanding) reading() handoff.Reading {
	return handoff.Reading{Intent: u.intent.Name, Confidence: u.intent.Confidence, Negative: u.negative}
}

// SetBot swaps in a reloaded bot; turns already running finish on the old one.
func (e *Engine) SetBot(m *dialogs.Machine) { e.bot.Store(m) }

// Bot returns the current bot (nil when none is loaded).
func (e *Engine) Bot() *dialogs.Machine { return e.bot.Load() }

type locks [256]sync.Mutex

func (l *locks) of(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &l[h.Sum32()%uint32(len(l))]
}

// machine returns the running bot, or Unavailable.
func (e *Engine) machine() (*dialogs.Machine, error) {
	m := e.bot.Load()
	if m == nil {
		return nil, Errorf(Unavailable, "no bot is loaded")
	}
	return m, nil
}

// CheckID refuses conversation ids outside [A-Za-z0-9._:-]{1,128}.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return Errorf(Invalid, "conversation id must match [A-Za-z0-9._:-]{1,128}, got %q", truncate(id, 140))
	}
	return nil
}

// Conversation returns a conversation's state and recent transcript. Errors: Invalid,
// NotFound, Unavailable.
func (e *Engine) Conversation(ctx context.Context, id string) (*ConversationView, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if _, err := e.machine(); err != nil {
		return nil, err
	}
	c, err := e.cfg.Store.Load(ctx, id)
	if err != nil {
		return nil, Translate(err)
	}
	if err := checkAccess(ctx, c, true); err != nil {
		return nil, err
	}
	return view(c), nil
}

// DeleteConversation ends and erases a conversation: its state and transcript, then (as
// effects of the erasure) its pending and dead handoff deliveries, its action call results
// and what the KB experiments remember of it. Nothing of it is delivered any more.
// Errors: Invalid, NotFound, Unavailable.
func (e *Engine) DeleteConversation(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	if _, err := e.machine(); err != nil {
		return err
	}
	return e.update(ctx, id, nil, func(c *conversation.Conversation) (plan, error) {
		return plan{erase: true, effects: []effect{e.recordEnd(c, e.now()), func(ctx context.Context) error {
			var errs []error
			if e.cfg.Outbox != nil {
				errs = append(errs, e.cfg.Outbox.Erase(ctx, id))
			}
			if e.cfg.Calls != nil {
				errs = append(errs, e.cfg.Calls.Erase(ctx, id))
			}
			if e.cfg.KB != nil {
				errs = append(errs, e.cfg.KB.Forget(ctx, id))
			}
			if e.cfg.Analytics != nil {
				errs = append(errs, e.cfg.Analytics.Forget(ctx, id))
			}
			return errors.Join(errs...)
		}}}, nil
	})
}

// Event is something that happened to a conversation outside its messages.
type Event struct {
	// Type: csat (Score 1–5; a second score replaces the first), thumbs (Thumb "up" or
	// "down"), agent.accepted (a person takes the handoff: Agent, and Queue when it is
	// another than the one routed to), agent.released (a person gives the conversation back
	// to the bot), conversation.closed.
	Type  string `json:"type" required:"true" enum:"csat,thumbs,agent.accepted,agent.released,conversation.closed"`
	Score int    `json:"score,omitempty" minimum:"1" maximum:"5" doc:"the CSAT score, for type csat"`
	Thumb string `json:"thumb,omitempty" enum:"up,down" doc:"for type thumbs"`
	Agent string `json:"agent,omitempty" maxLength:"128" doc:"who accepted, for type agent.accepted"`
	Queue string `json:"queue,omitempty" maxLength:"64" doc:"the queue it was accepted from, for type agent.accepted; default the one it was routed to"`
}

// EventResult is the conversation after an event.
type EventResult struct {
	Conversation string       `json:"conversation" required:"true"`
	Closed       bool         `json:"closed" required:"true"`
	Handoff      *HandoffInfo `json:"handoff,omitempty"`
}

// Event records an event. CSAT and thumbs also reach the KB article last answered (its
// experiment counts them). Errors: Invalid, NotFound, Conflict (release without a handoff),
// Unavailable.
func (e *Engine) Event(ctx context.Context, id string, ev Event) (*EventResult, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	m, err := e.machine()
	if err != nil {
		return nil, err
	}
	thumb := 0
	switch ev.Type {
	case "csat":
		if ev.Score < 1 || ev.Score > 5 {
			return nil, Errorf(Invalid, "score must be 1 to 5 for a csat event, got %d", ev.Score)
		}
	case "thumbs":
		switch ev.Thumb {
		case "up":
			thumb = 1
		case "down":
			thumb = -1
		default:
			return nil, Errorf(Invalid, `thumb must be "up" or "down", got %q`, truncate(ev.Thumb, 20))
		}
	case "agent.accepted":
		if ev.Agent == "" || len(ev.Agent) > 128 || len(ev.Queue) > 64 {
			return nil, Errorf(Invalid, "an agent.accepted event needs agent (at most 128 bytes; queue at most 64)")
		}
	case "agent.released", "conversation.closed":
	default:
		return nil, Errorf(Invalid, "type must be csat, thumbs, agent.accepted, agent.released or conversation.closed, got %q", truncate(ev.Type, 40))
	}
	var out *EventResult
	err = e.update(ctx, id, nil, func(c *conversation.Conversation) (plan, error) {
		var effects []effect
		before, now := c.CSAT, e.now()
		switch ev.Type {
		case "csat":
			c.CSAT = ev.Score
		case "thumbs":
			c.Thumb = thumb
		case "agent.accepted":
			if !c.Active() || c.Handoff.Status != conversation.Queued {
				return plan{}, Errorf(Conflict, "conversation %s has no handoff waiting for an agent", id)
			}
			h := c.Handoff
			h.Status, h.Agent, h.AcceptedAt = conversation.Accepted, ev.Agent, now.UTC()
			if ev.Queue != "" {
				h.Queue = ev.Queue
			}
		case "agent.released":
			if !m.Bot().Handoff.Policy.Release(c) {
				return plan{}, Errorf(Conflict, "conversation %s is not with an agent", id)
			}
		case "conversation.closed":
			c.Closed = true
		}
		if (ev.Type == "csat" || ev.Type == "thumbs") && c.LastArticle != "" {
			f := kb.Feedback{Article: c.LastArticle, Customer: c.Customer.ID, Conversation: c.ID, Thumb: thumb}
			if ev.Type == "csat" {
				f.CSAT = ev.Score
			}
			effects = append(effects, e.feedback(f))
		}
		effects = append(effects, e.recordEvent(ev, before, c, now))
		c.Updated = now
		out = &EventResult{Conversation: id, Closed: c.Closed, Handoff: handoffInfo(c)}
		return plan{write: true, effects: effects}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Ready says whether the state store answers (the model is loaded by construction).
func (e *Engine) Ready(ctx context.Context) error {
	return Translate(e.cfg.Store.Ping(ctx))
}

// OutboxDepth counts handoff deliveries waiting.
func (e *Engine) OutboxDepth(ctx context.Context) (int64, error) { return e.cfg.Outbox.Depth(ctx) }

// DeadLetters lists deliveries that failed every attempt. Errors: Unavailable.
func (e *Engine) DeadLetters(ctx context.Context) ([]handoff.DeadLetter, error) {
	d, err := e.cfg.Outbox.Dead(ctx)
	if err != nil {
		return nil, Translate(err)
	}
	if d == nil {
		d = []handoff.DeadLetter{}
	}
	return d, nil
}

// RetryDeadLetter puts a delivery that failed every attempt back in the outbox, its
// attempts counted afresh. Errors: NotFound, Unavailable.
func (e *Engine) RetryDeadLetter(ctx context.Context, key string) error {
	return Translate(e.cfg.Outbox.Retry(ctx, key))
}

// understand runs the model on the message.
func (e *Engine) understand(ctx context.Context, bot *dialogs.Bot, req MessageRequest) (understanding, error) {
	lang, err := language(req.Lang, req.Text)
	if err != nil {
		return understanding{}, err
	}
	if !slices.Contains(bot.Languages, lang) {
		lang = bot.Languages[0]
	}
	res, err := e.nlu.Classify(ctx, []string{req.Text})
	if err != nil {
		return understanding{}, Translate(err)
	}
	u := understanding{lang: lang}
	heads := e.nlu.Manifest().Heads
	for i, h := range res[0].Heads {
		switch h.Head {
		case "intent":
			u.intent = Intent{Name: h.Label, Confidence: h.Confidence}
		case "emotion":
			u.emotion = Emotion{Label: h.Label, Score: h.Confidence}
			for j, l := range heads[i].Labels {
				if bot.Handoff.Policy.Negative(l) {
					u.negative += float64(h.Scores[j])
				}
			}
		}
	}
	return u, nil
}

// weakLanguage: the text says little about its language (no Han characters and fewer than
// two words of letters only: an order number, "ok", an email address).
func weakLanguage(text string) bool {
	words := 0
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }) {
		letters := true
		for _, r := range w {
			if unicode.Is(unicode.Han, r) {
				return false
			}
			if !unicode.IsLetter(r) {
				letters = false
			}
		}
		if letters && utf8.RuneCountInString(w) > 1 {
			words++
		}
	}
	return words < 2
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// mergeCustomer applies a message's customer to the conversation's: the first one with an
// id sets it; later ones may raise the tier and add tags (a trusted frontend learns more),
// but not change who the customer is.
func mergeCustomer(have *conversation.Customer, got conversation.Customer) error {
	switch {
	case got.ID == "":
		return nil
	case have.ID == "":
		*have = got
		return nil
	case got.ID != have.ID:
		return Errorf(Conflict, "this conversation is customer %q's; a message cannot make it another customer's", truncate(have.ID, 64))
	}
	if got.Tier != "" {
		have.Tier = got.Tier
	}
	for _, t := range got.Tags {
		if !slices.Contains(have.Tags, t) && len(have.Tags) < 64 {
			have.Tags = append(have.Tags, t)
		}
	}
	return nil
}

func checkCustomer(req MessageRequest) error {
	if len(req.Customer.ID) > 128 || len(req.Customer.Tier) > 64 || len(req.Customer.Tags) > 64 || len(req.Channel) > 64 || len(req.Metadata) > 64 {
		return Errorf(Invalid, "customer.id (128), customer.tier (64), customer.tags (64 tags), channel (64) or metadata (64 keys) is too long")
	}
	for _, s := range append([]string{req.Customer.ID, req.Customer.Tier, req.Channel}, req.Customer.Tags...) {
		if !utf8.ValidString(s) {
			return Errorf(Invalid, "customer and channel fields must be valid UTF-8")
		}
	}
	for i, t := range req.Customer.Tags {
		if len(t) > MaxTagBytes {
			return Errorf(Invalid, "customer.tags[%d] is %d bytes long; at most %d", i, len(t), MaxTagBytes)
		}
	}
	for k, v := range req.Metadata {
		if len(k) > MaxTagBytes || len(v) > MaxMetadataValueBytes || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return Errorf(Invalid, "metadata %q: keys are at most %d bytes and values %d, valid UTF-8", truncate(k, 64), MaxTagBytes, MaxMetadataValueBytes)
		}
	}
	return nil
}
