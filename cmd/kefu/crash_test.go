package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/handoff/webhook"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// serveChild starts `kefu serve` in a child process (so that it can be killed with
// SIGKILL) and waits until it is ready.
func serveChild(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	lib, err := testenv.ORTLibrary()
	if err != nil {
		testenv.Unavailable(t, "ONNX Runtime", err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEFU_TEST_ARGS="+strings.Join(append([]string{"serve", "--addr", addr, "--ort-lib", lib}, args...), "\x1f"))
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready:\n%s", logs.String())
		}
	}
}

// TestEmbeddedDefaultSurvivesKill9: without Redis, with the desk down, 20 conversations
// under concurrent load, 10 of them handed off; kill -9; after the restart every
// acknowledged turn is there and the desk, now up, gets each handoff once.
func TestEmbeddedDefaultSurvivesKill9(t *testing.T) {
	data := t.TempDir()
	deskDown := freeAddr(t) // nothing listens: every delivery fails
	base, child := serveChild(t, "--data-dir", data, "--handoff-url", "http://"+deskDown+"/handoff")
	var wg sync.WaitGroup
	acked := map[string][]string{}
	var mu sync.Mutex
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("crash-%d", i)
			texts := []string{"where is my order KF1234567" + fmt.Sprint(i%10), "thanks"}
			if i%2 == 0 {
				texts[1] = "I want to talk to a human"
			}
			for _, text := range texts {
				resp, err := http.Post(base+"/v1/conversations/"+id+"/messages", "application/json", strings.NewReader(`{"text":"`+text+`"}`))
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[id] = append(acked[id], text)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	child.Process.Kill() // kill -9: no shutdown, nothing flushed by kefu
	child.Wait()

	sink := &webhook.Sink{Secrets: [][]byte{[]byte(devSecret)}}
	desk := httptest.NewServer(sink)
	defer desk.Close()
	base, _ = serveChild(t, "--data-dir", data, "--handoff-url", desk.URL+"/handoff")
	for id, texts := range acked {
		resp, err := http.Get(base + "/v1/conversations/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			TurnCount int `json:"turn_count"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != 200 || v.TurnCount != len(texts) {
			t.Errorf("%s after kill -9: %d, %d turns, %d acknowledged", id, resp.StatusCode, v.TurnCount, len(texts))
		}
	}
	if len(acked) != 20 {
		t.Fatalf("only %d conversations were acknowledged before the kill", len(acked))
	}
	var got []webhook.Received
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, _ = sink.Received(); len(got) >= 10 {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	got, repeats := sink.Received()
	if len(got) != 10 {
		t.Errorf("the desk got %d handoffs after the restart, want 10 (repeats %d)", len(got), repeats)
	}
}
