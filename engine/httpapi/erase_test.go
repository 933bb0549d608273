package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/analytics"
	anredis "github.com/kefu-ai/kefu/analytics/redisstore"
	"github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/handoff"
	boxredis "github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/handoff/webhook"
	"github.com/kefu-ai/kefu/internal/redisx"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
	kbredis "github.com/kefu-ai/kefu/kb/redisstore"
)

// TestDeleteErasesEveryCopy: a conversation that called an action, was answered by a KB
// experiment and rated it, handed off to a desk that always fails (a dead letter) and then
// relayed a message (pending) leaves its id in state, transcript, call results, experiment
// markers, outbox markers and both outbox streams; after DELETE no key and no stream entry
// under the prefix names it, and the dead letters do not list it.
func TestDeleteErasesEveryCopy(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	p := strings.TrimSuffix(prefix, ":")
	clf, _ := bundleModelAndKB(t)
	ctx := context.Background()
	k, err := kb.Open(ctx, kbredis.New(rdb, kbredis.Options{Prefix: p}), kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	if _, err := k.Import(ctx, bundleArticles(t), "bundle", true); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CreateExperiment(ctx, kb.Experiment{ID: "wording", Article: "refund-time", Variants: []kb.Arm{{Answer: "v1", Weight: 1}, {Answer: "short", Weight: 1}}}, "ann"); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status_en":"shipped","status_zh":"已发货","eta":"2026-12-05"}`))
	}))
	defer backend.Close()
	desk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) }))
	defer desk.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	box := boxredis.NewOutbox(rdb, p, "node", handoff.Options{Backoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 2, Timeout: time.Second}, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		box.Run(runCtx, (&webhook.Sender{URL: desk.URL, Secrets: [][]byte{[]byte("k")}}).Deliver)
	}()
	figures := anredis.New(rdb, p, 0) // the figures name the conversation too, until it is erased
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(t, backend.URL), nil), KB: k, Logger: log, Outbox: box,
		Store: redisstore.New(rdb, redisstore.Options{Prefix: p, Transcript: 100}), Calls: redisstore.NewCalls(rdb, p, time.Hour),
		Analytics: analytics.NewRecorder(figures, nil)})
	api, err := httpapi.New(eng, httpapi.Config{Logger: log, KB: k})
	if err != nil {
		t.Fatal(err)
	}
	srv := contractServer(t, api)
	const id = "erase-me-7"
	url := srv.URL + "/v1/conversations/" + id
	for _, text := range []string{"where is my order KF12345678", "退款多久能到账"} {
		if r := do(t, "POST", url+"/messages", `{"text":`+quote(text)+`}`); r.status != 200 {
			t.Fatalf("%s: %d %v", text, r.status, r.body)
		}
	}
	do(t, "POST", url+"/events", `{"type":"csat","score":2}`)
	if r := do(t, "POST", url+"/messages", `{"text":"I want to talk to a human"}`); r.str("source") != "handoff" {
		t.Fatalf("no handoff: %v", r.body)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r := do(t, "GET", srv.URL+"/v1/admin/outbox/dead", ""); r.body["count"] == 1.0 {
			break
		}
	}
	stop() // the relay below stays pending
	<-done
	do(t, "POST", url+"/messages", `{"text":"anyone there? my phone is 13800138000"}`)

	before := traces(t, rdb, prefix, id)
	for _, want := range []string{"{conv:" + id + "}:state", "call:{" + id + ":", "seen:wording:" + id, "csat:wording:" + id, "{outbox}:key:" + id + ":handoff:", "{outbox}:dead entry", "{outbox}:stream entry", "{analytics}:events entry"} {
		if !slices.ContainsFunc(before, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("before DELETE, nothing like %q names the conversation (the test would prove nothing): %v", want, before)
		}
	}
	if r := do(t, "DELETE", url, ""); r.status != 204 {
		t.Fatalf("delete: %d %v", r.status, r.body)
	}
	if after := traces(t, rdb, prefix, id); len(after) > 0 {
		t.Errorf("after DELETE the conversation is still in: %v", after)
	}
	if r := do(t, "GET", srv.URL+"/v1/admin/outbox/dead", ""); r.body["count"] != 0.0 {
		t.Errorf("dead letters after DELETE: %v", r.body)
	}
}

// traces lists the keys under prefix that name id, and the stream entries that mention it.
func traces(t *testing.T, rdb redis.UniversalClient, prefix, id string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	redisx.Keys(ctx, rdb, prefix+"*", func(key string) error {
		if strings.Contains(key, id) {
			out = append(out, key)
		}
		if typ, _ := rdb.Type(ctx, key).Result(); typ == "stream" {
			msgs, _ := rdb.XRange(ctx, key, "-", "+").Result()
			for _, m := range msgs {
				for _, v := range m.Values {
					if s, _ := v.(string); strings.Contains(s, id) {
						out = append(out, strings.TrimPrefix(key, prefix)+" entry "+m.ID)
						break
					}
				}
			}
		}
		return nil
	})
	return out
}
