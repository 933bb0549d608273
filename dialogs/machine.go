package dialogs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/conversation"
)

// Machine moves conversations through a bot's flows.
type Machine struct {
	bot    *Bot
	client *http.Client
}

// NewMachine returns a machine for bot; actions are called with client (nil: a default
// client; each action's own timeout applies).
func NewMachine(bot *Bot, client *http.Client) *Machine {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	// A redirect would send the customer's slots somewhere the bot does not name: an
	// action's 3xx answer is a failure, not followed.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Machine{bot: bot, client: c}
}

// Bot returns the machine's bot.
func (m *Machine) Bot() *Bot { return m.bot }

// Input is one understood customer message and the conversation it belongs to.
type Input struct {
	Text       string
	Lang       string
	Intent     string
	Confidence float32
	Now        time.Time

	// Conversation and Instance identify the conversation (conversation.Conversation's ID
	// and Instance); Turn is this message's number in it (1 for the first); Customer is
	// sent to actions.
	Conversation string
	Instance     string
	Turn         int
	Customer     conversation.Customer
	// Calls records action calls (nil: every call goes to the backend).
	Calls Recorder
}

// Recorder makes each action call once per key (conversation/inmem.Calls,
// conversation/redisstore.Calls): Once returns the result kept under key, or runs call and
// keeps what it returns, holding the key for lease while it runs. Its error is the
// recorder's own (unavailable, ctx ended), never the action's.
type Recorder interface {
	Once(ctx context.Context, key string, lease time.Duration, call func(context.Context) []byte) ([]byte, error)
	// Erase forgets every call of conversation conv (keys start with "CONV:").
	Erase(ctx context.Context, conv string) error
}

// Outcome is what a flow made of a message.
type Outcome struct {
	Replies []string
	// Handled: a flow took the message (started, advanced or re-prompted).
	Handled bool
	// Failed: the flow could not help (gave up on a slot, an action failed, or a fail
	// state was reached): the turn counts as unresolved.
	Failed bool
	// ActionErrors lists failed action calls (for logs; never shown to customers).
	ActionErrors []error
	// Err is set when the recorder could not say whether an action ran (its store is
	// unavailable): the turn must not be kept.
	Err error
}

// Step applies one message to a conversation's dialog, changing its flow, state and slots.
// A message that no flow takes leaves c unchanged and is not Handled.
func (m *Machine) Step(ctx context.Context, c *conversation.Dialog, in Input) Outcome {
	var out Outcome
	if c.Slots == nil {
		c.Slots = map[string]string{}
	}
	confident := float64(in.Confidence) >= m.bot.Thresholds.Intent
	intent := ""
	if confident {
		intent = in.Intent
	}
	if f := m.bot.Flows[c.Flow]; f != nil && f.States[c.State] != nil {
		s := f.States[c.State]
		if Cancels(in.Text) && intent != "affirm" {
			// "never mind", "算了": the customer leaves the flow, whatever the model read
			// and whatever the state waits for (a free-text slot would take it as the
			// answer). The flow's own way out when it has one: its deny transition, or a
			// confirmation's no.
			to := m.transition(c, f, s, "deny")
			if to == "" && s.Confirm {
				to = s.No
			}
			if to != "" {
				c.Attempts = 0
				m.run(ctx, c, f, to, in, &out)
				return out
			}
			c.End()
			return Outcome{Handled: true, Replies: []string{m.bot.Responses["cancelled"].Or(defaultCancelled).Pick(in.Lang, in.Turn-1)}}
		}
		if to := m.transition(c, f, s, intent); to != "" {
			c.Attempts = 0
			m.run(ctx, c, f, to, in, &out)
			return out
		}
		switch {
		case s.Slot != "":
			slot := f.Slots[s.Slot]
			// A free-text slot takes any message, unless it confidently starts another flow.
			if v, ok := m.bot.Extract(slot.Entity, in.Text, in.Now); ok && (slot.Entity != "text" || !m.another(f, intent)) {
				c.Slots[s.Slot] = v
				c.Attempts = 0
				m.run(ctx, c, f, s.Next, in, &out)
				return out
			}
			if !m.another(f, intent) {
				return m.reprompt(c, slot.Reprompt, slot.MaxAttempts, in)
			}
		case s.Confirm:
			if to := map[int]string{1: s.Yes, -1: s.No}[yesNo(intent, in.Text)]; to != "" {
				c.Attempts = 0
				m.run(ctx, c, f, to, in, &out)
				return out
			}
			if !m.another(f, intent) {
				return m.reprompt(c, s.Say, 3, in)
			}
		}
	}
	if f, ok := m.bot.Trigger(intent); ok {
		m.start(ctx, c, f, in, &out)
	}
	return out
}

// another says whether intent starts a flow other than f.
func (m *Machine) another(f *Flow, intent string) bool {
	g, ok := m.bot.Trigger(intent)
	return ok && g.Name != f.Name
}

func (m *Machine) reprompt(c *conversation.Dialog, t Text, max int, in Input) Outcome {
	c.Attempts++
	if c.Attempts >= max {
		c.End()
		return Outcome{Failed: true}
	}
	return Outcome{Handled: true, Replies: []string{fill(t.Pick(in.Lang, in.Turn-1), c.Slots)}}
}

