package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	boxmem "github.com/kefu-ai/kefu/handoff/inmem"
	boxredis "github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/handoff/webhook"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
)

const handoffSecret = "test-handoff-secret"

// world is a kefu deployment under test: nodes (engines with their HTTP servers) sharing
// one Redis, the demo bot with its actions on a fake order backend, the bundled KB, and a
// handoff receiver that can be made to fail.
type world struct {
	nodes   []*httptest.Server
	sink    *webhook.Sink
	failing atomic.Int32 // the receiver answers 503 to this many more requests
	rdb     redis.UniversalClient
	prefix  string
	outbox  *boxredis.Outbox
	// actions counts the backend's action calls by Idempotency-Key.
	mu      sync.Mutex
	actions map[string]int
}

// actionCalls returns how many times the backend was called for each call key.
func (w *world) actionCalls() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for k, n := range w.actions {
		out[k] = n
	}
	return out
}

func botDefinition(t testing.TB, backend string) *dialogs.Bot {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot")
	botYAML, err := os.ReadFile(filepath.Join(dir, "bot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	names, _ := filepath.Glob(filepath.Join(dir, "dialogs", "*.yaml"))
	for _, n := range names {
		files[n], _ = os.ReadFile(n)
	}
	b, err := dialogs.Parse("bot.yaml", bytes.ReplaceAll(botYAML, []byte("http://127.0.0.1:8081"), []byte(backend)), files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newWorld starts n nodes. rdb may be a client through a proxy (to take Redis down).
func newWorld(t *testing.T, n int, rdb redis.UniversalClient, prefix string) *world {
	t.Helper()
	w := &world{rdb: rdb, prefix: prefix, actions: map[string]int{}}
	w.sink = &webhook.Sink{Secrets: [][]byte{[]byte(handoffSecret)}}
	receiver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.failing.Add(-1) >= 0 {
			http.Error(rw, "agent desk restarting", http.StatusServiceUnavailable)
			return
		}
		w.sink.ServeHTTP(rw, r)
	}))
	t.Cleanup(receiver.Close)
	backend := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.actions[r.URL.Path+" "+r.Header.Get("Idempotency-Key")]++
		w.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/demo/orders/"):
			fmt.Fprint(rw, `{"status_en":"shipped","status_zh":"已发货","eta":"2026-11-25"}`)
		case r.URL.Path == "/demo/refunds":
			fmt.Fprint(rw, `{"refund_id":"RF1"}`)
		default:
			fmt.Fprint(rw, `{"ticket":"AD1"}`)
		}
	}))
	t.Cleanup(backend.Close)
	b := botDefinition(t, backend.URL)

	clf, k := bundleModelAndKB(t)

	p := strings.TrimSuffix(prefix, ":")
	opt := handoff.Options{Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 50, Timeout: time.Second}
	sender := &webhook.Sender{URL: receiver.URL, Secrets: [][]byte{[]byte(handoffSecret)}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range n {
		box := boxredis.NewOutbox(rdb, p, fmt.Sprintf("node%d", i), opt, nil)
		w.outbox = box
		figures := anredis.New(rdb, p, 0)
		if err := figures.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(b, nil), Store: redisstore.New(rdb, redisstore.Options{Prefix: p, Transcript: 1000}),
			Outbox: box, Calls: redisstore.NewCalls(rdb, p, time.Hour), KB: k, Logger: log, Analytics: analytics.NewRecorder(figures, nil)})
		api, err := httpapi.New(eng, httpapi.Config{BodyLimit: 64 << 10, Logger: log, KB: k, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			checkOpenAPI(t, api)
		}
		srv := contractServer(t, api)
		w.nodes = append(w.nodes, srv)
		wg.Add(1)
		go func() { defer wg.Done(); box.Run(ctx, sender.Deliver) }()
		wg.Add(1)
		go func() { defer wg.Done(); eng.Watch(ctx) }()
	}
	return w
}

// checkOpenAPI: the document lists exactly the routes the server answers.
func checkOpenAPI(t *testing.T, api *httpapi.Server) {
	t.Helper()
	routes, doc := api.Routes(), api.Documented()
	for _, r := range routes {
		if !slices.Contains(doc, r) {
			t.Errorf("route %s is not in /openapi.json", r)
		}
	}
	for _, d := range doc {
		if !slices.Contains(routes, d) {
			t.Errorf("/openapi.json lists %s, which the server does not answer", d)
		}
	}
}

