package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

const (
	clientKey = "client-secret-0123456789"
	editorKey = "editor-secret-0123456789"
	adminKey  = "admin-secret-01234567890"
	slowKey   = "slow-secret-012345678901"
)

// kbServer serves the demo model and a knowledge base holding the demo bot's articles,
// with API keys of every role.
func kbServer(t *testing.T) (*httptest.Server, *kb.KB) {
	t.Helper()
	api, k := kbAPI(t)
	return contractServer(t, api), k
}

func kbAPI(t testing.TB) (*httpapi.Server, *kb.KB) {
	t.Helper()
	clf, k := bundleModelAndKB(t)
	api, err := httpapi.New(engine.New(engine.Config{NLU: clf}), httpapi.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), KB: k,
		Keys: []httpapi.Key{
			{Name: "web", Role: httpapi.RoleClient, Secret: clientKey},
			{Name: "ann", Role: httpapi.RoleEditor, Secret: editorKey},
			{Name: "root", Role: httpapi.RoleAdmin, Secret: adminKey},
			{Name: "slow", Role: httpapi.RoleEditor, Secret: slowKey, Rate: 0.01, Burst: 2},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return api, k
}

// call sends a request with an API key and decodes the JSON answer (nil for none).
func call(t *testing.T, method, url, key, contentType, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, url, data)
		}
	} else if len(data) > 0 {
		out = map[string]any{"raw": string(data)}
	}
	return resp.StatusCode, resp.Header, out
}

func errMessage(out map[string]any) string {
	if e, ok := out["error"].(map[string]any); ok {
		m, _ := e["message"].(string)
		return m
	}
	return ""
}

func TestKBAuthorization(t *testing.T) {
	srv, _ := kbServer(t)
	u := srv.URL
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/v1/kb/articles", "", http.StatusUnauthorized},
		{"GET", "/v1/kb/articles", "wrong-key-0123456789", http.StatusUnauthorized},
		{"GET", "/v1/kb/articles", clientKey, http.StatusForbidden},
		{"GET", "/v1/kb/articles", editorKey, http.StatusOK},
		{"GET", "/v1/kb/articles", adminKey, http.StatusOK},
		{"POST", "/v1/nlu/parse", "", http.StatusUnauthorized},
		{"POST", "/v1/nlu/parse", editorKey, http.StatusForbidden},
		{"GET", "/healthz", "", http.StatusOK},
	} {
		body := ""
		if c.method == "POST" {
			body = `{"text":"hello"}`
		}
		if status, _, out := call(t, c.method, u+c.path, c.key, "", body); status != c.want {
			t.Errorf("%s %s with key %q: %d %v, want %d", c.method, c.path, c.key, status, out, c.want)
		}
	}
	// The slow key has a burst of 2 and then 0.01 requests/s.
	var status int
	var hdr http.Header
	for range 3 {
		status, hdr, _ = call(t, "GET", u+"/v1/kb/audit", slowKey, "", "")
	}
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("third request over the rate: %d, Retry-After %q; want 429 with Retry-After", status, hdr.Get("Retry-After"))
	}
}

