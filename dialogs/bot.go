// Package dialogs holds what a bot says and remembers: the bot definition (bot.yaml and
// dialogs/*.yaml of a bundle), the flow machine that moves a conversation through its states,
// slot extractors, the conversation state with its in-memory store, and the outbox that
// carries handoffs to people. Redis versions of the store and the outbox live in
// dialogs/redisstore. Nothing here knows HTTP serving.
package dialogs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/kefu-ai/kefu/handoff"
)

// Bot is a loaded, validated bot definition.
type Bot struct {
	Name       string            `yaml:"name"`
	Languages  []string          `yaml:"languages"` // default [zh, en]
	Thresholds Thresholds        `yaml:"thresholds"`
	Handoff    HandoffConfig     `yaml:"handoff"`
	Responses  map[string]Text   `yaml:"responses"` // clarify (ask to rephrase), handoff (connecting to a person)
	Entities   map[string]Entity `yaml:"entities"`
	Actions    map[string]Action `yaml:"actions"`
	// Flows by name, from dialogs/*.yaml.
	Flows map[string]*Flow `yaml:"-"`

	extractors map[string]extractor
	triggers   map[string]string // intent → flow
	refs       []LabelRef
}

// Thresholds of the policy.
type Thresholds struct {
	// Intent is the confidence an intent needs to start a flow or count as understood;
	// default 0.5.
	Intent float64 `yaml:"intent"`
}

// HandoffConfig says when and where conversations go to people: bot.yaml's handoff
// section. The policy and the delivery settings are handoff's own types (inlined: their
// fields sit directly under handoff:).
type HandoffConfig struct {
	// URL receives handoffs (POST, JSON, signed). Empty: handoffs are only logged.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the HMAC secret; default
	// KEFU_HANDOFF_SECRET.
	SecretEnv string `yaml:"secret_env"`
	// Policy: triggers, unresolved counting, VIP tiers, priority.
	handoff.Policy `yaml:",inline"`
	// Options: delivery timeout, attempts and back-off.
	handoff.Options `yaml:",inline"`
}

// Entity is a custom slot extractor: a regular expression (the first group, or the whole
// match, is the value) or a lookup list (value → synonyms).
type Entity struct {
	Regex  string              `yaml:"regex"`
	Lookup map[string][]string `yaml:"lookup"`
}

// Action is an HTTP endpoint a flow calls: the slots go as a JSON object, the answer's
// string fields become slots.
type Action struct {
	URL     string        `yaml:"url"`
	Method  string        `yaml:"method"`  // default POST
	Timeout time.Duration `yaml:"timeout"` // default 3s
	// Returns names the fields the answer carries, which texts may then use as {field}.
	Returns []string `yaml:"returns"`
}

// Flow is a state machine for one task (order status, refund…).
type Flow struct {
	Name    string            `yaml:"-"`
	Intents []string          `yaml:"intents"` // intents that start it
	Start   string            `yaml:"start"`   // default: the first state
	Slots   map[string]*Slot  `yaml:"slots"`
	States  map[string]*State `yaml:"states"`
	// On lists transitions checked in every state before the state's own, e.g. deny → stop.
	On []Transition `yaml:"on"`

	order []string // state names in file order
	file  string
	line  int
}

// Slot is a value a flow collects.
type Slot struct {
	// Entity names the extractor: a built-in (order_number, phone, email, amount, date,
	// text) or one from the bot's entities.
	Entity string `yaml:"entity"`
	Prompt Text   `yaml:"prompt"`
	// Reprompt is said when the answer held no value; default: Prompt again.
	Reprompt Text `yaml:"reprompt"`
	// MaxAttempts prompts before the flow gives up (the turn is unresolved); default 3.
	MaxAttempts int `yaml:"max_attempts"`
}

// State is one step of a flow. On entering, a state calls its action (if any), says its
// text, then waits for the customer when it asks for a slot or a confirmation, or moves on
// to Next; a state without Next ends the flow.
type State struct {
	Say     Text   `yaml:"say"`
	Action  string `yaml:"action"`
	OnError string `yaml:"on_error"` // where a failed action goes; default: end the flow, unresolved
	Slot    string `yaml:"slot"`
	Confirm bool   `yaml:"confirm"` // ask yes/no (Say is the question); affirm → Yes, deny → No
	Yes     string `yaml:"yes"`
	No      string `yaml:"no"`
	Next    string `yaml:"next"`
	// On: transitions tried, in order, when the customer answers in this state.
	On []Transition `yaml:"on"`
	// Fail marks reaching this state as an unresolved turn (the bot could not help).
	Fail bool `yaml:"fail"`
	// Clear empties these slots on entering (to ask again).
	Clear []string `yaml:"clear"`

	line int
}