type reply struct {
	status int
	body   map[string]any
	header http.Header
}

func (r reply) texts() []string {
	var out []string
	msgs, _ := r.body["messages"].([]any)
	for _, m := range msgs {
		out = append(out, m.(map[string]any)["text"].(string))
	}
	return out
}

func (r reply) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

func do(t *testing.T, method, url, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &r.body); err != nil {
			t.Fatalf("%s %s: status %d, body %q is not JSON", method, url, resp.StatusCode, data)
		}
	}
	return r
}

func (w *world) say(t *testing.T, conv, text string, extra ...string) reply {
	t.Helper()
	body := `{"text": ` + quote(text) + `, "channel": "web", "customer": {"id": "cust-1", "tier": "standard", "tags": ["repeat-buyer"]}}`
	if len(extra) > 0 {
		body = extra[0]
	}
	r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/"+conv+"/messages", body)
	if r.status != http.StatusOK {
		t.Fatalf("%q: status %d %v", text, r.status, r.body)
	}
	return r
}

func TestChineseOrderStatusConversation(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	r := w.say(t, "zh-1", "你好")
	if r.str("source") != "dialog" || !strings.Contains(r.texts()[0], "您好") {
		t.Fatalf("greeting: %v", r.body)
	}
	r = w.say(t, "zh-1", "帮我查一下我的订单到哪了")
	if r.str("intent", "name") != "order_status" || r.str("state") != "ask_order" || !strings.Contains(r.texts()[0], "订单号") {
		t.Fatalf("order status must ask for the order number: %v", r.body)
	}
	r = w.say(t, "zh-1", "KF20261122") // no Chinese in it: the conversation's language holds
	if got := r.texts(); len(got) != 1 || got[0] != "订单 KF20261122 当前状态：已发货，预计 2026-11-25 送达。" {
		t.Fatalf("answer %q (%v)", got, r.body)
	}
	if r.body["slots"].(map[string]any)["order_id"] != "KF20261122" || r.str("lang") != "zh" {
		t.Fatalf("slots %v", r.body)
	}
	g := do(t, "GET", w.nodes[0].URL+"/v1/conversations/zh-1", "")
	if g.status != 200 || len(g.body["turns"].([]any)) != 3 || g.body["customer"].(map[string]any)["tags"].([]any)[0] != "repeat-buyer" {
		t.Fatalf("GET: %d %v", g.status, g.body)
	}
}

func TestEnglishRefundConversationWithConfirmation(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	steps := []struct{ text, state, contains string }{
		{"I want a refund", "ask_order", "order number"},
		{"it's order KF55550001", "ask_reason", "why"},
		{"the screen arrived cracked", "confirm", "Refund order KF55550001 because: the screen arrived cracked"},
		{"yes", "", "RF1"},
	}
	for _, s := range steps {
		r := w.say(t, "en-1", s.text)
		if r.str("state") != s.state || !strings.Contains(strings.ToLower(strings.Join(r.texts(), " ")), strings.ToLower(s.contains)) {
			t.Fatalf("%q: state %q, replies %q; want state %q and %q", s.text, r.str("state"), r.texts(), s.state, s.contains)
		}
	}
}

func TestKnowledgeBaseAnswersWhatNoDialogTakes(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	for _, q := range []string{"how long does a refund take to arrive", "退款多久能到账"} {
		r := w.say(t, "kb-"+fmt.Sprint(len(q)), q)
		if r.str("source") != "kb" || r.str("kb", "article") == "" || len(r.texts()) != 1 {
			t.Fatalf("%q: %v", q, r.body)
		}
	}
}