func TestKBEditingAPI(t *testing.T) {
	srv, _ := kbServer(t)
	u := srv.URL + "/v1/kb"
	art := `{"id":"late-fee","questions":["is there a late payment fee?","逾期还款有罚息吗"],
		"answers":[{"id":"a","text":{"en":"Yes, 0.05% a day.","zh":"有，每天万分之五。"}}],"tags":["payment"]}`
	status, _, out := call(t, "POST", u+"/articles", editorKey, "", art)
	if status != http.StatusCreated || out["version"].(float64) != 1 || out["status"] != "draft" || out["author"] != "ann" {
		t.Fatalf("create: %d %v", status, out)
	}
	if status, _, out := call(t, "POST", u+"/articles", editorKey, "", art); status != http.StatusConflict {
		t.Errorf("create twice: %d %v", status, out)
	}
	if _, _, out := call(t, "GET", u+"/search?q=late+payment+fee", editorKey, "", ""); len(out["hits"].([]any)) != 0 && out["hits"].([]any)[0].(map[string]any)["id"] == "late-fee" {
		t.Errorf("a draft is searchable: %v", out)
	}
	if status, _, out := call(t, "POST", u+"/articles/late-fee/publish", editorKey, "", ""); status != http.StatusOK || out["version"].(float64) != 2 {
		t.Fatalf("publish: %d %v", status, out)
	}
	_, _, out = call(t, "GET", u+"/search?q="+"逾期罚息&lang=zh&k=3", editorKey, "", "")
	hits := out["hits"].([]any)
	if len(hits) == 0 || hits[0].(map[string]any)["id"] != "late-fee" || hits[0].(map[string]any)["score"].(float64) <= 0 {
		t.Fatalf("search after publish: %v", out)
	}
	// A stale version is refused; the right one is accepted.
	upd := strings.Replace(art, `"id":"late-fee",`, `"id":"late-fee","version":1,"status":"published",`, 1)
	if status, _, out := call(t, "PUT", u+"/articles/late-fee", editorKey, "", upd); status != http.StatusConflict {
		t.Errorf("update of version 1 when at 2: %d %v", status, out)
	}
	upd = strings.Replace(upd, `"version":1`, `"version":2`, 1)
	if status, _, out := call(t, "PUT", u+"/articles/late-fee", adminKey, "", upd); status != http.StatusOK || out["author"] != "root" {
		t.Errorf("update: %d %v", status, out)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"id":"x","questions":[],"answers":[{"text":{"en":"a"}}]}`, "questions"},
		{`{"id":"x y","questions":["q"],"answers":[{"text":{"en":"a"}}]}`, "id must match"},
		{`{"id":"x","questions":["q"],"answers":[{"text":{"fr":"a"}}]}`, "language must be zh or en"},
		{`{"id":"x","questions":["q"],"answers":[],"colour":1}`, `unknown field "colour"`},
		{`{"id":"x","questions":"q"}`, `field "questions"`},
	} {
		status, _, out := call(t, "POST", u+"/articles", editorKey, "", bad.body)
		if status != http.StatusBadRequest || !strings.Contains(errMessage(out), bad.want) {
			t.Errorf("%s: %d %q, want 400 naming %q", bad.body, status, errMessage(out), bad.want)
		}
	}
	if status, _, out := call(t, "GET", u+"/articles/late-fee", editorKey, "", ""); status != http.StatusOK || out["id"] != "late-fee" {
		t.Errorf("get article: %d %v", status, out)
	}
	if status, _, _ := call(t, "GET", u+"/articles/nope", editorKey, "", ""); status != http.StatusNotFound {
		t.Errorf("unknown article: %d", status)
	}
	if status, _, out := call(t, "GET", u+"/articles/late-fee/history", editorKey, "", ""); status != http.StatusOK || len(out["versions"].([]any)) != 3 {
		t.Errorf("history: %d %v", status, out)
	}
	if status, _, _ := call(t, "DELETE", u+"/articles/late-fee?version=3", editorKey, "", ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	_, _, out = call(t, "GET", u+"/audit?limit=4", editorKey, "", "")
	entries := out["entries"].([]any)
	if len(entries) != 4 || entries[0].(map[string]any)["action"] != "delete" || entries[0].(map[string]any)["actor"] != "ann" {
		t.Errorf("audit: %v", out)
	}
	for _, q := range []string{"/search?q=", "/search?q=%20%20", "/search?q=x&k=0", "/search?q=x&lang=fr", "/audit?limit=0"} {
		if status, _, out := call(t, "GET", u+q, editorKey, "", ""); status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", q, status, out)
		}
	}
	if status, _, out := call(t, "GET", u+`/search?q=%2B-%3A%5E~*%3F%22()+refund`, editorKey, "", ""); status != http.StatusOK || len(out["hits"].([]any)) == 0 {
		t.Errorf("query syntax characters: %d %v", status, out)
	}
}

func TestKBImportExport(t *testing.T) {
	srv, k := kbServer(t)
	u := srv.URL + "/v1/kb"
	before := len(k.List(kb.Filter{}))
	bad := "id,questions,answer_en\nnew-1,how do I X,do Y\nnew-2,,do Z\n"
	status, _, out := call(t, "POST", u+"/import", editorKey, "text/csv", bad)
	if status != http.StatusBadRequest || !strings.Contains(errMessage(out), "body:3") {
		t.Fatalf("bad import: %d %q, want 400 naming line 3", status, errMessage(out))
	}
	if n := len(k.List(kb.Filter{})); n != before {
		t.Fatalf("a refused import wrote %d articles", n-before)
	}
	good := "id,questions,answer_en,answer_zh\nnew-1,how do I X,do Y,做Y\nnew-2,how do I Z,do Z,做Z\n"
	status, _, out = call(t, "POST", u+"/import", editorKey, "text/csv", good)
	if status != http.StatusOK || out["created"].(float64) != 2 {
		t.Fatalf("import: %d %v", status, out)
	}
	status, _, out = call(t, "GET", u+"/export?format=csv", editorKey, "", "")
	if status != http.StatusOK || !strings.Contains(out["raw"].(string), "new-2,,published,,how do I Z,做Z,do Z") {
		t.Fatalf("export: %d %v", status, out)
	}
}

func TestKBExperimentAPI(t *testing.T) {
	srv, _ := kbServer(t)
	u := srv.URL + "/v1/kb"
	for _, bad := range []string{
		`{"id":"e","article":"refund-time","variants":[{"answer":"v1","weight":-1},{"answer":"short","weight":1}]}`,
		`{"id":"e","article":"refund-time","variants":[{"answer":"v1","weight":0},{"answer":"short","weight":0}]}`,
		`{"id":"e","article":"refund-time","variants":[{"answer":"v1","weight":1}]}`,
	} {
		if status, _, out := call(t, "POST", u+"/experiments", editorKey, "", bad); status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", bad, status, out)
		}
	}
	exp := `{"id":"refund-wording","article":"refund-time","variants":[{"answer":"v1","weight":1},{"answer":"short","weight":1}]}`
	if status, _, out := call(t, "POST", u+"/experiments", editorKey, "", exp); status != http.StatusCreated {
		t.Fatalf("create experiment: %d %v", status, out)
	}
	if status, _, _ := call(t, "POST", u+"/experiments", clientKey, "", exp); status != http.StatusForbidden {
		t.Errorf("a client created an experiment: %d", status)
	}
	if status, _, out := call(t, "GET", u+"/experiments", editorKey, "", ""); status != http.StatusOK || len(out["experiments"].([]any)) != 1 {
		t.Errorf("list experiments: %d %v", status, out)
	}
	variants := map[string]bool{}
	for _, cust := range []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"} {
		body := `{"text":"退款多久能到账","lang":"zh","customer":"` + cust + `","conversation":"conv-` + cust + `"}`
		status, _, out := call(t, "POST", u+"/answer", clientKey, "", body)
		if status != http.StatusOK || out["article"] != "refund-time" || out["found"] != true || out["experiment"] != "refund-wording" {
			t.Fatalf("answer: %d %v", status, out)
		}
		variants[out["variant"].(string)] = true
		if status, _, out := call(t, "POST", u+"/feedback", clientKey, "", `{"article":"refund-time","customer":"`+cust+`","conversation":"conv-`+cust+`","csat":5,"thumb":1}`); status != http.StatusNoContent {
			t.Fatalf("feedback: %d %v", status, out)
		}
	}
	if status, _, out := call(t, "POST", u+"/feedback", clientKey, "", `{"article":"refund-time","conversation":"x","csat":9}`); status != http.StatusBadRequest {
		t.Errorf("csat 9: %d %v", status, out)
	}
	status, _, out := call(t, "GET", u+"/experiments/refund-wording", editorKey, "", "")
	if status != http.StatusOK || out["decision"] != "collecting" || len(out["variants"].([]any)) != 2 {
		t.Fatalf("report: %d %v", status, out)
	}
	var exposures, csat float64
	for _, v := range out["variants"].([]any) {
		c := v.(map[string]any)["counts"].(map[string]any)
		exposures += c["exposures"].(float64)
		csat += c["csat_n"].(float64)
	}
	if exposures != 8 || csat != 8 || len(variants) != 2 {
		t.Errorf("report counts: %v exposures, %v CSAT, variants seen %v", exposures, csat, variants)
	}
	if status, _, out := call(t, "POST", u+"/experiments/refund-wording/promote", editorKey, "", `{"variant":"short"}`); status != http.StatusOK || out["winner"] != "short" {
		t.Fatalf("promote: %d %v", status, out)
	}
	_, _, out = call(t, "POST", u+"/answer", clientKey, "", `{"text":"refund how long","lang":"en"}`)
	if out["variant"] != "short" || out["experiment"] != nil {
		t.Errorf("after promotion: %v", out)
	}
	second := `{"id":"wording-2","article":"refund-time","variants":[{"answer":"short","weight":1},{"answer":"v1","weight":1}]}`
	if status, _, out := call(t, "POST", u+"/experiments", editorKey, "", second); status != http.StatusCreated {
		t.Fatalf("second experiment: %d %v", status, out)
	}
	if status, _, out := call(t, "POST", u+"/experiments/wording-2/stop", editorKey, "", ""); status != http.StatusOK || out["stopped"] != true {
		t.Errorf("stop: %d %v", status, out)
	}
	if _, _, out := call(t, "POST", u+"/answer", clientKey, "", `{"text":"refund how long","lang":"en"}`); out["experiment"] != nil {
		t.Errorf("a stopped experiment still assigns: %v", out)
	}
}

// bundleModelAndKB loads the demo bot's model and its KB articles (in memory), closed when
// the test ends.
func bundleModelAndKB(t testing.TB) (*models.Classifier, *kb.KB) {
	t.Helper()
	clf, err := models.Load(testenv.Runtime(t), filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "model"), models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clf.Close() })
	j, _ := kb.OpenJournal("")
	k, err := kb.Open(context.Background(), j, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	if _, err := k.Import(context.Background(), bundleArticles(t), "bundle", true); err != nil {
		t.Fatal(err)
	}
	return clf, k
}

// bundleArticles are the demo bot's knowledge-base articles.
func bundleArticles(t testing.TB) []kb.Article {
	t.Helper()
	path := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "kb", "faq.yaml")
	data, _ := os.ReadFile(path)
	arts, err := kb.ParseYAML(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return arts
}

// FuzzQuery: whatever query string an editor sends to the routes that bind one, the answer
// is 200 or a 400 naming the parameter, never a 5xx.
func FuzzQuery(f *testing.F) {
	api, _ := kbAPI(f)
	srv := contractServer(nil, api)
	f.Cleanup(srv.Close)
	for _, s := range []string{"q=退款&k=3", "q=refund&lang=en", "k=0", "k=99999999999999999999", "limit=-1", "status=draft&tag=x", "format=csv", "q=%ff", "lang=fr&q=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/v1/kb/search", "/v1/kb/audit", "/v1/kb/articles", "/v1/kb/export"} {
			req, err := http.NewRequest("GET", srv.URL+path+"?"+query, nil)
			if err != nil {
				return // not a URL a client could send
			}
			req.Header.Set("Authorization", "Bearer "+editorKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 400 {
				t.Fatalf("%s?%s: status %d", path, query, resp.StatusCode)
			}
		}
	})
}
