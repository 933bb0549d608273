package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	convmem "github.com/kefu-ai/kefu/conversation/inmem"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/handoff"
	boxmem "github.com/kefu-ai/kefu/handoff/inmem"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// Tests named after the findings of the security review (issue 17) that the HTTP layer
// answers.

func TestDuplicateAndCaseVariantJSONKeysAreRefused(t *testing.T) {
	srv := demoServer(t)
	for body, want := range map[string]string{
		`{"text":"hello","Text":"refund"}`:                `field "Text" appears twice (also as "text")`,
		`{"text":"hello","text":"refund"}`:                `field "text" appears twice`,
		`{"text":"hi","lang":"en","top_k":2,"LANG":"zh"}`: `field "LANG" appears twice (also as "lang")`,
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

const (
	widgetKey   = "widget-public-key-0123456789"
	deskKey     = "agent-desk-key-0123456789"
	identitySec = "the site's identity secret, 32+ bytes long"
)

// keyedWorld is one node with keys of every conversation role, on the in-memory stores.
func keyedWorld(t *testing.T) string {
	t.Helper()
	clf, _ := bundleModelAndKB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(t, "http://127.0.0.1:1"), nil),
		Store: convmem.NewStore(time.Hour), Calls: convmem.NewCalls(time.Hour), Outbox: boxmem.NewOutbox(handoff.Options{}), Logger: log})
	api, err := httpapi.New(eng, httpapi.Config{Logger: log, Keys: []httpapi.Key{
		{Name: "backend", Role: httpapi.RoleClient, Secret: clientKey},
		{Name: "widget", Role: httpapi.RolePublic, Secret: widgetKey, IdentitySecret: identitySec},
		{Name: "desk", Role: httpapi.RoleAgent, Secret: deskKey},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return contractServer(t, api).URL
}

// as sends a request with a key and, when given, a conversation token.
func as(t *testing.T, method, url, key, token, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Conversation-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

// TestPublicFrontendsReachOnlyTheirOwnConversations: two widget conversations; each token
// reads and writes only its own; a guessed id, a missing token or another's token is 404
// (no existence oracle); a public key opens nothing else.
func TestPublicFrontendsReachOnlyTheirOwnConversations(t *testing.T) {
	base := keyedWorld(t)
	conv := base + "/v1/conversations"
	a, b := as(t, "POST", conv, widgetKey, "", `{"lang":"zh"}`), as(t, "POST", conv, widgetKey, "", `{}`)
	if a.status != 201 || b.status != 201 || !strings.HasPrefix(a.str("conversation"), "c_") || len(a.str("token")) != 43 || a.str("conversation") == b.str("conversation") {
		t.Fatalf("start: %v %v", a.body, b.body)
	}
	idA, tokA, idB, tokB := a.str("conversation"), a.str("token"), b.str("conversation"), b.str("token")
	if r := as(t, "POST", conv+"/"+idA+"/messages", widgetKey, tokA, `{"text":"我的订单到哪了"}`); r.status != 200 || r.str("state") != "ask_order" {
		t.Fatalf("own conversation: %d %v", r.status, r.body)
	}
	if r := as(t, "GET", conv+"/"+idA, widgetKey, tokA, ""); r.status != 200 || r.str("id") != idA {
		t.Errorf("read own: %d %v", r.status, r.body)
	}
	for name, c := range map[string][2]string{"another's token": {idA, tokB}, "no token": {idA, ""}, "guessed id": {"c_00000000000000000000000000000000", tokA}, "chosen id": {"my-own-id", tokA}} {
		for _, call := range [][3]string{{"GET", "", ""}, {"POST", "/messages", `{"text":"hello"}`}, {"POST", "/events", `{"type":"csat","score":1}`}, {"DELETE", "", ""}} {
			r := as(t, call[0], conv+"/"+c[0]+call[1], widgetKey, c[1], call[2])
			if r.status != 404 || r.str("error", "message") != "no such conversation" {
				t.Errorf("%s, %s %s: %d %v", name, call[0], call[1], r.status, r.body)
			}
		}
	}
	if r := as(t, "GET", conv+"/"+idB, widgetKey, tokB, ""); r.status != 200 || r.body["turn_count"] != 0.0 {
		t.Errorf("B after the attempts with A's token: %d %v", r.status, r.body)
	}
	for _, path := range []string{"/v1/nlu/parse", "/v1/kb/answer"} {
		if r := as(t, "POST", base+path, widgetKey, tokA, `{"text":"hi"}`); r.status != 403 && r.status != 404 {
			t.Errorf("public key on %s: %d", path, r.status)
		}
	}
	// The server-side frontend is trusted with every conversation.
	if r := as(t, "GET", conv+"/"+idA, clientKey, "", ""); r.status != 200 {
		t.Errorf("client key: %d", r.status)
	}
}

// TestCustomerIdentityIsSignedOrAnonymous: a widget cannot claim a customer or a tier;
// an identity signed with the key's secret sets both; a bad signature is refused.
func TestCustomerIdentityIsSignedOrAnonymous(t *testing.T) {
	base := keyedWorld(t)
	conv := base + "/v1/conversations"
	if r := as(t, "POST", conv, widgetKey, "", `{"customer":{"id":"c42","tier":"vip"}}`); r.status != 400 {
		t.Errorf("claimed customer at start: %d %v", r.status, r.body)
	}
	sig := httpapi.SignIdentity([]byte(identitySec), "c42", "vip", []string{"repeat-buyer"})
	r := as(t, "POST", conv, widgetKey, "", `{"identity":{"id":"c42","tier":"vip","tags":["repeat-buyer"],"signature":"`+sig+`"}}`)
	if r.status != 201 {
		t.Fatalf("signed identity: %d %v", r.status, r.body)
	}
	id, tok := r.str("conversation"), r.str("token")
	if v := as(t, "GET", conv+"/"+id, widgetKey, tok, ""); v.str("customer", "id") != "c42" || v.str("customer", "tier") != "vip" {
		t.Errorf("customer: %v", v.body["customer"])
	}
	if r := as(t, "POST", conv+"/"+id+"/messages", widgetKey, tok, `{"text":"hi","customer":{"id":"c42","tier":"gold"}}`); r.status != 400 {
		t.Errorf("claimed customer in a message: %d", r.status)
	}
	bad := strings.Replace(sig, sig[:2], "00", 1)
	if r := as(t, "POST", conv, widgetKey, "", `{"identity":{"id":"c42","tier":"vip","signature":"`+sig+`"}}`); r.status != 400 {
		t.Errorf("a signature over other tags: %d", r.status)
	}
	if r := as(t, "POST", conv, widgetKey, "", `{"identity":{"id":"c42","tier":"vip","tags":["repeat-buyer"],"signature":"`+bad+`"}}`); r.status != 400 {
		t.Errorf("a wrong signature: %d", r.status)
	}
}

// TestAgentEventsNeedAnAgentKey: a customer's frontend cannot take the conversation back
// from the agent.
func TestAgentEventsNeedAnAgentKey(t *testing.T) {
	base := keyedWorld(t)
	conv := base + "/v1/conversations"
	if r := as(t, "POST", conv+"/ag-1/messages", clientKey, "", `{"text":"I want to talk to a human"}`); r.str("source") != "handoff" {
		t.Fatalf("no handoff: %v", r.body)
	}
	s := as(t, "POST", conv, widgetKey, "", `{}`)
	as(t, "POST", conv+"/"+s.str("conversation")+"/messages", widgetKey, s.str("token"), `{"text":"转人工"}`)
	for _, c := range [][3]string{{"ag-1", clientKey, ""}, {s.str("conversation"), widgetKey, s.str("token")}} {
		if r := as(t, "POST", conv+"/"+c[0]+"/events", c[1], c[2], `{"type":"agent.released"}`); r.status != 403 {
			t.Errorf("agent.released with a %s key: %d %v", c[1][:6], r.status, r.body)
		}
	}
	if r := as(t, "POST", conv+"/ag-1/events", deskKey, "", `{"type":"csat","score":5}`); r.status != 403 {
		t.Errorf("the desk rating for the customer: %d", r.status)
	}
	if r := as(t, "POST", conv+"/ag-1/events", deskKey, "", `{"type":"agent.released"}`); r.status != 200 || r.body["handoff"].(map[string]any)["status"] != "released" {
		t.Errorf("the desk releasing: %d %v", r.status, r.body)
	}
}

// TestMessagesCannotReplaceTheConversationsCustomer: a later message naming another
// customer is refused; the tier and tags stay unless the same customer's frontend raises them.
func TestMessagesCannotReplaceTheConversationsCustomer(t *testing.T) {
	base := keyedWorld(t)
	url := base + "/v1/conversations/cust-1/messages"
	as(t, "POST", url, clientKey, "", `{"text":"hello","customer":{"id":"c1","tier":"vip","tags":["a"]}}`)
	if r := as(t, "POST", url, clientKey, "", `{"text":"hello","customer":{"id":"c2"}}`); r.status != 409 {
		t.Errorf("another customer: %d %v", r.status, r.body)
	}
	as(t, "POST", url, clientKey, "", `{"text":"hello","customer":{"id":"c1","tags":["b"]}}`)
	v := as(t, "GET", base+"/v1/conversations/cust-1", clientKey, "", "")
	if v.str("customer", "tier") != "vip" || len(v.body["customer"].(map[string]any)["tags"].([]any)) != 2 {
		t.Errorf("customer after: %v", v.body["customer"])
	}
}

// TestUnknownMethodsAndRoutesDoNotGrowMetrics: invented methods and paths, each a new
// value, add no series: they count as "other" and "unknown".
func TestUnknownMethodsAndRoutesDoNotGrowMetrics(t *testing.T) {
	api, _ := kbAPI(t)
	srv := contractServer(t, api)
	scrape := func() string {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for i := range 50 {
		req, _ := http.NewRequest(strings.Repeat("X", 1000)+fmt.Sprint(i), srv.URL+"/nowhere/"+fmt.Sprint(i), nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	text := scrape()
	if strings.Contains(text, "XXXX") || strings.Contains(text, "/nowhere") || !strings.Contains(text, `method="other",route="unknown"`) {
		t.Errorf("metrics grew with invented names (%d bytes)", len(text))
	}
}