// TestHandoffReachesAFlakyAgentDeskWithFullContext: the desk is down for the first
// attempts; the customer is still told at once, the delivery waits in the outbox, and the
// desk gets it once, signed, with the whole context. Then the bot is silent and relays,
// until agent.released.
func TestHandoffReachesAFlakyAgentDeskWithFullContext(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	w.failing.Store(3)
	w.say(t, "h-1", "where is my order KF12345678")
	r := w.say(t, "h-1", "我要投诉你们，太慢了")
	if r.str("source") != "handoff" || r.str("handoff", "reason") == "" || !strings.Contains(r.texts()[0], "人工") {
		t.Fatalf("complaint must hand off with a reply: %v", r.body)
	}
	var got []webhook.Received
	deadline := time.Now().Add(10 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got, _ = w.sink.Received()
	}
	if len(got) != 1 || got[0].Kind != "handoff" || got[0].Key != r.str("handoff", "id") || !strings.HasPrefix(got[0].Key, "h-1:handoff:") {
		t.Fatalf("received %+v", got)
	}
	var p handoff.Payload
	if err := json.Unmarshal(got[0].Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Conversation != "h-1" || p.Customer.ID != "cust-1" || p.Customer.Tags[0] != "repeat-buyer" || p.Channel != "web" ||
		len(p.Transcript) != 2 || p.Transcript[1].Intent == "" || p.Transcript[1].Emotion == "" || p.Transcript[0].Confidence == 0 ||
		p.Priority == "" || p.Summary == "" || p.Slots["order_id"] != "KF12345678" {
		t.Fatalf("payload lacks context: %+v", p)
	}
	// While a person has it, the bot does not answer; the message is relayed.
	r = w.say(t, "h-1", "hello? anyone there?")
	if r.str("source") != "handoff" || len(r.texts()) != 0 || r.str("handoff", "status") != "queued" {
		t.Fatalf("with an agent: %v", r.body)
	}
	for time.Now().Before(deadline) {
		if got, _ = w.sink.Received(); len(got) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 2 || got[1].Kind != "message" || !strings.Contains(string(got[1].Body), "anyone there") {
		t.Fatalf("relay: %+v", got)
	}
	ev := do(t, "POST", w.nodes[0].URL+"/v1/conversations/h-1/events", `{"type": "agent.released"}`)
	if ev.status != 200 || ev.str("handoff", "status") != "released" {
		t.Fatalf("release: %d %v", ev.status, ev.body)
	}
	if r = w.say(t, "h-1", "thank you"); r.str("source") != "dialog" || len(r.texts()) != 1 {
		t.Fatalf("after release the bot answers again: %v", r.body)
	}
}

func TestUnresolvedTurnsClarifyOnceThenHandOffAndVIPGoesFaster(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	r := w.say(t, "u-1", "blorp zzz qwv")
	if r.str("source") != "clarify" {
		t.Fatalf("first unresolved turn clarifies: %v", r.body)
	}
	r = w.say(t, "u-1", "xkcd plugh frobnicate")
	if r.str("source") != "handoff" || !slices.Contains([]string{"low_confidence", "unresolved"}, r.str("handoff", "reason")) {
		t.Fatalf("second unresolved turn hands off: %v", r.body)
	}
	vip := `{"text": "blorp zzz qwv", "customer": {"id": "v1", "tier": "vip"}}`
	r = w.say(t, "vip-1", "", vip)
	if r.str("source") != "handoff" || r.str("handoff", "priority") != "high" {
		t.Fatalf("a VIP goes to a person at the first unresolved turn, priority high: %v", r.body)
	}
	r = w.say(t, "asks-1", "I want to talk to a real person")
	if r.str("handoff", "reason") != "requested" {
		t.Fatalf("explicit request: %v", r.body)
	}
	r = w.say(t, "angry-1", "this is ridiculous, I am absolutely furious with you people")
	if r.str("source") != "handoff" {
		t.Fatalf("anger hands off: %v", r.body)
	}
}

func TestConversationBadInput(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	url := w.nodes[0].URL + "/v1/conversations/"
	big := `{"text": "` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", "c/messages", big, 413, "limit"},
		{"POST", "c/messages", `{"text": 5}`, 400, "text"},
		{"POST", "c/messages", `{"txt": "hi"}`, 400, "txt"},
		{"POST", "c/messages", `{}`, 400, "empty"},
		{"POST", "c/messages", `{"text": "   "}`, 400, "empty"},
		{"POST", "c/messages", "{\"text\": \"\xff\xfe\"}", 400, "UTF-8"},
		{"POST", "c/messages", `{"text": "hi", "lang": "fr"}`, 400, "lang"},
		{"POST", "c/messages", `{"text": "hi"`, 400, ""},
		{"POST", "bad%20id/messages", `{"text": "hi"}`, 400, "conversation id"},
		{"POST", strings.Repeat("x", 129) + "/messages", `{"text": "hi"}`, 400, "conversation id"},
		{"GET", "nobody", "", 404, "no such conversation"},
		{"DELETE", "nobody", "", 404, "no such conversation"},
		{"POST", "nobody/events", `{"type": "csat", "score": 5}`, 404, "no such conversation"},
		{"POST", "c/events", `{"type": "csat", "score": 9}`, 400, "score"},
		{"POST", "c/events", `{"type": "party"}`, 400, "type"},
	}
	for _, tc := range cases {
		r := do(t, tc.method, url+tc.path, tc.body)
		msg := r.str("error", "message")
		if r.status != tc.status || !strings.Contains(msg, tc.contains) {
			t.Errorf("%s %s %.40q: %d %q; want %d containing %q", tc.method, tc.path, tc.body, r.status, msg, tc.status, tc.contains)
		}
	}
	w.say(t, "del-1", "hello")
	if r := do(t, "DELETE", url+"del-1", ""); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := do(t, "GET", url+"del-1", ""); r.status != 404 {
		t.Fatalf("deleted conversation still there: %d", r.status)
	}
	do(t, "POST", url+"closed-1/messages", `{"text": "hi"}`)
	do(t, "POST", url+"closed-1/events", `{"type": "conversation.closed"}`)
	if r := do(t, "POST", url+"closed-1/messages", `{"text": "hi again"}`); r.status != 409 {
		t.Fatalf("message to a closed conversation: %d %v", r.status, r.body)
	}
	if r := do(t, "POST", url+"closed-1/events", `{"type": "agent.released"}`); r.status != 409 {
		t.Fatalf("release without a handoff: %d", r.status)
	}
}

// TestTwoNodesSixtyFourConcurrentMessagesToOneConversation: every turn is recorded exactly
// once, none lost, whichever node takes it.
func TestTwoNodesSixtyFourConcurrentMessagesToOneConversation(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 2, rdb, prefix)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"text": "message %d about my order", "customer": {"id": "c"}}`, i)
			resp, err := http.Post(w.nodes[i%2].URL+"/v1/conversations/busy-1/messages", "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprint("status ", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	p := strings.TrimSuffix(w.prefix, ":")
	store := redisstore.New(rdb, redisstore.Options{Prefix: p})
	c, err := store.Load(context.Background(), "busy-1")
	if err != nil {
		t.Fatal(err)
	}
	turns, _ := store.Transcript(context.Background(), "busy-1")
	seen := map[string]int{}
	for _, tr := range turns {
		seen[tr.Text]++
	}
	if c.TurnCount != n || len(turns) != n || len(seen) != n {
		t.Fatalf("turns counted %d, in the transcript %d, distinct %d; want %d each", c.TurnCount, len(turns), len(seen), n)
	}
	for i := range n {
		if k := fmt.Sprintf("message %d about my order", i); seen[k] != 1 {
			t.Errorf("%q recorded %d times", k, seen[k])
		}
	}
}

// TestRedisDownAnswers503AndRecovers: with Redis unreachable a message gets 503 with
// Retry-After and changes nothing; once Redis is back the same server carries on.
func TestRedisDownAnswers503AndRecovers(t *testing.T) {
	_, prefix := testenv.Redis(t)
	px := testenv.NewProxy(t, testenv.RedisAddr())
	rdb := redis.NewClient(&redis.Options{Addr: px.Addr, MaxRetries: -1, DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	w := newWorld(t, 1, rdb, prefix)
	w.say(t, "r-1", "where is my order")
	px.Down()
	r := do(t, "POST", w.nodes[0].URL+"/v1/conversations/r-1/messages", `{"text": "KF12345678"}`)
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.str("error", "code") != "unavailable" {
		t.Fatalf("Redis down: %d %v %v", r.status, r.header, r.body)
	}
	if rz := do(t, "GET", w.nodes[0].URL+"/readyz", ""); rz.status != 503 {
		t.Fatalf("/readyz with Redis down: %d", rz.status)
	}
	px.Up(t)
	var g reply
	for range 50 {
		if g = do(t, "GET", w.nodes[0].URL+"/v1/conversations/r-1", ""); g.status == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g.status != 200 || g.body["turn_count"].(float64) != 1 || g.body["state"] != "ask_order" {
		t.Fatalf("after recovery the conversation must be as before the failed turn: %d %v", g.status, g.body)
	}
	if r := w.say(t, "r-1", "KF12345678"); !strings.Contains(r.texts()[0], "KF12345678") {
		t.Fatalf("after recovery: %v", r.body)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	w.say(t, "m-1", "hello")
	w.say(t, "m-2", "I want to talk to a human")
	w.say(t, "m-3", "我的订单到哪了")
	do(t, "GET", w.nodes[0].URL+"/no/such/route", "")
	for i := range 5 { // invented methods must not each become a series
		req, _ := http.NewRequest(fmt.Sprintf("BREW%d", i), w.nodes[0].URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	resp, err := http.Get(w.nodes[0].URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(data)
	for _, want := range []string{
		`kefu_http_requests_total{code="200",method="POST",route="/v1/conversations/:id/messages"} 3`,
		`kefu_http_request_duration_seconds_bucket{route="/v1/conversations/:id/messages",le="+Inf"} 3`,
		`kefu_http_requests_total{code="404",method="GET",route="unknown"} 1`,
		`kefu_http_requests_total{code="405",method="other",route="/healthz"} 5`,
		`kefu_intents_total{intent="greeting"} 1`,
		`kefu_handoffs_total{reason="requested"} 1`,
		`kefu_build_info{bot="kefu-demo",model="kefu-bot",model_version="1.1.0",version="test"} 1`,
		`kefu_outbox_depth `,
		`kefu_model_queue_depth `,
		"go_goroutines ", "go_gc_duration_seconds", "process_cpu_seconds_total ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "BREW") {
		t.Errorf("an invented method name became a label value")
	}
	// Prometheus's own linter must find nothing in the scrape.
	cmd := exec.Command(testenv.Tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	doc := do(t, "GET", w.nodes[0].URL+"/openapi.json", "")
	if doc.status != 200 || doc.str("openapi") != "3.0.3" {
		t.Fatalf("openapi: %d", doc.status)
	}
	paths := doc.body["paths"].(map[string]any)
	if _, ok := paths["/v1/conversations/{id}/messages"].(map[string]any)["post"]; !ok {
		t.Fatalf("messages route missing from the document")
	}
}

// FuzzMessageRequest: whatever the body, a message gets an answer or a 4xx, never a 5xx.
func FuzzMessageRequest(f *testing.F) {
	rt := testenv.Runtime(f)
	clf, err := models.Load(rt, filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "model"), models.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { clf.Close() })
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(f, "http://127.0.0.1:1"), &http.Client{Timeout: 50 * time.Millisecond}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	api, err := httpapi.New(eng, httpapi.Config{BodyLimit: 16 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"text":"我要退款"}`, `{"text":"KF12345678","lang":"en","customer":{"id":"a","tier":"vip","tags":["x"]}}`,
		`{"text":null}`, `[]`, `{"text":"hi","metadata":{"a":"b"}}`, "{\"text\":\"\\ud800\"}", `{"text":"yes","channel":"web"}`, `{"text":"hi","message_id":"m-1"}`, `{"text":"hi","message_id":"bad id"}`} {
		f.Add([]byte(s), "c1")
	}
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/conversations/x/messages", bytes.NewReader(body))
		req.URL.Path = "/v1/conversations/" + id + "/messages"
		req.URL.RawPath = ""
		api.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("status %d: body is not JSON: %q", rec.Code, rec.Body.String())
		}
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q (id %q): %v", rec.Code, body, id, out)
		}
		if rec.Code == 200 && out["source"] == nil {
			t.Fatalf("200 without source: %v", out)
		}
	})
}

