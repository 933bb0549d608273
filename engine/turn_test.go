package engine

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/inmem"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff"
	handoffmem "github.com/kefu-ai/kefu/handoff/inmem"
	"github.com/kefu-ai/kefu/models"
)

// readings is a classifier that reads each text as the test says: "text" → intent,
// confidence, emotion.
type readings map[string]struct {
	intent  string
	conf    float32
	emotion string
}

var intents = []string{"greeting", "human_agent", "order_status", "chitchat"}
var emotions = []string{"neutral", "angry"}

func (r readings) Classify(_ context.Context, texts []string) ([]models.Result, error) {
	x := r[texts[0]]
	is := make([]float32, len(intents))
	for i, l := range intents {
		if l == x.intent {
			is[i] = x.conf
		}
	}
	es := []float32{1, 0}
	if x.emotion == "angry" {
		es = []float32{0.05, 0.95}
	}
	return []models.Result{{Heads: []models.HeadResult{
		{Head: "intent", Label: x.intent, Confidence: x.conf, Scores: is},
		{Head: "emotion", Label: cmp.Or(x.emotion, "neutral"), Confidence: max(es[0], es[1]), Scores: es}}}}, nil
}

func (r readings) Manifest() *models.Manifest {
	return &models.Manifest{Name: "fake", Version: "1", Heads: []models.HeadSpec{{Name: "intent", Labels: intents}, {Name: "emotion", Labels: emotions}}}
}

var said = readings{
	"hello":                  {"greeting", 0.9, ""},
	"hi again":               {"greeting", 0.9, ""},
	"get me a human":         {"human_agent", 0.9, ""},
	"blorp":                  {"chitchat", 0.2, ""},
	"zzz":                    {"chitchat", 0.6, ""},
	"you people are useless": {"chitchat", 0.9, "angry"},
	"我要投诉":                   {"chitchat", 0.9, ""},
	"still there?":           {"chitchat", 0.9, ""},
}

const testBot = `
languages: [en, zh]
handoff:
  keywords: {zh: [投诉]}
  intents: {human_agent: requested}
  vip_tiers: [vip]
responses:
  clarify: {zh: 请再说一遍, en: "Say again?"}
  handoff: {zh: 转人工, en: Connecting you}
`

const greetFlow = `
flows:
  greet:
    intents: [greeting]
    states:
      hi: {say: {zh: 你好, en: Hello there}}
`

type fixture struct {
	eng    *Engine
	store  *inmem.Store
	outbox *handoffmem.Outbox
}

