package handoff_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/handoff"
)

// policy is the demo bot's handoff section, spelled out.
var policy = handoff.Policy{
	Intents:          map[string]string{"human_agent": handoff.Requested, "complaint": "complaint"},
	Keywords:         map[string][]string{"zh": {"投诉", "差评"}, "en": {"lawyer", "scam"}},
	UrgentIntents:    []string{"payment_failed", "account_locked"},
	VIPTiers:         []string{"vip", "svip"},
	NegativeEmotions: []string{"angry", "sad"},
}.Defaults()

func TestTrigger(t *testing.T) {
	for _, tc := range []struct {
		name   string
		text   string
		r      handoff.Reading
		reason string
	}{
		{"asks for a person", "let me talk to a human", handoff.Reading{Intent: "human_agent", Confidence: 0.9}, handoff.Requested},
		{"another handoff intent keeps its reason", "this is unacceptable", handoff.Reading{Intent: "complaint", Confidence: 0.7}, "complaint"},
		{"a handoff intent not understood", "human?", handoff.Reading{Intent: "human_agent", Confidence: 0.4}, ""},
		{"Chinese complaint word", "我要投诉你们", handoff.Reading{Intent: "order_status", Confidence: 0.9}, handoff.Keywords},
		{"English complaint word, any case", "I will call my LAWYER", handoff.Reading{Intent: "refund", Confidence: 0.9}, handoff.Keywords},
		{"angry", "this is ridiculous", handoff.Reading{Intent: "chitchat", Confidence: 0.9, Negative: 0.85}, handoff.NegativeEmotion},
		{"upset but under the threshold", "meh", handoff.Reading{Intent: "chitchat", Confidence: 0.9, Negative: 0.79}, ""},
		{"nothing", "where is my order", handoff.Reading{Intent: "order_status", Confidence: 0.9}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.Trigger(tc.text, tc.r); got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
		})
	}
	if !policy.Negative("sad") || policy.Negative("happy") || !(handoff.Policy{}).Negative("angry") {
		t.Error("negative emotions: the configured list, default [angry]")
	}
}

// TestUnresolvedCountsAndVIPGoesFaster: the first unresolved turn clarifies (no reason),
// the second hands off; a VIP at the first; low confidence names itself; a resolved turn
// or a release starts the count again.
func TestUnresolvedCountsAndVIPGoesFaster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tier    string
		confs   []float32
		reasons []string
	}{
		{"clarify then hand off, understood", "", []float32{0.6, 0.6}, []string{"", handoff.Unresolved}},
		{"clarify then hand off, not understood", "", []float32{0.6, 0.2}, []string{"", handoff.LowConfidence}},
		{"VIP hands off at the first", "vip", []float32{0.2}, []string{handoff.LowConfidence}},
		{"another VIP tier", "svip", []float32{0.9}, []string{handoff.Unresolved}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conversation.Conversation{Customer: conversation.Customer{Tier: tc.tier}}
			for i, conf := range tc.confs {
				if got := policy.Unresolved(c, conf); got != tc.reasons[i] {
					t.Fatalf("unresolved turn %d: %q, want %q", i+1, got, tc.reasons[i])
				}
			}
		})
	}
	c := &conversation.Conversation{}
	policy.Unresolved(c, 0.9)
	c.Clarified = true
	policy.Resolved(c)
	if c.Unresolved != 0 || c.Clarified || policy.Unresolved(c, 0.9) != "" {
		t.Fatalf("a resolved turn must start the count again: %+v", c)
	}
	custom := handoff.Policy{MaxUnresolved: 3}
	c = &conversation.Conversation{}
	if custom.Unresolved(c, 0.9) != "" || custom.Unresolved(c, 0.9) != "" || custom.Unresolved(c, 0.9) != handoff.Unresolved {
		t.Fatalf("max_unresolved 3: %+v", c)
	}
}

// TestPriority: an urgent intent raises the priority only when it was understood.
func TestPriority(t *testing.T) {
	p := handoff.Policy{MinConfidence: 0.35, UrgentIntents: []string{"payment_failed"}, VIPTiers: []string{"vip"}}
	for _, c := range []struct {
		conf   float32
		tier   string
		reason string
		want   string
	}{
		{0.9, "", handoff.LowConfidence, "high"},
		{0.1, "", handoff.LowConfidence, "normal"},
		{0.1, "vip", handoff.LowConfidence, "high"},
		{0.9, "vip", handoff.LowConfidence, "urgent"},
		{0.1, "vip", handoff.NegativeEmotion, "urgent"},
		{0.1, "", handoff.Keywords, "high"},
		{0.1, "", "complaint", "high"},
		{0.9, "vip", handoff.Keywords, "urgent"},
		{0.1, "", handoff.Requested, "normal"},
	} {
		conv := &conversation.Conversation{Customer: conversation.Customer{Tier: c.tier}}
		conv.AddTurn(conversation.Turn{Intent: "payment_failed", Confidence: c.conf})
		if got := p.Priority(conv, c.reason); got != c.want {
			t.Errorf("confidence %.1f tier %q reason %s: %s, want %s", c.conf, c.tier, c.reason, got, c.want)
		}
	}
}

