package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
	anbolt "github.com/kefu-ai/kefu/analytics/boltstore"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/handoff"
	boxmem "github.com/kefu-ai/kefu/handoff/inmem"
	"github.com/kefu-ai/kefu/handoff/outboxtest"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
)

// consoleServer is kefu with the demo bot, model and KB, figures in an embedded file, and
// an editor and a client key.
func consoleServer(t *testing.T, ttl time.Duration, noKeys ...bool) *httptest.Server {
	return consoleServerWith(t, ttl, nil, noKeys...)
}

// consoleServerWith is consoleServer with its handoff outbox (nil: one nobody runs).
func consoleServerWith(t *testing.T, ttl time.Duration, box handoff.Outbox, noKeys ...bool) *httptest.Server {
	t.Helper()
	clf, k := bundleModelAndKB(t)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := anbolt.New(db)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(t, "http://127.0.0.1:1"), nil), KB: k, Logger: log,
		Analytics: analytics.NewRecorder(st, nil), Outbox: box})
	keys := []httpapi.Key{{Name: "ann", Role: httpapi.RoleEditor, Secret: editorKey}, {Name: "shop", Role: httpapi.RoleClient, Secret: clientKey}}
	if len(noKeys) > 0 {
		keys = nil
	}
	api, err := httpapi.New(eng, httpapi.Config{Logger: log, KB: k, SessionTTL: ttl, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

func customer(t *testing.T, base, conv, text string) map[string]any {
	t.Helper()
	r := as(t, "POST", base+"/v1/conversations/"+conv+"/messages", clientKey, "", `{"text": `+quote(text)+`}`)
	if r.status != 200 {
		t.Fatalf("%q: %d %v", text, r.status, r.body)
	}
	return r.body
}

// TestConsoleJourneyInABrowser: an editor signs in in a real Chromium (a client key is
// refused), sees the figures of the customers' conversations, finds the question nothing
// answered, makes an article of it from the page, tries it, and the next customer who asks
// gets it; the chat panel talks to the bot and shows the model's reading. Screenshots at
// 1280 and 390 px, in English and Chinese, go to $KEFU_SCREENSHOTS (default a temporary
// folder, logged).
func TestConsoleJourneyInABrowser(t *testing.T) {
	srv := consoleServer(t, 0)
	for i, text := range []string{"你好", "你们有学生折扣吗", "你们有学生折扣吗？", "where is my order", "学生有没有折扣"} {
		customer(t, srv.URL, "cust-"+string(rune('a'+i)), text)
	}
	if r := customer(t, srv.URL, "cust-x", "你们有学生折扣吗"); r["source"] != "clarify" {
		t.Fatalf("the question is answered before the article exists (%v): the journey would prove nothing", r["source"])
	}
	shots := os.Getenv("KEFU_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "kefu-console-screenshots")
	}
	os.MkdirAll(shots, 0o755)
	b := testenv.NewBrowser(t)
	text := func(selector string) string {
		t.Helper()
		var s string
		b.Eval(`const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : "";`, &s, selector)
		return s
	}
	set := func(selector, value string) {
		t.Helper()
		var ok bool
		b.Eval(`const e = document.querySelector(arguments[0]); if (!e) return false; e.value = arguments[1]; return true;`, &ok, selector, value)
		if !ok {
			t.Fatalf("no field %s", selector)
		}
	}
	where := func() string {
		var u string
		b.Eval(`return location.pathname + location.search;`, &u)
		return u
	}
	// submit clicks a form's button and waits (at most 10 s) until the next page has
	// selector: a click returns before the page it asked for has loaded.
	submit := func(button, selector string) {
		t.Helper()
		b.Eval(`document.documentElement.dataset.old = "1"; return null;`, nil)
		b.Click(button)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var ready bool
			b.Eval(`return !document.documentElement.dataset.old && document.readyState === "complete" && !!document.querySelector(arguments[0]);`, &ready, selector)
			if ready {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after clicking %s, no page with %s (at %s)", button, selector, where())
			}
		}
	}

	b.Open(srv.URL + "/console/?lang=en")
	if !strings.HasPrefix(where(), "/console/signin") {
		t.Fatalf("an anonymous visit lands on %s, not the sign-in page", where())
	}
	set("#key", clientKey)
	submit("#signin", "#error")
	if e := text("#error"); !strings.Contains(e, "client key cannot sign in") {
		t.Fatalf("a client key at sign-in: %q", e)
	}
	set("#key", editorKey)
	submit("#signin", "#fig-conversations")
	if got := text("#fig-conversations"); got != "6" {
		t.Fatalf("the dashboard shows %q conversations; want 6", got)
	}
	b.Screenshot(filepath.Join(shots, "dashboard-en-1280.png"))

	b.Open(srv.URL + "/console/unanswered")
	if q := text("#group-0 .q"); !strings.Contains(q, "学生折扣") {
		t.Fatalf("the first unanswered group is %q", q)
	}
	if meta := text("#group-0 .meta"); !strings.Contains(meta, "4 times") || !strings.Contains(meta, "折") {
		t.Errorf("the group's count and terms: %q; want 4 times (four customers asked, one in other words)", meta)
	}
	b.Eval(`document.querySelector('#group-0 details').open = true; return null;`, nil)
	b.Screenshot(filepath.Join(shots, "unanswered-en-1280.png"))
	set("#id-0", "student-discount")
	set("#answer-0", "学生凭学生证购买教材类商品享九折优惠。")
	submit("#create-0", "#created")
	if got := text("#created"); !strings.Contains(got, "student-discount") {
		t.Fatalf("after creating the article: %s shows %q", where(), got)
	}
	if got := text("#answer-article"); got != "student-discount" {
		t.Errorf("try it answers with %q; want the new article", got)
	}
	if got := text("#answer blockquote"); !strings.Contains(got, "九折") {
		t.Errorf("try it shows the answer %q", got)
	}
	if got := text("#articles"); !strings.Contains(got, "refund") {
		t.Errorf("the article list: %q", got)
	}
	b.Screenshot(filepath.Join(shots, "kb-en-1280.png"))
	if r := customer(t, srv.URL, "cust-y", "你们有学生折扣吗"); r["source"] != "kb" || r["kb"].(map[string]any)["article"] != "student-discount" {
		t.Errorf("the next customer gets %v %v; want the new article", r["source"], r["kb"])
	}
	if r := as(t, "POST", srv.URL+"/v1/kb/answer", clientKey, "", `{"text": "学生有折扣吗"}`); r.status != 200 || r.body["article"] != "student-discount" {
		t.Errorf("POST /v1/kb/answer: %d %v; want the new article", r.status, r.body)
	}

	// Edit the new article; then lose a race: another editor saves while the form is open.
	b.Open(srv.URL + "/console/kb/edit?id=student-discount")
	set("#en0", "Students get 10 % off textbooks.")
	submit("#save", "#editor")
	b.Open(srv.URL + "/console/kb/edit?id=student-discount")
	set("#zh0", "我的修改")
	api := func(method, path, body string) reply {
		t.Helper()
		return as(t, method, srv.URL+path, editorKey, "", body)
	}
	art := api("GET", "/v1/kb/articles/student-discount", "").body
	art["answers"] = []any{map[string]any{"id": "v1", "text": map[string]any{"zh": "他们的修改", "en": "theirs"}}}
	body, _ := json.Marshal(art)
	if r := api("PUT", "/v1/kb/articles/student-discount", string(body)); r.status != 200 {
		t.Fatalf("the other editor's save: %d %v", r.status, r.body)
	}
	submit("#save", "#theirs")
	if e := text("#form-error"); !strings.Contains(e, "version") {
		t.Errorf("a lost race says %q", e)
	}
	if th := text("#theirs"); !strings.Contains(th, "他们的修改") {
		t.Errorf("their version beside the form: %q", th)
	}
	if got := api("GET", "/v1/kb/articles/student-discount", "").body; !strings.Contains(fmt.Sprint(got["answers"]), "他们的修改") {
		t.Errorf("the lost race overwrote their version: %v", got["answers"])
	}
	b.Screenshot(filepath.Join(shots, "conflict-en-1280.png"))
	// History: the diff of the last two versions, then restore the first.
	b.Open(srv.URL + "/console/kb/history?id=student-discount")
	if d := text("#diff .changed"); !strings.Contains(d, "他们的修改") {
		t.Errorf("the diff's changed row: %q", d)
	}
	submit("#restore-1", "#versions")
	if got := api("GET", "/v1/kb/articles/student-discount", "").body; !strings.Contains(fmt.Sprint(got["answers"]), "九折") || got["version"] != 5.0 { // created, published, edited, theirs, restored
		t.Errorf("after restoring v1: version %v, answers %v", got["version"], got["answers"])
	}

	// An A/B test of refund-time's two wordings, from the page.
	b.Open(srv.URL + "/console/experiments?article=refund-time")
	set("#exp-id", "wording")
	set("#exp-variants", "v1, short")
	submit("#start", "#arms")
	for i := range 6 {
		customer(t, srv.URL, fmt.Sprintf("ab-%d", i), "退款多久到账？")
	}
	b.Open(srv.URL + "/console/experiments/report?id=wording")
	if arms := text("#arms"); !strings.Contains(arms, "short") {
		t.Errorf("the report's arms: %q", arms)
	}
	var exposures float64
	b.Eval(`let n = 0; document.querySelectorAll('#arms tbody tr').forEach(r => n += +r.cells[2].textContent); return n;`, &exposures)
	if exposures != 6 {
		t.Errorf("the report counts %v exposures; want 6", exposures)
	}
	b.Screenshot(filepath.Join(shots, "report-en-1280.png"))
	submit("#promote-short", "#decision")
	if e := api("GET", "/v1/kb/experiments/wording", "").body; e["experiment"].(map[string]any)["winner"] != "short" {
		t.Errorf("after promoting: %v", e["experiment"])
	}

	// A supervisor opens a conversation that was handed off.
	customer(t, srv.URL, "angry-1", "我要投诉，你们太差劲了")
	b.Open(srv.URL + "/console/conversations?handoff=on")
	if list := text("#conversations"); !strings.Contains(list, "angry-1") || strings.Contains(list, "cust-a") {
		t.Errorf("handed-off conversations: %q", list)
	}
	b.Click(`a[href="/console/conversation?id=angry-1"]`)
	for i := 0; i < 100 && text("#handoff") == ""; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if h := text("#handoff"); !strings.Contains(h, "complaint") || !strings.Contains(h, "general") {
		t.Errorf("the conversation's handoff: %q", h)
	}
	if tr := text("#transcript"); !strings.Contains(tr, "我要投诉") || !strings.Contains(tr, "angry") {
		t.Errorf("the transcript with readings: %q", tr)
	}
	b.Screenshot(filepath.Join(shots, "conversation-en-1280.png"))

	b.Open(srv.URL + "/console/chat?lang=zh")
	set("#text", "我的订单到哪了")
	submit("#send", "#transcript .turn")
	if tr := text("#transcript"); !strings.Contains(tr, "我的订单到哪了") || !strings.Contains(tr, "order_status") {
		t.Errorf("the chat panel shows %q; want the message and the model's reading", tr)
	}
	b.Screenshot(filepath.Join(shots, "chat-zh-1280.png"))
	b.SetSize(390, 844)
	b.Open(srv.URL + "/console/")
	b.Screenshot(filepath.Join(shots, "dashboard-zh-390.png"))
	if got := text("nav a[aria-current=page]"); got != "服务指标" {
		t.Errorf("in Chinese the current page is called %q", got)
	}
	b.Open(srv.URL + "/console/chat")
	b.Screenshot(filepath.Join(shots, "chat-zh-390.png"))
	b.Open(srv.URL + "/console/chat?lang=en")
	b.Screenshot(filepath.Join(shots, "chat-en-390.png"))
	var overflow bool
	b.Eval(`return document.documentElement.scrollWidth > window.innerWidth + 1;`, &overflow)
	if overflow {
		t.Errorf("at 390 px the chat page scrolls sideways")
	}
	t.Logf("screenshots in %s", shots)
}

// TestConsoleRefusals: a form without its CSRF token is refused (403) and changes nothing;
// a session expires; the pages allow no script and no framing.
func TestConsoleRefusals(t *testing.T) {
	srv := consoleServer(t, time.Second)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(srv.URL+"/console/signin", url.Values{"key": {editorKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/" || resp.StatusCode != 200 {
		t.Fatalf("sign-in ends at %s with %d", resp.Request.URL.Path, resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	var cookie *http.Cookie
	for _, c := range jar.Cookies(resp.Request.URL) {
		if c.Name == "kefu_console" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	setCookie := resp.Request.Response.Header.Get("Set-Cookie")
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Strict") {
		t.Errorf("session cookie %q; want HttpOnly and SameSite=Strict", setCookie)
	}
	for _, path := range []string{"/console/chat", "/console/unanswered/article", "/console/signout"} {
		resp, err := client.PostForm(srv.URL+path, url.Values{"text": {"你好"}, "id": {"x-article"}, "answer": {"a"}, "questions": {"q"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "CSRF") {
			t.Errorf("POST %s without the CSRF token: %d", path, resp.StatusCode)
		}
	}
	if r := as(t, "GET", srv.URL+"/v1/kb/articles/x-article", editorKey, "", ""); r.status != 404 {
		t.Errorf("a refused form created the article: %d", r.status)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, err = client.Get(srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/signin" {
		t.Errorf("an expired session reaches %s", resp.Request.URL.Path)
	}
}

// TestConsoleWithoutKeys: with no keys (kefu serve allows that on loopback only) the
// console signs the operator in as the local admin, says so, and keeps one session for
// every visit.
func TestConsoleWithoutKeys(t *testing.T) {
	srv := consoleServer(t, 0, true)
	var ids []string
	for range 2 {
		resp, err := http.Get(srv.URL + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "local admin") {
			t.Fatalf("without keys: %d", resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "kefu_console" {
				ids = append(ids, c.Value)
			}
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("two visits got sessions %v; want the one local session", ids)
	}
	resp, err := http.Get(srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `id="first-steps"`) || !strings.Contains(string(body), `href="/console/chat"`) {
		t.Errorf("a fresh server's figures page does not point a newcomer at the chat panel")
	}
}

// signIn returns a client holding an editor's console session and its CSRF token.
func signIn(t *testing.T, base string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(base+"/console/signin", url.Values{"key": {editorKey}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, ok := strings.Cut(string(page), `name="csrf" value="`)
	token, _, _ := strings.Cut(rest, `"`)
	if !ok || token == "" {
		t.Fatal("no CSRF token on the signed-in page")
	}
	return client, token
}

// TestConsoleImport: a file with an error changes nothing and the page names its line; a
// good file is imported whole.
func TestConsoleImport(t *testing.T) {
	srv := consoleServer(t, 0)
	client, token := signIn(t, srv.URL)
	upload := func(name, content string) (int, string) {
		t.Helper()
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		w.WriteField("csrf", token)
		f, _ := w.CreateFormFile("file", name)
		f.Write([]byte(content))
		w.Close()
		resp, err := client.Post(srv.URL+"/console/kb/import", w.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(page)
	}
	bad := "articles:\n  - id: gift-wrap-new\n    questions:\n      - Do you wrap gifts\n    answers:\n      - en: Yes.\n  - id: bad id!\n    questions:\n      - x\n    answers:\n      - en: y\n"
	code, page := upload("kb.yaml", bad)
	if _, msg, _ := strings.Cut(page, `id="error">`); code != 400 || !strings.Contains(msg, "kb.yaml:7") {
		t.Errorf("a bad file: %d; the page does not name kb.yaml:7: %.200s", code, msg)
	}
	article := func() int { return as(t, "GET", srv.URL+"/v1/kb/articles/gift-wrap-new", editorKey, "", "").status }
	if r := article(); r != 404 {
		t.Errorf("a refused import created an article: %d", r)
	}
	code, page = upload("kb.yaml", strings.Split(bad, "  - id: bad")[0])
	if code != 200 || !strings.Contains(page, `id="imported"`) {
		t.Errorf("a good file: %d", code)
	}
	if r := article(); r != 200 {
		t.Errorf("the imported article: %d", r)
	}
	resp, err := client.Get(srv.URL + "/console/kb/export?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(csv), "gift-wrap-new") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("export: %s", resp.Header.Get("Content-Type"))
	}
}

// BenchmarkConsolePages: each page's server time with 10,000 articles and 100,000
// conversations in the index (the bound: 200 ms).
func BenchmarkConsolePages(b *testing.B) {
	clf, k := bundleModelAndKB(b)
	var arts []kb.Article
	for i := range 10000 {
		arts = append(arts, kb.Article{ID: fmt.Sprintf("gen-%05d", i), Status: kb.Published, Questions: []string{fmt.Sprintf("question number %d about order %d", i, i*7)},
			Answers: []kb.Answer{{ID: "v1", Text: map[string]string{"en": fmt.Sprintf("answer %d", i)}}}})
	}
	if _, err := k.Import(b.Context(), arts, "bench", false); err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(b.TempDir(), "kefu.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st, _ := anbolt.New(db)
	now := time.Now()
	for i := 0; i < 100000; i += 5000 {
		var batch analytics.Batch
		for j := i; j < i+5000; j++ {
			info, _ := json.Marshal(analytics.Conversation{ID: fmt.Sprintf("conv-%06d", j), Last: now.Add(-time.Duration(j) * time.Second), Channel: "web", Lang: "en", Turns: 3, Source: "kb", HandedOff: j%10 == 0})
			batch.Puts = append(batch.Puts, analytics.Put{Set: analytics.Recent, Member: fmt.Sprintf("conv-%06d", j), Score: now.Add(-time.Duration(j) * time.Second), Seq: j, Info: info})
		}
		if err := st.Apply(b.Context(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(b, "http://127.0.0.1:1"), nil), KB: k, Logger: log, Analytics: analytics.NewRecorder(st, nil)})
	api, err := httpapi.New(eng, httpapi.Config{Logger: log, KB: k})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for _, page := range []string{"/console/", "/console/kb", "/console/kb?q=order+350&page=3", "/console/conversations", "/console/conversations?handoff=on", "/console/unanswered", "/console/experiments"} {
		b.Run(page, func(b *testing.B) {
			for b.Loop() {
				resp, err := client.Get(srv.URL + page)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: %d", page, resp.StatusCode)
				}
			}
		})
	}
}

// TestConsoleRetriesADeadLetter: a supervisor sees the handoff that failed every attempt on
// the conversation's page and retries it once the desk is back: it is delivered.
func TestConsoleRetriesADeadLetter(t *testing.T) {
	var fixed atomic.Bool
	var delivered atomic.Int32
	box := boxmem.NewOutbox(outboxtest.Options)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go box.Run(ctx, func(_ context.Context, d handoff.Delivery) error {
		if !fixed.Load() {
			return errors.New("desk down")
		}
		delivered.Add(1)
		return nil
	})
	srv := consoleServerWith(t, 0, box)
	customer(t, srv.URL, "dl-7", "我要投诉，你们太差劲了")
	client, token := signIn(t, srv.URL)
	var page string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := client.Get(srv.URL + "/console/conversation?id=dl-7")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if page = string(b); strings.Contains(page, `id="retry"`) {
			break
		}
	}
	_, rest, ok := strings.Cut(page, `name="key" value="`)
	key, _, _ := strings.Cut(rest, `"`)
	if !ok || !strings.HasPrefix(key, "dl-7:handoff:") || !strings.Contains(page, "desk down") {
		t.Fatalf("the conversation's page shows no dead handoff to retry")
	}
	fixed.Store(true)
	resp, err := client.PostForm(srv.URL+"/console/deadletters/retry", url.Values{"csrf": {token}, "key": {key}, "conversation": {"dl-7"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/conversation" {
		t.Fatalf("retry: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for deadline := time.Now().Add(5 * time.Second); delivered.Load() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if delivered.Load() != 1 {
		t.Errorf("delivered %d times after the retry", delivered.Load())
	}
}

// TestConsoleEditKeepsEveryVariant: an article with more answer variants than the editor's
// empty rows keeps them all when saved from the console.
func TestConsoleEditKeepsEveryVariant(t *testing.T) {
	srv := consoleServer(t, 0)
	api := func(method, path, body string) reply {
		t.Helper()
		return as(t, method, srv.URL+path, editorKey, "", body)
	}
	var answers []string
	for i := range 5 {
		answers = append(answers, fmt.Sprintf(`{"id": "w%d", "text": {"en": "wording %d"}}`, i, i))
	}
	if r := api("POST", "/v1/kb/articles", `{"id": "many", "questions": ["many wordings?"], "answers": [`+strings.Join(answers, ",")+`]}`); r.status != 201 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	client, token := signIn(t, srv.URL)
	resp, err := client.Get(srv.URL + "/console/kb/edit?id=many")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"csrf": {token}, "id": {"many"}, "version": {"1"}, "status": {"draft"}, "questions": {"many wordings?"}}
	_, rest, _ := strings.Cut(string(page), `name="variant_count" value="`)
	count, _, _ := strings.Cut(rest, `"`)
	form.Set("variant_count", count)
	for i := range 5 {
		form.Set(fmt.Sprintf("variant%d", i), fmt.Sprintf("w%d", i))
		form.Set(fmt.Sprintf("en%d", i), fmt.Sprintf("wording %d, edited", i))
	}
	resp, err = client.PostForm(srv.URL+"/console/kb/edit", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := api("GET", "/v1/kb/articles/many", "").body
	if n := len(got["answers"].([]any)); count != "5" || n != 5 {
		t.Errorf("the form showed %s variants; after saving the article has %d; want 5", count, n)
	}
}
