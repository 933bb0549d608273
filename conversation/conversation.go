// Package conversation is what kefu remembers of a conversation: the stored record, its
// turns, the store interface that keeps records, and the store's errors. Implementations live
// in conversation/inmem (one process) and conversation/redisstore (many processes on one
// Redis).
package conversation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"
)

var (
	// ErrNotFound: no such conversation.
	ErrNotFound = errors.New("conversation not found")
	// ErrConflict: the conversation changed since it was loaded (compare-and-set failed).
	ErrConflict = errors.New("conversation changed concurrently")
	// ErrUnavailable: the state store cannot be reached.
	ErrUnavailable = errors.New("state store unavailable")
)

// Store keeps conversation records. Save and Delete are compare-and-set on the version the
// record was loaded at.
type Store interface {
	// Load returns the record, ErrNotFound, or ErrUnavailable.
	Load(ctx context.Context, id string) (*Conversation, error)
	// Save writes c if the stored version is still c.Version (0: new) and bumps c.Version;
	// ErrConflict otherwise. A save whose reply was lost and that is retried succeeds.
	Save(ctx context.Context, c *Conversation) error
	// Delete erases c if the stored version is still c.Version; ErrConflict otherwise,
	// ErrNotFound when there is nothing to erase.
	Delete(ctx context.Context, c *Conversation) error
	// Ping says whether the store answers.
	Ping(ctx context.Context) error
}

