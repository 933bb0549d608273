package handoff

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/conversation"
)

// Delivery kinds.
const (
	KindHandoff = "handoff"              // a Payload
	KindMessage = "message"              // a Relay
	KindBreach  = "handoff.sla_breached" // a Breach
)

// Payload is what the handoff API receives when a conversation goes to a person: its whole
// context.
type Payload struct {
	Type         string                `json:"type"` // handoff
	ID           string                `json:"id"`   // idempotency key, also in the Idempotency-Key header
	Conversation string                `json:"conversation"`
	Reason       string                `json:"reason"`
	Priority     string                `json:"priority"`
	Queue        string                `json:"queue"`              // where the policy routed it
	Skills       []string              `json:"skills"`             // what its agents need
	Deadline     *time.Time            `json:"deadline,omitempty"` // when its SLA target passes
	Customer     conversation.Customer `json:"customer"`
	Channel      string                `json:"channel,omitempty"`
	Lang         string                `json:"lang"`
	Flow         string                `json:"flow,omitempty"`
	State        string                `json:"state,omitempty"`
	Slots        map[string]string     `json:"slots"`
	Metadata     map[string]string     `json:"metadata,omitempty"`
	Summary      string                `json:"summary"`
	Transcript   []conversation.Turn   `json:"transcript"`
	At           time.Time             `json:"at"`
}

// NewPayload is the context of c's handoff (c.Handoff must be set).
func NewPayload(c *conversation.Conversation) Payload {
	h := c.Handoff
	p := Payload{Type: KindHandoff, ID: h.ID, Conversation: c.ID, Reason: h.Reason, Priority: h.Priority, Queue: h.Queue, Skills: slices.Clone(h.Skills),
		Customer: c.Customer, Channel: c.Channel, Lang: c.Lang, Flow: c.Flow, State: c.State,
		Slots: maps.Clone(c.Slots), Metadata: c.Metadata, Summary: Summary(c.Turns), Transcript: slices.Clone(c.Turns), At: h.At}
	if p.Slots == nil {
		p.Slots = map[string]string{}
	}
	if p.Skills == nil {
		p.Skills = []string{}
	}
	if !h.Deadline.IsZero() {
		d := h.Deadline
		p.Deadline = &d
	}
	return p
}

// Delivery is p ready for the outbox, keyed by the handoff's id.
func (p Payload) Delivery() Delivery {
	body, _ := json.Marshal(p) // plain strings, maps and times: cannot fail
	return Delivery{Key: p.ID, Kind: KindHandoff, Body: body, Enqueued: time.Now()}
}

// Relay is a customer message passed on to the person who has the conversation.
type Relay struct {
	Type         string                `json:"type"` // message
	Conversation string                `json:"conversation"`
	Handoff      string                `json:"handoff"` // the handoff's id
	Customer     conversation.Customer `json:"customer"`
	Turn         conversation.Turn     `json:"turn"`
}

// NewRelay relays c's last turn to the person who has c.
func NewRelay(c *conversation.Conversation) Relay {
	return Relay{Type: KindMessage, Conversation: c.ID, Handoff: c.Handoff.ID, Customer: c.Customer, Turn: *c.Last()}
}

// Delivery is r ready for the outbox, keyed by the handoff's id and the turn's number.
func (r Relay) Delivery() Delivery {
	body, _ := json.Marshal(r)
	return Delivery{Key: fmt.Sprintf("%s:message:%d", r.Handoff, r.Turn.Seq), Kind: KindMessage, Body: body, Enqueued: time.Now()}
}

// Summary is a short extractive summary for the agent: the customer's first message, the
// most upset one, and the last, with the intents seen.
func Summary(turns []conversation.Turn) string {
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

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Breach tells the handoff API that a handoff waited past its SLA target without an agent
// accepting it (sent once per handoff).
type Breach struct {
	Type         string    `json:"type"` // handoff.sla_breached
	ID           string    `json:"id"`   // idempotency key: the handoff's id + ":sla_breached"
	Handoff      string    `json:"handoff"`
	Conversation string    `json:"conversation"`
	Priority     string    `json:"priority"`
	Queue        string    `json:"queue"`
	Since        time.Time `json:"since"`    // when it was handed off
	Deadline     time.Time `json:"deadline"` // when its target passed
	At           time.Time `json:"at"`       // when kefu noticed
}

// Delivery is b ready for the outbox.
func (b Breach) Delivery() Delivery {
	b.Type, b.ID = KindBreach, b.Handoff+":sla_breached"
	body, _ := json.Marshal(b)
	return Delivery{Key: b.ID, Kind: KindBreach, Body: body, Enqueued: time.Now()}
}
