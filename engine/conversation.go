package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/kb"
)

// This file is the path of one customer message:
//
//	load state → NLU → handoff check → dialog → KB fallback → clarify once → hand off → save
//
// The state is saved with compare-and-set on its version; a conflict (another process took
// a turn of the same conversation meanwhile) reruns the turn on the fresh state. Within one
// process, turns of one conversation take a lock, so conflicts only come from other
// processes.

// stateStore keeps conversations (dialogs.MemStore, dialogs/redisstore.Store).
type stateStore interface {
	Load(ctx context.Context, id string) (*dialogs.Conversation, error)
	Save(ctx context.Context, c *dialogs.Conversation) error
	Delete(ctx context.Context, id string) error
	Ping(ctx context.Context) error
}

// cachedLoader is a store that can serve a turn from its own last save (redisstore).
type cachedLoader interface {
	LoadForTurn(ctx context.Context, id string) (*dialogs.Conversation, error)
}

// outbox carries deliveries to the handoff API (dialogs.MemOutbox, redisstore.Outbox).
type outbox interface {
	Enqueue(ctx context.Context, d dialogs.Delivery) error
	Depth(ctx context.Context) (int64, error)
	Dead(ctx context.Context) ([]dialogs.DeadLetter, error)
}

// knowledge answers questions the dialogs do not take (kb.KB).
type knowledge interface {
	Answer(ctx context.Context, q kb.Question) (*kb.Reply, error)
	Feedback(ctx context.Context, f kb.Feedback) error
}

var (
	_ stateStore = (*dialogs.MemStore)(nil)
	_ outbox     = (*dialogs.MemOutbox)(nil)
	_ knowledge  = (*kb.KB)(nil)
)

