package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnalyticsOnTheEmbeddedDefaults: with no Redis, the figures live in kefu.db: they
// add up the turns and events of a run, survive a restart (the turns still buffered at
// shutdown are written), and kefu analytics export reads them once the server has stopped
// (and says what to do while it runs).
func TestAnalyticsOnTheEmbeddedDefaults(t *testing.T) {
	dir := t.TempDir()
	base, stop := startServe(t, "--data-dir", dir, "--handoff-url", "-")
	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
		var out map[string]any
		json.Unmarshal(data, &out)
		return out
	}
	sources := map[string]float64{}
	for _, m := range []struct{ conv, text string }{{"e-1", "你好"}, {"e-2", "where is my order"}, {"e-3", "我要投诉，你们太过分了"}} {
		r := call("POST", "/v1/conversations/"+m.conv+"/messages", `{"text": "`+m.text+`", "channel": "web"}`)
		sources[r["source"].(string)]++
	}
	if sources["handoff"] != 1 {
		t.Fatalf("sources %v: the complaint did not hand off", sources)
	}
	call("POST", "/v1/conversations/e-1/events", `{"type": "conversation.closed"}`)
	call("POST", "/v1/conversations/e-3/events", `{"type": "csat", "score": 1}`)
	check := func(when string) {
		t.Helper()
		sum := call("GET", "/v1/analytics/summary", "")
		want := map[string]float64{"conversations": 3, "messages": 3, "ended": 1, "auto_resolved": 1, "auto_resolution_rate": 1,
			"handoffs": 1, "handoff_rate": 1.0 / 3}
		for k, v := range want {
			if got, _ := sum[k].(float64); got < v-1e-9 || got > v+1e-9 {
				t.Errorf("%s: %s = %v; want %v", when, k, sum[k], v)
			}
		}
		if c := sum["csat"].(map[string]any); c["responses"] != 1.0 || c["mean"] != 1.0 || c["satisfied_rate"] != 0.0 {
			t.Errorf("%s: csat %v; want one 1", when, c)
		}
		if q := sum["handoff_queues"].(map[string]any); q["general"] != 1.0 {
			t.Errorf("%s: queues %v; want the complaint in general", when, q)
		}
		for s, n := range sources {
			if sum["sources"].(map[string]any)[s] != n {
				t.Errorf("%s: sources %v; want %v", when, sum["sources"], sources)
			}
		}
	}
	check("running")
	code, _, stderr := kefu(t, nil, "analytics", "export", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "in use by a running kefu") || !strings.Contains(stderr, "/v1/analytics/events") {
		t.Errorf("export while serving: exit %d, %s", code, stderr)
	}
	if logs, err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}

	base, stop = startServe(t, "--data-dir", dir, "--handoff-url", "-")
	check("after a restart")
	stop()

	out := filepath.Join(t.TempDir(), "events.jsonl")
	code, _, stderr = kefu(t, nil, "analytics", "export", "--data-dir", dir, out)
	if code != 0 || !strings.Contains(stderr, "events from") {
		t.Fatalf("export: exit %d, %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct{ Type, Conversation string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		types[ev.Type]++
	}
	if types["turn"] != 3 || types["conversation.started"] != 3 || types["handoff"] != 1 || types["csat"] != 1 || types["conversation.ended"] != 1 {
		t.Errorf("exported %v", types)
	}
	if code, _, stderr := kefu(t, nil, "analytics", "export", "--data-dir", dir, "--from", "2026-12-01", "--to", "2026-11-01"); code != 1 || !strings.Contains(stderr, "--from") {
		t.Errorf("export of a backwards period: exit %d, %s", code, stderr)
	}
}
