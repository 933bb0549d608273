package dialogs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/dialogs"
)

// Tests named after the security review's findings about actions (issue 17).

// lookupBot has one flow whose first state calls a GET action at url with the slots given.
func lookupBot(t *testing.T, url string) *dialogs.Machine {
	t.Helper()
	bot := fmt.Sprintf(`
languages: [zh, en]
responses:
  clarify: {zh: 请再说一遍, en: "Say again?"}
  handoff: {zh: 转人工, en: Connecting you}
actions:
  find: {url: %q, method: GET, returns: [status]}
`, url)
	flow := `
flows:
  look:
    intents: [order_status]
    slots:
      order_id: {entity: text, prompt: {zh: 订单号？, en: "Order?"}}
      name: {entity: text, prompt: {zh: 姓名？, en: "Name?"}}
    states:
      ask_order: {slot: order_id, next: ask_name}
      ask_name: {slot: name, next: call}
      call:
        action: find
        on_error: failed
        say: {zh: "状态 {status}", en: "Status {status}"}
      failed: {say: {zh: 失败, en: Failed}, fail: true}
`
	b, err := dialogs.Parse("bot.yaml", []byte(bot), map[string][]byte{"look.yaml": []byte(flow)})
	if err != nil {
		t.Fatal(err)
	}
	return dialogs.NewMachine(b, &http.Client{Timeout: 2 * time.Second})
}

// lookup starts the flow, answers its two prompts with the slots' values and returns the
// outcome of the turn that called the action, and the dialog after it.
func lookup(m *dialogs.Machine, slots map[string]string) (dialogs.Outcome, conversation.Dialog) {
	var d conversation.Dialog
	var out dialogs.Outcome
	for turn, text := range []string{"where is my order", slots["order_id"], slots["name"]} {
		intent, conf := "order_status", float32(0.9)
		if turn > 0 {
			intent, conf = "chitchat", 0.1
		}
		out = m.Step(context.Background(), &d, dialogs.Input{Text: text, Lang: "en", Intent: intent, Confidence: conf,
			Now: time.Now(), Conversation: "c1", Instance: "i", Turn: turn + 1})
	}
	return out, d
}

func TestActionTemplatesEscapeSlotsByPosition(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL)
		fmt.Fprint(w, `{"status":"shipped"}`)
	}))
	defer srv.Close()
	m := lookupBot(t, srv.URL+"/orders/{order_id}?name={name}&lang=en")
	out, _ := lookup(m, map[string]string{"order_id": "A/B 1", "name": "Ann&admin=1&amount=99999+x"})
	u, _ := got.Load().(*url.URL)
	if out.Failed || u == nil {
		t.Fatalf("%+v", out)
	}
	q := u.Query()
	if len(q) != 2 || q["name"][0] != "Ann&admin=1&amount=99999+x" || q["lang"][0] != "en" {
		t.Errorf("query %v: a slot must stay one query value", q)
	}
	if p := u.EscapedPath(); p != "/orders/A%2FB%201" {
		t.Errorf("path %q", p)
	}
	for _, dots := range []string{".", ".."} {
		if out, _ := lookup(m, map[string]string{"order_id": dots, "name": "x"}); !out.Failed || !strings.Contains(fmt.Sprint(out.ActionErrors), "path segment") {
			t.Errorf("slot %q as a path segment: %+v", dots, out)
		}
	}
}

func TestActionRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	out, _ := lookup(lookupBot(t, srv.URL+"/orders/{order_id}"), map[string]string{"order_id": "KF1", "name": "x"})
	if !out.Failed || elsewhere.Load() != 0 || !strings.Contains(fmt.Sprint(out.ActionErrors), "307") {
		t.Errorf("redirect followed (%d) or not reported: %+v", elsewhere.Load(), out)
	}
}

func TestOnlyDeclaredReturnsBecomeSlots(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"shipped","name":"Mallory","vip":true}`)
	}))
	defer srv.Close()
	_, d := lookup(lookupBot(t, srv.URL+"/orders/{order_id}"), map[string]string{"order_id": "KF1", "name": "Ann"})
	if d.Slots["status"] != "shipped" || d.Slots["name"] != "Ann" || d.Slots["vip"] != "" {
		t.Errorf("slots %v: only returns: [status] may be set", d.Slots)
	}
}

func TestFailedActionErrorsCarryNoSlotValues(t *testing.T) {
	m := lookupBot(t, "http://127.0.0.1:1/orders/{order_id}?phone={name}")
	out, _ := lookup(m, map[string]string{"order_id": "上海市徐汇区漕溪北路88号", "name": "13800138000"})
	msg := fmt.Sprint(out.ActionErrors)
	if !out.Failed || strings.Contains(msg, "13800138000") || strings.Contains(msg, "%E4%B8%8A") || !strings.Contains(msg, "{order_id}") {
		t.Errorf("the error must show the template, not the slots: %s", msg)
	}
}