// transition returns the target of the first matching transition of the state, then of
// the flow.
func (m *Machine) transition(c *conversation.Dialog, f *Flow, s *State, intent string) string {
	for _, list := range [][]Transition{s.On, f.On} {
		for _, t := range list {
			if t.Intent != "" && t.Intent != intent {
				continue
			}
			if t.Slot != "" {
				v, ok := c.Slots[t.Slot]
				if !ok || (t.Equals != "" && v != t.Equals) {
					continue
				}
			}
			return t.Goto
		}
	}
	return ""
}

func (m *Machine) start(ctx context.Context, c *conversation.Dialog, f *Flow, in Input, out *Outcome) {
	c.Flow, c.Attempts, c.Slots = f.Name, 0, map[string]string{}
	for name, s := range f.Slots {
		if s.Entity == "text" {
			continue // a free-text slot would swallow the message that started the flow
		}
		if v, ok := m.bot.Extract(s.Entity, in.Text, in.Now); ok {
			c.Slots[name] = v
		}
	}
	m.run(ctx, c, f, f.Start, in, out)
}

// run enters state name and goes on until a state waits for the customer or the flow ends.
func (m *Machine) run(ctx context.Context, c *conversation.Dialog, f *Flow, name string, in Input, out *Outcome) {
	out.Handled = true
	for steps := 0; name != "" && steps < 4*len(f.States)+4; steps++ {
		s := f.States[name]
		c.Flow, c.State = f.Name, name
		if c.Slots == nil {
			c.Slots = map[string]string{}
		}
		for _, k := range s.Clear {
			delete(c.Slots, k)
		}
		if s.Fail {
			out.Failed = true
		}
		if s.Action != "" {
			res, err := m.recorded(ctx, c, s.Action, in)
			var re *recorderError
			if errors.As(err, &re) {
				out.Err = re.err
				return
			}
			if err != nil {
				out.ActionErrors = append(out.ActionErrors, err)
				if s.OnError == "" {
					out.Failed = true
					c.End()
					return
				}
				name = s.OnError
				continue
			}
			for k, v := range res {
				c.Slots[k] = v
			}
		}
		if s.Say != nil {
			out.Replies = append(out.Replies, fill(s.Say.Pick(in.Lang, in.Turn-1), c.Slots))
		}
		if s.Slot != "" {
			if _, ok := c.Slots[s.Slot]; !ok {
				out.Replies = append(out.Replies, fill(f.Slots[s.Slot].Prompt.Pick(in.Lang, in.Turn-1), c.Slots))
				return
			}
		}
		if s.Confirm {
			return
		}
		name = s.Next
	}
	c.End()
}

// fill replaces {slot} placeholders; an unknown one is left as it is.
func fill(text string, slots map[string]string) string {
	return placeholder.ReplaceAllStringFunc(text, func(p string) string {
		if v, ok := slots[p[1:len(p)-1]]; ok {
			return v
		}
		return p
	})
}

// defaultCancelled is what the bot says when a customer leaves a flow that has no way out
// of its own and the bot has no responses.cancelled.
var defaultCancelled = Text{"zh": {"好的，已为您取消。还有什么可以帮您？"}, "en": {"OK, I've cancelled that. Anything else I can help with?"}}

// cancelWords leave a flow in any state (Cancels).
var cancelWords = []string{
	"算了", "不要了", "不要", "取消", "不用了", "不用", "不需要了", "不需要", "不办了", "不买了", "不退了", "不改了", "别弄了", "先不了",
	"cancel", "cancel it", "cancel that", "stop", "never mind", "nevermind", "forget it", "forget about it", "no thanks", "no thank you",
	"i changed my mind", "changed my mind", "quit", "exit",
}

// Cancels says whether text asks to leave the flow: it is, or starts with, one of the
// cancel words (cancel, stop, never mind, forget it, 算了, 不要了, 取消, 不用了, …), in
// either language, whatever the punctuation.
func Cancels(text string) bool {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.TrimRight(t, "。.!！~～?？ ")
	bare := t
	for _, p := range []string{"了", "吧", "啊", "呀", "哈", "嘛", "呢"} {
		bare = strings.TrimSuffix(bare, p)
	}
	return startsWithWord(t, cancelWords...) || startsWithWord(bare, cancelWords...)
}

// yesNo reads a confirmation: the affirm/deny intents, or common words. 1 yes, -1 no,
// 0 neither.
func yesNo(intent, text string) int {
	switch intent {
	case "affirm":
		return 1
	case "deny":
		return -1
	}
	t := strings.ToLower(strings.Trim(strings.TrimSpace(text), "。.!！~～"))
	// Chinese replies often end in a particle: 不用了, 好的呀, 可以吧.
	bare := t
	for _, p := range []string{"了", "吧", "啊", "呀", "哈", "嘛", "呢"} {
		bare = strings.TrimSuffix(bare, p)
	}
	for _, t := range []string{t, bare} {
		switch {
		case startsWithWord(t, "不", "不是", "不用", "不要", "不对", "不必", "取消", "算了", "no", "nope", "nah", "cancel", "don't", "do not"):
			return -1
		case startsWithWord(t, "是", "是的", "对", "对的", "好", "好的", "确认", "可以", "嗯", "行", "yes", "yeah", "yep", "sure", "ok", "okay", "correct", "confirm", "right"):
			return 1
		}
	}
	return 0
}