// TestStartReleaseAndRelay: a handoff gets a key of its own each time (a conversation id
// used again never repeats one), carries the context of the flow it ends, and a release
// gives the conversation back; relays are keyed by handoff and turn.
func TestStartReleaseAndRelay(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := conversation.New("shop:u42", now)
	c.Customer = conversation.Customer{ID: "u42", Tier: "vip", Tags: []string{"repeat-buyer"}}
	c.Flow, c.State, c.Slots = "refund", "confirm", map[string]string{"order_id": "KF1"}
	c.AddTurn(conversation.Turn{Text: "我要退款", Intent: "refund", Confidence: 0.9, Emotion: "neutral"})
	c.AddTurn(conversation.Turn{Text: "你们太慢了，我要投诉", Intent: "complaint", Confidence: 0.8, Emotion: "angry", EmotionScore: 0.9})
	p := policy.Start(c, handoff.Keywords, now)
	if !c.Active() || c.Handoff.Status != conversation.Queued || c.Handoff.Priority != handoff.Urgent || c.Flow != "" || c.Slots["order_id"] != "KF1" {
		t.Fatalf("after Start: %+v", c)
	}
	if p.ID != c.Handoff.ID || !strings.HasPrefix(p.ID, "shop:u42:handoff:") || p.Flow != "refund" || p.State != "confirm" ||
		p.Slots["order_id"] != "KF1" || len(p.Transcript) != 2 || p.Customer.Tags[0] != "repeat-buyer" || !p.At.Equal(now) {
		t.Fatalf("payload %+v", p)
	}
	if !strings.Contains(p.Summary, "我要退款") || !strings.Contains(p.Summary, "angry (0.90)") {
		t.Fatalf("summary %q", p.Summary)
	}
	d := p.Delivery()
	var back handoff.Payload
	if d.Key != p.ID || d.Kind != handoff.KindHandoff || json.Unmarshal(d.Body, &back) != nil || back.Conversation != "shop:u42" {
		t.Fatalf("delivery %+v", d)
	}
	c.AddTurn(conversation.Turn{Text: "hello?"})
	r := handoff.NewRelay(c).Delivery()
	if r.Key != p.ID+":message:3" || r.Kind != handoff.KindMessage || !strings.Contains(string(r.Body), "hello?") {
		t.Fatalf("relay %+v %s", r, r.Body)
	}
	if !policy.Release(c) || c.Active() || c.Handoff.Status != conversation.Released || policy.Release(c) {
		t.Fatalf("release: %+v", c.Handoff)
	}
	again := conversation.New("shop:u42", now) // the same id, started again
	again.AddTurn(conversation.Turn{Text: "人工"})
	if q := policy.Start(again, handoff.Requested, now); q.ID == p.ID {
		t.Fatalf("a conversation started again under the same id repeated handoff key %s", q.ID)
	}
}

// TestRouteByCustomerAndTopic: the first queue matching the customer's tier or tags, or the
// conversation's latest understood intent that a queue names; else the default.
func TestRouteByCustomerAndTopic(t *testing.T) {
	p := handoff.Policy{Queues: []handoff.Queue{
		{Name: "vip", Tiers: []string{"gold"}, Skills: []string{"vip"}},
		{Name: "b2b", Tags: []string{"company"}},
		{Name: "after_sales", Intents: []string{"refund"}, Skills: []string{"refunds"}},
		{Name: "payments", Intents: []string{"payment_failed"}},
	}}
	turn := func(intent string, conf float32) conversation.Turn {
		return conversation.Turn{Intent: intent, Confidence: conf}
	}
	for _, tc := range []struct {
		name     string
		customer conversation.Customer
		turns    []conversation.Turn
		queue    string
	}{
		{"nothing matches", conversation.Customer{}, []conversation.Turn{turn("greeting", 0.9)}, "general"},
		{"topic", conversation.Customer{}, []conversation.Turn{turn("refund", 0.9), turn("complaint", 0.9)}, "after_sales"},
		{"latest topic wins", conversation.Customer{}, []conversation.Turn{turn("refund", 0.9), turn("payment_failed", 0.8)}, "payments"},
		{"a topic not understood is no topic", conversation.Customer{}, []conversation.Turn{turn("refund", 0.9), turn("payment_failed", 0.1)}, "after_sales"},
		{"tier before topic", conversation.Customer{Tier: "gold"}, []conversation.Turn{turn("refund", 0.9)}, "vip"},
		{"tag", conversation.Customer{Tags: []string{"x", "company"}}, nil, "b2b"},
	} {
		c := &conversation.Conversation{Customer: tc.customer, Turns: tc.turns}
		if q, _ := p.Route(c); q != tc.queue {
			t.Errorf("%s: queue %q; want %q", tc.name, q, tc.queue)
		}
	}
	if _, skills := p.Route(&conversation.Conversation{Turns: []conversation.Turn{turn("refund", 0.9)}}); len(skills) != 1 || skills[0] != "refunds" {
		t.Errorf("skills %v", skills)
	}
}
