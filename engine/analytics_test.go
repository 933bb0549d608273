package engine

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
	anbolt "github.com/kefu-ai/kefu/analytics/boltstore"
	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff"
	handoffmem "github.com/kefu-ai/kefu/handoff/inmem"
)

var slaBot = strings.Replace(testBot, "handoff:\n", `handoff:
  sla: {normal: 5m, high: 10m, urgent: 2m}
  queues:
    - {name: vip, tiers: [vip], skills: [vip]}
    - {name: greeters, intents: [greeting], skills: [smalltalk]}
`, 1)

// keys is an outbox that remembers what was queued.
type keys struct {
	handoff.Outbox
	mu  sync.Mutex
	got []handoff.Delivery
}

func (k *keys) Enqueue(ctx context.Context, d handoff.Delivery) error {
	k.mu.Lock()
	k.got = append(k.got, d)
	k.mu.Unlock()
	return k.Outbox.Enqueue(ctx, d)
}

func (k *keys) breaches() []handoff.Breach {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []handoff.Breach
	seen := map[string]bool{}
	for _, d := range k.got {
		if d.Kind == handoff.KindBreach && !seen[d.Key] {
			seen[d.Key] = true
			var b handoff.Breach
			json.Unmarshal(d.Body, &b)
			out = append(out, b)
		}
	}
	return out
}

// node is one kefu process of the SLA test: an engine on the shared store, outbox and
// analytics file, with the test's clock.
type node struct {
	eng *Engine
}

type slaWorld struct {
	t      *testing.T
	mu     sync.Mutex
	now    time.Time
	store  conversation.Store
	outbox *keys
	path   string
	db     *bolt.DB
}

