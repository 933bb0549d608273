// Package handoff is how conversations go to people: the policy that decides when and how
// urgently (Policy), what the handoff API receives (Payload, Relay), and the outbox that
// delivers it at least once (Outbox, Delivery). Implementations: handoff/inmem and
// handoff/redisstore (outboxes), handoff/webhook (signed delivery and the receiver's
// verifier).
//
// The policy works on the conversation record (conversation.Conversation), whose plain types
// it shares: priority and the summary read the transcript and the customer.
package handoff

import (
	"slices"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/conversation"
)

// Reasons a conversation goes to a person.
const (
	Requested       = "requested"
	Keywords        = "complaint_keywords"
	NegativeEmotion = "negative_emotion"
	Unresolved      = "unresolved"
	LowConfidence   = "low_confidence"
)

// Priorities, lowest first.
const (
	Normal = "normal"
	High   = "high"
	Urgent = "urgent"
)

// Policy says when a conversation goes to a person and how urgently: bot.yaml's handoff
// section. The zero value of each field means its default.
type Policy struct {
	// MinConfidence: a turn whose intent confidence is below it, and that the KB could not
	// answer either, counts as not understood; after the clarification it hands off with
	// reason low_confidence. Default 0.35.
	MinConfidence float64 `yaml:"min_confidence"`
	// NegativeEmotions are summed; at NegativeThreshold or more the conversation goes to a
	// person (reason negative_emotion). Defaults [angry], 0.8.
	NegativeEmotions  []string `yaml:"negative_emotions"`
	NegativeThreshold float64  `yaml:"negative_threshold"`
	// MaxUnresolved consecutive unresolved turns hand off (reason unresolved); default 2.
	MaxUnresolved int `yaml:"max_unresolved"`
	// Keywords (per language) that hand off at once (reason complaint_keywords).
	Keywords map[string][]string `yaml:"keywords"`
	// Intents that hand off at once, with their reason (human_agent: requested).
	Intents map[string]string `yaml:"intents"`
	// UrgentIntents raise the priority (payment, account security) when understood.
	UrgentIntents []string `yaml:"urgent_intents"`
	// VIPTiers go faster: VIPMaxUnresolved replaces MaxUnresolved (default 1) and the
	// priority is raised.
	VIPTiers         []string `yaml:"vip_tiers"`
	VIPMaxUnresolved int      `yaml:"vip_max_unresolved"`
	// SLA is how long a handoff of each priority (normal, high, urgent) may wait for an
	// agent to accept it; one waiting longer sends one handoff.sla_breached delivery.
	// Empty: no targets.
	SLA map[string]time.Duration `yaml:"sla"`
	// Queues route handoffs to people with the right skills (see Route); DefaultQueue
	// takes the rest (default "general").
	Queues       []Queue `yaml:"queues"`
	DefaultQueue string  `yaml:"default_queue"`
	// Understood is the confidence an intent needs for Intents to hand off (bot.yaml's
	// thresholds.intent); default 0.5.
	Understood float64 `yaml:"-"`
}

// Queue is where some handoffs go: those of customers of Tiers or with one of Tags, or of
// conversations about one of Intents; the agents there have Skills.
type Queue struct {
	Name    string   `yaml:"name"`
	Intents []string `yaml:"intents"`
	Tiers   []string `yaml:"tiers"`
	Tags    []string `yaml:"tags"`
	Skills  []string `yaml:"skills"`
}

// Route picks c's queue: the first queue (in order) that matches the customer's tier or
// tags, or that names the conversation's topic, the latest understood intent (at or above
// MinConfidence) that any queue names; else DefaultQueue, without skills.
func (p Policy) Route(c *conversation.Conversation) (queue string, skills []string) {
	p = p.Defaults()
	topic := ""
	for _, t := range slices.Backward(c.Turns) {
		if float64(t.Confidence) >= p.MinConfidence && slices.ContainsFunc(p.Queues, func(q Queue) bool { return slices.Contains(q.Intents, t.Intent) }) {
			topic = t.Intent
			break
		}
	}
	for _, q := range p.Queues {
		if slices.Contains(q.Tiers, c.Customer.Tier) && c.Customer.Tier != "" ||
			slices.ContainsFunc(c.Customer.Tags, func(tag string) bool { return slices.Contains(q.Tags, tag) }) ||
			topic != "" && slices.Contains(q.Intents, topic) {
			return q.Name, slices.Clone(q.Skills)
		}
	}
	return p.DefaultQueue, nil
}

