package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// demoBackend makes sure the demo bot's order backend answers on 127.0.0.1:8081, where
// bot.yaml sends its actions: it starts `kefu handoff-sink` there, or uses the one already
// running (make run's).
func demoBackend(t *testing.T) {
	t.Helper()
	up := func() bool {
		resp, err := http.Get("http://127.0.0.1:8081/demo/orders/KF20261122")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	if up() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- handoffSink(ctx, []string{"--addr", "127.0.0.1:8081"}, &out, &out) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; !up(); i++ {
		select {
		case err := <-done:
			t.Fatalf("port 8081 is taken by something other than kefu handoff-sink: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if i == 250 {
			t.Fatal("handoff-sink did not start")
		}
	}
}

// TestDemoBotStories runs the demo bot's conversation tests in process and against a
// running server, and shows a failing story's diff.
func TestDemoBotStories(t *testing.T) {
	lib, err := testenv.ORTLibrary()
	if err != nil {
		testenv.Unavailable(t, "ONNX Runtime", err)
	}
	demoBackend(t)
	env := []string{"KEFU_ORT_LIB=" + lib}
	stories := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "tests")
	results := filepath.Join(t.TempDir(), "results.json")
	code, stdout, stderr := kefu(t, env, "test", "--json", results, stories)
	if code != 0 || !strings.Contains(stdout, "10 stories: 10 passed, 0 failed") {
		t.Fatalf("in process: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res []struct {
		Story  string `json:"story"`
		Passed bool   `json:"passed"`
		Steps  int    `json:"steps"`
	}
	data, _ := os.ReadFile(results)
	if err := json.Unmarshal(data, &res); err != nil || len(res) != 10 || !res[2].Passed || res[2].Steps != 4 {
		t.Errorf("results JSON: %v %+v", err, res)
	}

	// The same stories against kefu serve over HTTP.
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--addr", addr, "--ort-lib", lib, "--data-dir", t.TempDir(), "--log-level", "error"}, &logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 600 {
			t.Fatalf("serve not ready\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, stdout, stderr = kefu(t, env, "test", "--url", "http://"+addr, stories)
	if code != 0 || !strings.Contains(stdout, "10 stories: 10 passed, 0 failed") {
		t.Fatalf("--url: exit %d\n%s\n%s", code, stdout, stderr)
	}

	if code, _, stderr := kefu(t, env, "test", "--url", "http://"+freeAddr(t), stories); code != 1 || !strings.Contains(stderr, "cannot reach kefu at http://") {
		t.Errorf("unreachable --url: exit %d, %q", code, stderr)
	}

	// A story that expects the wrong thing fails with a diff naming the step and its line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`stories:
  - story: wrong expectations
    lang: en
    steps:
      - user: I want a refund
        intent: refund
      - user: it's KF20260001
        state: confirm
        reply: "Thank you"
        slots: {order_id: KF99999999}
  - story: passes
    steps:
      - user: hello
        lang: en
        intent: greeting
`), 0o644)
	code, stdout, _ = kefu(t, env, "test", bad)
	for _, want := range []string{
		"FAIL  wrong expectations  (" + bad + ":2)",
		"step 2 of 2 (" + bad + ":7)  user: it's KF20260001",
		"state      - want confirm",
		"+ got  ask_reason",
		"slots.order_id - want KF99999999",
		`reply      - want contains "Thank you"`,
		"bot said: Briefly, why would you like a refund?",
		"PASS  passes",
		"2 stories: 1 passed, 1 failed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, stdout)
		}
	}
	if code != 1 {
		t.Errorf("failing story: exit %d", code)
	}
	os.WriteFile(bad, []byte("stories:\n  - story: x\n    steps:\n      - user: hi\n        intnet: greeting\n"), 0o644)
	if code, _, stderr := kefu(t, env, "test", bad); code != 1 || !strings.Contains(stderr, bad+`:5: unknown step key "intnet"`) {
		t.Errorf("bad story file: exit %d, %q", code, stderr)
	}
}
