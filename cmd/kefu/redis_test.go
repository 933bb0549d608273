package main

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// privateRedis starts a redis-server of the test's own on a free port (so that freezing
// it touches no other test) and returns its address and process.
func privateRedis(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	bin := testenv.Tool(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
	}
}

// TestHungRedisFailsFast: with Redis frozen (SIGSTOP), a turn answers 503 within about
// --redis-timeout and readiness within its own deadline; after SIGCONT turns answer at once.
func TestHungRedisFailsFast(t *testing.T) {
	addr, redis := privateRedis(t)
	base, _ := startServe(t, "--redis", "redis://"+addr+"/0", "--redis-timeout", "300ms")
	say := func(text string) (int, time.Duration) {
		start := time.Now()
		resp, err := http.Post(base+"/v1/conversations/hung-1/messages", "application/json", strings.NewReader(`{"text":`+quoteJSON(text)+`}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, _ := say("hello"); code != 200 {
		t.Fatalf("before: %d", code)
	}
	redis.Process.Signal(syscall.SIGSTOP)
	code, took := say("where is my order")
	if code != 503 || took > 2500*time.Millisecond {
		t.Errorf("Redis frozen: %d after %s, want 503 within about 2×300ms", code, took)
	}
	start := time.Now()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || time.Since(start) > 2*time.Second {
		t.Errorf("readiness with Redis frozen: %d after %s", resp.StatusCode, time.Since(start))
	}
	redis.Process.Signal(syscall.SIGCONT)
	var after time.Duration
	for deadline := time.Now().Add(5 * time.Second); ; {
		if code, took := say("where is my order"); code == 200 {
			after = took
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery within 5 s of SIGCONT")
		}
	}
	t.Logf("frozen: 503 after %s; after SIGCONT a turn took %s", took.Round(time.Millisecond), after.Round(time.Millisecond))
}

func quoteJSON(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// TestBenchHTTPOpenLoop: kefu bench http --rate sends at the fixed rate, reports latency
// from each message's due time, and reads the server's CPU per message from /metrics.
func TestBenchHTTPOpenLoop(t *testing.T) {
	base, _ := startServe(t)
	var out strings.Builder
	if err := benchHTTP(t.Context(), []string{"--url", base, "--rate", "40", "--duration", "1s", "--warmup", "0"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	if !strings.Contains(line, "rate     40/s") || !strings.Contains(line, "errors 0") || !strings.Contains(line, "(40 sent in") || !strings.Contains(line, "µs/message") {
		t.Errorf("bench output: %s", line)
	}
}

// TestServeOnAClusterAndSentinel: --redis in its cluster and Sentinel forms: kefu serve
// starts on a local Redis Cluster and on a Sentinel group, answers a conversation, keeps a
// handoff in the outbox and the figures; malformed forms are refused with the form to use.
func TestServeOnAClusterAndSentinel(t *testing.T) {
	cluster := testenv.StartCluster(t)
	sentinel := testenv.StartSentinel(t)
	for name, url := range map[string]string{
		"cluster":  "redis+cluster://" + cluster.Addrs[0] + "?addr=" + cluster.Addrs[1],
		"sentinel": "redis+sentinel://" + sentinel.Sentinels[0] + "?addr=" + sentinel.Sentinels[1] + "&master_name=kefu",
	} {
		t.Run(name, func(t *testing.T) {
			base, stop := startServe(t, "--redis", url, "--redis-prefix", "kefu-"+name, "--handoff-url", "-")
			post := func(path, body string) string {
				t.Helper()
				resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				data, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, data)
				}
				return string(data)
			}
			if r := post("/v1/conversations/cl-1/messages", `{"text": "where is my order"}`); !strings.Contains(r, `"source":"dialog"`) {
				t.Errorf("order question: %s", r)
			}
			if r := post("/v1/conversations/cl-1/messages", `{"text": "我要投诉"}`); !strings.Contains(r, `"source":"handoff"`) {
				t.Errorf("complaint: %s", r)
			}
			resp, err := http.Get(base + "/v1/analytics/summary")
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(data), `"conversations":1,"messages":2`) || !strings.Contains(string(data), `"handoffs":1`) {
				t.Errorf("figures: %s", data)
			}
			if logs, err := stop(); err != nil {
				t.Fatalf("serve: %v\n%s", err, logs)
			}
		})
	}
	for _, c := range []struct{ url, want string }{
		{"redis+sentinel://" + sentinel.Sentinels[0], "master_name"},
		{"redis+cluster://127.0.0.1:1", "Redis Cluster seeded by 127.0.0.1:1"},
		{"http://example.com", "redis+cluster://"},
	} {
		code, _, stderr := kefu(t, nil, "serve", "--redis", c.url, "--data-dir", t.TempDir())
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("--redis %s: exit %d, %s; want one line naming %q", c.url, code, stderr, c.want)
		}
	}
}