func (w *slaWorld) clock() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }
func (w *slaWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

// start opens the analytics file (again, after a restart) and returns a node on it.
func (w *slaWorld) start() *node {
	w.t.Helper()
	if w.db == nil {
		db, err := bolt.Open(w.path, 0o600, nil)
		if err != nil {
			w.t.Fatal(err)
		}
		w.db = db
	}
	st, err := anbolt.New(w.db)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := dialogs.Parse("bot.yaml", []byte(slaBot), map[string][]byte{"greet.yaml": []byte(greetFlow)})
	if err != nil {
		w.t.Fatal(err)
	}
	rec := analytics.NewRecorder(st, w.clock)
	return &node{eng: New(Config{NLU: said, Bot: dialogs.NewMachine(b, nil), Store: w.store, Outbox: w.outbox, Analytics: rec, Now: w.clock})}
}

func (w *slaWorld) restart() {
	w.db.Close()
	w.db = nil
}

// TestSLABreachIsSentOnceAfterItsTarget: a handoff's SLA timer fires once its target has
// passed (not before), sends one handoff.sla_breached delivery and counts one breach
// whichever of two nodes ticks, survives a restart, and never fires after an acceptance
// or a release.
func TestSLABreachIsSentOnceAfterItsTarget(t *testing.T) {
	w := &slaWorld{t: t, now: time.Now().UTC().Truncate(time.Hour), store: conversation.Store(nil), path: filepath.Join(t.TempDir(), "kefu.db")}
	w.store = newFixture(t, nil).store
	w.outbox = &keys{Outbox: handoffmem.NewOutbox(handoff.Options{})}
	t0 := w.now
	a := w.start()
	ctx := t.Context()
	say := func(n *node, conv, text string, tier string) *MessageResult {
		t.Helper()
		r, err := n.eng.Message(ctx, conv, MessageRequest{Text: text, Customer: conversation.Customer{ID: conv, Tier: tier}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tick := func(n *node) {
		t.Helper()
		n.eng.swept = time.Time{}
		if err := n.eng.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// late: normal priority, 5 minutes, nobody accepts. vip: routed to the vip queue (high,
	// 10 minutes), accepted after 3. gone: released before its target.
	r := say(a, "late", "get me a human", "")
	if r.Handoff == nil || r.Handoff.Priority != "normal" || r.Handoff.Queue != "general" || r.Handoff.Deadline == nil || !r.Handoff.Deadline.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("handoff %+v; want normal, queue general, deadline +5m", r.Handoff)
	}
	if r := say(a, "vip", "get me a human", "vip"); r.Handoff.Queue != "vip" || r.Handoff.Priority != "high" {
		t.Fatalf("vip handoff %+v; want queue vip, priority high", r.Handoff)
	}
	say(a, "gone", "hello", "")
	if r := say(a, "gone", "get me a human", ""); r.Handoff.Queue != "greeters" {
		t.Fatalf("handoff after a greeting routed to %q; want greeters", r.Handoff.Queue)
	}
	var payload handoff.Payload
	json.Unmarshal(w.outbox.got[0].Body, &payload)
	if payload.Queue != "general" || payload.Skills == nil || payload.Deadline == nil {
		t.Fatalf("handoff payload queue %q skills %v deadline %v", payload.Queue, payload.Skills, payload.Deadline)
	}

	w.advance(3 * time.Minute)
	ev, err := a.eng.Event(ctx, "vip", Event{Type: "agent.accepted", Agent: "ann"})
	if err != nil || ev.Handoff.Status != "accepted" || ev.Handoff.Agent != "ann" {
		t.Fatalf("accept: %+v, %v", ev, err)
	}
	if _, err := a.eng.Event(ctx, "vip", Event{Type: "agent.accepted", Agent: "bo"}); ErrorCode(err) != Conflict {
		t.Fatalf("a second acceptance: %v; want conflict", err)
	}
	if _, err := a.eng.Event(ctx, "gone", Event{Type: "agent.released"}); err != nil {
		t.Fatal(err)
	}
	w.advance(2*time.Minute - time.Second) // 4:59 after the handoff
	tick(a)
	if b := w.outbox.breaches(); len(b) != 0 {
		t.Fatalf("breaches before the target: %+v", b)
	}

	w.restart() // the timer is in the file, not in the process
	a, b := w.start(), w.start()
	w.advance(2 * time.Second)
	tick(a)
	tick(b)
	w.advance(20 * time.Minute) // past every other target
	tick(b)
	tick(a)
	got := w.outbox.breaches()
	if len(got) != 1 || got[0].Handoff != r.Handoff.ID || got[0].Conversation != "late" || got[0].Priority != "normal" || got[0].Queue != "general" ||
		!got[0].Deadline.Equal(t0.Add(5*time.Minute)) || got[0].ID != r.Handoff.ID+":sla_breached" {
		t.Fatalf("breach deliveries %+v; want one, for late's handoff", got)
	}
	// Late acceptance counts the wait but no second breach.
	if _, err := b.eng.Event(ctx, "late", Event{Type: "agent.accepted", Agent: "cy", Queue: "overflow"}); err != nil {
		t.Fatal(err)
	}
	tick(a)
	if n := len(w.outbox.breaches()); n != 1 {
		t.Fatalf("%d breach deliveries after a late acceptance; want 1", n)
	}
	sum, err := a.eng.Summary(ctx, AnalyticsQuery{From: t0.Format(time.RFC3339), To: t0.Add(time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.SLA["normal"] != (analytics.SLA{Breached: 1}) || sum.SLA["high"] != (analytics.SLA{Met: 1}) || sum.Handoffs != 3 ||
		sum.HandoffQueues["vip"] != 1 || sum.HandoffQueues["general"] != 1 || sum.HandoffQueues["greeters"] != 1 || sum.Released != 1 ||
		sum.TimeToAgentS["high"].Count != 1 || sum.TimeToAgentS["normal"].Count != 1 {
		b, _ := json.Marshal(sum)
		t.Fatalf("summary %s", b)
	}
	// 3 minutes for the VIP: in the 120–180 s bucket; 25:01 for late: 1200–1800 s.
	if p := *sum.TimeToAgentS["high"].P50; p < 120 || p > 180 {
		t.Errorf("time to agent, high: p50 %v; want within 120–180 s", p)
	}
}

// TestAnalyticsQueriesRefuseBadPeriods: every malformed or out-of-range parameter is a 400
// naming it.
func TestAnalyticsQueriesRefuseBadPeriods(t *testing.T) {
	w := &slaWorld{t: t, now: time.Now().UTC(), path: filepath.Join(t.TempDir(), "kefu.db")}
	w.store, w.outbox = newFixture(t, nil).store, &keys{Outbox: handoffmem.NewOutbox(handoff.Options{})}
	n := w.start()
	ctx := t.Context()
	day := func(d int) string { return w.now.AddDate(0, 0, d).Format(time.DateOnly) }
	for _, tc := range []struct {
		q    AnalyticsQuery
		want string
	}{
		{AnalyticsQuery{From: day(-1), To: day(-2)}, "from"},
		{AnalyticsQuery{From: day(-1), To: day(-1)}, "from"},
		{AnalyticsQuery{From: "yesterday"}, "from must be"},
		{AnalyticsQuery{To: "2026-13-01"}, "to must be"},
		{AnalyticsQuery{From: day(-91)}, "retention"},
		{AnalyticsQuery{To: day(400)}, "year ahead"},
	} {
		_, err := n.eng.Summary(ctx, tc.q)
		if ErrorCode(err) != Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want invalid naming %q", tc.q, err, tc.want)
		}
	}
	for _, tc := range []struct {
		q    SeriesQuery
		want string
	}{
		{SeriesQuery{Metric: "happiness", Bucket: "day"}, "metric"},
		{SeriesQuery{Metric: "messages", Bucket: "week"}, "bucket"},
		{SeriesQuery{Metric: "messages", Bucket: "hour", AnalyticsQuery: AnalyticsQuery{From: day(-60)}}, "bucket hour"},
	} {
		_, err := n.eng.Series(ctx, tc.q)
		if ErrorCode(err) != Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want invalid naming %q", tc.q, err, tc.want)
		}
	}
	if s, err := n.eng.Series(ctx, SeriesQuery{Metric: "messages", Bucket: "day"}); err != nil || len(s.Points) < 7 || !slices.IsSortedFunc(s.Points, func(a, b analytics.Point) int { return a.At.Compare(b.At) }) {
		t.Errorf("default series: %+v, %v; want the last 7 days, in order", s, err)
	}
	none := New(Config{NLU: said})
	if _, err := none.Summary(ctx, AnalyticsQuery{}); ErrorCode(err) != Unavailable {
		t.Errorf("without analytics: %v; want unavailable", err)
	}
}
