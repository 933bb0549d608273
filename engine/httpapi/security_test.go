package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// Tests named after the findings of the security review (issue 17) that the HTTP layer
// answers.

func TestDuplicateAndCaseVariantJSONKeysAreRefused(t *testing.T) {
	srv := demoServer(t)
	for body, want := range map[string]string{
		`{"text":"hello","Text":"refund"}`:                 `field "Text" appears twice (also as "text")`,
		`{"text":"hello","text":"refund"}`:                 `field "text" appears twice`,
		`{"text":"hi","lang":"en","top_k":2,"LANG":"zh"}`:   `field "LANG" appears twice (also as "lang")`,
	} {
		status, out := post(t, srv.URL+"/v1/nlu/parse", body)
		msg, _ := out["error"].(map[string]any)["message"].(string)
		if status != 400 || !strings.Contains(msg, want) {
			t.Errorf("%s: %d %q, want 400 naming %s", body, status, msg, want)
		}
	}
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/dup-1/messages", `{"text":"hi","customer":{"id":"a","tier":"standard","Tier":"vip"}}`)
	if r.status != 400 || !strings.Contains(r.str("error", "message"), `"Tier" appears twice`) {
		t.Errorf("nested duplicate: %d %v", r.status, r.body)
	}
	if r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/dup-2/messages", `{"text":"hi","metadata":{"a":"1","b":"2"},"customer":{"id":"a","tags":["x","y"]}}`); r.status != 200 {
		t.Errorf("distinct keys at different levels must pass: %d %v", r.status, r.body)
	}
}

func TestBlankTextOfControlOrFormatCharactersIsRefused(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	for _, text := range []string{"\u0000\u0000", "\u200b\u200c\u200d", "\u2060 \ufeff", "\u202e\t\n"} {
		r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/blank-1/messages", `{"text":`+quote(text)+`}`)
		if r.status != 400 || !strings.Contains(r.str("error", "message"), "text is empty") {
			t.Errorf("%q: %d %v", text, r.status, r.body)
		}
	}
	if r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/blank-1/messages", `{"text":"\u200b你好"}`); r.status != 200 {
		t.Errorf("a real text with a zero-width space: %d %v", r.status, r.body)
	}
}

func TestTagsAndMetadataHaveLengthLimits(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	long := strings.Repeat("x", 65)
	for _, body := range []string{
		`{"text":"hi","customer":{"id":"a","tags":["` + long + `"]}}`,
		`{"text":"hi","metadata":{"` + long + `":"v"}}`,
		`{"text":"hi","metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`,
	} {
		if r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/lim-1/messages", body); r.status != 400 {
			t.Errorf("%.60s…: %d %v", body, r.status, r.body)
		}
	}
	srv, _ := kbServer(t)
	article := func(tags string) string {
		return `{"id":"tagged","questions":["q"],"answers":[{"id":"v1","text":{"en":"a"}}],"tags":[` + tags + `]}`
	}
	if status, _, out := call(t, "POST", srv.URL+"/v1/kb/articles", editorKey, "", article(`"`+long+`"`)); status != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "tags[0]") {
		t.Errorf("a 65-byte KB tag: %d %v", status, out)
	}
	var tags []string
	for i := range 33 {
		tags = append(tags, `"t`+strings.Repeat("x", i)+`"`)
	}
	if status, _, out := call(t, "POST", srv.URL+"/v1/kb/articles", editorKey, "", article(strings.Join(tags, ","))); status != 400 {
		t.Errorf("33 KB tags: %d %v", status, out)
	}
}

// TestExperimentOutcomesOnlyFromExposedConversations: feedback for a conversation the
// experiment never showed counts nothing, a rating counts once per conversation, and the
// report's rates stay within [0, 1].
func TestExperimentOutcomesOnlyFromExposedConversations(t *testing.T) {
	srv, _ := kbServer(t)
	u := srv.URL + "/v1/kb"
	exp := `{"id":"rig-test","article":"refund-time","variants":[{"answer":"v1","weight":1},{"answer":"short","weight":1}]}`
	if status, _, out := call(t, "POST", u+"/experiments", editorKey, "", exp); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	if status, _, out := call(t, "POST", u+"/answer", clientKey, "", `{"text":"退款多久能到账","lang":"zh","conversation":"real-1"}`); status != 200 || out["experiment"] != "rig-test" {
		t.Fatalf("answer: %d %v", status, out)
	}
	for range 5 { // the exposed conversation rates five times, hands off five times
		call(t, "POST", u+"/feedback", clientKey, "", `{"article":"refund-time","conversation":"real-1","csat":1,"thumb":-1,"handoff":true}`)
	}
	for i := range 20 { // invented conversations
		call(t, "POST", u+"/feedback", clientKey, "", `{"article":"refund-time","conversation":"fake-`+strings.Repeat("x", i)+`","csat":5,"thumb":1,"handoff":true}`)
	}
	status, _, out := call(t, "GET", u+"/experiments/rig-test", editorKey, "", "")
	if status != 200 {
		t.Fatalf("report: %d %v", status, out)
	}
	var exposures, unresolved, csatN, thumbs float64
	for _, v := range out["variants"].([]any) {
		arm := v.(map[string]any)
		c := arm["counts"].(map[string]any)
		exposures += c["exposures"].(float64)
		unresolved += c["unresolved"].(float64)
		csatN += c["csat_n"].(float64)
		thumbs += c["thumbs_up"].(float64) + c["thumbs_down"].(float64)
		if rate := arm["resolution_rate"].(float64); rate < 0 || rate > 1 {
			t.Errorf("resolution rate %v", rate)
		}
	}
	if exposures != 1 || unresolved != 1 || csatN != 1 || thumbs != 1 {
		t.Errorf("counts: %v exposures, %v unresolved, %v CSAT, %v thumbs; want 1 each", exposures, unresolved, csatN, thumbs)
	}
}

func TestKBConversationIdsAreCheckedLikeConversationIds(t *testing.T) {
	srv, _ := kbServer(t)
	huge := strings.Repeat("c", 900<<10)
	for path, body := range map[string]string{
		"/v1/kb/answer":   `{"text":"refund","conversation":"` + huge + `"}`,
		"/v1/kb/feedback": `{"article":"refund-time","conversation":"a b","csat":3}`,
	} {
		status, _, out := call(t, "POST", srv.URL+path, clientKey, "", body)
		if status != 400 && status != 413 {
			t.Errorf("%s: %d %v", path, status, out)
		}
	}
	status, _, out := call(t, "POST", srv.URL+"/v1/kb/answer", clientKey, "", `{"text":"refund","conversation":"conv 1"}`)
	if status != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "conversation") {
		t.Errorf("a conversation id with a space: %d %v", status, out)
	}
}

func TestCallerRequestIDsMustBeShortAndWellFormed(t *testing.T) {
	srv := demoServer(t)
	for id, kept := range map[string]bool{"abc-123.x:y": true, strings.Repeat("a", 65): false, "bad id<script>": false, "": false} {
		req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-ID")
		if kept != (got == id) || len(got) == 0 || len(got) > 64 {
			t.Errorf("sent %.20q, answered %q", id, got)
		}
	}
}
