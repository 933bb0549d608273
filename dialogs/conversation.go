package dialogs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
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

// Conversation is everything kefu remembers of one conversation. Version counts saves; a
// save succeeds only over the version it was loaded at.
type Conversation struct {
	ID       string            `json:"id"`
	Version  int64             `json:"version"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"`
	Lang     string            `json:"lang"`
	Channel  string            `json:"channel,omitempty"`
	Customer Customer          `json:"customer"`
	Metadata map[string]string `json:"metadata,omitempty"`

	// Flow and State: where the dialog stands ("" when no flow runs); Attempts counts
	// prompts for the slot being asked.
	Flow     string            `json:"flow,omitempty"`
	State    string            `json:"state,omitempty"`
	Attempts int               `json:"attempts,omitempty"`
	Slots    map[string]string `json:"slots,omitempty"`

	// Unresolved counts consecutive turns the bot could not help with; Clarified says the
	// bot already asked the customer to rephrase since the last resolved turn.
	Unresolved int  `json:"unresolved"`
	Clarified  bool `json:"clarified,omitempty"`
	// LastArticle is the KB article of the last KB answer (for CSAT and thumbs).
	LastArticle string   `json:"last_article,omitempty"`
	Handoff     *Handoff `json:"handoff,omitempty"`
	Handoffs    int      `json:"handoffs,omitempty"` // handoffs so far (numbers their keys)
	Closed      bool     `json:"closed,omitempty"`
	CSAT        int      `json:"csat,omitempty"`
	Thumb       int      `json:"thumb,omitempty"`

	// Turns is the recent transcript (the last MaxTurns); TurnCount counts all turns.
	Turns     []Turn `json:"turns"`
	TurnCount int    `json:"turn_count"`

	stored int // TurnCount when loaded or last saved
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

// Customer identifies who writes.
type Customer struct {
	ID   string   `json:"id"`
	Tier string   `json:"tier,omitempty"`
	Tags []string `json:"tags,omitempty"`
}

// Handoff records that a person took over (or is about to).
type Handoff struct {
	ID       string    `json:"id"` // idempotency key of the delivery
	Reason   string    `json:"reason"`
	Priority string    `json:"priority"`
	Status   string    `json:"status"` // queued: waiting for an agent; released when given back
	At       time.Time `json:"at"`
}

// Turn is one customer message and what followed it.
type Turn struct {
	Seq          int       `json:"seq"`
	At           time.Time `json:"at"`
	Text         string    `json:"text"`
	Lang         string    `json:"lang"`
	Intent       string    `json:"intent,omitempty"`
	Confidence   float32   `json:"confidence"`
	Emotion      string    `json:"emotion,omitempty"`
	EmotionScore float32   `json:"emotion_score"`
	Source       string    `json:"source"` // dialog, kb, clarify, handoff, agent, closed
	Replies      []string  `json:"replies"`
	State        string    `json:"state,omitempty"`
	Article      string    `json:"article,omitempty"`
}

// MaxTurns bounds the transcript kept in the conversation's state.
const MaxTurns = 50

// AddTurn appends t (numbered) and keeps the last MaxTurns.
func (c *Conversation) AddTurn(t Turn) {
	c.TurnCount++
	t.Seq = c.TurnCount
	c.Turns = append(c.Turns, t)
	if n := len(c.Turns); n > MaxTurns {
		c.Turns = append(c.Turns[:0:0], c.Turns[n-MaxTurns:]...)
	}
}

// Clone returns a deep copy (turns are copied; their reply lists are never changed in
// place, so they are shared).
func (c *Conversation) Clone() *Conversation {
	out := *c
	out.Customer.Tags = slices.Clone(c.Customer.Tags)
	out.Metadata = maps.Clone(c.Metadata)
	out.Slots = maps.Clone(c.Slots)
	out.Turns = slices.Clone(c.Turns)
	if c.Handoff != nil {
		h := *c.Handoff
		out.Handoff = &h
	}
	return &out
}

// MemStore keeps conversations in this process: the embedded default, for one node.
// Conversations idle longer than TTL are forgotten.
type MemStore struct {
	mu    sync.Mutex
	convs map[string]memEntry
	ttl   time.Duration
	now   func() time.Time
}

type memEntry struct {
	conv    *Conversation // a private copy
	expires time.Time
}

// NewMemStore returns an empty store; ttl 0 means 24 hours.
func NewMemStore(ttl time.Duration) *MemStore {
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return &MemStore{convs: map[string]memEntry{}, ttl: ttl, now: time.Now}
}

// Load returns the conversation, or ErrNotFound.
func (s *MemStore) Load(_ context.Context, id string) (*Conversation, error) {
	s.mu.Lock()
	e, ok := s.convs[id]
	if ok && s.now().After(e.expires) {
		delete(s.convs, id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	c := e.conv.Clone()
	c.MarkStored()
	return c, nil
}

// Save writes c if the stored version is still c.Version (0: new), then bumps c.Version.
// ErrConflict otherwise.
func (s *MemStore) Save(_ context.Context, c *Conversation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.convs[c.ID]
	var cur int64
	if ok && !s.now().After(e.expires) {
		cur = e.conv.Version
	}
	if cur != c.Version {
		return ErrConflict
	}
	c.Version++
	c.MarkStored()
	s.convs[c.ID] = memEntry{conv: c.Clone(), expires: s.now().Add(s.ttl)}
	return nil
}

// Delete erases the conversation; ErrNotFound if there is none.
func (s *MemStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.convs[id]; !ok {
		return ErrNotFound
	}
	delete(s.convs, id)
	return nil
}

// Ping always succeeds.
func (s *MemStore) Ping(context.Context) error { return nil }
