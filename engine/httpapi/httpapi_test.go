package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
)

var (
	serverOnce sync.Once
	server     *httptest.Server
)

// demoServer serves the embedded demo model (cmd/kefu/bot/model) over a real listener.
func demoServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	rt := testenv.Runtime(tb)
	serverOnce.Do(func() {
		clf, err := models.Load(rt, filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "model"), models.Config{})
		if err != nil {
			tb.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		api, err := httpapi.New(engine.New(engine.Config{NLU: clf}), httpapi.Config{BodyLimit: 256 << 10, Logger: log})
		if err != nil {
			panic(err)
		}
		server = contractServer(nil, api)
	})
	return server
}

func post(tb testing.TB, url, body string) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		tb.Fatalf("status %d, body %q is not JSON: %v", resp.StatusCode, data, err)
	}
	return resp.StatusCode, out
}

func TestParseUnderstandsChineseAndEnglish(t *testing.T) {
	srv := demoServer(t)
	cases := []struct {
		text, lang, intent, emotion string
	}{
		{"where is my order?", "en", "order_status", ""},
		{"I want a refund please", "en", "refund", ""},
		{"let me talk to a human", "en", "human_agent", ""},
		{"我要退款", "zh", "refund", ""},
		{"帮我查一下订单到哪了", "zh", "order_status", ""},
		{"我的账号被锁了，登录不了", "zh", "account_locked", ""},
		{"气死我了，太离谱了", "zh", "", "angry"},
		{"this is ridiculous, I am furious", "en", "", "angry"},
	}
	for _, tc := range cases {
		status, out := post(t, srv.URL+"/v1/nlu/parse", `{"text": `+quote(tc.text)+`}`)
		if status != http.StatusOK {
			t.Fatalf("%q: status %d %v", tc.text, status, out)
		}
		heads := out["heads"].(map[string]any)
		intent, emotion := heads["intent"].(map[string]any), heads["emotion"].(map[string]any)
		if out["lang"] != tc.lang {
			t.Errorf("%q: lang %v, want %s", tc.text, out["lang"], tc.lang)
		}
		if tc.intent != "" && intent["label"] != tc.intent {
			t.Errorf("%q: intent %v (%v), want %s", tc.text, intent["label"], intent["confidence"], tc.intent)
		}
		if tc.emotion != "" && emotion["label"] != tc.emotion {
			t.Errorf("%q: emotion %v, want %s", tc.text, emotion["label"], tc.emotion)
		}
		ranking := intent["ranking"].([]any)
		if len(ranking) != 3 || ranking[0].(map[string]any)["label"] != intent["label"] {
			t.Errorf("%q: ranking %v", tc.text, ranking)
		}
		if m := out["model"].(map[string]any); m["name"] != "kefu-bot" || m["version"] == "" {
			t.Errorf("model %v", m)
		}
	}
	status, out := post(t, srv.URL+"/v1/nlu/parse", `{"text": "refund", "lang": "en", "top_k": 20}`)
	if status != http.StatusOK || len(out["heads"].(map[string]any)["emotion"].(map[string]any)["ranking"].([]any)) != 6 {
		t.Errorf("top_k 20 on 6 emotions: %d %v", status, out)
	}
}

func TestParseRefusesBadInput(t *testing.T) {
	srv := demoServer(t)
	cases := []struct {
		name, body string
		status     int
		mention    string
	}{
		{"empty body", ``, 400, "empty body"},
		{"not json", `{"text": `, 400, "invalid JSON"},
		{"two values", `{"text": "a"} {"text": "b"}`, 400, "more than one"},
		{"unknown field", `{"txt": "hello"}`, 400, `"txt"`},
		{"wrong type", `{"text": 42}`, 400, `"text"`},
		{"missing text", `{}`, 400, "text is empty"},
		{"empty text", `{"text": ""}`, 400, "text is empty"},
		{"whitespace", `{"text": " \t\n "}`, 400, "text is empty"},
		{"invalid utf-8", "{\"text\": \"\xff\xfe\"}", 400, "UTF-8"},
		{"bad lang", `{"text": "hi", "lang": "fr"}`, 400, "lang"},
		{"bad top_k", `{"text": "hi", "top_k": 1000}`, 400, "top_k"},
		{"negative top_k", `{"text": "hi", "top_k": -1}`, 400, "top_k"},
		{"over the limit", `{"text": "` + strings.Repeat("a", 300<<10) + `"}`, 413, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, srv.URL+"/v1/nlu/parse", tc.body)
			e, _ := out["error"].(map[string]any)
			if status != tc.status || e == nil || !strings.Contains(e["message"].(string), tc.mention) {
				t.Errorf("status %d, body %v; want %d mentioning %q", status, out, tc.status, tc.mention)
			}
			if e != nil && e["request_id"] == "" {
				t.Error("error without request_id")
			}
		})
	}
}

func TestParseLongAndOddTexts(t *testing.T) {
	srv := demoServer(t)
	for name, text := range map[string]string{
		"100KB":   strings.Repeat("where is my order ", 5700),
		"control": "\u0000\u001b[31mrefund\u007f",
		"emoji":   "😡😡😡",
	} {
		status, out := post(t, srv.URL+"/v1/nlu/parse", `{"text": `+quote(text)+`}`)
		if status != http.StatusOK {
			t.Errorf("%s: status %d %v", name, status, out)
			continue
		}
		if truncated := out["truncated"].(bool); truncated != (name == "100KB") {
			t.Errorf("%s: truncated %v", name, truncated)
		}
	}
}

func TestRoutesAndErrors(t *testing.T) {
	srv := demoServer(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404, "/v1/nlu/parse": 405} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if want >= 400 && body["error"] == nil {
			t.Errorf("GET %s: error body %v", path, body)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s: no X-Request-Id", path)
		}
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for _, code := range engine.Codes {
		if httpapi.Status[code] < 400 {
			t.Errorf("code %q has no error status", code)
		}
	}
	if len(httpapi.Status) != len(engine.Codes) {
		t.Errorf("status table has %d entries for %d codes", len(httpapi.Status), len(engine.Codes))
	}
}

// FuzzParseRequest sends arbitrary bodies: the answer is 200, 400 or 413, never a crash or 500.
func FuzzParseRequest(f *testing.F) {
	srv := demoServer(f)
	for _, s := range []string{`{"text":"我要退款"}`, `{"text":"hi","lang":"en","top_k":2}`, `{"text":null}`, `[]`, `"x"`, "{\"text\":\"\\ud800\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := http.Post(srv.URL+"/v1/nlu/parse", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("status %d: body is not JSON: %v", resp.StatusCode, err)
		}
		switch resp.StatusCode {
		case 200:
			if out["heads"] == nil {
				t.Fatalf("200 without heads: %v", out)
			}
		case 400, 413:
		default:
			t.Fatalf("status %d for %q: %v", resp.StatusCode, body, out)
		}
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
