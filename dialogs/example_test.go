package dialogs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/inmem"
	"github.com/kefu-ai/kefu/dialogs"
)

// A machine moves one conversation's dialog through a flow: it fills the order number from
// the message, asks for what is missing, confirms, and calls the refund backend once,
// through a recorder, with a stable Idempotency-Key.
func ExampleMachine() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("backend called with key", r.Header.Get("Idempotency-Key"))
		fmt.Fprint(w, `{"refund_id": "RF42"}`)
	}))
	defer backend.Close()
	bot, err := dialogs.Parse("bot.yaml", []byte(`
responses:
  clarify: {zh: 请再说一遍, en: "Say again?"}
  handoff: {zh: 转人工, en: Connecting you}
actions:
  create_refund: {url: "`+backend.URL+`", returns: [refund_id]}
`), map[string][]byte{"refund.yaml": []byte(`
flows:
  refund:
    intents: [refund]
    slots:
      order_id: {entity: order_number, prompt: {zh: 订单号？, en: "Your order number?"}}
      reason: {entity: text, prompt: {zh: 原因？, en: "Why?"}}
    states:
      ask_order: {slot: order_id, next: ask_reason}
      ask_reason: {slot: reason, next: confirm}
      confirm: {confirm: true, say: {zh: "退 {order_id}？", en: "Refund {order_id}?"}, yes: submit, no: done}
      submit: {action: create_refund, say: {zh: "已提交 {refund_id}", en: "Refund {refund_id} submitted."}}
      done: {say: {zh: 好的, en: OK}}
`)})
	if err != nil {
		panic(err)
	}
	m := dialogs.NewMachine(bot, nil)
	c := conversation.New("web:u1", time.Now())
	c.Instance = "i1" // random in real use
	calls := inmem.NewCalls(0)
	for _, msg := range []struct{ text, intent string }{
		{"I want a refund for KF12345678", "refund"},
		{"it arrived broken", "complaint"},
		{"yes", "affirm"},
	} {
		out := m.Step(context.Background(), &c.Dialog, dialogs.Input{Text: msg.text, Lang: "en", Intent: msg.intent, Confidence: 0.9,
			Now: time.Now(), Conversation: c.ID, Instance: c.Instance, Turn: c.TurnCount + 1, Calls: calls})
		c.AddTurn(conversation.Turn{Text: msg.text, Replies: out.Replies})
		fmt.Printf("%q → %q (state %q)\n", msg.text, out.Replies, c.State)
	}
	// Output:
	// "I want a refund for KF12345678" → ["Why?"] (state "ask_reason")
	// "it arrived broken" → ["Refund KF12345678?"] (state "confirm")
	// backend called with key web:u1:i1:3:submit:create_refund
	// "yes" → ["Refund RF42 submitted."] (state "")
}
