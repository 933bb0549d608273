package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
)

// TestBrowserFrontendCORS: a widget on an allowed origin gets its preflight answered and
// may read the answer; another origin gets no CORS grant; every answer carries the
// security headers.
func TestBrowserFrontendCORS(t *testing.T) {
	clf, _ := bundleModelAndKB(t)
	origins, err := httpapi.ParseOrigins("https://shop.example.com, http://localhost:3000")
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(engine.New(engine.Config{NLU: clf}), httpapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CORSOrigins: origins, Keys: []httpapi.Key{{Name: "widget", Role: httpapi.RoleClient, Secret: clientKey}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := contractServer(t, api)
	send := func(method, path, origin string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"text":"hello"}`))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	pre := send("OPTIONS", "/v1/nlu/parse", "https://shop.example.com", map[string]string{
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "authorization") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") || pre.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from an allowed origin: %d %v", pre.StatusCode, pre.Header)
	}
	if r := send("OPTIONS", "/v1/nlu/parse", "https://evil.example", map[string]string{"Access-Control-Request-Method": "POST"}); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin was granted: %v", r.Header)
	}
	r := send("POST", "/v1/nlu/parse", "http://localhost:3000", map[string]string{"Authorization": "Bearer " + clientKey, "Content-Type": "application/json"})
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("a request from an allowed origin: %d %v", r.StatusCode, r.Header)
	}
	for _, resp := range []*http.Response{r, send("GET", "/nowhere", "", nil), send("POST", "/v1/nlu/parse", "", nil)} {
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if resp.Header.Get(k) != v {
				t.Errorf("%d answer: %s = %q, want %q", resp.StatusCode, k, resp.Header.Get(k), v)
			}
		}
	}
	for _, bad := range []string{"*", "shop.example.com", "https://shop.example.com/path", "ftp://x", "https://"} {
		if _, err := httpapi.ParseOrigins(bad); err == nil {
			t.Errorf("origin list %q accepted", bad)
		}
	}
}
