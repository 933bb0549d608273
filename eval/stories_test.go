package eval

import (
	"errors"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/engine"
)

func TestParseStoriesRefusals(t *testing.T) {
	ok, err := ParseStories("s.yaml", []byte("stories:\n  - story: a\n    lang: zh\n    customer: {id: c1, tier: vip}\n    steps:\n      - user: 你好\n        reply: [您好, 客服]\n        slots: {order_id: KF1}\n      - event: agent.released\n        handoff: none\n"))
	if err != nil || len(ok) != 1 || ok[0].Customer.Tier != "vip" || ok[0].Steps[0].Line != 6 || len(ok[0].Steps[0].Reply) != 2 || ok[0].Steps[1].Event != "agent.released" {
		t.Fatalf("%+v %v", ok, err)
	}
	for in, want := range map[string]string{
		"":                                    "s.yaml: empty file",
		"story: a\n":                          "s.yaml:1: want one key, stories",
		"stories: []\n":                       "s.yaml:1: no stories",
		"stories:\n  - steps: [{user: hi}]\n": "s.yaml:2: a story needs a name",
		"stories:\n  - story: a\n    steps: []\n":                                                "s.yaml:3: steps: want a non-empty list",
		"stories:\n  - story: a\n    stepz: []\n":                                                `s.yaml:3: unknown story key "stepz"`,
		"stories:\n  - story: a\n    steps:\n      - {intent: x}\n":                              "s.yaml:4: a step needs either user",
		"stories:\n  - story: a\n    steps:\n      - {user: a, event: csat}\n":                   "s.yaml:4: a step needs either user",
		"stories:\n  - story: a\n    steps:\n      - {user: a, reply_matches: \"(\"}\n":          "s.yaml:4: reply_matches: error parsing regexp",
		"stories:\n  - story: a\n    steps:\n      - {user: a, source: bot}\n":                   `s.yaml:4: source "bot"`,
		"stories:\n  - story: a\n    steps:\n      - {event: csat, intent: x}\n":                 "s.yaml:4: an event step checks only handoff",
		"stories:\n  - story: a\n    steps: [{user: a}]\n  - story: a\n    steps: [{user: b}]\n": `s.yaml:4: story "a" is also at line 2`,
		"stories:\n  - story: a\n    steps: [{user: a, slots: [x]}]\n":                           "s.yaml:3: slots:",
		"stories: [\n": "s.yaml:",
	} {
		_, err := ParseStories("s.yaml", []byte(in))
		var de *DataError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestStepChecks(t *testing.T) {
	got := &engine.MessageResult{
		Intent: engine.Intent{Name: "refund"}, Flow: "refund", State: "ask_reason", Source: "dialog",
		Slots: map[string]string{"order_id": "KF1"}, Messages: []engine.Message{{Text: "Why?"}, {Text: "Tell me."}},
	}
	steps, err := ParseStories("s.yaml", []byte("stories:\n  - story: a\n    steps:\n      - {user: x, intent: refund, state: confirm, slots: {order_id: KF2, reason: r}, reply: [Why, Tell], reply_matches: '^Nope', handoff: requested, silent: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, m := range check(steps[0].Steps[0], got) {
		fields = append(fields, m.Field+"="+m.Want+"/"+m.Got)
	}
	want := []string{"state=confirm/ask_reason", "slots.order_id=KF2/KF1", "slots.reason=r/", "handoff=requested/none", `reply=matches /^Nope//"Why?\nTell me."`, `reply=none (silent)/"Why?\nTell me."`}
	if strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
	if d := checkHandoff("none", &engine.HandoffInfo{Status: "released", Reason: "requested"}, nil); len(d) != 0 {
		t.Errorf("a released handoff is no handoff: %v", d)
	}
}

// FuzzParseStories: any input is refused with a DataError or gives stories a runner can play.
func FuzzParseStories(f *testing.F) {
	f.Add([]byte("stories:\n  - story: a\n    steps:\n      - {user: hi, intent: greeting, reply: [hello]}\n"))
	f.Add([]byte("stories:\n  - story: b\n    steps:\n      - {event: csat, score: 5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStories("f.yaml", data)
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		for _, s := range st {
			if s.Name == "" || len(s.Steps) == 0 {
				t.Fatalf("%+v", s)
			}
			for _, step := range s.Steps {
				if (step.User == "") == (step.Event == "") {
					t.Fatalf("%+v", step)
				}
			}
		}
	})
}