// Defaults returns p with every zero field set to its default.
func (p Policy) Defaults() Policy {
	if p.MinConfidence == 0 {
		p.MinConfidence = 0.35
	}
	if len(p.NegativeEmotions) == 0 {
		p.NegativeEmotions = []string{"angry"}
	}
	if p.NegativeThreshold == 0 {
		p.NegativeThreshold = 0.8
	}
	if p.MaxUnresolved == 0 {
		p.MaxUnresolved = 2
	}
	if p.VIPMaxUnresolved == 0 {
		p.VIPMaxUnresolved = 1
	}
	if p.Understood == 0 {
		p.Understood = 0.5
	}
	if p.DefaultQueue == "" {
		p.DefaultQueue = "general"
	}
	return p
}

// Reading is the model's reading of one message, as far as the policy needs it.
type Reading struct {
	Intent     string
	Confidence float32
	// Negative is the summed probability of the policy's negative emotions (see Negative).
	Negative float64
}

// Negative says whether emotion is one of the policy's negative emotions.
func (p Policy) Negative(emotion string) bool {
	return slices.Contains(p.Defaults().NegativeEmotions, emotion)
}

// Trigger returns why this message goes to a person at once ("" if it does not): an
// understood handoff intent (an explicit request), complaint keywords, or anger.
func (p Policy) Trigger(text string, r Reading) string {
	p = p.Defaults()
	if float64(r.Confidence) >= p.Understood {
		if reason, ok := p.Intents[r.Intent]; ok {
			return reason
		}
	}
	lower := strings.ToLower(text)
	for _, words := range p.Keywords {
		for _, w := range words {
			if w != "" && strings.Contains(lower, strings.ToLower(w)) {
				return Keywords
			}
		}
	}
	if r.Negative >= p.NegativeThreshold {
		return NegativeEmotion
	}
	return ""
}

// Resolved notes a turn the bot helped with: the unresolved count starts again.
func (p Policy) Resolved(c *conversation.Conversation) { c.Unresolved, c.Clarified = 0, false }

// Unresolved counts a turn the bot could not help with and returns why the conversation now
// goes to a person ("" while it does not): after MaxUnresolved such turns in a row
// (VIPMaxUnresolved for a VIP tier), reason low_confidence when this turn's intent was below
// MinConfidence, else unresolved.
func (p Policy) Unresolved(c *conversation.Conversation, confidence float32) string {
	p = p.Defaults()
	c.Unresolved++
	limit := p.MaxUnresolved
	if slices.Contains(p.VIPTiers, c.Customer.Tier) {
		limit = p.VIPMaxUnresolved
	}
	if c.Unresolved < limit {
		return ""
	}
	if float64(confidence) < p.MinConfidence {
		return LowConfidence
	}
	return Unresolved
}

// Priority: one point each for an urgent intent in the conversation (understood: at or
// above MinConfidence), a VIP customer, and an upset one (anger, complaint words or a
// complaint intent); 0 normal, 1 high, 2 or more urgent.
func (p Policy) Priority(c *conversation.Conversation, reason string) string {
	p = p.Defaults()
	points := 0
	if slices.ContainsFunc(c.Turns, func(t conversation.Turn) bool {
		return slices.Contains(p.UrgentIntents, t.Intent) && float64(t.Confidence) >= p.MinConfidence
	}) {
		points++
	}
	if slices.Contains(p.VIPTiers, c.Customer.Tier) {
		points++
	}
	if reason == NegativeEmotion || reason == Keywords || reason == "complaint" {
		points++
	}
	return [...]string{Normal, High, Urgent}[min(points, 2)]
}

// Start gives c to a person for reason and returns what the handoff API is to receive: c
// gets a handoff record with a key of its own (random, so that a conversation id used again
// never repeats a key), queued; the flow ends, its slots stay for the agent.
//
// It is routed to a queue (Route), and gets a deadline when its priority has an SLA target.
func (p Policy) Start(c *conversation.Conversation, reason string, now time.Time) Payload {
	p = p.Defaults()
	queue, skills := p.Route(c)
	h := &conversation.Handoff{ID: c.ID + ":handoff:" + conversation.RandomID(), Reason: reason,
		Priority: p.Priority(c, reason), Status: conversation.Queued, At: now.UTC(), Queue: queue, Skills: skills, First: c.Handoff == nil}
	if d, ok := p.SLA[h.Priority]; ok && d > 0 {
		h.Deadline = h.At.Add(d)
	}
	c.Handoff = h
	pl := NewPayload(c)
	c.End()
	return pl
}

// Release gives the conversation back to the bot; false when no person has it.
func (p Policy) Release(c *conversation.Conversation) bool {
	if !c.Active() {
		return false
	}
	c.Handoff.Status = conversation.Released
	p.Resolved(c)
	return true
}