// Config wires an engine's conversations. The zero value serves only Parse.
type Config struct {
	// Bot runs the dialogs; nil: conversation calls answer Unavailable.
	Bot *dialogs.Machine
	// Store keeps conversations; default an in-memory store (24 h TTL).
	Store stateStore
	// Outbox carries handoffs; default an in-memory outbox nobody runs (set one).
	Outbox outbox
	// KB answers what no dialog takes; nil: no KB fallback.
	KB knowledge
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// MaxTextRunes bounds a customer message.
const MaxTextRunes = 4000

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// MessageRequest is one customer message.
type MessageRequest struct {
	Text     string            `json:"text"`
	Lang     string            `json:"lang,omitempty"` // zh, en, or "" / auto
	Channel  string            `json:"channel,omitempty"`
	Customer dialogs.Customer  `json:"customer"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// MessageResult is kefu's answer to one message.
type MessageResult struct {
	Conversation string            `json:"conversation"`
	Turn         int               `json:"turn"`
	Messages     []Message         `json:"messages"`
	Intent       Intent            `json:"intent"`
	Emotion      Emotion           `json:"emotion"`
	Flow         string            `json:"flow,omitempty"`
	State        string            `json:"state,omitempty"`
	Slots        map[string]string `json:"slots"`
	// Source: dialog, kb, clarify, handoff (handed off now, or the bot is silent while a
	// person has the conversation).
	Source  string       `json:"source"`
	KB      *kb.Reply    `json:"kb,omitempty"`
	Handoff *HandoffInfo `json:"handoff,omitempty"`
	Lang    string       `json:"lang"`
	TookMS  float64      `json:"took_ms"`
}

// Message is one bot message.
type Message struct {
	Text string `json:"text"`
}

// Intent is the understood intent.
type Intent struct {
	Name       string  `json:"name"`
	Confidence float32 `json:"confidence"`
}

// Emotion is the understood emotion.
type Emotion struct {
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// HandoffInfo tells the frontend that a person has (or is getting) the conversation.
type HandoffInfo struct {
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Priority string `json:"priority"`
}

// Handoff reasons.
const (
	ReasonRequested       = "requested"
	ReasonKeywords        = "complaint_keywords"
	ReasonNegativeEmotion = "negative_emotion"
	ReasonUnresolved      = "unresolved"
	ReasonLowConfidence   = "low_confidence"
)

// understanding is the NLU's reading of one message.
type understanding struct {
	lang     string
	intent   Intent
	emotion  Emotion
	negative float64 // sum of the configured negative emotions' scores
}

// Configure sets up conversations (see Config); call it before serving.
func (e *Engine) Configure(cfg Config) {
	if cfg.Store == nil {
		cfg.Store = dialogs.NewMemStore(0)
	}
	if cfg.Outbox == nil {
		cfg.Outbox = dialogs.NewMemOutbox(dialogs.OutboxOptions{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e.cfg = cfg
	if cfg.Bot != nil {
		e.bot.Store(cfg.Bot)
	}
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

// Message takes one customer message through the pipeline and answers it.
func (e *Engine) Message(ctx context.Context, id string, req MessageRequest) (*MessageResult, error) {
	start := time.Now()
	m, err := e.machine()
	if err != nil {
		return nil, err
	}
	bot := m.Bot()
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if err := checkText(req.Text); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(req.Text); n > MaxTextRunes {
		return nil, Errorf(Invalid, "text is %d characters long; at most %d", n, MaxTextRunes)
	}
	if err := checkCustomer(req); err != nil {
		return nil, err
	}
	u, err := e.understand(ctx, bot, req)
	if err != nil {
		return nil, err
	}
	var kbReply *kb.Reply // asked at most once per message, whatever the retries
	var kbErr error
	var kbAsked bool
	askKB := func(c *dialogs.Conversation) (*kb.Reply, error) {
		if !kbAsked && e.cfg.KB != nil {
			kbAsked = true
			kbReply, kbErr = e.cfg.KB.Answer(ctx, kb.Question{Text: req.Text, Lang: u.lang, Customer: c.Customer.ID, Conversation: c.ID})
			if errors.Is(kbErr, kb.ErrNotFound) {
				kbReply, kbErr = nil, nil
			}
		}
		return kbReply, kbErr
	}

	mu := e.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	load := e.cfg.Store.Load
	if cl, ok := e.cfg.Store.(cachedLoader); ok {
		load = cl.LoadForTurn // a conflict below means the copy was stale: reread
	}
	for attempt := 0; ; attempt++ {
		c, err := load(ctx, id)
		switch {
		case errors.Is(err, dialogs.ErrNotFound):
			now := time.Now()
			c = &dialogs.Conversation{ID: id, Created: now, Customer: req.Customer, Channel: req.Channel, Metadata: req.Metadata}
		case err != nil:
			return nil, stateError(err)
		}
		if c.Closed {
			return nil, Errorf(Conflict, "conversation %s is closed; start a new one", id)
		}
		res, after, err := e.turn(ctx, m, c, req, u, askKB)
		if err != nil {
			return nil, err
		}
		err = e.cfg.Store.Save(ctx, c)
		if errors.Is(err, dialogs.ErrConflict) && attempt < 50 {
			load = e.cfg.Store.Load
			if attempt > 0 {
				time.Sleep(time.Duration(rand.IntN(1000*attempt)) * time.Microsecond)
			}
			continue
		}
		if err != nil {
			return nil, stateError(err)
		}
		after(ctx)
		res.TookMS = float64(time.Since(start).Microseconds()) / 1000
		return res, nil
	}
}

// turn applies one message to c (loaded, unsaved). It returns the answer and what to do
// once c is saved. Deliveries are enqueued before the save: their keys are numbered by the
// conversation's handoffs and turns, so a rerun after a conflict enqueues nothing twice.
func (e *Engine) turn(ctx context.Context, m *dialogs.Machine, c *dialogs.Conversation, req MessageRequest, u understanding,
	askKB func(*dialogs.Conversation) (*kb.Reply, error)) (*MessageResult, func(context.Context), error) {
	bot := m.Bot()
	now := time.Now()
	if req.Lang == "" && c.Lang != "" && u.lang != c.Lang && weakLanguage(req.Text) {
		u.lang = c.Lang // "KF20261122" or "ok" in a Chinese conversation stays Chinese
	}
	c.Updated, c.Lang = now, u.lang
	if req.Customer.ID != "" {
		c.Customer = req.Customer
	}
	if req.Channel != "" {
		c.Channel = req.Channel
	}
	t := dialogs.Turn{At: now, Text: req.Text, Lang: u.lang, Intent: u.intent.Name, Confidence: u.intent.Confidence,
		Emotion: u.emotion.Label, EmotionScore: u.emotion.Score}
	res := &MessageResult{Conversation: c.ID, Intent: u.intent, Emotion: u.emotion, Lang: u.lang, Messages: []Message{}}
	after := func(context.Context) {}
	reason := e.trigger(bot, req.Text, u)

	switch {
	case c.Handoff != nil && c.Handoff.Status != "released":
		// A person has the conversation: the bot stays silent and relays the message.
		t.Source, res.Source = "agent", "handoff"
		c.AddTurn(t)
		body, _ := json.Marshal(map[string]any{"type": "message", "conversation": c.ID, "handoff": c.Handoff.ID,
			"customer": c.Customer, "turn": c.Turns[len(c.Turns)-1]})
		if err := e.enqueue(ctx, fmt.Sprintf("%s:message:%d", c.ID, c.TurnCount), "message", body); err != nil {
			return nil, nil, err
		}
	case reason != "":
		c.AddTurn(t)
		var err error
		if after, err = e.handOff(ctx, bot, c, reason, res); err != nil {
			return nil, nil, err
		}
	default:
		out := m.Step(ctx, c, dialogs.Input{Text: req.Text, Lang: u.lang, Intent: u.intent.Name, Confidence: u.intent.Confidence, Now: now})
		for _, err := range out.ActionErrors {
			e.cfg.Logger.Warn("dialog action failed", "conversation", c.ID, "err", err)
		}
		resolved := out.Handled && !out.Failed
		t.Source, t.Replies = "dialog", out.Replies
		if !out.Handled {
			reply, err := askKB(c)
			if err != nil {
				return nil, nil, KBError(err)
			}
			if reply != nil && reply.Found {
				resolved, res.KB = true, reply
				c.LastArticle, t.Article = reply.Article, reply.Article
				t.Source, t.Replies = "kb", []string{reply.Text}
			}
		}
		if resolved {
			c.Unresolved, c.Clarified = 0, false
		} else {
			c.Unresolved++
			if c.Unresolved >= maxUnresolved(bot, c) {
				reason := ReasonUnresolved
				if float64(u.intent.Confidence) < bot.Handoff.MinConfidence {
					reason = ReasonLowConfidence
				}
				c.AddTurn(t)
				var err error
				if after, err = e.handOff(ctx, bot, c, reason, res); err != nil {
					return nil, nil, err
				}
				break
			}
			if len(t.Replies) == 0 {
				t.Source, t.Replies = "clarify", []string{bot.Responses["clarify"].Pick(u.lang, c.TurnCount)}
				c.Clarified = true
			}
		}
		c.AddTurn(t)
		res.Source = t.Source
	}
	last := c.Turns[len(c.Turns)-1]
	for _, r := range last.Replies {
		res.Messages = append(res.Messages, Message{Text: r})
	}
	res.Turn, res.Flow, res.State, res.Slots = c.TurnCount, c.Flow, c.State, c.Slots
	if res.Slots == nil {
		res.Slots = map[string]string{}
	}
	if c.Handoff != nil && c.Handoff.Status != "released" {
		res.Handoff = &HandoffInfo{Status: c.Handoff.Status, Reason: c.Handoff.Reason, Priority: c.Handoff.Priority}
	}
	return res, after, nil
}

// trigger returns why this message goes to a person at once ("" if it does not): an
// explicit request (or another configured intent), complaint keywords, or anger.
func (e *Engine) trigger(bot *dialogs.Bot, text string, u understanding) string {
	h := bot.Handoff
	if float64(u.intent.Confidence) >= bot.Thresholds.Intent {
		if reason, ok := h.Intents[u.intent.Name]; ok {
			return reason
		}
	}
	lower := strings.ToLower(text)
	for _, words := range h.Keywords {
		for _, w := range words {
			if w != "" && strings.Contains(lower, strings.ToLower(w)) {
				return ReasonKeywords
			}
		}
	}
	if u.negative >= h.NegativeThreshold {
		return ReasonNegativeEmotion
	}
	return ""
}

func maxUnresolved(bot *dialogs.Bot, c *dialogs.Conversation) int {
	if slices.Contains(bot.Handoff.VIPTiers, c.Customer.Tier) {
		return bot.Handoff.VIPMaxUnresolved
	}
	return bot.Handoff.MaxUnresolved
}

// priority: one point each for an urgent intent in the conversation (understood: at or above
// the handoff's confidence threshold), a VIP customer, and an upset one; 0 normal, 1 high,
// 2 or more urgent.
func priority(bot *dialogs.Bot, c *dialogs.Conversation, reason string) string {
	points := 0
	if slices.ContainsFunc(c.Turns, func(t dialogs.Turn) bool {
		return slices.Contains(bot.Handoff.UrgentIntents, t.Intent) && float64(t.Confidence) >= bot.Handoff.MinConfidence
	}) {
		points++
	}
	if slices.Contains(bot.Handoff.VIPTiers, c.Customer.Tier) {
		points++
	}
	if reason == ReasonNegativeEmotion || reason == ReasonKeywords || reason == "complaint" {
		points++
	}
	return [...]string{"normal", "high", "urgent"}[min(points, 2)]
}

// HandoffPayload is what the handoff API receives: the whole context of the conversation.
type HandoffPayload struct {
	Type         string            `json:"type"` // handoff
	ID           string            `json:"id"`   // idempotency key, also in the Idempotency-Key header
	Conversation string            `json:"conversation"`
	Reason       string            `json:"reason"`
	Priority     string            `json:"priority"`
	Customer     dialogs.Customer  `json:"customer"`
	Channel      string            `json:"channel,omitempty"`
	Lang         string            `json:"lang"`
	Flow         string            `json:"flow,omitempty"`
	State        string            `json:"state,omitempty"`
	Slots        map[string]string `json:"slots"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Summary      string            `json:"summary"`
	Transcript   []dialogs.Turn    `json:"transcript"`
	At           time.Time         `json:"at"`
}

// handOff gives c to a person: the customer is told, the delivery is queued, and once the
// state is saved the KB hears that its last answer did not resolve the question.
func (e *Engine) handOff(ctx context.Context, bot *dialogs.Bot, c *dialogs.Conversation, reason string, res *MessageResult) (func(context.Context), error) {
	c.Handoffs++
	key := fmt.Sprintf("%s:handoff:%d", c.ID, c.Handoffs)
	prio := priority(bot, c, reason)
	last := &c.Turns[len(c.Turns)-1]
	last.Source = "handoff"
	last.Replies = []string{bot.Responses["handoff"].Pick(c.Lang, c.TurnCount)}
	p := HandoffPayload{Type: "handoff", ID: key, Conversation: c.ID, Reason: reason, Priority: prio, Customer: c.Customer,
		Channel: c.Channel, Lang: c.Lang, Flow: c.Flow, State: c.State, Slots: c.Slots, Metadata: c.Metadata,
		Summary: Summary(c.Turns), Transcript: c.Turns, At: time.Now().UTC()}
	if p.Slots == nil {
		p.Slots = map[string]string{}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := e.enqueue(ctx, key, "handoff", body); err != nil {
		return nil, err
	}
	c.Handoff = &dialogs.Handoff{ID: key, Reason: reason, Priority: prio, Status: "queued", At: p.At}
	c.Flow, c.State, c.Attempts = "", "", 0
	res.Source = "handoff"
	article := c.LastArticle
	return func(ctx context.Context) {
		e.cfg.Logger.Info("handoff", "conversation", c.ID, "reason", reason, "priority", prio, "key", key)
		if article != "" && e.cfg.KB != nil {
			if err := e.cfg.KB.Feedback(ctx, kb.Feedback{Article: article, Customer: c.Customer.ID, Conversation: c.ID, Handoff: true}); err != nil && !errors.Is(err, kb.ErrNotFound) {
				e.cfg.Logger.Warn("kb feedback after handoff", "conversation", c.ID, "err", err)
			}
		}
	}, nil
}

func (e *Engine) enqueue(ctx context.Context, key, kind string, body []byte) error {
	err := e.cfg.Outbox.Enqueue(ctx, dialogs.Delivery{Key: key, Kind: kind, Body: body, Enqueued: time.Now()})
	if err != nil {
		return stateError(err)
	}
	return nil
}

// Summary is a short extractive summary for the agent: the customer's first message, the
// most upset one, and the last, with the intents seen.
func Summary(turns []dialogs.Turn) string {
	if len(turns) == 0 {
		return ""
	}
	picked := []int{0}
	worst := -1
	for i, t := range turns {
		if t.Emotion != "" && t.Emotion != "neutral" && t.Emotion != "happy" && (worst < 0 || t.EmotionScore > turns[worst].EmotionScore) {
			worst = i
		}
	}
	if worst > 0 {
		picked = append(picked, worst)
	}
	if n := len(turns) - 1; n > 0 && n != worst {
		picked = append(picked, n)
	}
	var quotes, intents []string
	for _, i := range picked {
		quotes = append(quotes, fmt.Sprintf("%q", truncate(turns[i].Text, 200)))
	}
	for _, t := range turns {
		if t.Intent != "" && !slices.Contains(intents, t.Intent) {
			intents = append(intents, t.Intent)
		}
	}
	noun := "messages"
	if len(turns) == 1 {
		noun = "message"
	}
	s := fmt.Sprintf("%d customer %s: %s. Intents: %s.", len(turns), noun, strings.Join(quotes, " … "), strings.Join(intents, ", "))
	if worst >= 0 {
		s += fmt.Sprintf(" Strongest emotion: %s (%.2f).", turns[worst].Emotion, turns[worst].EmotionScore)
	}
	return s
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

func checkCustomer(req MessageRequest) error {
	if len(req.Customer.ID) > 128 || len(req.Customer.Tier) > 64 || len(req.Customer.Tags) > 64 || len(req.Channel) > 64 || len(req.Metadata) > 64 {
		return Errorf(Invalid, "customer.id (128), customer.tier (64), customer.tags (64 tags), channel (64) or metadata (64 keys) is too long")
	}
	for _, s := range append([]string{req.Customer.ID, req.Customer.Tier, req.Channel}, req.Customer.Tags...) {
		if !utf8.ValidString(s) {
			return Errorf(Invalid, "customer and channel fields must be valid UTF-8")
		}
	}
	return nil
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
		return understanding{}, modelError(err)
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
				if slices.Contains(bot.Handoff.NegativeEmotions, l) {
					u.negative += float64(h.Scores[j])
				}
			}
		}
	}
	return u, nil
}