func newFixture(t *testing.T, store conversation.Store) *fixture {
	t.Helper()
	b, err := dialogs.Parse("bot.yaml", []byte(testBot), map[string][]byte{"greet.yaml": []byte(greetFlow)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: inmem.NewStore(0), outbox: handoffmem.NewOutbox(handoff.Options{})}
	if store == nil {
		store = f.store
	}
	f.eng = New(Config{NLU: said, Bot: dialogs.NewMachine(b, nil), Store: store, Outbox: f.outbox})
	return f
}

func (f *fixture) say(t *testing.T, conv, text string, tier ...string) *MessageResult {
	t.Helper()
	req := MessageRequest{Text: text, Customer: conversation.Customer{ID: "c1"}}
	if len(tier) > 0 {
		req.Customer.Tier = tier[0]
	}
	r, err := f.eng.Message(t.Context(), conv, req)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return r
}

func (f *fixture) queued(t *testing.T) int {
	n, _ := f.outbox.Depth(t.Context())
	return int(n)
}

// TestPolicyInATurn: each way into a handoff, as a turn decides it (no HTTP, Redis or ONNX
// Runtime): the source, reason, priority and reply the customer sees, and one delivery.
func TestPolicyInATurn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tier     string
		texts    []string
		sources  []string
		reason   string
		priority string
	}{
		{"dialog", "", []string{"hello"}, []string{"dialog"}, "", ""},
		{"asks for a person", "", []string{"get me a human"}, []string{"handoff"}, handoff.Requested, handoff.Normal},
		{"complaint word", "", []string{"我要投诉"}, []string{"handoff"}, handoff.Keywords, handoff.High},
		{"anger", "", []string{"you people are useless"}, []string{"handoff"}, handoff.NegativeEmotion, handoff.High},
		{"clarify then hand off", "", []string{"zzz", "zzz"}, []string{"clarify", "handoff"}, handoff.Unresolved, handoff.Normal},
		{"clarify then low confidence", "", []string{"zzz", "blorp"}, []string{"clarify", "handoff"}, handoff.LowConfidence, handoff.Normal},
		{"a resolved turn starts the count again", "", []string{"zzz", "hello", "zzz"}, []string{"clarify", "dialog", "clarify"}, "", ""},
		{"VIP at once, priority high", "vip", []string{"blorp"}, []string{"handoff"}, handoff.LowConfidence, handoff.High},
		{"angry VIP is urgent", "vip", []string{"you people are useless"}, []string{"handoff"}, handoff.NegativeEmotion, handoff.Urgent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			var r *MessageResult
			for i, text := range tc.texts {
				r = f.say(t, "c", text, tc.tier)
				if r.Source != tc.sources[i] {
					t.Fatalf("%q: source %s, want %s", text, r.Source, tc.sources[i])
				}
			}
			if tc.reason == "" {
				if r.Handoff != nil || f.queued(t) != 0 {
					t.Fatalf("no handoff expected: %+v, %d queued", r.Handoff, f.queued(t))
				}
				return
			}
			if r.Handoff == nil || r.Handoff.Reason != tc.reason || r.Handoff.Priority != tc.priority || r.Handoff.Status != "queued" ||
				len(r.Messages) != 1 || r.Messages[0].Text != "Connecting you" && r.Messages[0].Text != "转人工" {
				t.Fatalf("handoff %+v, messages %v; want reason %s priority %s", r.Handoff, r.Messages, tc.reason, tc.priority)
			}
			if f.queued(t) != 1 {
				t.Fatalf("%d deliveries queued, want 1", f.queued(t))
			}
		})
	}
}

// TestRelayAndRelease: while a person has the conversation the bot is silent and relays
// each message, keyed by the handoff; after agent.released it answers again.
func TestRelayAndRelease(t *testing.T) {
	f := newFixture(t, nil)
	h := f.say(t, "r", "get me a human").Handoff
	r := f.say(t, "r", "still there?")
	if r.Source != "handoff" || len(r.Messages) != 0 || r.Handoff == nil || r.Handoff.ID != h.ID || f.queued(t) != 2 {
		t.Fatalf("relay: %+v, %d queued", r, f.queued(t))
	}
	f.say(t, "r", "still there?") // the previous relay is queued again: kept once
	if f.queued(t) != 3 {
		t.Fatalf("%d queued after two relays and a handoff, want 3", f.queued(t))
	}
	ev, err := f.eng.Event(t.Context(), "r", Event{Type: "agent.released"})
	if err != nil || ev.Handoff.Status != "released" {
		t.Fatalf("release: %+v %v", ev, err)
	}
	if _, err := f.eng.Event(t.Context(), "r", Event{Type: "agent.released"}); ErrorCode(err) != Conflict {
		t.Fatalf("a second release: %v", err)
	}
	if r := f.say(t, "r", "hello"); r.Source != "dialog" || r.Handoff != nil || r.Messages[0].Text != "Hello there" {
		t.Fatalf("after release: %+v", r)
	}
	v, _ := f.eng.Conversation(t.Context(), "r")
	if v.TurnCount != 4 || v.Handoff.Status != "released" || len(v.Turns) != 4 || v.Turns[1].Source != "agent" {
		t.Fatalf("view %+v", v)
	}
}