// TestAdminReloadSwapsTheBotOrKeepsItWhenInvalid: a valid bundle replaces the running bot;
// an invalid one is refused with its error and the running bot stays.
func TestAdminReloadSwapsTheBotOrKeepsItWhenInvalid(t *testing.T) {
	rt := testenv.Runtime(t)
	clf, err := models.Load(rt, filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "model"), models.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clf.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(t, "http://127.0.0.1:1"), nil), Logger: log})
	var next string // the greeting the reloaded bot says; "" makes the bundle invalid
	reload := func() (string, error) {
		b, err := dialogs.Parse("bot.yaml", []byte("responses:\n  clarify: {zh: 请再说一遍, en: \"Again?\"}\n  handoff: {zh: 转人工, en: Connecting}\n"),
			map[string][]byte{"hi.yaml": []byte("flows:\n  greeting:\n    intents: [greeting]\n    states:\n      hi: {say: {zh: \"" + next + "\", en: \"" + next + "\"}}\n")})
		if err != nil {
			return "", err
		}
		eng.SetBot(dialogs.NewMachine(b, nil))
		return "test bundle", nil
	}
	api, err := httpapi.New(eng, httpapi.Config{Logger: log, Reload: reload})
	if err != nil {
		t.Fatal(err)
	}
	srv := contractServer(t, api)
	next = "Howdy from the new bot"
	if r := do(t, "POST", srv.URL+"/v1/admin/reload", ""); r.status != 200 {
		t.Fatalf("reload: %d %v", r.status, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/conversations/rl-1/messages", `{"text": "hello"}`); r.texts()[0] != next {
		t.Fatalf("after reload: %v", r.body)
	}
	next = ""
	r := do(t, "POST", srv.URL+"/v1/admin/reload", "")
	if r.status != 400 || !strings.Contains(r.str("error", "message"), "hi.yaml:5") {
		t.Fatalf("an invalid bundle must be refused with file and line: %d %v", r.status, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/conversations/rl-2/messages", `{"text": "hello"}`); r.texts()[0] != "Howdy from the new bot" {
		t.Fatalf("the running bot must stay: %v", r.body)
	}
}

// TestTwoNodesConfirmARefundAtOnce: 40 conversations reach the refund confirmation; then
// "是的" goes to node A and "yes" to node B at the same moment. Each conversation's refund
// action reaches the backend exactly once, and each conversation records both messages.
func TestTwoNodesConfirmARefundAtOnce(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 2, rdb, prefix)
	const n = 40
	for i := range n {
		id := fmt.Sprint("rf-", i)
		for _, text := range []string{"I want a refund", "order KF5555000" + fmt.Sprint(i%10), "the screen arrived cracked"} {
			if r := w.say(t, id, text); text == "the screen arrived cracked" && r.str("state") != "confirm" {
				t.Fatalf("%s: not at the confirmation: %v", id, r.body)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		for node, text := range []string{"是的", "yes"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := do(t, "POST", w.nodes[node].URL+"/v1/conversations/rf-"+fmt.Sprint(i)+"/messages", `{"text": "`+text+`"}`)
				if r.status != 200 {
					t.Errorf("rf-%d %q: %d %v", i, text, r.status, r.body)
				}
			}()
		}
	}
	wg.Wait()
	refunds := map[string]int{}
	for k, c := range w.actionCalls() {
		if strings.HasPrefix(k, "/demo/refunds ") {
			conv := strings.SplitN(strings.TrimPrefix(k, "/demo/refunds "), ":", 2)[0]
			refunds[conv] += c
		}
	}
	store := redisstore.New(rdb, redisstore.Options{Prefix: strings.TrimSuffix(w.prefix, ":")})
	for i := range n {
		id := fmt.Sprint("rf-", i)
		if refunds[id] != 1 {
			t.Errorf("%s: refund action called %d times, want 1", id, refunds[id])
		}
		c, err := store.Load(t.Context(), id)
		if err != nil || c.TurnCount != 5 {
			t.Errorf("%s: %v, %d turns recorded, want 5", id, err, c.TurnCount)
		}
	}
}

// TestLostRedisRepliesRecordEachMessageOnce: a proxy loses a fifth of the save script's
// replies after Redis ran it. 1,000 messages over 50 conversations, each answered 200 once
// and recorded exactly once; sending a message again with its message_id (to the same node
// or the other) answers the first reply and records nothing; one too old for its reply to
// be kept is refused, not recorded again.
func TestLostRedisRepliesRecordEachMessageOnce(t *testing.T) {
	_, prefix := testenv.Redis(t)
	px := testenv.NewProxy(t, testenv.RedisAddr())
	rdb := redis.NewClient(&redis.Options{Addr: px.Addr, MaxRetries: 10, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 4 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	w := newWorld(t, 2, rdb, prefix)
	var n atomic.Int64
	px.DropReplies(func(reply []byte) bool { return reply[0] == ':' && n.Add(1)%5 == 0 })
	const convs, each = 50, 20
	var wg sync.WaitGroup
	last := make([]reply, convs)
	for c := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf(`{"text": "message %d about my order", "message_id": "m-%d-%d"}`, i, c, i)
				r := do(t, "POST", w.nodes[(c+i)%2].URL+fmt.Sprintf("/v1/conversations/lossy-%d/messages", c), body)
				if r.status != 200 {
					t.Errorf("lossy-%d message %d: %d %v", c, i, r.status, r.body)
				}
				if i == each-1 {
					last[c] = r
				}
			}
		}()
	}
	wg.Wait()
	px.DropReplies(nil)
	if px.Dropped.Load() < 100 {
		t.Fatalf("only %d replies were lost; the test proves nothing", px.Dropped.Load())
	}
	text := fmt.Sprintf(`{"text": "message %d about my order"`, each-1)
	for c := range convs { // the last message again, to both nodes, by body and by header
		for node := range 2 {
			url := w.nodes[node].URL + fmt.Sprintf("/v1/conversations/lossy-%d/messages", c)
			req, _ := http.NewRequest("POST", url, strings.NewReader(text+"}"))
			if node == 0 {
				req, _ = http.NewRequest("POST", url, strings.NewReader(text+fmt.Sprintf(`, "message_id": "m-%d-%d"}`, c, each-1)))
			} else {
				req.Header.Set("Idempotency-Key", fmt.Sprintf("m-%d-%d", c, each-1))
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 200 || body["replayed"] != true || resp.Header.Get("Idempotent-Replayed") != "true" ||
				body["turn"] != last[c].body["turn"] || fmt.Sprint(body["messages"]) != fmt.Sprint(last[c].body["messages"]) {
				t.Fatalf("repeat of lossy-%d's last message on node %d: %d %v, first %v", c, node, resp.StatusCode, body, last[c].body)
			}
		}
		old := do(t, "POST", w.nodes[c%2].URL+fmt.Sprintf("/v1/conversations/lossy-%d/messages", c), fmt.Sprintf(`{"text": "message 0 about my order", "message_id": "m-%d-0"}`, c))
		if old.status != 409 || !strings.Contains(old.str("error", "message"), "no longer kept") {
			t.Fatalf("a repeat too old to replay: %d %v", old.status, old.body)
		}
	}
	store := redisstore.New(testenvClient(t), redisstore.Options{Prefix: strings.TrimSuffix(w.prefix, ":")})
	for c := range convs {
		id := fmt.Sprint("lossy-", c)
		conv, err := store.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		turns, _ := store.Transcript(t.Context(), id)
		seen := map[string]int{}
		for _, tr := range turns {
			seen[tr.Text]++
		}
		if conv.TurnCount != each || len(turns) != each || len(seen) != each {
			t.Errorf("%s: %d turns counted, %d in the transcript, %d distinct; want %d each", id, conv.TurnCount, len(turns), len(seen), each)
		}
	}
}

func testenvClient(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestReusedConversationIDHandsOffAgain: a conversation handed off, deleted, and started
// again under the same id (a returning customer whose id comes from the channel) hands off
// again under a new key, and the desk receives both handoffs.
func TestReusedConversationIDHandsOffAgain(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	var keys []string
	for range 2 {
		r := w.say(t, "wechat-u1", "I want to talk to a real person")
		if r.str("handoff", "status") != "queued" {
			t.Fatalf("handoff: %v", r.body)
		}
		keys = append(keys, r.str("handoff", "id"))
		// The desk has it before the customer's data is erased (DELETE erases pending
		// deliveries too).
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got, _ := w.sink.Received(); len(got) == len(keys) {
				break
			}
		}
		if d := do(t, "DELETE", w.nodes[0].URL+"/v1/conversations/wechat-u1", ""); d.status != 204 {
			t.Fatalf("delete: %d", d.status)
		}
	}
	if keys[0] == keys[1] {
		t.Fatalf("the same handoff key twice: %s", keys[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ := w.sink.Received(); len(got) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, _ := w.sink.Received()
	if len(got) != 2 || got[0].Key != keys[0] || got[1].Key != keys[1] {
		t.Fatalf("the desk received %+v, want handoffs %v", got, keys)
	}
}

// TestConversationViewIsNotTheStoredRecord: GET shows what a frontend needs, none of the
// engine's counters.
func TestConversationViewIsNotTheStoredRecord(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	w := newWorld(t, 1, rdb, prefix)
	w.say(t, "v-1", "blorp zzz qwv")
	g := do(t, "GET", w.nodes[0].URL+"/v1/conversations/v-1", "")
	for _, internal := range []string{"version", "unresolved", "clarified", "instance", "answers", "outgoing", "last_article", "attempts"} {
		if _, ok := g.body[internal]; ok {
			t.Errorf("GET shows the internal field %q: %v", internal, g.body)
		}
	}
	turns, _ := g.body["turns"].([]any)
	if g.status != 200 || g.body["turn_count"] != 1.0 || len(turns) != 1 || turns[0].(map[string]any)["source"] != "clarify" {
		t.Fatalf("GET: %d %v", g.status, g.body)
	}
}

// TestDeadLettersAfterEveryAttemptFailed: a desk that always fails leaves the handoff as
// a dead letter that an admin can list, with the error and attempts.
func TestDeadLettersAfterEveryAttemptFailed(t *testing.T) {
	var fixed atomic.Bool
	var received atomic.Int32
	desk := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !fixed.Load() {
			http.Error(rw, "desk broken", http.StatusInternalServerError)
			return
		}
		received.Add(1)
	}))
	defer desk.Close()
	clf, _ := bundleModelAndKB(t)
	box := boxmem.NewOutbox(handoff.Options{Backoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 2, Timeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go box.Run(ctx, (&webhook.Sender{URL: desk.URL, Secrets: [][]byte{[]byte(handoffSecret)}}).Deliver)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(botDefinition(t, "http://127.0.0.1:1"), nil), Outbox: box, Logger: log})
	api, err := httpapi.New(eng, httpapi.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := contractServer(t, api)
	if r := do(t, "POST", srv.URL+"/v1/conversations/dl-1/messages", `{"text": "I want to talk to a human"}`); r.str("source") != "handoff" {
		t.Fatalf("no handoff: %v", r.body)
	}
	var r reply
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r = do(t, "GET", srv.URL+"/v1/admin/outbox/dead", ""); r.body["count"] == 1.0 {
			break
		}
	}
	dead, _ := r.body["dead_letters"].([]any)
	if r.status != 200 || len(dead) != 1 {
		t.Fatalf("dead letters: %d %v", r.status, r.body)
	}
	d := dead[0].(map[string]any)
	if d["attempts"] != 2.0 || !strings.Contains(d["error"].(string), "500") || !strings.HasPrefix(d["key"].(string), "dl-1:handoff:") {
		t.Errorf("dead letter: %v", d)
	}
	// The desk is fixed; an operator retries the dead letter: delivered once, gone from the list.
	fixed.Store(true)
	key := d["key"].(string)
	if r := do(t, "POST", srv.URL+"/v1/admin/outbox/dead/"+url.PathEscape(key)+"/retry", ""); r.status != 200 || r.body["retried"] != key {
		t.Fatalf("retry: %d %v", r.status, r.body)
	}
	for deadline := time.Now().Add(5 * time.Second); received.Load() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if n := received.Load(); n != 1 {
		t.Errorf("the desk received the retried handoff %d times", n)
	}
	if r := do(t, "GET", srv.URL+"/v1/admin/outbox/dead", ""); r.body["count"] != 0.0 {
		t.Errorf("dead letters after the retry: %v", r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/admin/outbox/dead/"+url.PathEscape(key)+"/retry", ""); r.status != 404 {
		t.Errorf("retrying it again: %d", r.status)
	}
}
