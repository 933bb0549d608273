package dialogs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/inmem"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// demoBot loads the embedded demo bot from the source tree.
func demoBot(t *testing.T) *dialogs.Bot {
	t.Helper()
	b, err := dialogs.Load(os.DirFS(filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot")), ".")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDemoBotLoads(t *testing.T) {
	b := demoBot(t)
	for _, intent := range []string{"order_status", "refund", "change_address", "delivery_delay", "greeting"} {
		if _, ok := b.Trigger(intent); !ok {
			t.Errorf("intent %s starts no flow", intent)
		}
	}
	if b.Handoff.Intents["human_agent"] != "requested" {
		t.Errorf("human_agent does not hand off: %v", b.Handoff.Intents)
	}
	if len(b.Handoff.SLA) != 3 || len(b.Handoff.Queues) != 3 || b.Handoff.DefaultQueue != "general" {
		t.Errorf("demo SLA %v, queues %v", b.Handoff.SLA, b.Handoff.Queues)
	}
	// kefu validate checks the labels a queue names against the model, like every other.
	found := false
	for _, r := range b.LabelRefs() {
		if r.Label == "refund_status" && strings.HasPrefix(r.Where, "handoff.queues") {
			found = true
		}
	}
	if !found {
		t.Errorf("the queues' intents are not among the bot's label references")
	}
}

const okBot = `
languages: [zh, en]
responses:
  clarify: {zh: 请再说一遍, en: "Say again?"}
  handoff: {zh: 转人工, en: Connecting you}
actions:
  lookup: {url: "http://127.0.0.1:1/x", returns: [status, refund_id, amount]}
`

// TestBadDefinitionsNameFileAndLine: every mistake a bot author makes is refused at load
// with the file, the line and what is wrong.
func TestBadDefinitionsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, bot, dialog, want string
	}{
		{"unknown state", okBot, "flows:\n  f:\n    states:\n      a:\n        say: {zh: 好, en: ok}\n        next: nowhere\n", `d.yaml:4: flow f: state a next: unknown state "nowhere"`},
		{"unreachable", okBot, "flows:\n  f:\n    states:\n      a:\n        say: {zh: 好, en: ok}\n      b:\n        say: {zh: 好, en: ok}\n", "d.yaml:6: flow f: state b is unreachable from a"},
		{"missing language", okBot, "flows:\n  f:\n    states:\n      a:\n        say: {zh: 好}\n", "d.yaml:4: flow f: state a say: no en text"},
		{"unknown field", okBot, "flows:\n  f:\n    states:\n      a:\n        sya: {zh: 好, en: ok}\n", "d.yaml:5: field sya not found"},
		{"unknown slot entity", okBot, "flows:\n  f:\n    slots:\n      s: {entity: nope, prompt: {zh: 好, en: ok}}\n    states:\n      a: {slot: s}\n", `d.yaml:2: flow f: slot s: unknown entity "nope"`},
		{"unknown action", okBot, "flows:\n  f:\n    states:\n      a: {action: missing}\n", `d.yaml:4: flow f: state a: unknown action "missing"`},
		{"placeholder", okBot, "flows:\n  f:\n    states:\n      a: {say: {zh: \"{x}\", en: ok}}\n", "placeholder {x} is neither a slot"},
		{"silent loop", okBot, "flows:\n  f:\n    states:\n      a: {say: {zh: 好, en: ok}, next: b}\n      b: {say: {zh: 好, en: ok}, next: a}\n", "loops back to itself"},
		{"confirm without yes", okBot, "flows:\n  f:\n    states:\n      a: {confirm: true, say: {zh: 好, en: ok}, no: a}\n", "a confirmation needs say, yes and no"},
		{"bad regex", okBot + "entities:\n  sku: {regex: \"([a-z\"}\n", "flows: {}\n", "bot.yaml:9: entity sku: bad regex"},
		{"missing response", "languages: [zh, en]\nresponses:\n  clarify: {zh: 好}\n", "flows: {}\n", "bot.yaml:3: responses.clarify: no en text"},
		{"bad threshold", okBot + "thresholds: {intent: 2}\n", "flows: {}\n", "bot.yaml:8: thresholds.intent must be in [0, 1]"},
		{"bad yaml", okBot, "flows:\n  f: [\n", "d.yaml:"},
		{"same intent twice", okBot, "flows:\n  f:\n    intents: [x]\n    states: {a: {say: {zh: 好, en: ok}}}\n  g:\n    intents: [x]\n    states: {a: {say: {zh: 好, en: ok}}}\n", `already starts flow`},
		{"not utf-8", okBot, "flows: \xff\n", "d.yaml: not UTF-8"},
		{"sla of no priority", okBot + "handoff:\n  sla: {soon: 5m}\n", "flows: {}\n", `bot.yaml:9: handoff.sla: "soon" is not a priority`},
		{"sla of no time", okBot + "handoff:\n  sla: {urgent: 0s}\n", "flows: {}\n", "bot.yaml:9: handoff.sla.urgent must be a positive duration"},
		{"sla not a duration", okBot + "handoff:\n  sla: {urgent: soon}\n", "flows: {}\n", "bot.yaml:9"},
		{"queue twice", okBot + "handoff:\n  queues:\n    - {name: a, tags: [x]}\n    - {name: a, tags: [y]}\n", "flows: {}\n", `bot.yaml:9: handoff.queues[1]: each queue needs a name of its own, got "a"`},
		{"queue for nobody", okBot + "handoff:\n  queues:\n    - {name: a}\n", "flows: {}\n", "handoff.queues[0] (a) names no intents, tiers or tags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialogs.Parse("bot.yaml", []byte(tc.bot), map[string][]byte{"d.yaml": []byte(tc.dialog)})
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestExtractors(t *testing.T) {
	b := demoBot(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct{ entity, text, want string }{
		{"order_number", "我的订单号是KF12345678，谢谢", "KF12345678"},
		{"order_number", "order kf-98765 please", "KF98765"},
		{"order_number", "订单 2026112200015", "2026112200015"},
		{"order_number", "call me at 13812345678", ""},
		{"phone", "电话 138 1234 5678", "+8613812345678"},
		{"phone", "+86-13912345678", "+8613912345678"},
		{"phone", "reach me on +44 20 7946 0958", "+442079460958"},
		{"email", "mail Li.Wei@Example.COM now", "li.wei@example.com"},
		{"amount", "退我三百五十元", "350 CNY"},
		{"amount", "charged ¥1,299.50 twice", "1299.5 CNY"},
		{"amount", "it cost $20", "20 USD"},
		{"amount", "付了 88 块", "88 CNY"},
		{"amount", "two thousand", ""},
		{"date", "2026-12-01 到货", "2026-12-01"},
		{"date", "我11月3日下的单", "2026-11-03"},
		{"date", "ordered on Nov 3rd", "2026-11-03"},
		{"date", "delivered 5 December 2025", "2025-12-05"},
		{"date", "明天能到吗", "2026-11-23"},
		{"date", "I ordered it yesterday", "2026-11-21"},
		{"date", "2月30日", ""},
		{"text", "  上海市浦东新区  ", "上海市浦东新区"},
	}
	for _, tc := range cases {
		got, ok := b.Extract(tc.entity, tc.text, now)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s(%q) = %q, %v; want %q", tc.entity, tc.text, got, ok, tc.want)
		}
	}
	custom, err := dialogs.Parse("bot.yaml", []byte(okBot+"entities:\n  color: {lookup: {red: [红色, 大红], blue: [蓝色]}}\n  sku: {regex: \"SKU-(\\\\d+)\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := custom.Extract("color", "要大红的那款", now); v != "red" {
		t.Errorf("lookup: got %q", v)
	}
	if v, _ := custom.Extract("sku", "item SKU-4411", now); v != "4411" {
		t.Errorf("regex: got %q", v)
	}
}

// backend is a fake order service for actions.
func backend(t testing.TB, fail *atomic.Bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var body struct{ Slots map[string]string }
		json.NewDecoder(r.Body).Decode(&body)
		json.NewEncoder(w).Encode(map[string]any{"refund_id": "R-" + body.Slots["order_id"], "amount": 12.5})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const refundFlow = `
flows:
  refund:
    intents: [refund]
    slots:
      order_id: {entity: order_number, prompt: {zh: 订单号？, en: "Order number?"}, max_attempts: 2}
      reason: {entity: text, prompt: {zh: 原因？, en: "Why?"}}
    on:
      - {intent: deny, goto: cancelled}
    states:
      ask_order: {slot: order_id, next: ask_reason}
      ask_reason: {slot: reason, next: confirm}
      confirm:
        confirm: true
        say: {zh: "退 {order_id}？", en: "Refund {order_id} ({reason})?"}
        yes: submit
        no: cancelled
      submit:
        action: lookup
        on_error: failed
        say: {zh: "已提交 {refund_id}", en: "Submitted {refund_id} for {amount}"}
      cancelled: {say: {zh: 已取消, en: Cancelled}}
      failed: {say: {zh: 失败, en: Failed}, fail: true}
`

func refundMachine(t testing.TB, fail *atomic.Bool) *dialogs.Machine {
	t.Helper()
	bot := strings.Replace(okBot, "http://127.0.0.1:1/x", backend(t, fail), 1)
	b, err := dialogs.Parse("bot.yaml", []byte(bot), map[string][]byte{"refund.yaml": []byte(refundFlow)})
	if err != nil {
		t.Fatal(err)
	}
	return dialogs.NewMachine(b, nil)
}

func step(t *testing.T, m *dialogs.Machine, c *conversation.Conversation, text, intent string) dialogs.Outcome {
	t.Helper()
	out := m.Step(context.Background(), &c.Dialog, dialogs.Input{Text: text, Lang: "en", Intent: intent, Confidence: 0.9, Now: time.Now(),
		Conversation: c.ID, Turn: c.TurnCount + 1})
	c.AddTurn(conversation.Turn{Text: text})
	return out
}

func TestRefundFlowFillsSlotsConfirmsAndCallsTheAction(t *testing.T) {
	var fail atomic.Bool
	m := refundMachine(t, &fail)
	c := &conversation.Conversation{ID: "c1"}
	if out := step(t, m, c, "I want a refund", "refund"); !out.Handled || out.Replies[0] != "Order number?" || c.State != "ask_order" {
		t.Fatalf("start: %+v state %s", out, c.State)
	}
	if out := step(t, m, c, "it is KF123456", "order_status"); out.Replies[0] != "Why?" || c.Slots["order_id"] != "KF123456" {
		t.Fatalf("order: %+v slots %v", out, c.Slots)
	}
	if out := step(t, m, c, "broken screen", "damaged_item"); out.Replies[0] != "Refund KF123456 (broken screen)?" || c.State != "confirm" {
		t.Fatalf("reason: %+v", out)
	}
	if out := step(t, m, c, "maybe later", "chitchat"); out.Replies[0] != "Refund KF123456 (broken screen)?" || c.State != "confirm" {
		t.Fatalf("neither yes nor no must ask again: %+v", out)
	}
	out := step(t, m, c, "yes please", "affirm")
	if out.Failed || out.Replies[0] != "Submitted R-KF123456 for 12.5" || c.Flow != "" {
		t.Fatalf("confirm: %+v flow %q", out, c.Flow)
	}
}

func TestFlowStartsWithSlotsFromTheFirstMessageAndDenyCancels(t *testing.T) {
	var fail atomic.Bool
	m := refundMachine(t, &fail)
	c := &conversation.Conversation{ID: "c2"}
	if out := step(t, m, c, "refund order KF777777 please", "refund"); out.Replies[0] != "Why?" {
		t.Fatalf("the order number in the first message must fill the slot: %+v", out)
	}
	if out := step(t, m, c, "no, forget it", "deny"); out.Replies[0] != "Cancelled" || c.Flow != "" {
		t.Fatalf("deny: %+v", out)
	}
}

func TestSlotGivesUpAfterMaxAttemptsAndActionFailureIsUnresolved(t *testing.T) {
	var fail atomic.Bool
	m := refundMachine(t, &fail)
	c := &conversation.Conversation{ID: "c3"}
	step(t, m, c, "refund", "refund")
	if out := step(t, m, c, "I don't know it", "chitchat"); !out.Handled || out.Failed {
		t.Fatalf("first miss re-prompts: %+v", out)
	}
	if out := step(t, m, c, "no idea", "chitchat"); out.Handled || !out.Failed || c.Flow != "" {
		t.Fatalf("second miss (max_attempts 2) gives up: %+v flow %q", out, c.Flow)
	}
	fail.Store(true)
	c = &conversation.Conversation{ID: "c4"}
	step(t, m, c, "refund KF123456", "refund")
	step(t, m, c, "too slow", "complaint")
	out := step(t, m, c, "yes", "")
	var ae *dialogs.ActionError
	if !out.Failed || out.Replies[0] != "Failed" || len(out.ActionErrors) != 1 || !errors.As(out.ActionErrors[0], &ae) {
		t.Fatalf("failed action: %+v", out)
	}
}

func TestUnconfidentIntentStartsNothing(t *testing.T) {
	var fail atomic.Bool
	m := refundMachine(t, &fail)
	c := &conversation.Conversation{ID: "c5"}
	out := m.Step(context.Background(), &c.Dialog, dialogs.Input{Text: "refund?", Lang: "zh", Intent: "refund", Confidence: 0.2, Now: time.Now()})
	if out.Handled || c.Flow != "" {
		t.Fatalf("an intent below the threshold must not start a flow: %+v", out)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(refundFlow))
	f.Add([]byte("flows:\n  f:\n    states:\n      a: {say: {zh: 好, en: ok}, next: a}\n"))
	f.Add([]byte("flows: {f: {states: {}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := dialogs.Parse("bot.yaml", []byte(okBot), map[string][]byte{"d.yaml": data})
		if err != nil {
			var de *dialogs.Error
			if !errors.As(err, &de) {
				t.Fatalf("error without file: %v", err)
			}
			return
		}
		// A bot that loads must run without panicking.
		m := dialogs.NewMachine(b, &http.Client{Timeout: time.Millisecond})
		for _, f := range b.Flows {
			c := &conversation.Conversation{ID: "f"}
			for _, intent := range append(f.Intents, "affirm", "deny", "") {
				m.Step(context.Background(), &c.Dialog, dialogs.Input{Text: "KF123456 yes", Lang: "zh", Intent: intent, Confidence: 1})
			}
		}
	})
}

// TestActionRunsOnceThroughTheRecorder: a turn decided twice (a rerun after a conflict,
// here or on another node) gets the first call's result, and the backend sees one call,
// whose Idempotency-Key is the stable call key; a failed call is kept as failed too.
func TestActionRunsOnceThroughTheRecorder(t *testing.T) {
	var calls atomic.Int32
	var keys []string
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"refund_id": "R-1", "amount": 3})
	}))
	t.Cleanup(srv.Close)
	b, err := dialogs.Parse("bot.yaml", []byte(strings.Replace(okBot, "http://127.0.0.1:1/x", srv.URL, 1)), map[string][]byte{"refund.yaml": []byte(refundFlow)})
	if err != nil {
		t.Fatal(err)
	}
	m := dialogs.NewMachine(b, nil)
	rec := inmem.NewCalls(0)
	c := &conversation.Conversation{ID: "c9", Instance: "i1"}
	for _, s := range [][2]string{{"refund KF123456", "refund"}, {"broken", "complaint"}} {
		step(t, m, c, s[0], s[1])
	}
	in := dialogs.Input{Text: "yes", Lang: "en", Intent: "affirm", Confidence: 0.9, Now: time.Now(), Conversation: c.ID, Instance: c.Instance, Turn: c.TurnCount + 1, Calls: rec}
	for range 3 { // the same turn decided three times on copies of the loaded state
		d := c.Clone().Dialog
		if out := m.Step(t.Context(), &d, in); out.Replies[0] != "Submitted R-1 for 3" {
			t.Fatalf("confirm: %+v", out)
		}
	}
	if calls.Load() != 1 || keys[0] != "c9:i1:3:submit:lookup" || keys[0] != dialogs.CallKey(in, "submit", "lookup") {
		t.Fatalf("backend called %d times with keys %q", calls.Load(), keys)
	}
	fail.Store(true)
	in.Turn++ // another message: a new key, a new call, which fails
	for range 2 {
		d := c.Clone().Dialog
		if out := m.Step(t.Context(), &d, in); !out.Failed || out.Replies[0] != "Failed" || len(out.ActionErrors) != 1 {
			t.Fatalf("failed action: %+v", out)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("a failed call decided twice reached the backend %d times in all, want 2", calls.Load())
	}
}

// TestCancelWordsLeaveTheFlowInAnyState: "never mind, forget it" read as anything (here:
// nothing confident) leaves the flow in a slot prompt, even a free-text slot that would
// take any message, and in a confirmation; the flow's own way out is used when it has
// one, else the bot's cancelled reply.
func TestCancelWordsLeaveTheFlowInAnyState(t *testing.T) {
	var fail atomic.Bool
	m := refundMachine(t, &fail)
	for _, tc := range []struct {
		name   string
		before []string
		text   string
	}{
		{"order slot", []string{"I want a refund"}, "never mind, forget it"},
		{"free-text slot", []string{"I want a refund", "KF123456"}, "算了"},
		{"confirmation", []string{"I want a refund", "KF123456", "broken"}, "forget it"},
	} {
		c := &conversation.Conversation{ID: "cancel-" + tc.name}
		for i, text := range tc.before {
			intent := ""
			if i == 0 {
				intent = "refund"
			}
			step(t, m, c, text, intent)
		}
		out := m.Step(context.Background(), &c.Dialog, dialogs.Input{Text: tc.text, Lang: "en", Intent: "deny", Confidence: 0.17, Now: time.Now(), Conversation: c.ID, Turn: 9})
		if !out.Handled || len(out.Replies) != 1 || out.Replies[0] != "Cancelled" || c.Flow != "" || c.Slots["reason"] == tc.text {
			t.Errorf("%s: %q gave %+v, flow %q, slots %v; want the flow's cancelled state", tc.name, tc.text, out, c.Flow, c.Slots)
		}
	}
	// A flow without a way out of its own: the bot's responses.cancelled, or the default.
	b, err := dialogs.Parse("bot.yaml", []byte(okBot), map[string][]byte{"f.yaml": []byte("flows:\n  ask:\n    intents: [greeting]\n    slots:\n      name: {entity: text, prompt: {zh: 贵姓, en: \"Your name\"}}\n    states:\n      a: {slot: name, next: b}\n      b: {say: {zh: 好, en: ok}}\n")})
	if err != nil {
		t.Fatal(err)
	}
	m2 := dialogs.NewMachine(b, nil)
	c := &conversation.Conversation{ID: "cancel-plain"}
	step(t, m2, c, "hello", "greeting")
	out := m2.Step(context.Background(), &c.Dialog, dialogs.Input{Text: "不用了", Lang: "zh", Now: time.Now(), Conversation: c.ID, Turn: 2})
	if !out.Handled || c.Flow != "" || !strings.Contains(out.Replies[0], "取消") {
		t.Errorf("no way out of its own: %+v, flow %q", out, c.Flow)
	}
}