// TestRepeatedMessageIDIsAnsweredOnce: a message sent again with its id gets the first
// reply and records nothing; the same id with another text is a conflict.
func TestRepeatedMessageIDIsAnsweredOnce(t *testing.T) {
	f := newFixture(t, nil)
	req := MessageRequest{Text: "get me a human", MessageID: "m-1"}
	first, err := f.eng.Message(t.Context(), "m", req)
	if err != nil || first.Replayed {
		t.Fatal(err)
	}
	again, err := f.eng.Message(t.Context(), "m", req)
	if err != nil || !again.Replayed || again.Turn != first.Turn || again.Handoff.ID != first.Handoff.ID || again.Messages[0] != first.Messages[0] {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	v, _ := f.eng.Conversation(t.Context(), "m")
	if v.TurnCount != 1 || f.queued(t) != 1 || v.Turns[0].MessageID != "m-1" {
		t.Fatalf("a repeat recorded something: %d turns, %d queued", v.TurnCount, f.queued(t))
	}
	if _, err := f.eng.Message(t.Context(), "m", MessageRequest{Text: "hello", MessageID: "m-1"}); ErrorCode(err) != Conflict {
		t.Fatalf("an id used for another text: %v", err)
	}
	if _, err := f.eng.Message(t.Context(), "m", MessageRequest{Text: "hello", MessageID: "bad id"}); ErrorCode(err) != Invalid {
		t.Fatalf("a bad message id: %v", err)
	}
}

// racing is a store where another node closes the conversation between our load and our
// first save.
type racing struct {
	*inmem.Store
	raced atomic.Bool
}

func (r *racing) Save(ctx context.Context, c *conversation.Conversation) error {
	if c.Version > 0 && !r.raced.Swap(true) {
		other, _ := r.Store.Load(ctx, c.ID)
		other.Closed = true
		if err := r.Store.Save(ctx, other); err != nil {
			return err
		}
	}
	return r.Store.Save(ctx, c)
}

// TestEffectsOfALostTurnNeverRun: the turn decides a handoff, its save loses to another
// node that closed the conversation, the rerun refuses the message: nothing is queued,
// nothing recorded.
func TestEffectsOfALostTurnNeverRun(t *testing.T) {
	st := &racing{Store: inmem.NewStore(0)}
	f := newFixture(t, st)
	f.say(t, "x", "hello")
	_, err := f.eng.Message(t.Context(), "x", MessageRequest{Text: "get me a human"})
	if ErrorCode(err) != Conflict || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the rerun must see the conversation closed: %v", err)
	}
	if n := f.queued(t); n != 0 {
		t.Fatalf("%d deliveries queued by a turn that was never saved", n)
	}
	c, _ := st.Load(t.Context(), "x")
	if c.TurnCount != 1 || c.Handoff != nil {
		t.Fatalf("stored %+v", c)
	}
}

// TestReusedIDHandsOffAgain: a conversation deleted and started again under the same id
// hands off again, under a new key; the erased conversation's delivery is gone from the
// outbox (erasure means it is not sent), the new one is queued.
func TestReusedIDHandsOffAgain(t *testing.T) {
	f := newFixture(t, nil)
	first := f.say(t, "again", "get me a human").Handoff
	if err := f.eng.DeleteConversation(t.Context(), "again"); err != nil {
		t.Fatal(err)
	}
	second := f.say(t, "again", "get me a human").Handoff
	if second == nil || second.ID == first.ID || f.queued(t) != 1 {
		t.Fatalf("handoffs %s then %+v, %d queued", first.ID, second, f.queued(t))
	}
	if err := f.eng.DeleteConversation(t.Context(), "never"); ErrorCode(err) != NotFound {
		t.Fatalf("delete of nothing: %v", err)
	}
	var e *Error
	if err := Translate(conversation.ErrUnavailable); !errors.As(err, &e) || e.Code != Unavailable {
		t.Fatalf("translate: %v", err)
	}
}
