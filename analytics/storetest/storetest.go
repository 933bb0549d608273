// Package storetest checks an analytics.Store: the claims that make figures count once,
// and a scripted day of conversations whose figures were worked out by hand.
package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/analytics"
)

// T0 is when the scripted conversations start: close to now, because Redis finds events by
// its own clock (a day either side).
var T0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

// Run runs every check on a fresh, empty store.
func Run(t *testing.T, s analytics.Store) {
	t.Run("claims", func(t *testing.T) { claims(t, s) })
	t.Run("figures", func(t *testing.T) { figures(t, s) })
}

func claims(t *testing.T, s analytics.Store) {
	ctx := t.Context()
	at := T0.Add(-48 * time.Hour)
	put := func(member string, score time.Time, seq int, info string) {
		t.Helper()
		if err := s.Apply(ctx, &analytics.Batch{Puts: []analytics.Put{{Set: analytics.Open, Member: member, Score: score, Seq: seq, Info: []byte(info)}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("m1", at, 1, "one")
	put("m1", at.Add(time.Minute), 3, "three")
	put("m1", at.Add(2*time.Minute), 2, "two (late)") // an older turn reported late changes nothing
	put("m2", at.Add(time.Hour), 1, "other")
	due, err := s.Due(ctx, analytics.Open, at.Add(30*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Member != "m1" || string(due[0].Info) != "three" || !due[0].Score.Equal(at.Add(time.Minute)) {
		t.Fatalf("due = %+v, want m1 at +1m with info three", due)
	}
	// A claim that saw an older score than the member has now (it became active) fails.
	if ok, err := s.Claim(ctx, analytics.Claim{Set: analytics.Open, Member: "m1", At: at, Before: at}, nil); err != nil || ok {
		t.Fatalf("claim of a member active since = %v, %v; want false", ok, err)
	}
	b := &analytics.Batch{Counters: map[string]map[string]int64{analytics.DayBucket(at): {"x|en|end": 1}}}
	for i, want := range []bool{true, false, false} {
		ok, err := s.Claim(ctx, analytics.Claim{Set: analytics.Open, Member: "m1", At: at}, b)
		if err != nil || ok != want {
			t.Fatalf("claim %d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	c, err := s.Counters(ctx, [][]string{{analytics.DayBucket(at)}, {"d:1999-01-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if c[0]["x|en|end"] != 1 || len(c[1]) != 0 {
		t.Fatalf("counters after three claims = %v; want end counted once, nothing in an empty bucket", c)
	}
	put("m1", at.Add(time.Hour), 4, "after the end") // a late report of an ended member
	due, _ = s.Due(ctx, analytics.Open, at.Add(24*time.Hour), 10)
	if len(due) != 1 || due[0].Member != "m2" {
		t.Fatalf("due = %+v; want only m2 (m1 ended)", due)
	}
	if ok, _ := s.Claim(ctx, analytics.Claim{Set: analytics.Open, Member: "m2", At: at}, nil); !ok {
		t.Fatal("m2 not claimed")
	}
	if err := s.Prune(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// A scripted set of conversations; the expected figures below are worked out by hand.
func script(t *testing.T, r *analytics.Recorder) {
	ctx := t.Context()
	at := func(m int) time.Time { return T0.Add(time.Duration(m) * time.Minute) }
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	turn := func(tt analytics.Turn) {
		t.Helper()
		if err := r.Turn(ctx, tt); err != nil {
			t.Fatal(err)
		}
	}
	// A (web, en): a dialog, then a KB answer; closed: auto-resolved.
	turn(analytics.Turn{At: at(0), Conversation: "A", Instance: "a", Channel: "web", Lang: "en", Seq: 1, Source: "dialog", Intent: "greeting", Confidence: 0.9, Emotion: "neutral", Response: ms(3), Text: "hello"})
	turn(analytics.Turn{At: at(1), Conversation: "A", Instance: "a", Channel: "web", Lang: "en", Seq: 2, Source: "kb", Intent: "refund_status", Confidence: 0.4, KBAsked: true, Article: "refund-time", Response: ms(12), Text: "when is my refund"})
	// B (app, zh): not understood twice, handed off (low_confidence, normal, SLA 15 min),
	// accepted after 2 minutes, CSAT 5, closed.
	turn(analytics.Turn{At: at(2), Conversation: "B", Instance: "b", Channel: "app", Lang: "zh", Seq: 1, Source: "clarify", Intent: "chitchat", Confidence: 0.2, KBAsked: true, Response: ms(4), Text: "blorp"})
	turn(analytics.Turn{At: at(3), Conversation: "B", Instance: "b", Channel: "app", Lang: "zh", Seq: 2, Source: "handoff", Intent: "chitchat", Confidence: 0.2, KBAsked: true, Response: ms(6), Text: "Blorp!",
		HandedOff: true, Handoff: &analytics.Handoff{ID: "B:handoff:1", Reason: "low_confidence", Priority: "normal", Queue: "general", First: true, Deadline: at(18)}})
	// C (WEB, en): an angry request for a person (urgent, SLA 5 min), breached, accepted at
	// 7 minutes; CSAT 2, then 3 instead.
	turn(analytics.Turn{At: at(4), Conversation: "C", Instance: "c", Channel: "WEB", Lang: "en", Seq: 1, Source: "handoff", Intent: "human_agent", Confidence: 0.9, Emotion: "angry", Negative: true, Response: ms(8), Text: "get me a human",
		HandedOff: true, Handoff: &analytics.Handoff{ID: "C:handoff:1", Reason: "requested", Priority: "urgent", Queue: "payments", Skills: []string{"payments"}, First: true, Deadline: at(9)}})
	// D (web, en): one resolved turn, then silence.
	turn(analytics.Turn{At: at(1), Conversation: "D", Instance: "d", Channel: "web", Lang: "en", Seq: 1, Source: "dialog", Intent: "order_status", Confidence: 0.8, Response: ms(2), Text: "where is my order"})

	if err := r.Accepted(ctx, analytics.Accept{At: at(5), Since: at(3), Deadline: at(18), Conversation: "B", Channel: "app", Lang: "zh", Handoff: "B:handoff:1", Priority: "normal", Queue: "general", Agent: "ann"}); err != nil {
		t.Fatal(err)
	}
	if due, err := r.DueTimers(ctx, at(8), 10); err != nil || len(due) != 0 {
		t.Fatalf("timers due before C's deadline: %+v, %v", due, err)
	}
	due, err := r.DueTimers(ctx, at(10), 10)
	if err != nil || len(due) != 1 || due[0].Handoff != "C:handoff:1" || due[0].Priority != "urgent" || due[0].Queue != "payments" {
		t.Fatalf("timers due at +10m = %+v, %v; want C's only", due, err)
	}
	for i, want := range []bool{true, false} { // two nodes notice: one breach
		if ok, err := r.Breached(ctx, due[0], at(10)); err != nil || ok != want {
			t.Fatalf("breach %d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if err := r.Accepted(ctx, analytics.Accept{At: at(11), Since: at(4), Deadline: at(9), Conversation: "C", Channel: "WEB", Lang: "en", Handoff: "C:handoff:1", Priority: "urgent", Queue: "payments", Agent: "bo"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		conv, ch, lang string
		score, prev    int
	}{{"B", "app", "zh", 5, 0}, {"C", "web", "en", 2, 0}, {"C", "web", "en", 3, 2}} {
		if err := r.CSAT(ctx, at(12), c.conv, c.ch, c.lang, c.score, c.prev); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []analytics.End{
		{At: at(13), Conversation: "A", Instance: "a", Channel: "web", Lang: "en", Resolved: true},
		{At: at(14), Conversation: "B", Instance: "b", Channel: "app", Lang: "zh", HandedOff: true, HandoffID: "B:handoff:1"},
		{At: at(14), Conversation: "A", Instance: "a", Channel: "web", Lang: "en", Resolved: true}, // closed twice: counted once
	} {
		if _, err := r.Ended(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// D's last turn was at +1m: idle since then, it ends, once (C, idle since +4m, not yet).
	for i, want := range []int{1, 0} {
		if n, err := r.EndIdle(ctx, at(1)); err != nil || n != want {
			t.Fatalf("EndIdle %d = %d, %v; want %d", i+1, n, err, want)
		}
	}
}

func f(v float64) *float64 { return &v }

func figures(t *testing.T, s analytics.Store) {
	ctx := t.Context()
	r := analytics.NewRecorder(s, nil)
	script(t, r)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A restarted node reads the same figures: nothing of them lives in the recorder.
	q := analytics.Query{From: T0.Add(-time.Hour), To: T0.Add(3 * time.Hour)}
	got, err := analytics.Summarize(ctx, s, q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"conversations": 4.0, "messages": 6.0, "ended": 3.0, "auto_resolved": 2.0, "auto_resolution_rate": 2.0 / 3,
		"handoffs": 2.0, "handed_off_conversations": 2.0, "handoff_rate": 0.5,
		"handoff_reasons":    map[string]any{"low_confidence": 1.0, "requested": 1.0},
		"handoff_queues":     map[string]any{"general": 1.0, "payments": 1.0},
		"handoff_priorities": map[string]any{"normal": 1.0, "urgent": 1.0},
		"released":           0.0,
		"csat":               map[string]any{"responses": 2.0, "mean": 4.0, "satisfied_rate": 0.5, "scores": map[string]any{"3": 1.0, "5": 1.0}},
		// 2, 3, 4, 6, 8, 12 ms in buckets ≤2, ≤3, ≤5, ≤7, ≤10, ≤15: p50 is the 3rd (3–5 ms:
		// 5), p95 rank 5.7 falls 0.7 into the 10–15 ms bucket: 13.5.
		"bot_response_ms": map[string]any{"count": 6.0, "p50": 5.0, "p95": 13.5},
		// normal: 120 s in the 90–120 bucket; urgent: 420 s in 300–420.
		"time_to_agent_s": map[string]any{"normal": map[string]any{"count": 1.0, "p50": 105.0, "p95": 118.5}, "urgent": map[string]any{"count": 1.0, "p50": 360.0, "p95": 414.0}},
		"sla":             map[string]any{"normal": map[string]any{"met": 1.0, "breached": 0.0}, "urgent": map[string]any{"met": 0.0, "breached": 1.0}},
		"sources":         map[string]any{"dialog": 2.0, "kb": 1.0, "clarify": 1.0, "handoff": 2.0},
		"intents": []any{map[string]any{"intent": "chitchat", "count": 2.0}, map[string]any{"intent": "greeting", "count": 1.0},
			map[string]any{"intent": "human_agent", "count": 1.0}, map[string]any{"intent": "order_status", "count": 1.0}, map[string]any{"intent": "refund_status", "count": 1.0}},
		"negative_emotion_share": 1.0 / 6, "kb_asked": 3.0, "kb_answered": 1.0, "kb_answer_rate": 1.0 / 3,
		"channels": map[string]any{"web": 4.0, "app": 2.0},
	}
	compare(t, "summary", got, want)
	for i := range 2 { // read through the cache, cold then warm: the same figures
		cached, err := analytics.Summarize(ctx, r.Store(), q)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, fmt.Sprintf("summary read through the cache (%d)", i+1), cached, want)
	}

	app, err := analytics.Summarize(ctx, s, analytics.Query{From: q.From, To: q.To, Channel: "app"})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "summary of channel app", app, map[string]any{"conversations": 1.0, "messages": 2.0, "ended": 1.0, "auto_resolved": 0.0,
		"auto_resolution_rate": 0.0, "handoff_rate": 1.0, "kb_answer_rate": 0.0, "channels": map[string]any{"app": 2.0},
		"csat": map[string]any{"responses": 1.0, "mean": 5.0, "satisfied_rate": 1.0, "scores": map[string]any{"5": 1.0}}})
	zh, _ := analytics.Summarize(ctx, s, analytics.Query{From: q.From, To: q.To, Lang: "zh", Channel: "web"})
	compare(t, "summary of nothing", zh, map[string]any{"conversations": 0.0, "auto_resolution_rate": nil, "handoff_rate": nil,
		"csat":            map[string]any{"responses": 0.0, "mean": nil, "satisfied_rate": nil, "scores": map[string]any{}},
		"bot_response_ms": map[string]any{"count": 0.0, "p50": nil, "p95": nil}})
	// The period is read in whole hours: the hour before T0 holds nothing.
	before, _ := analytics.Summarize(ctx, s, analytics.Query{From: T0.Add(-24 * time.Hour), To: T0})
	compare(t, "summary before", before, map[string]any{"conversations": 0.0, "messages": 0.0})

	series, err := analytics.Chart(ctx, s, analytics.Query{From: T0.Add(-time.Hour), To: T0.Add(2 * time.Hour)}, "messages", "hour")
	if err != nil {
		t.Fatal(err)
	}
	var points []float64
	for _, p := range series.Points {
		points = append(points, *p.Value)
	}
	if !reflect.DeepEqual(points, []float64{0, 6, 0}) {
		t.Errorf("messages per hour = %v; want [0 6 0]", points)
	}
	days, _ := analytics.Chart(ctx, s, analytics.Query{From: T0.Add(-time.Hour), To: T0.Add(2 * time.Hour)}, "conversations", "day")
	if len(days.Points) == 0 || *days.Points[len(days.Points)-1].Value+sumBut(days.Points) != 4 {
		t.Errorf("conversations per day = %+v; want 4 in all", days.Points)
	}

	un, err := analytics.Unanswer(ctx, s, q, 10)
	if err != nil {
		t.Fatal(err)
	}
	if un.Messages != 2 || len(un.Questions) != 1 || un.Questions[0].Count != 2 || un.Questions[0].Text != "Blorp!" ||
		!reflect.DeepEqual(un.Questions[0].Sources, map[string]int{"clarify": 1, "handoff:low_confidence": 1}) || len(un.Questions[0].Examples) != 2 {
		t.Errorf("unanswered = %+v; want one group of B's two messages, the latest wording first", un)
	}

	var out bytes.Buffer
	n, err := analytics.Export(ctx, s, q.From, q.To, &out)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev analytics.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		types[ev.Type]++
	}
	wantTypes := map[string]int{"conversation.started": 4, "turn": 6, "handoff": 2, "agent.accepted": 2, "csat": 3, "conversation.ended": 3, "handoff.sla_breached": 1}
	if n != 21 || !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("export = %d lines %v; want 21: %v", n, types, wantTypes)
	}

	ids := func(cs []analytics.Conversation) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	recent, err := r.Conversations(ctx, T0.Add(3*time.Hour), 10, nil)
	if err != nil || !reflect.DeepEqual(ids(recent), []string{"C", "B", "D", "A"}) || recent[0].Channel != "web" || !recent[0].HandedOff || recent[0].Turns != 1 {
		t.Errorf("recent conversations %+v, %v; want C, B, D, A (latest turn first)", recent, err)
	}
	if page, _ := r.Conversations(ctx, recent[0].Last, 10, nil); !reflect.DeepEqual(ids(page), []string{"B", "D", "A"}) {
		t.Errorf("the page after C: %v", ids(page))
	}
	if off, _ := r.Conversations(ctx, T0.Add(3*time.Hour), 10, func(c analytics.Conversation) bool { return c.HandedOff }); !reflect.DeepEqual(ids(off), []string{"C", "B"}) {
		t.Errorf("handed-off conversations: %v", ids(off))
	}
	if err := r.Forget(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	if after, _ := r.Conversations(ctx, T0.Add(3*time.Hour), 10, nil); !reflect.DeepEqual(ids(after), []string{"C", "D", "A"}) {
		t.Errorf("after erasing B, the list: %v", ids(after))
	}
	un, _ = analytics.Unanswer(ctx, s, q, 10)
	out.Reset()
	analytics.Export(ctx, s, q.From, q.To, &out)
	if un.Messages != 0 || strings.Contains(out.String(), `"conversation":"B"`) {
		t.Errorf("after erasing B: %d unanswered, export still names B: %v", un.Messages, strings.Contains(out.String(), `"conversation":"B"`))
	}
	again, _ := analytics.Summarize(ctx, s, q)
	if again.Conversations != 4 || again.Handoffs != 2 {
		t.Errorf("erasure changed the counters: %d conversations, %d handoffs", again.Conversations, again.Handoffs)
	}
	// Past the retention, the lines go.
	if err := s.Prune(ctx, q.To, q.To); err != nil {
		t.Fatal(err)
	}
	if n, err := analytics.Export(ctx, s, q.From, q.To, io.Discard); err != nil || n != 0 {
		t.Errorf("after pruning everything: %d lines, %v", n, err)
	}
}

func sumBut(ps []analytics.Point) float64 {
	s := 0.0
	for _, p := range ps[:len(ps)-1] {
		s += *p.Value
	}
	return s
}

// compare checks that got, as JSON, has want's fields with want's values (numbers within
// 1e-9).
func compare(t *testing.T, what string, got any, want map[string]any) {
	t.Helper()
	b, _ := json.Marshal(got)
	var m map[string]any
	json.Unmarshal(b, &m)
	for k, w := range want {
		if !same(m[k], w) {
			t.Errorf("%s: %s = %v; want %v", what, k, js(m[k]), js(w))
		}
	}
}

func same(a, b any) bool {
	if x, ok := a.(float64); ok {
		y, ok := b.(float64)
		return ok && math.Abs(x-y) < 1e-9
	}
	if x, ok := a.(map[string]any); ok {
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !same(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }
