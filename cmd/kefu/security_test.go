package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// Tests named after the security review's findings about start-up and reload (issue 17).

// startServe runs serve in this process until the test ends; it returns the base URL and
// a function that stops the server and returns its log and what serve returned.
func startServe(t *testing.T, args ...string) (string, func() (string, error)) {
	t.Helper()
	lib, err := testenv.ORTLibrary()
	if err != nil {
		testenv.Unavailable(t, "ONNX Runtime", err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, append([]string{"--addr", addr, "--ort-lib", lib, "--data-dir", t.TempDir()}, args...), &logs)
	}()
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready\n%s", logs.String())
		}
	}
	var stopped bool
	var served error
	stop := func() (string, error) {
		if !stopped {
			stopped = true
			cancel()
			served = <-done
		}
		return logs.String(), served
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

func TestShortSigningSecretRefusedOffLoopback(t *testing.T) {
	testenv.Runtime(t)
	code, _, stderr := kefu(t, []string{"KEFU_HANDOFF_SECRET=short"}, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--handoff-url", "https://desk.example.com/handoff")
	if code != 1 || !strings.Contains(stderr, "secret 1 is 5 bytes") || !strings.Contains(stderr, "at least 32") {
		t.Errorf("serve: exit %d\n%s", code, stderr)
	}
	code, _, stderr = kefu(t, []string{"KEFU_HANDOFF_SECRET=short"}, "handoff-sink", "--addr", "0.0.0.0:0")
	if code != 1 || !strings.Contains(stderr, "at least 32") {
		t.Errorf("sink: exit %d\n%s", code, stderr)
	}
}

func TestStartupLogShowsNoHandoffCredentials(t *testing.T) {
	t.Setenv("KEFU_HANDOFF_SECRET", "a-development-secret-of-32-bytes!")
	_, stop := startServe(t, "--handoff-url", "http://desk-user:hunter2@127.0.0.1:9/handoff?token=tok-secret")
	logs, _ := stop()
	if strings.Contains(logs, "hunter2") || strings.Contains(logs, "tok-secret") || strings.Contains(logs, "desk-user") || !strings.Contains(logs, `"handoff_url":"http://127.0.0.1:9/handoff?…"`) {
		t.Errorf("logs:\n%s", logs)
	}
}

// TestReloadRefusesAChangedHandoffURL: deliveries are set up at start, so a reload whose
// bot sends handoffs elsewhere is refused with the reason, not silently ignored.
func TestReloadRefusesAChangedHandoffURL(t *testing.T) {
	dir := copyBot(t)
	base, _ := startServe(t, "--bot", dir)
	edit(t, filepath.Join(dir, "bot.yaml"), "url: http://127.0.0.1:8081/handoff", "url: http://127.0.0.1:9999/elsewhere")
	resp, err := http.Post(base+"/v1/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(body.String(), "restart kefu") {
		t.Errorf("reload with a new handoff URL: %d %s", resp.StatusCode, body)
	}
	edit(t, filepath.Join(dir, "bot.yaml"), "url: http://127.0.0.1:9999/elsewhere", "url: http://127.0.0.1:8081/handoff")
	if resp, err := http.Post(base+"/v1/admin/reload", "application/json", nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("reload with the same URL: %v %v", resp.StatusCode, err)
	}
}

// TestSlowBodiesAndIdleConnectionsAreCutOff: a client that sends its body slowly is cut
// off at --read-timeout, an idle keep-alive connection at --idle-timeout, and a request
// without a key is answered 401 at once, the connection closed, without reading its body.
func TestSlowBodiesAndIdleConnectionsAreCutOff(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	os.WriteFile(keys, []byte("keys:\n  - {name: web, role: client, key: client-secret-0123456789}\n"), 0o600)
	base, _ := startServe(t, "--keys", keys, "--read-timeout", "1s", "--idle-timeout", "1s")
	addr := strings.TrimPrefix(base, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Without a key: the answer comes before the body, and the connection closes.
	c := dial()
	fmt.Fprintf(c, "POST /v1/conversations/x/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"te")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("unauthenticated slow body: %v %v", resp, err)
	}
	// With a key, a body that never finishes: cut off after the read timeout.
	c = dial()
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/conversations/x/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer client-secret-0123456789\r\nContent-Length: 100000\r\n\r\n{\"te")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("a slow body held the connection %s", d)
	}
	// An idle keep-alive connection is closed by the server.
	c = dial()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	start = time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil || time.Since(start) > 4*time.Second {
		t.Errorf("idle connection still open after %s (%v)", time.Since(start), err)
	}
}

// TestFailedAuthenticationsAreRateLimitedPerAddress: after ten wrong keys from one
// address, further attempts are refused with 429 before any key is looked at.
func TestFailedAuthenticationsAreRateLimitedPerAddress(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	os.WriteFile(keys, []byte("keys:\n  - {name: web, role: client, key: client-secret-0123456789}\n"), 0o600)
	base, _ := startServe(t, "--keys", keys)
	var codes []int
	for i := range 30 {
		req, _ := http.NewRequest("GET", base+"/v1/conversations/x", nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%02d-0123456789abcdef", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if i == 29 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if codes[0] != 401 || codes[9] != 401 || codes[10] != 429 || codes[29] != 429 {
		t.Errorf("codes %v: want ten 401 then 429", codes)
	}
	req, _ := http.NewRequest("GET", base+"/v1/conversations/x", nil)
	req.Header.Set("Authorization", "Bearer client-secret-0123456789")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 429 {
		t.Errorf("the right key while the address is blocked: %v %v (want 429: no guessing during the penalty)", resp.StatusCode, err)
	}
}