// Transition moves to Goto when its condition holds.
type Transition struct {
	Intent string `yaml:"intent"` // the turn's intent is this (confident)
	Slot   string `yaml:"slot"`   // with Equals: the slot has this value; alone: the slot is filled
	Equals string `yaml:"equals"`
	Goto   string `yaml:"goto"`
}

// Text is what the bot says, per language, with variants (one is picked per conversation
// turn). Slots are filled into {name} placeholders.
type Text map[string][]string

// UnmarshalYAML reads {lang: "text"} or {lang: ["variant", …]}.
func (t *Text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a map of language to text", n.Line)
	}
	*t = Text{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch v.Kind {
		case yaml.ScalarNode:
			(*t)[k.Value] = []string{v.Value}
		case yaml.SequenceNode:
			var list []string
			if err := v.Decode(&list); err != nil {
				return err
			}
			(*t)[k.Value] = list
		default:
			return fmt.Errorf("line %d: %s: want text or a list of texts", v.Line, k.Value)
		}
	}
	return nil
}

// Or is t, or def when t has no text at all.
func (t Text) Or(def Text) Text {
	if len(t) == 0 {
		return def
	}
	return t
}

// Pick returns variant number n (mod the count) in lang, falling back to the first
// language that has text.
func (t Text) Pick(lang string, n int) string {
	vs := t[lang]
	if len(vs) == 0 {
		for _, l := range slices.Sorted(maps.Keys(t)) {
			if vs = t[l]; len(vs) > 0 {
				break
			}
		}
	}
	if len(vs) == 0 {
		return ""
	}
	if n < 0 {
		n = -n
	}
	return vs[n%len(vs)]
}

// Error is a problem in a bot definition, with its place.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml error into an Error with the file and line.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: msg}
}

