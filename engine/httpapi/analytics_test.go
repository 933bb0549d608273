package httpapi_test

import (
	"bufio"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestAnalyticsAcrossTwoNodes: conversations whose turns land on two nodes sharing one
// Redis add up to one set of figures, read from either node. The expected figures are
// worked out from what the API answered to each message (its source, intent, emotion and
// handoff), not from the server's own arithmetic.
func TestAnalyticsAcrossTwoNodes(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 2, rdb, prefix)
	from := time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour).Format(time.RFC3339)
	type msg struct {
		node       int
		conv, text string
		channel    string
	}
	script := []msg{
		{0, "an-1", "你好", "web"},
		{1, "an-1", "我要投诉你们，太差劲了", "web"},
		{1, "an-2", "where is my order", "APP"},
		{0, "an-2", "KF20261122", "app"},
		{0, "an-3", "qwxz blorf zzkj", ""},
		{1, "an-3", "qwxz blorf zzkj!!", ""},
	}
	var (
		messages, handoffs, kbAsked, negative float64
		sources                               = map[string]float64{}
		intents                               = map[string]float64{}
		last                                  = map[string]string{}
		handedOff                             = map[string]bool{}
		unanswered                            = map[string]int{}
		priority                              = map[string]string{}
	)
	for _, m := range script {
		body := `{"text": ` + quote(m.text) + `, "customer": {"id": "cust-` + m.conv + `"}`
		if m.channel != "" {
			body += `, "channel": "` + m.channel + `"`
		}
		r := do(t, "POST", w.nodes[m.node].URL+"/v1/conversations/"+m.conv+"/messages", body+"}")
		if r.status != 200 {
			t.Fatalf("%q: %d %v", m.text, r.status, r.body)
		}
		messages++
		src := r.body["source"].(string)
		sources[src]++
		intents[r.body["intent"].(map[string]any)["name"].(string)]++
		if r.body["emotion"].(map[string]any)["label"] == "angry" {
			negative++
		}
		last[m.conv] = src
		reason := ""
		if h, ok := r.body["handoff"].(map[string]any); ok && src == "handoff" {
			handoffs++
			handedOff[m.conv] = true
			reason, priority[m.conv] = h["reason"].(string), h["priority"].(string)
			if h["queue"] != "general" && h["queue"] != "after_sales" && h["queue"] != "payments" {
				t.Errorf("handoff queue %v", h["queue"])
			}
		}
		if src == "kb" || src == "clarify" || src == "handoff" && (reason == "unresolved" || reason == "low_confidence") {
			kbAsked++
		}
		if src == "clarify" || src == "handoff" && (reason == "unresolved" || reason == "low_confidence") {
			unanswered[m.conv]++
		}
	}
	if handoffs != 2 || !handedOff["an-1"] || !handedOff["an-3"] || last["an-2"] != "dialog" {
		t.Fatalf("the script did not go as planned: sources %v, handed off %v; the checks below assume a complaint handoff in an-1, a dialog in an-2 and an unresolved an-3", sources, handedOff)
	}
	ok := func(r reply) reply {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
		return r
	}
	ok(do(t, "POST", w.nodes[0].URL+"/v1/conversations/an-1/events", `{"type": "agent.accepted", "agent": "ann"}`))
	ok(do(t, "POST", w.nodes[1].URL+"/v1/conversations/an-1/events", `{"type": "csat", "score": 2}`))
	ok(do(t, "POST", w.nodes[0].URL+"/v1/conversations/an-1/events", `{"type": "csat", "score": 4}`)) // replaces the 2
	ok(do(t, "POST", w.nodes[1].URL+"/v1/conversations/an-2/events", `{"type": "csat", "score": 5}`))
	ok(do(t, "POST", w.nodes[1].URL+"/v1/conversations/an-1/events", `{"type": "conversation.closed"}`))
	ok(do(t, "POST", w.nodes[0].URL+"/v1/conversations/an-2/events", `{"type": "conversation.closed"}`))
	ok(do(t, "POST", w.nodes[1].URL+"/v1/conversations/an-2/events", `{"type": "conversation.closed"}`)) // twice: counted once

	for node := range 2 {
		sum := ok(do(t, "GET", w.nodes[node].URL+"/v1/analytics/summary?from="+from+"&to="+to, "")).body
		// Node 1's buffered turns are written within a tenth of a second (its Watch); node 0 reads them.
		for i := 0; i < 30 && sum["messages"].(float64) < messages; i++ {
			time.Sleep(100 * time.Millisecond)
			sum = ok(do(t, "GET", w.nodes[node].URL+"/v1/analytics/summary?from="+from+"&to="+to, "")).body
		}
		want := map[string]any{
			"conversations": 3.0, "messages": messages, "ended": 2.0, "auto_resolved": 1.0, "auto_resolution_rate": 0.5,
			"handoffs": handoffs, "handed_off_conversations": 2.0, "handoff_rate": 2.0 / 3, "released": 0.0,
			"csat":    map[string]any{"responses": 2.0, "mean": 4.5, "satisfied_rate": 1.0, "scores": map[string]any{"4": 1.0, "5": 1.0}},
			"sources": sources, "kb_asked": kbAsked, "negative_emotion_share": negative / messages,
			"channels": map[string]any{"web": 2.0, "app": 2.0, "-": 2.0},
			"sla":      map[string]any{priority["an-1"]: map[string]any{"met": 1.0, "breached": 0.0}},
		}
		for k, v := range want {
			if !sameJSON(sum[k], v) {
				t.Errorf("node %d: %s = %v; want %v", node, k, sum[k], v)
			}
		}
		rt := sum["bot_response_ms"].(map[string]any)
		if rt["count"] != messages || rt["p50"].(float64) <= 0 || rt["p95"].(float64) < rt["p50"].(float64) {
			t.Errorf("node %d: bot_response_ms %v; want %v responses, 0 < p50 <= p95", node, rt, messages)
		}
		if tta := sum["time_to_agent_s"].(map[string]any)[priority["an-1"]].(map[string]any); tta["count"] != 1.0 || tta["p95"].(float64) > 5 {
			t.Errorf("node %d: time to agent %v; want one, accepted within seconds", node, tta)
		}
		got := map[string]float64{}
		for _, it := range sum["intents"].([]any) {
			got[it.(map[string]any)["intent"].(string)] = it.(map[string]any)["count"].(float64)
		}
		if !sameJSON(got, intents) {
			t.Errorf("node %d: intents %v; want %v", node, got, intents)
		}
	}

	web := ok(do(t, "GET", w.nodes[1].URL+"/v1/analytics/summary?channel=web&from="+from+"&to="+to, "")).body
	if web["conversations"] != 1.0 || web["messages"] != 2.0 || web["handoffs"] != 1.0 {
		t.Errorf("channel web: %v conversations, %v messages, %v handoffs; want 1, 2, 1", web["conversations"], web["messages"], web["handoffs"])
	}
	series := ok(do(t, "GET", w.nodes[0].URL+"/v1/analytics/timeseries?metric=messages&bucket=hour&from="+from+"&to="+to, "")).body
	if pts := series["points"].([]any); len(pts) != 2 || pts[0].(map[string]any)["value"] != messages || pts[1].(map[string]any)["value"] != 0.0 {
		t.Errorf("messages per hour: %v; want [%v, 0]", pts, messages)
	}
	un := ok(do(t, "GET", w.nodes[1].URL+"/v1/analytics/unresolved?from="+from+"&to="+to, "")).body
	qs := un["questions"].([]any)
	if un["messages"] != float64(unanswered["an-3"]+unanswered["an-1"]+unanswered["an-2"]) || len(qs) != 1 ||
		qs[0].(map[string]any)["count"] != float64(unanswered["an-3"]) || qs[0].(map[string]any)["text"] != "qwxz blorf zzkj!!" {
		t.Errorf("unresolved: %v; want an-3's two wordings in one group", un)
	}

	resp, err := http.Get(w.nodes[0].URL + "/v1/analytics/events?from=" + from + "&to=" + to)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	types := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			Type, Conversation string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Conversation == "" {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		types[ev.Type]++
	}
	if resp.Header.Get("Content-Type") != "application/x-ndjson" || types["turn"] != len(script) || types["conversation.started"] != 3 ||
		types["handoff"] != 2 || types["csat"] != 3 || types["conversation.ended"] != 2 || types["agent.accepted"] != 1 {
		t.Errorf("events %s: %v", resp.Header.Get("Content-Type"), types)
	}

	for _, c := range []struct{ query, names string }{
		{"from=" + to + "&to=" + from, "from"},
		{"from=last-week", "from must be"},
		{"from=2020-01-01", "retention"},
		{"metric=happiness", "metric"},
	} {
		path := "/v1/analytics/summary?"
		if strings.HasPrefix(c.query, "metric") {
			path = "/v1/analytics/timeseries?"
		}
		r := do(t, "GET", w.nodes[0].URL+path+c.query, "")
		e, _ := r.body["error"].(map[string]any)
		if r.status != 400 || e["code"] != "invalid" || !strings.Contains(e["message"].(string), c.names) {
			t.Errorf("%s%s: %d %v; want 400 naming %s", path, c.query, r.status, r.body, c.names)
		}
	}
	if r := do(t, "GET", w.nodes[0].URL+"/v1/analytics/events?from=yesterday", ""); r.status != 400 {
		t.Errorf("export with a bad period: %d", r.status)
	}
}

// sameJSON compares two values as JSON numbers, maps and lists (numbers within 1e-9).
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		j, _ := json.Marshal(v)
		var out any
		json.Unmarshal(j, &out)
		return out
	}
	var eq func(x, y any) bool
	eq = func(x, y any) bool {
		switch x := x.(type) {
		case float64:
			y, ok := y.(float64)
			return ok && math.Abs(x-y) < 1e-9
		case map[string]any:
			y, ok := y.(map[string]any)
			if !ok || len(x) != len(y) {
				return false
			}
			for k := range x {
				if !eq(x[k], y[k]) {
					return false
				}
			}
			return true
		}
		return x == y
	}
	return eq(norm(a), norm(b))
}
