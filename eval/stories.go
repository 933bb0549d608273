package eval

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/engine"
)

// Story is a conversation test: customer turns, each with what the bot must do.
type Story struct {
	Name     string
	Lang     string
	Channel  string
	Customer conversation.Customer
	Metadata map[string]string
	Steps    []Step
	File     string
	Line     int
}

// Step is one customer message (or event) and its expectations; an empty field is not
// checked.
type Step struct {
	User  string // the customer's text
	Event string // instead of a message: agent.released, conversation.closed, csat, thumbs
	Score int    // csat score
	Thumb string // thumbs: up or down
	Lang  string
	Line  int

	Intent, Emotion, Flow, State, Source, Handoff, Article string
	Slots                                                  map[string]string
	Reply                                                  []string // each must appear in the bot's replies
	ReplyMatches                                           *regexp.Regexp
	Silent                                                 bool // the bot must not reply
}

var stepKeys = []string{"user", "event", "score", "thumb", "lang", "intent", "emotion", "flow", "state", "source", "handoff", "article", "slots", "reply", "reply_matches", "silent"}

// ParseStories reads test stories (YAML):
//
//	stories:
//	  - story: order status in Chinese
//	    lang: zh
//	    customer: {id: c-1, tier: vip}
//	    steps:
//	      - user: 我的订单到哪了
//	        intent: order_status
//	        state: ask_order
//	        reply: 订单号
//	      - user: KF20261122
//	        slots: {order_number: KF20261122}
//	        reply_matches: "已发货|配送"
//
// name is used in errors; every story and step keeps its line.
func ParseStories(name string, data []byte) ([]Story, error) {
	fail := func(line int, format string, args ...any) error {
		return &DataError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	root, err := yamlRoot(name, data)
	if err != nil {
		return nil, err
	}
	list := mapValue(root, "stories")
	if root.Kind != yaml.MappingNode || list == nil || list.Kind != yaml.SequenceNode || len(root.Content) != 2 {
		return nil, fail(root.Line, "want one key, stories, holding a list of stories")
	}
	var out []Story
	names := map[string]int{}
	for _, sn := range list.Content {
		if sn.Kind != yaml.MappingNode {
			return nil, fail(sn.Line, "a story must be a mapping with story and steps")
		}
		st := Story{File: name, Line: sn.Line}
		for i := 0; i < len(sn.Content); i += 2 {
			k, v := sn.Content[i], sn.Content[i+1]
			var err error
			switch k.Value {
			case "story":
				st.Name = v.Value
			case "lang":
				st.Lang = v.Value
			case "channel":
				st.Channel = v.Value
			case "customer":
				err = v.Decode(&st.Customer)
			case "metadata":
				err = v.Decode(&st.Metadata)
			case "steps":
				if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
					return nil, fail(v.Line, "steps: want a non-empty list")
				}
				for _, stepNode := range v.Content {
					step, err := parseStep(name, stepNode)
					if err != nil {
						return nil, err
					}
					st.Steps = append(st.Steps, step)
				}
			default:
				return nil, fail(k.Line, "unknown story key %q (want story, lang, channel, customer, metadata, steps)", k.Value)
			}
			if err != nil {
				return nil, fail(v.Line, "%s: %s", k.Value, strings.TrimPrefix(err.Error(), "yaml: "))
			}
		}
		switch {
		case strings.TrimSpace(st.Name) == "":
			return nil, fail(sn.Line, "a story needs a name (story: …)")
		case len(st.Steps) == 0:
			return nil, fail(sn.Line, "story %q has no steps", st.Name)
		case names[st.Name] > 0:
			return nil, fail(sn.Line, "story %q is also at line %d", st.Name, names[st.Name])
		}
		names[st.Name] = sn.Line
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, fail(list.Line, "no stories")
	}
	return out, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func parseStep(file string, n *yaml.Node) (Step, error) {
	fail := func(line int, format string, args ...any) (Step, error) {
		return Step{}, &DataError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	s := Step{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return fail(n.Line, "a step must be a mapping with user (or event) and expectations")
	}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(stepKeys, k.Value) {
			return fail(k.Line, "unknown step key %q (want one of %s)", k.Value, strings.Join(stepKeys, ", "))
		}
		var err error
		switch k.Value {
		case "slots":
			err = v.Decode(&s.Slots)
		case "reply":
			if v.Kind == yaml.SequenceNode {
				err = v.Decode(&s.Reply)
			} else {
				s.Reply = []string{v.Value}
			}
		case "reply_matches":
			s.ReplyMatches, err = regexp.Compile(v.Value)
		case "score":
			err = v.Decode(&s.Score)
		case "silent":
			err = v.Decode(&s.Silent)
		default:
			if v.Kind != yaml.ScalarNode {
				return fail(v.Line, "%s: want text", k.Value)
			}
			*map[string]*string{
				"user": &s.User, "event": &s.Event, "thumb": &s.Thumb, "lang": &s.Lang, "intent": &s.Intent, "emotion": &s.Emotion,
				"flow": &s.Flow, "state": &s.State, "source": &s.Source, "handoff": &s.Handoff, "article": &s.Article,
			}[k.Value] = v.Value
		}
		if err != nil {
			return fail(v.Line, "%s: %s", k.Value, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	switch {
	case (s.User == "") == (s.Event == ""):
		return fail(n.Line, "a step needs either user (the customer's text) or event")
	case s.Source != "" && !slices.Contains([]string{"dialog", "kb", "clarify", "handoff"}, s.Source):
		return fail(n.Line, "source %q: want dialog, kb, clarify or handoff", s.Source)
	case s.Event != "" && (s.Intent != "" || s.Flow != "" || s.State != "" || s.Source != "" || len(s.Reply) > 0 || s.ReplyMatches != nil || s.Slots != nil):
		return fail(n.Line, "an event step checks only handoff (the handoff after it)")
	}
	return s, nil
}

// Chat is a kefu to talk to: the engine in this process, or a server over HTTP.
type Chat interface {
	Message(ctx context.Context, id string, req engine.MessageRequest) (*engine.MessageResult, error)
	Event(ctx context.Context, id string, ev engine.Event) (*engine.EventResult, error)
}

// StoryResult is one story's outcome.
type StoryResult struct {
	Story   string    `json:"story"`
	File    string    `json:"file"`
	Line    int       `json:"line"`
	Passed  bool      `json:"passed"`
	Steps   int       `json:"steps"`
	Failed  *StepDiff `json:"failed,omitempty"` // the first failing step; later steps are not run
	Error   string    `json:"error,omitempty"`  // the server refused or failed
	Seconds float64   `json:"seconds"`
}

// StepDiff is a step whose expectations did not hold.
type StepDiff struct {
	Step       int        `json:"step"`
	Line       int        `json:"line"`
	User       string     `json:"user,omitempty"`
	Event      string     `json:"event,omitempty"`
	Mismatches []Mismatch `json:"mismatches"`
	Replies    []string   `json:"replies"`
}

// Mismatch is one expectation: what was wanted and what came.
type Mismatch struct {
	Field string `json:"field"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}

// RunStory plays a story against chat in a new conversation (its id starts with prefix).
func RunStory(ctx context.Context, chat Chat, st Story, id string) StoryResult {
	res := StoryResult{Story: st.Name, File: st.File, Line: st.Line, Steps: len(st.Steps)}
	start := time.Now()
	defer func() { res.Seconds = time.Since(start).Seconds() }()
	for i, step := range st.Steps {
		var got *engine.MessageResult
		var diff []Mismatch
		if step.Event != "" {
			ev, err := chat.Event(ctx, id, engine.Event{Type: step.Event, Score: step.Score, Thumb: step.Thumb})
			if err != nil {
				res.Error = fmt.Sprintf("step %d (line %d), event %s: %v", i+1, step.Line, step.Event, err)
				return res
			}
			if step.Handoff != "" {
				diff = checkHandoff(step.Handoff, ev.Handoff, diff)
			}
		} else {
			var err error
			got, err = chat.Message(ctx, id, engine.MessageRequest{Text: step.User, Lang: cmp.Or(step.Lang, st.Lang), Channel: st.Channel, Customer: st.Customer, Metadata: st.Metadata})
			if err != nil {
				res.Error = fmt.Sprintf("step %d (line %d) %q: %v", i+1, step.Line, step.User, err)
				return res
			}
			diff = check(step, got)
		}
		if len(diff) > 0 {
			d := &StepDiff{Step: i + 1, Line: step.Line, User: step.User, Event: step.Event, Mismatches: diff, Replies: []string{}}
			if got != nil {
				d.Replies = replies(got)
			}
			res.Failed = d
			return res
		}
	}
	res.Passed = true
	return res
}

func replies(r *engine.MessageResult) []string {
	out := make([]string, 0, len(r.Messages))
	for _, m := range r.Messages {
		out = append(out, m.Text)
	}
	return out
}

func check(s Step, r *engine.MessageResult) []Mismatch {
	var d []Mismatch
	eq := func(field, want, got string) {
		if want != "" && want != got {
			d = append(d, Mismatch{Field: field, Want: want, Got: got})
		}
	}
	eq("intent", s.Intent, r.Intent.Name)
	eq("emotion", s.Emotion, r.Emotion.Label)
	eq("flow", s.Flow, r.Flow)
	eq("state", s.State, r.State)
	eq("source", s.Source, r.Source)
	if s.Article != "" {
		got := ""
		if r.KB != nil {
			got = r.KB.Article
		}
		eq("article", s.Article, got)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Slots)) {
		if got := r.Slots[k]; got != s.Slots[k] {
			d = append(d, Mismatch{Field: "slots." + k, Want: s.Slots[k], Got: got})
		}
	}
	if s.Handoff != "" {
		d = checkHandoff(s.Handoff, r.Handoff, d)
	}
	all := strings.Join(replies(r), "\n")
	for _, want := range s.Reply {
		if !strings.Contains(all, want) {
			d = append(d, Mismatch{Field: "reply", Want: "contains " + fmt.Sprintf("%q", want), Got: fmt.Sprintf("%q", all)})
		}
	}
	if s.ReplyMatches != nil && !s.ReplyMatches.MatchString(all) {
		d = append(d, Mismatch{Field: "reply", Want: "matches /" + s.ReplyMatches.String() + "/", Got: fmt.Sprintf("%q", all)})
	}
	if s.Silent && len(r.Messages) > 0 {
		d = append(d, Mismatch{Field: "reply", Want: "none (silent)", Got: fmt.Sprintf("%q", all)})
	}
	return d
}

// checkHandoff compares the wanted handoff reason ("none": no handoff) with got.
func checkHandoff(want string, got *engine.HandoffInfo, d []Mismatch) []Mismatch {
	reason := "none" // no handoff, or a person released the conversation
	if got != nil && got.Status != "released" {
		reason = got.Reason
	}
	if want != reason {
		d = append(d, Mismatch{Field: "handoff", Want: want, Got: reason})
	}
	return d
}

// WriteStoryResults prints each story's outcome, with a diff for the failed ones, and a
// summary line.
func WriteStoryResults(w io.Writer, results []StoryResult) {
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
			fmt.Fprintf(w, "PASS  %s  (%d steps, %.2fs)\n", r.Story, r.Steps, r.Seconds)
			continue
		}
		fmt.Fprintf(w, "FAIL  %s  (%s:%d)\n", r.Story, r.File, r.Line)
		if r.Error != "" {
			fmt.Fprintf(w, "      error: %s\n", r.Error)
			continue
		}
		f := r.Failed
		what := fmt.Sprintf("user: %s", f.User)
		if f.Event != "" {
			what = "event: " + f.Event
		}
		fmt.Fprintf(w, "      step %d of %d (%s:%d)  %s\n", f.Step, r.Steps, r.File, f.Line, what)
		for _, m := range f.Mismatches {
			fmt.Fprintf(w, "        %-10s - want %s\n        %-10s + got  %s\n", m.Field, m.Want, "", m.Got)
		}
		for _, rep := range f.Replies {
			fmt.Fprintf(w, "        bot said: %s\n", rep)
		}
	}
	fmt.Fprintf(w, "%d stories: %d passed, %d failed\n", len(results), passed, len(results)-passed)
}

// HTTPChat talks to a running kefu serve.
type HTTPChat struct {
	URL    string // base URL, e.g. http://127.0.0.1:8080
	Key    string // API key (Authorization: Bearer), if the server needs one
	Client *http.Client
}

// Message posts one customer message.
func (h *HTTPChat) Message(ctx context.Context, id string, req engine.MessageRequest) (*engine.MessageResult, error) {
	var out engine.MessageResult
	return &out, h.post(ctx, "/v1/conversations/"+url.PathEscape(id)+"/messages", req, &out)
}

// Event posts one conversation event.
func (h *HTTPChat) Event(ctx context.Context, id string, ev engine.Event) (*engine.EventResult, error) {
	var out engine.EventResult
	return &out, h.post(ctx, "/v1/conversations/"+url.PathEscape(id)+"/events", ev, &out)
}

func (h *HTTPChat) post(ctx context.Context, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.URL, "/")+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Key != "" {
		req.Header.Set("Authorization", "Bearer "+h.Key)
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: not a kefu answer: %w", path, err)
	}
	return nil
}