func strictDecode(file string, data []byte, v any) error {
	if !utf8.Valid(data) {
		return &Error{File: file, Msg: "not UTF-8 text"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if err.Error() == "EOF" {
			return nil
		}
		return yamlError(file, err)
	}
	return nil
}

// Load reads a bot bundle from fsys: dir/bot.yaml and every dir/dialogs/*.yaml, and
// validates them. Errors name the file and line.
func Load(fsys fs.FS, dir string) (*Bot, error) {
	file := path.Join(dir, "bot.yaml")
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("bot bundle: %w", err)
	}
	files := map[string][]byte{}
	names, err := fs.Glob(fsys, path.Join(dir, "dialogs", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		files[n] = b
	}
	return Parse(file, data, files)
}

// Parse reads a bot definition from bot.yaml's content and dialog files (name → content).
func Parse(botFile string, botYAML []byte, dialogFiles map[string][]byte) (*Bot, error) {
	b := &Bot{Flows: map[string]*Flow{}}
	if err := strictDecode(botFile, botYAML, b); err != nil {
		return nil, err
	}
	b.defaults()
	if err := b.compileEntities(botFile, botYAML); err != nil {
		return nil, err
	}
	if err := b.checkConfig(botFile, botYAML); err != nil {
		return nil, err
	}
	b.triggers = map[string]string{}
	b.collectRefs(botFile, nodeAt(parseNode(botYAML), "handoff"), "handoff")
	for _, name := range slices.Sorted(maps.Keys(dialogFiles)) {
		if err := b.parseDialogs(name, dialogFiles[name]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Bot) defaults() {
	if len(b.Languages) == 0 {
		b.Languages = []string{"zh", "en"}
	}
	if b.Thresholds.Intent == 0 {
		b.Thresholds.Intent = 0.5
	}
	h := &b.Handoff
	if h.SecretEnv == "" {
		h.SecretEnv = "KEFU_HANDOFF_SECRET"
	}
	h.Policy.Understood = b.Thresholds.Intent
	h.Policy = h.Policy.Defaults() // delivery options keep their zeros: the outbox fills them
	for name, a := range b.Actions {
		if a.Method == "" {
			a.Method = "POST"
		}
		if a.Timeout == 0 {
			a.Timeout = 3 * time.Second
		}
		b.Actions[name] = a
	}
}

// Responses the policy needs in every language.
var policyResponses = []string{"clarify", "handoff"}

func (b *Bot) checkConfig(file string, data []byte) error {
	root := parseNode(data)
	fail := func(line int, format string, args ...any) error {
		return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	for _, l := range b.Languages {
		if l != "zh" && l != "en" {
			return fail(lineOf(root, "languages"), "languages: %q is not zh or en", l)
		}
	}
	for _, r := range policyResponses {
		if err := b.checkText(b.Responses[r], func(msg string) error {
			return fail(lineOf(root, "responses", r), "responses.%s: %s", r, msg)
		}); err != nil {
			return err
		}
	}
	t, h := b.Thresholds, b.Handoff
	for _, c := range []struct {
		name string
		v    float64
		path []string
	}{{"thresholds.intent", t.Intent, []string{"thresholds", "intent"}}, {"handoff.min_confidence", h.MinConfidence, []string{"handoff", "min_confidence"}}, {"handoff.negative_threshold", h.NegativeThreshold, []string{"handoff", "negative_threshold"}}} {
		if c.v < 0 || c.v > 1 {
			return fail(lineOf(root, c.path...), "%s must be in [0, 1], got %v", c.name, c.v)
		}
	}
	if h.MaxUnresolved < 0 || h.VIPMaxUnresolved < 0 || h.MaxAttempts < 0 {
		return fail(lineOf(root, "handoff"), "handoff counts must not be negative")
	}
	for prio, d := range h.SLA {
		if prio != handoff.Normal && prio != handoff.High && prio != handoff.Urgent {
			return fail(lineOf(root, "handoff", "sla", prio), "handoff.sla: %q is not a priority (normal, high, urgent)", prio)
		}
		if d <= 0 {
			return fail(lineOf(root, "handoff", "sla", prio), "handoff.sla.%s must be a positive duration such as 15m, got %v", prio, d)
		}
	}
	seenQueue := map[string]bool{}
	for i, q := range h.Queues {
		if q.Name == "" || seenQueue[q.Name] {
			return fail(lineOf(root, "handoff", "queues"), "handoff.queues[%d]: each queue needs a name of its own, got %q", i, q.Name)
		}
		seenQueue[q.Name] = true
		if len(q.Intents)+len(q.Tiers)+len(q.Tags) == 0 {
			return fail(lineOf(root, "handoff", "queues"), "handoff.queues[%d] (%s) names no intents, tiers or tags: it would take nothing", i, q.Name)
		}
	}
	if h.URL != "" && !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
		return fail(lineOf(root, "handoff", "url"), "handoff.url must be an http(s) URL, got %q", h.URL)
	}
	for name, a := range b.Actions {
		if !strings.HasPrefix(a.URL, "http://") && !strings.HasPrefix(a.URL, "https://") {
			return fail(lineOf(root, "actions", name), "actions.%s.url must be an http(s) URL, got %q", name, a.URL)
		}
		if a.Method != "POST" && a.Method != "GET" {
			return fail(lineOf(root, "actions", name), "actions.%s.method must be GET or POST, got %q", name, a.Method)
		}
	}
	return nil
}

// checkText says what is wrong with a response: missing languages, bad placeholders.
func (b *Bot) checkText(t Text, fail func(string) error) error {
	for _, l := range b.Languages {
		if len(t[l]) == 0 || slices.Contains(t[l], "") {
			return fail(fmt.Sprintf("no %s text", l))
		}
	}
	for l := range t {
		if !slices.Contains(b.Languages, l) {
			return fail(fmt.Sprintf("language %q is not one of the bot's languages %v", l, b.Languages))
		}
	}
	return nil
}

func (b *Bot) parseDialogs(file string, data []byte) error {
	var doc struct {
		Flows map[string]*Flow `yaml:"flows"`
	}
	if err := strictDecode(file, data, &doc); err != nil {
		return err
	}
	root := parseNode(data)
	b.collectRefs(file, root, "")
	for name, f := range doc.Flows {
		if _, dup := b.Flows[name]; dup {
			return &Error{File: file, Line: lineOf(root, "flows", name), Msg: fmt.Sprintf("flow %q is defined twice (also in %s)", name, b.Flows[name].file)}
		}
		if f == nil {
			return &Error{File: file, Line: lineOf(root, "flows", name), Msg: fmt.Sprintf("flow %q is empty", name)}
		}
		f.Name, f.file, f.line = name, file, lineOf(root, "flows", name)
		f.order = keysInOrder(nodeAt(root, "flows", name, "states"))
		for s, st := range f.States {
			if st == nil {
				st = &State{}
				f.States[s] = st
			}
			st.line = lineOf(root, "flows", name, "states", s)
		}
		if err := b.checkFlow(f); err != nil {
			return err
		}
		b.Flows[name] = f
	}
	return nil
}

func (b *Bot) checkFlow(f *Flow) error {
	fail := func(line int, format string, args ...any) error {
		return &Error{File: f.file, Line: line, Msg: fmt.Sprintf("flow %s: ", f.Name) + fmt.Sprintf(format, args...)}
	}
	if len(f.States) == 0 {
		return fail(f.line, "has no states")
	}
	if f.Start == "" {
		f.Start = f.order[0]
	}
	if f.States[f.Start] == nil {
		return fail(f.line, "start state %q is not defined", f.Start)
	}
	for _, intent := range f.Intents {
		if other, ok := b.triggers[intent]; ok {
			return fail(f.line, "intent %q already starts flow %s", intent, other)
		}
		b.triggers[intent] = f.Name
	}
	for name, s := range f.Slots {
		if s == nil {
			return fail(f.line, "slot %s is empty", name)
		}
		if _, ok := b.extractors[s.Entity]; !ok {
			return fail(f.line, "slot %s: unknown entity %q (built-ins: %s; or define it under entities in bot.yaml)", name, s.Entity, strings.Join(builtinNames(), ", "))
		}
		if s.MaxAttempts == 0 {
			s.MaxAttempts = 3
		}
		if err := b.checkText(s.Prompt, func(msg string) error { return fail(f.line, "slot %s prompt: %s", name, msg) }); err != nil {
			return err
		}
		if s.Reprompt == nil {
			s.Reprompt = s.Prompt
		}
	}
	known := func(line int, what, state string) error {
		if state != "" && f.States[state] == nil {
			return fail(line, "%s: unknown state %q", what, state)
		}
		return nil
	}
	checkOn := func(line int, where string, ts []Transition) error {
		for i, t := range ts {
			if t.Goto == "" || (t.Intent == "" && t.Slot == "") {
				return fail(line, "%s on[%d]: needs goto and an intent or a slot", where, i)
			}
			if t.Slot != "" && f.Slots[t.Slot] == nil {
				return fail(line, "%s on[%d]: unknown slot %q", where, i, t.Slot)
			}
			if err := known(line, fmt.Sprintf("%s on[%d]", where, i), t.Goto); err != nil {
				return err
			}
		}
		return nil
	}
	if err := checkOn(f.line, "flow", f.On); err != nil {
		return err
	}
	for _, name := range f.order {
		s := f.States[name]
		where := "state " + name
		for _, c := range []struct{ what, to string }{{"next", s.Next}, {"yes", s.Yes}, {"no", s.No}, {"on_error", s.OnError}} {
			if err := known(s.line, where+" "+c.what, c.to); err != nil {
				return err
			}
		}
		if err := checkOn(s.line, where, s.On); err != nil {
			return err
		}
		if s.Say != nil {
			if err := b.checkText(s.Say, func(msg string) error { return fail(s.line, "%s say: %s", where, msg) }); err != nil {
				return err
			}
			if err := checkPlaceholders(s.Say, b.fillable(f)); err != nil {
				return fail(s.line, "%s say: %v", where, err)
			}
		}
		if s.Slot != "" && f.Slots[s.Slot] == nil {
			return fail(s.line, "%s: unknown slot %q", where, s.Slot)
		}
		for _, c := range s.Clear {
			if f.Slots[c] == nil {
				return fail(s.line, "%s clear: unknown slot %q", where, c)
			}
		}
		if s.Action != "" {
			if _, ok := b.Actions[s.Action]; !ok {
				return fail(s.line, "%s: unknown action %q (define it under actions in bot.yaml)", where, s.Action)
			}
		}
		if s.Confirm && (s.Yes == "" || s.No == "" || s.Say == nil) {
			return fail(s.line, "%s: a confirmation needs say, yes and no", where)
		}
		if s.Confirm && s.Slot != "" {
			return fail(s.line, "%s: ask for a slot or a confirmation, not both", where)
		}
		if !s.Confirm && (s.Yes != "" || s.No != "") {
			return fail(s.line, "%s: yes/no without confirm: true", where)
		}
		if s.Say == nil && s.Slot == "" && !s.Confirm && s.Action == "" && s.Next == "" && !s.Fail {
			return fail(s.line, "%s does nothing", where)
		}
	}
	// Every state must be reachable from the start.
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		s := f.States[name]
		for _, to := range []string{s.Next, s.Yes, s.No, s.OnError} {
			walk(to)
		}
		for _, t := range s.On {
			walk(t.Goto)
		}
	}
	walk(f.Start)
	for _, t := range f.On {
		walk(t.Goto)
	}
	for _, name := range f.order {
		if !seen[name] {
			return fail(f.States[name].line, "state %s is unreachable from %s", name, f.Start)
		}
	}
	// A cycle of states that never wait would loop for ever.
	if cyc := f.silentCycle(); cyc != "" {
		return fail(f.States[cyc].line, "state %s loops back to itself without waiting for the customer", cyc)
	}
	return nil
}

// silentCycle returns a state on a Next/on_error cycle that never waits for the customer.
func (f *Flow) silentCycle() string {
	const white, grey, black = 0, 1, 2
	color := map[string]int{}
	var visit func(string) string
	visit = func(n string) string {
		s := f.States[n]
		if s.Slot != "" || s.Confirm {
			return ""
		}
		color[n] = grey
		for _, to := range []string{s.Next, s.OnError} {
			if to == "" {
				continue
			}
			switch color[to] {
			case grey:
				return to
			case white:
				if c := visit(to); c != "" {
					return c
				}
			}
		}
		color[n] = black
		return ""
	}
	for _, n := range f.order {
		if color[n] == white {
			if c := visit(n); c != "" {
				return c
			}
		}
	}
	return ""
}

var placeholder = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

func checkPlaceholders(t Text, fillable map[string]bool) error {
	for _, vs := range t {
		for _, v := range vs {
			for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
				if !fillable[m[1]] {
					return fmt.Errorf("placeholder {%s} is neither a slot of the flow nor a field its actions return", m[1])
				}
			}
		}
	}
	return nil
}

// fillable is every name a text of f may use: its slots and its actions' returned fields.
func (b *Bot) fillable(f *Flow) map[string]bool {
	out := map[string]bool{}
	for name := range f.Slots {
		out[name] = true
	}
	for _, s := range f.States {
		if s.Action != "" {
			for _, r := range b.Actions[s.Action].Returns {
				out[r] = true
			}
		}
	}
	return out
}

// Trigger returns the flow an intent starts, if any.
func (b *Bot) Trigger(intent string) (*Flow, bool) {
	f, ok := b.Flows[b.triggers[intent]]
	return f, ok
}

// parseNode parses data as a YAML tree (nil on error: lines then read 0).
func parseNode(data []byte) *yaml.Node {
	var n yaml.Node
	if yaml.Unmarshal(data, &n) != nil || len(n.Content) == 0 {
		return nil
	}
	return n.Content[0]
}

// nodeAt follows mapping keys from root.
func nodeAt(root *yaml.Node, keys ...string) *yaml.Node {
	n := root
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// lineOf is the line of the key at the end of keys (0 if absent).
func lineOf(root *yaml.Node, keys ...string) int {
	if len(keys) == 0 {
		return 0
	}
	parent := nodeAt(root, keys[:len(keys)-1]...)
	if parent == nil || parent.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == keys[len(keys)-1] {
			return parent.Content[i].Line
		}
	}
	return parent.Line
}

func keysInOrder(n *yaml.Node) []string {
	var out []string
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

func builtinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LabelRef is a place where the bot names a model label: an intent that starts a flow,
// moves a transition or hands off, or an emotion the handoff policy counts.
type LabelRef struct {
	Head  string // "intent" or "emotion"
	Label string
	File  string
	Line  int
	Where string // e.g. "flows.refund.intents"
}

// LabelRefs lists every label the bot names, in file order.
func (b *Bot) LabelRefs() []LabelRef { return b.refs }

// collectRefs walks a dialog file, or bot.yaml's handoff section, for the keys that name
// labels wherever they are: intent (a scalar), intents (a list, or handoff.intents' mapping
// keys), urgent_intents and negative_emotions.
func (b *Bot) collectRefs(file string, n *yaml.Node, path string) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			b.collectRefs(file, c, p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			where := strings.TrimPrefix(path+"."+k.Value, ".")
			head := map[string]string{"intent": "intent", "intents": "intent", "urgent_intents": "intent", "negative_emotions": "emotion"}[k.Value]
			switch {
			case head != "" && v.Kind == yaml.ScalarNode:
				b.refs = append(b.refs, LabelRef{head, v.Value, file, v.Line, where})
			case head != "" && v.Kind == yaml.SequenceNode:
				for _, item := range v.Content {
					b.refs = append(b.refs, LabelRef{head, item.Value, file, item.Line, where})
				}
			case head != "" && v.Kind == yaml.MappingNode: // handoff.intents: {intent: reason}
				for j := 0; j+1 < len(v.Content); j += 2 {
					b.refs = append(b.refs, LabelRef{head, v.Content[j].Value, file, v.Content[j].Line, where})
				}
			default:
				b.collectRefs(file, v, where)
			}
		}
	}
}