// stateError gives a state store error its code.
func stateError(err error) error {
	switch {
	case errors.Is(err, dialogs.ErrNotFound):
		return &Error{Code: NotFound, Message: "no such conversation", Err: err}
	case errors.Is(err, dialogs.ErrUnavailable):
		return &Error{Code: Unavailable, Message: "the conversation store is unavailable; retry later", Err: err}
	case errors.Is(err, dialogs.ErrConflict):
		return &Error{Code: Conflict, Message: "the conversation changed too often concurrently; retry", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: Canceled, Message: "request canceled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: Unavailable, Message: "the conversation store did not answer in time", Err: err}
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// Conversation returns a conversation's state and transcript.
func (e *Engine) Conversation(ctx context.Context, id string) (*dialogs.Conversation, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if _, err := e.machine(); err != nil {
		return nil, err
	}
	c, err := e.cfg.Store.Load(ctx, id)
	if err != nil {
		return nil, stateError(err)
	}
	if c.Turns == nil {
		c.Turns = []dialogs.Turn{}
	}
	return c, nil
}

// DeleteConversation ends and erases a conversation.
func (e *Engine) DeleteConversation(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	if _, err := e.machine(); err != nil {
		return err
	}
	mu := e.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	if err := e.cfg.Store.Delete(ctx, id); err != nil {
		return stateError(err)
	}
	return nil
}

// Event is something that happened to a conversation outside its messages.
type Event struct {
	// Type: csat (Score 1–5), thumbs (Thumb "up" or "down"), agent.released (a person gives
	// the conversation back to the bot), conversation.closed.
	Type  string `json:"type"`
	Score int    `json:"score,omitempty"`
	Thumb string `json:"thumb,omitempty"`
}

// EventResult is the conversation after an event.
type EventResult struct {
	Conversation string       `json:"conversation"`
	Closed       bool         `json:"closed"`
	Handoff      *HandoffInfo `json:"handoff,omitempty"`
}

// Event records an event. CSAT and thumbs also reach the KB article last answered (its
// experiment counts them).
func (e *Engine) Event(ctx context.Context, id string, ev Event) (*EventResult, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if _, err := e.machine(); err != nil {
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
	case "agent.released", "conversation.closed":
	default:
		return nil, Errorf(Invalid, "type must be csat, thumbs, agent.released or conversation.closed, got %q", truncate(ev.Type, 40))
	}
	mu := e.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		c, err := e.cfg.Store.Load(ctx, id)
		if err != nil {
			return nil, stateError(err)
		}
		switch ev.Type {
		case "csat":
			c.CSAT = ev.Score
		case "thumbs":
			c.Thumb = thumb
		case "agent.released":
			if c.Handoff == nil || c.Handoff.Status == "released" {
				return nil, Errorf(Conflict, "conversation %s is not with an agent", id)
			}
			c.Handoff.Status = "released"
			c.Unresolved, c.Clarified = 0, false
		case "conversation.closed":
			c.Closed = true
		}
		c.Updated = time.Now()
		err = e.cfg.Store.Save(ctx, c)
		if errors.Is(err, dialogs.ErrConflict) && attempt < 50 {
			continue
		}
		if err != nil {
			return nil, stateError(err)
		}
		if (ev.Type == "csat" || ev.Type == "thumbs") && c.LastArticle != "" && e.cfg.KB != nil {
			f := kb.Feedback{Article: c.LastArticle, Customer: c.Customer.ID, Conversation: c.ID, Thumb: thumb}
			if ev.Type == "csat" {
				f.CSAT = ev.Score
			}
			if err := e.cfg.KB.Feedback(ctx, f); err != nil && !errors.Is(err, kb.ErrNotFound) {
				return nil, KBError(err)
			}
		}
		out := &EventResult{Conversation: id, Closed: c.Closed}
		if c.Handoff != nil {
			out.Handoff = &HandoffInfo{Status: c.Handoff.Status, Reason: c.Handoff.Reason, Priority: c.Handoff.Priority}
		}
		return out, nil
	}
}

// Ready says whether the state store answers (the model is loaded by construction).
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.cfg.Store.Ping(ctx); err != nil {
		return stateError(err)
	}
	return nil
}

// OutboxDepth counts handoff deliveries waiting.
func (e *Engine) OutboxDepth(ctx context.Context) (int64, error) { return e.cfg.Outbox.Depth(ctx) }

// DeadLetters lists deliveries that failed every attempt.
func (e *Engine) DeadLetters(ctx context.Context) ([]dialogs.DeadLetter, error) {
	d, err := e.cfg.Outbox.Dead(ctx)
	if err != nil {
		return nil, stateError(err)
	}
	return d, nil
}
