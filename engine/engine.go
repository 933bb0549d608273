// Package engine composes what kefu does with one customer message. It knows the models,
// dialogs and knowledge base through small interfaces and nothing of HTTP, Redis or ONNX
// Runtime; engine/httpapi serves it.
package engine

import (
	"cmp"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/conversation/inmem"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff"
	handoffmem "github.com/kefu-ai/kefu/handoff/inmem"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

// classifier is what the engine needs of a loaded model (models.Classifier).
type classifier interface {
	Classify(ctx context.Context, texts []string) ([]models.Result, error)
	Manifest() *models.Manifest
}

// knowledge answers questions the dialogs do not take (kb.KB). Find counts nothing; what
// a turn showed is counted by Expose and Feedback once the turn is saved.
type knowledge interface {
	Find(ctx context.Context, q kb.Question) (*kb.Reply, error)
	Expose(ctx context.Context, q kb.Question, r *kb.Reply) error
	Feedback(ctx context.Context, f kb.Feedback) error
	Forget(ctx context.Context, conv string) error
}

// cachedLoader is a store that can serve a turn from its own last save
// (conversation/redisstore); a conflict then means the copy was stale, and the rerun reads
// with Load.
type cachedLoader interface {
	LoadForTurn(ctx context.Context, id string) (*conversation.Conversation, error)
}

var (
	_ classifier = (*models.Classifier)(nil)
	_ knowledge  = (*kb.KB)(nil)
)

// Config wires an engine. The zero value of each field but NLU is its default.
type Config struct {
	// NLU reads intent and emotion (models.Classifier); required.
	NLU classifier
	// Bot runs the dialogs; nil: conversation calls answer Unavailable until SetBot.
	Bot *dialogs.Machine
	// Store keeps conversations; default conversation/inmem (24 h TTL).
	Store conversation.Store
	// Outbox carries handoffs; default a handoff/inmem outbox nobody runs (set one and run
	// it).
	Outbox handoff.Outbox
	// Calls keeps action results so that a rerun turn calls no backend twice; default
	// conversation/inmem (one process; use conversation/redisstore with many).
	Calls dialogs.Recorder
	// KB answers what no dialog takes; nil: no KB fallback.
	KB knowledge
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Analytics records the service's figures (run Watch); nil: none.
	Analytics *analytics.Recorder
	// Idle ends a conversation without a turn for this long (the state's TTL); default 24
	// hours. Retention is how far back figures are kept; default 90 days.
	Idle, Retention time.Duration
}

// Engine answers customer messages.
type Engine struct {
	nlu   classifier
	now   func() time.Time
	cfg   Config
	bot   atomic.Pointer[dialogs.Machine]
	locks locks
	// Tick's last sweep of idle conversations and prune of old figures (Tick runs on one
	// goroutine: Watch's).
	swept, pruned time.Time
}

// New returns an engine (see Config; only NLU is required).
func New(cfg Config) *Engine {
	if cfg.Store == nil {
		cfg.Store = inmem.NewStore(0)
	}
	if cfg.Outbox == nil {
		cfg.Outbox = handoffmem.NewOutbox(handoff.Options{})
	}
	if cfg.Calls == nil {
		cfg.Calls = inmem.NewCalls(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 24 * time.Hour
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	e := &Engine{nlu: cfg.NLU, now: cfg.Now, cfg: cfg}
	if cfg.Bot != nil {
		e.bot.Store(cfg.Bot)
	}
	return e
}

// Model names the loaded model.
func (e *Engine) Model() ModelInfo {
	m := e.nlu.Manifest()
	return ModelInfo{Name: m.Name, Version: m.Version}
}

// ModelInfo identifies a model.
type ModelInfo struct {
	Name    string `json:"name" required:"true"`
	Version string `json:"version" required:"true"`
}

// ParseRequest asks what the model makes of one text.
type ParseRequest struct {
	Text string `json:"text" required:"true" minLength:"1" doc:"longer than the model's input, it is truncated (truncated: true)"`
	// Lang is "zh", "en", or "" / "auto" to detect it.
	Lang string `json:"lang,omitempty" enum:"zh,en,auto"`
	// TopK is how many labels each head ranks; default 3, at most 100.
	TopK int `json:"top_k,omitempty" minimum:"1" maximum:"100" doc:"how many labels each head ranks; default 3"`
}

// ParseResult is every head's answer for one text.
type ParseResult struct {
	Lang      string               `json:"lang" required:"true" enum:"zh,en"`
	Model     ModelInfo            `json:"model" required:"true"`
	Heads     map[string]HeadParse `json:"heads" required:"true" doc:"each head of the model (intent, emotion) by name"`
	Tokens    int                  `json:"tokens" required:"true"`
	Truncated bool                 `json:"truncated" required:"true"`
	TookMS    float64              `json:"took_ms" required:"true"`
}

// HeadParse is one head's label, confidence and ranking.
type HeadParse struct {
	Label      string   `json:"label" required:"true"`
	Confidence float32  `json:"confidence" required:"true"`
	Ranking    []Ranked `json:"ranking" required:"true"`
}

// Ranked is a label with its probability.
type Ranked struct {
	Label      string  `json:"label" required:"true"`
	Confidence float32 `json:"confidence" required:"true"`
}

// Parse classifies one text with every head of the model. Errors: Invalid (empty text,
// invalid UTF-8, unknown lang, top_k out of range), Overloaded, Unavailable, Canceled.
func (e *Engine) Parse(ctx context.Context, req ParseRequest) (*ParseResult, error) {
	start := e.now()
	if err := checkText(req.Text); err != nil {
		return nil, err
	}
	lang, err := language(req.Lang, req.Text)
	if err != nil {
		return nil, err
	}
	k := req.TopK
	switch {
	case k == 0:
		k = 3
	case k < 0 || k > 100:
		return nil, Errorf(Invalid, "top_k must be between 1 and 100, got %d", k)
	}
	res, err := e.nlu.Classify(ctx, []string{req.Text})
	if err != nil {
		return nil, Translate(err)
	}
	r := res[0]
	out := &ParseResult{Lang: lang, Model: e.Model(), Heads: map[string]HeadParse{}, Tokens: r.Tokens, Truncated: r.Truncated}
	m := e.nlu.Manifest()
	for i, h := range r.Heads {
		out.Heads[h.Head] = HeadParse{Label: h.Label, Confidence: h.Confidence, Ranking: rank(m.Heads[i].Labels, h.Scores, k)}
	}
	out.TookMS = float64(e.now().Sub(start).Microseconds()) / 1000
	return out, nil
}

// checkText refuses texts no model should see.
func checkText(text string) error {
	if !utf8.ValidString(text) {
		return Errorf(Invalid, "text is not valid UTF-8")
	}
	if Blank(text) {
		return Errorf(Invalid, "text is empty (spaces, control and format characters only)")
	}
	return nil
}

// Blank says whether s has nothing to read: only spaces, control characters (NUL, …) and
// format characters (zero-width spaces, joiners, marks of direction).
func Blank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf) }) == ""
}

