package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Browser is a headless Chromium driven through ChromeDriver's WebDriver protocol.
type Browser struct {
	tb     testing.TB
	base   string // http://127.0.0.1:PORT/session/ID
	Chrome string // the chromium binary
}

// NewBrowser starts chromedriver and a headless Chromium session, closed when the test
// ends. Without chromium and chromedriver on $PATH the test skips (fails under CI=true).
func NewBrowser(tb testing.TB) *Browser {
	tb.Helper()
	chrome, err1 := exec.LookPath("chromium")
	driver, err2 := exec.LookPath("chromedriver")
	if err := errors.Join(err1, err2); err != nil {
		Unavailable(tb, "Chromium and ChromeDriver (scripts/browser.sh installs them)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	b := &Browser{tb: tb, Chrome: chrome}
	for i := 0; ; i++ {
		if resp, err := http.Get(root + "/status"); err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			tb.Fatal("chromedriver did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chrome,
			"args":   []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"},
		},
	}}}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	b.call(root+"/session", caps, &session)
	b.base = root + "/session/" + session.SessionID
	tb.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, b.base, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	return b
}

// call POSTs body (GET when nil) to url and decodes the WebDriver "value" into out.
func (b *Browser) call(url string, body, out any) {
	b.tb.Helper()
	var resp *http.Response
	var err error
	if body == nil {
		resp, err = http.Get(url)
	} else {
		data, _ := json.Marshal(body)
		resp, err = http.Post(url, "application/json", bytes.NewReader(data))
	}
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || resp.StatusCode != http.StatusOK {
		b.tb.Fatalf("webdriver %s: %s %s", url, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			b.tb.Fatalf("webdriver %s: %v in %s", url, err, raw)
		}
	}
}

// Open loads url (a file:// URL, say) and waits for it.
func (b *Browser) Open(url string) { b.call(b.base+"/url", map[string]string{"url": url}, nil) }

// Eval runs JavaScript (a function body; use return) and decodes its result into out.
func (b *Browser) Eval(script string, out any, args ...any) {
	if args == nil {
		args = []any{}
	}
	b.call(b.base+"/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// Click clicks the first element matching the CSS selector.
func (b *Browser) Click(selector string) {
	var el map[string]string
	b.call(b.base+"/element", map[string]string{"using": "css selector", "value": selector}, &el)
	for _, id := range el { // the key is the W3C element reference
		b.call(b.base+"/element/"+id+"/click", map[string]any{}, nil)
		return
	}
	b.tb.Fatalf("no element %s", selector)
}

// SetSize resizes the browser window (for a phone's width, say).
func (b *Browser) SetSize(width, height int) {
	b.call(b.base+"/window/rect", map[string]int{"width": width, "height": height}, nil)
}

// Screenshot writes a PNG of the viewport to path.
func (b *Browser) Screenshot(path string) {
	var data string
	b.call(b.base+"/screenshot", nil, &data)
	png, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		b.tb.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Fatal(err)
	}
}
