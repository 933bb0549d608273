package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// Tests named after the security review's findings about start-up and reload (issue 17).

// startServe runs serve in this process until the test ends; it returns the base URL and
// a function that stops the server and returns its log.
func startServe(t *testing.T, args ...string) (string, func() string) {
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
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
		return logs.String()
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
	logs := stop()
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