// startsWithWord: t is one of words, or starts with one followed by a space or a comma.
func startsWithWord(t string, words ...string) bool {
	for _, w := range words {
		if t == w || strings.HasPrefix(t, w+" ") || strings.HasPrefix(t, w+"，") || strings.HasPrefix(t, w+",") {
			return true
		}
	}
	return false
}

// ActionError is a failed action call.
type ActionError struct {
	Action string
	Err    error
}

func (e *ActionError) Error() string { return fmt.Sprintf("action %s: %v", e.Action, e.Err) }
func (e *ActionError) Unwrap() error { return e.Err }

// recorderError: the recorder failed, so nobody knows whether the action ran.
type recorderError struct{ err error }

func (e *recorderError) Error() string { return e.err.Error() }

// callResult is an action call's outcome as the recorder keeps it.
type callResult struct {
	Fields map[string]string `json:"fields,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// CallKey is the stable key of an action call: the conversation (id and instance), the
// customer message's number, the state and the action. It is the recorder's key and the
// call's Idempotency-Key header, the same on every node and every rerun of the turn.
func CallKey(in Input, state, action string) string {
	return fmt.Sprintf("%s:%s:%d:%s:%s", in.Conversation, in.Instance, in.Turn, state, action)
}

// recorded makes the call through the recorder: a turn run again (after a conflict, on
// any node) gets the first call's result, failure included, without calling again.
func (m *Machine) recorded(ctx context.Context, c *conversation.Dialog, name string, in Input) (map[string]string, error) {
	key := CallKey(in, c.State, name)
	if in.Calls == nil {
		return m.call(ctx, c, name, key, in)
	}
	data, err := in.Calls.Once(ctx, key, m.bot.Actions[name].Timeout+time.Second, func(ctx context.Context) []byte {
		fields, err := m.call(ctx, c, name, key, in)
		r := callResult{Fields: fields}
		if err != nil {
			r.Error = err.Error()
		}
		b, _ := json.Marshal(r)
		return b
	})
	if err != nil {
		return nil, &recorderError{fmt.Errorf("action %s: %w", name, err)}
	}
	var r callResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &recorderError{fmt.Errorf("action %s: kept result is not valid: %w", name, err)}
	}
	if r.Error != "" {
		return nil, &ActionError{name, errors.New(r.Error)}
	}
	if r.Fields == nil {
		r.Fields = map[string]string{}
	}
	return r.Fields, nil
}

// call sends the slots to the action's endpoint and returns the answer's fields.
func (m *Machine) call(ctx context.Context, c *conversation.Dialog, name, key string, in Input) (map[string]string, error) {
	a := m.bot.Actions[name]
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	u, err := fillURL(a.URL, c.Slots)
	if err != nil {
		return nil, &ActionError{name, err}
	}
	var req *http.Request
	if a.Method == "GET" {
		req, err = http.NewRequestWithContext(ctx, "GET", u, nil)
	} else {
		body, _ := json.Marshal(map[string]any{"conversation": in.Conversation, "action": name, "lang": in.Lang, "slots": c.Slots, "customer": in.Customer})
		req, err = http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return nil, &ActionError{name, errors.New("the URL does not parse")}
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := m.client.Do(req)
	if err != nil {
		// The error names the URL: give the template, not the customer's slot values,
		// since it is logged and kept in the call record.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			ue.URL = a.URL
		}
		return nil, &ActionError{name, err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &ActionError{name, err}
	}
	if resp.StatusCode/100 != 2 {
		return nil, &ActionError{name, fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, &ActionError{name, fmt.Errorf("answer is not a JSON object: %w", err)}
	}
	out := map[string]string{}
	for k, v := range fields {
		if !slices.Contains(a.Returns, k) { // only declared fields become slots
			continue
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		}
	}
	return out, nil
}

// fillURL fills an action's URL template with slot values escaped for where each
// placeholder stands: a path segment (url.PathEscape; "." and ".." refused, since they would
// move up the path) or the query (url.QueryEscape, so & = + cannot add parameters).
func fillURL(template string, slots map[string]string) (string, error) {
	path, query, hasQuery := strings.Cut(template, "?")
	var err error
	esc := func(part string, escape func(string) string, inPath bool) string {
		return placeholder.ReplaceAllStringFunc(part, func(p string) string {
			name := p[1 : len(p)-1]
			v, ok := slots[name]
			if !ok {
				return p
			}
			if inPath && (v == "." || v == "..") {
				err = fmt.Errorf("slot %s is %q, which cannot be a path segment", name, v)
			}
			return escape(v)
		})
	}
	u := esc(path, url.PathEscape, true)
	if hasQuery {
		u += "?" + esc(query, url.QueryEscape, false)
	}
	return u, err
}