// language returns the requested language, or detects it: "zh" when at least a third of the
// letters are Han characters, otherwise "en".
func language(lang, text string) (string, error) {
	switch lang {
	case "zh", "en":
		return lang, nil
	case "", "auto":
	default:
		return "", Errorf(Invalid, "lang must be zh, en or auto, got %q", lang)
	}
	han, letters := 0, 0
	for _, r := range text {
		if unicode.Is(unicode.Han, r) {
			han++
			letters++
		} else if unicode.IsLetter(r) {
			letters++
		}
	}
	if letters > 0 && han*3 >= letters {
		return "zh", nil
	}
	return "en", nil
}

// rank returns the k most probable labels, most probable first, ties by label order.
func rank(labels []string, scores []float32, k int) []Ranked {
	// A selection, not a sort of every label: k is small and a model may have hundreds.
	k = min(k, len(labels))
	if k <= 0 {
		return []Ranked{}
	}
	out := make([]Ranked, 0, k)
	for i, label := range labels {
		s := scores[i]
		if len(out) == k && cmp.Compare(s, out[k-1].Confidence) <= 0 {
			continue
		}
		j := len(out) // after every entry scored s or higher, so ties keep the labels' order
		for j > 0 && cmp.Compare(s, out[j-1].Confidence) > 0 {
			j--
		}
		if len(out) < k {
			out = append(out, Ranked{})
		}
		copy(out[j+1:], out[j:len(out)-1])
		out[j] = Ranked{Label: label, Confidence: s}
	}
	return out
}

// ModelQueueDepth counts texts waiting for the model, when the classifier tells.
func (e *Engine) ModelQueueDepth() (int, bool) {
	q, ok := e.nlu.(interface{ QueueDepth() int })
	if !ok {
		return 0, false
	}
	return q.QueueDepth(), true
}