// Conversation is everything kefu remembers of one conversation. Version counts saves; a
// save succeeds only over the version it was loaded at.
type Conversation struct {
	ID string `json:"id"`
	// Instance is random, drawn when the record is created: a conversation started again
	// under the same id (after DELETE or expiry) is another instance, so keys derived from
	// it (action calls) never collide with the old one's.
	Instance string            `json:"instance"`
	Version  int64             `json:"version"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"`
	Lang     string            `json:"lang"`
	Channel  string            `json:"channel,omitempty"`
	Customer Customer          `json:"customer"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// TokenHash is the SHA-256 (hex) of the conversation token a public frontend got when
	// it started the conversation; it must show the token for every later call.
	TokenHash string `json:"token_hash,omitempty"`

	// Dialog is where the bot's flows stand (dialogs.Machine changes only this).
	Dialog

	// Unresolved counts consecutive turns the bot could not help with; Clarified says the
	// bot already asked the customer to rephrase since the last resolved turn.
	Unresolved int  `json:"unresolved"`
	Clarified  bool `json:"clarified,omitempty"`
	// LastArticle is the KB article of the last KB answer (for CSAT and thumbs).
	LastArticle string   `json:"last_article,omitempty"`
	Handoff     *Handoff `json:"handoff,omitempty"`
	Closed      bool     `json:"closed,omitempty"`
	CSAT        int      `json:"csat,omitempty"`
	Thumb       int      `json:"thumb,omitempty"`

	// Turns is the recent transcript (the last MaxTurns); TurnCount counts all turns.
	Turns     []Turn `json:"turns"`
	TurnCount int    `json:"turn_count"`
	// Answers are the replies to the last MaxAnswers messages that came with a message id,
	// so that a repeated message is answered again without being recorded twice.
	Answers []Answer `json:"answers,omitempty"`
	// Outgoing are the deliveries (handoff, relay) the last turn decided, as the engine
	// encodes them: the next turn queues them again, in case the process that saved them
	// stopped before queueing (the outbox keeps one per key).
	Outgoing []json.RawMessage `json:"outgoing,omitempty"`

	stored int // TurnCount when loaded or last saved
}

// Dialog is where a conversation stands in the bot's flows ("" when no flow runs);
// Attempts counts prompts for the slot being asked.
type Dialog struct {
	Flow     string            `json:"flow,omitempty"`
	State    string            `json:"state,omitempty"`
	Attempts int               `json:"attempts,omitempty"`
	Slots    map[string]string `json:"slots,omitempty"`
}

// End leaves the flow (the slots stay, for the handoff's context).
func (d *Dialog) End() { d.Flow, d.State, d.Attempts = "", "", 0 }

// Customer identifies who writes.
type Customer struct {
	ID   string   `json:"id" doc:"the customer's id in your systems"`
	Tier string   `json:"tier,omitempty" doc:"e.g. vip: the bot's handoff policy may treat tiers differently"`
	Tags []string `json:"tags,omitempty"`
}

// Handoff statuses.
const (
	Queued   = "queued"   // waiting for an agent
	Accepted = "accepted" // an agent has it (agent.accepted)
	Released = "released" // an agent gave the conversation back to the bot
)

// Handoff records that a person took over (or is about to).
type Handoff struct {
	ID       string    `json:"id"` // idempotency key of the delivery, unique per handoff
	Reason   string    `json:"reason"`
	Priority string    `json:"priority"`
	Status   string    `json:"status"` // Queued, Accepted or Released
	At       time.Time `json:"at"`
	// Queue and Skills are where the policy routed it; Deadline is when its SLA target
	// passes (zero: none).
	Queue    string    `json:"queue,omitempty"`
	Skills   []string  `json:"skills,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Agent and AcceptedAt: who accepted it, when.
	Agent      string    `json:"agent,omitempty"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// First: the conversation's first handoff.
	First bool `json:"first,omitempty"`
}

// Active says whether a person has the conversation.
func (c *Conversation) Active() bool { return c.Handoff != nil && c.Handoff.Status != Released }

// Turn is one customer message and what followed it.
type Turn struct {
	Seq          int       `json:"seq"`
	MessageID    string    `json:"message_id,omitempty"`
	At           time.Time `json:"at"`
	Text         string    `json:"text"`
	Lang         string    `json:"lang"`
	Intent       string    `json:"intent,omitempty"`
	Confidence   float32   `json:"confidence"`
	Emotion      string    `json:"emotion,omitempty"`
	EmotionScore float32   `json:"emotion_score"`
	Source       string    `json:"source"` // dialog, kb, clarify, handoff, agent
	Replies      []string  `json:"replies"`
	State        string    `json:"state,omitempty"`
	Article      string    `json:"article,omitempty"`
}

// Answer is the reply kefu gave to a message that came with a message id.
type Answer struct {
	MessageID string `json:"message_id"`
	// Digest identifies the message's text, so that an id sent again with another text is
	// told apart from a retry.
	Digest string          `json:"digest"`
	Reply  json.RawMessage `json:"reply"`
}

// MaxTurns bounds the transcript kept in the record; MaxAnswers the replies kept for
// retried messages.
const (
	MaxTurns   = 50
	MaxAnswers = 16
)

// New returns a new record with a fresh instance id.
func New(id string, now time.Time) *Conversation {
	return &Conversation{ID: id, Instance: RandomID(), Created: now, Updated: now}
}

// RandomID returns 16 random hexadecimal digits.
func RandomID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// AddTurn appends t (numbered) and keeps the last MaxTurns.
func (c *Conversation) AddTurn(t Turn) {
	c.TurnCount++
	t.Seq = c.TurnCount
	c.Turns = append(c.Turns, t)
	if n := len(c.Turns); n > MaxTurns {
		c.Turns = append(c.Turns[:0:0], c.Turns[n-MaxTurns:]...)
	}
}

// Last returns the last turn; the conversation must have one.
func (c *Conversation) Last() *Turn { return &c.Turns[len(c.Turns)-1] }

// Answered returns the answer kept for message id, if any.
func (c *Conversation) Answered(id string) (Answer, bool) {
	if id == "" {
		return Answer{}, false
	}
	i := slices.IndexFunc(c.Answers, func(a Answer) bool { return a.MessageID == id })
	if i < 0 {
		return Answer{}, false
	}
	return c.Answers[i], true
}

// Remember keeps a's reply for retries of its message, the last MaxAnswers of them.
func (c *Conversation) Remember(a Answer) {
	c.Answers = append(c.Answers, a)
	if n := len(c.Answers); n > MaxAnswers {
		c.Answers = append(c.Answers[:0:0], c.Answers[n-MaxAnswers:]...)
	}
}

// Pending returns the turns added since the conversation was loaded or last saved.
func (c *Conversation) Pending() []Turn {
	n := c.TurnCount - c.stored
	if n <= 0 {
		return nil
	}
	return c.Turns[max(0, len(c.Turns)-n):]
}

// MarkStored notes that every turn so far is stored (stores call it after Load and Save).
func (c *Conversation) MarkStored() { c.stored = c.TurnCount }

// Clone returns a deep copy (turns are copied; their reply lists and the answers' bytes are
// never changed in place, so they are shared).
func (c *Conversation) Clone() *Conversation {
	out := *c
	out.Customer.Tags = slices.Clone(c.Customer.Tags)
	out.Metadata = maps.Clone(c.Metadata)
	out.Slots = maps.Clone(c.Slots)
	out.Turns = slices.Clone(c.Turns)
	out.Answers = slices.Clone(c.Answers)
	out.Outgoing = slices.Clone(c.Outgoing)
	if c.Handoff != nil {
		h := *c.Handoff
		h.Skills = slices.Clone(h.Skills)
		out.Handoff = &h
	}
	return &out
}
