package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Errors returned by Classify.
var (
	// ErrOverloaded means the queue of texts waiting for the model is full; retry later.
	ErrOverloaded = errors.New("models: classifier overloaded")
	// ErrClosed means the classifier was closed.
	ErrClosed = errors.New("models: classifier closed")
)

// Config tunes a Classifier. The zero value means every default.
type Config struct {
	// Session chooses the execution provider and threads.
	Session SessionConfig
	// MaxBatch is the most texts in one model run; default 32.
	MaxBatch int
	// MaxWait is how long a batch may wait to fill after its first text; default 1ms. It
	// waits only while texts arrive often enough for company to be likely (on average one or
	// more within MaxWait); at a slower pace a text runs at once, as waiting would only add
	// MaxWait to its latency.
	MaxWait time.Duration
	// QueueSize is how many requests (each up to MaxBatch texts) may wait; beyond it Classify
	// answers ErrOverloaded. Default 256.
	QueueSize int
	// Workers is how many batches run at once; default 2 (one while another is being
	// assembled or decoded, and on small machines, one per core).
	Workers int
	// Logger receives load-time messages; default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 32
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Millisecond
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Session.IntraOpThreads <= 0 {
		c.Session.IntraOpThreads = max(1, runtime.NumCPU()/c.Workers)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Result is what the model says about one text.
type Result struct {
	// Heads holds one entry per manifest head, in manifest order.
	Heads []HeadResult
	// Tokens is the number of ids the model saw, special tokens included.
	Tokens int
	// Truncated reports that the text was longer than the model's max_seq_len.
	Truncated bool
}

// HeadResult is one head's answer.
type HeadResult struct {
	Head       string
	Label      string
	Confidence float32
	// Scores are the probabilities of every label, in the manifest's label order.
	Scores []float32
}

// Head returns the result of the head named name.
func (r Result) Head(name string) (HeadResult, bool) {
	for _, h := range r.Heads {
		if h.Head == name {
			return h, true
		}
	}
	return HeadResult{}, false
}

// Classifier serves one model bundle: it tokenizes texts, groups concurrent requests into
// batches, runs them through ONNX Runtime and turns logits into labels. Safe for concurrent use.
type Classifier struct {
	manifest *Manifest
	tok      *Tokenizer
	session  *ort.DynamicAdvancedSession
	provider string
	cfg      Config
	inputs   []string
	outputs  []string

	queue    chan *job
	arrived  atomic.Int64 // when the last request was queued (Unix ns)
	gap      atomic.Int64 // moving average of the time between requests (ns); 0: none yet
	workers  sync.WaitGroup
	mu       sync.RWMutex // guards closed against sends on a closed queue
	closed   bool
	inflight sync.WaitGroup
}

type job struct {
	ctx  context.Context
	ids  [][]int64
	out  []Result
	done chan error
}

// Load opens the model bundle in dir: model.json, the tokenizer and the ONNX graph. The
// manifest is checked against the graph (input names and types, output names and widths)
// and one warm-up batch runs before Load returns. Errors name the file at fault.
func Load(rt *Runtime, dir string, cfg Config) (*Classifier, error) {
	if rt == nil {
		return nil, ErrNoRuntime
	}
	cfg = cfg.withDefaults()
	manifestPath := filepath.Join(dir, "model.json")
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("load model: %s: %w", manifestPath, err)
	}
	modelPath := filepath.Join(dir, m.Model)
	if _, err := os.Stat(modelPath); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	tok, err := LoadTokenizer(filepath.Join(dir, m.Tokenizer))
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	inputs, outputs, err := checkGraph(modelPath, m)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	session, provider, err := newSession(modelPath, inputs, outputs, cfg.Session, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("load model: %s: %w", modelPath, err)
	}
	c := &Classifier{
		manifest: m, tok: tok, session: session, provider: provider, cfg: cfg,
		inputs: inputs, outputs: outputs,
		queue: make(chan *job, cfg.QueueSize),
	}
	for range cfg.Workers {
		c.workers.Go(c.work)
	}
	if _, err := c.Classify(context.Background(), []string{"warm up", "预热一下"}); err != nil {
		return nil, errors.Join(fmt.Errorf("load model: %s: warm-up run: %w", modelPath, err), c.Close())
	}
	c.arrived.Store(0) // the warm-up says nothing of the traffic to come
	c.gap.Store(0)
	if !tok.Fast() {
		cfg.Logger.Info("tokenizer uses sugarme's general pipeline (slower)", "file", filepath.Join(dir, m.Tokenizer))
	}
	return c, nil
}

// checkGraph compares the manifest with the graph's declared inputs and outputs.
func checkGraph(path string, m *Manifest) (inputs, outputs []string, err error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a loadable ONNX model: %v", path, firstLine(err))
	}
	want := map[string]string{m.Inputs.InputIDs: "input_ids", m.Inputs.AttentionMask: "attention_mask"}
	if m.Inputs.TokenTypeIDs != "" {
		want[m.Inputs.TokenTypeIDs] = "token_type_ids"
	}
	found := map[string]bool{}
	for _, in := range ins {
		role, ok := want[in.Name]
		if !ok {
			return nil, nil, fmt.Errorf("%s: graph input %q is not named in model.json inputs", path, in.Name)
		}
		if in.DataType != ort.TensorElementDataTypeInt64 {
			return nil, nil, fmt.Errorf("%s: input %q (%s) is %v; kefu feeds int64", path, in.Name, role, in.DataType)
		}
		if len(in.Dimensions) != 2 {
			return nil, nil, fmt.Errorf("%s: input %q has shape %v; want [batch, sequence]", path, in.Name, in.Dimensions)
		}
		found[in.Name] = true
	}
	for name, role := range want {
		if !found[name] {
			return nil, nil, fmt.Errorf("%s: model.json names %s input %q, which the graph does not have", path, role, name)
		}
	}
	inputs = []string{m.Inputs.InputIDs, m.Inputs.AttentionMask}
	if m.Inputs.TokenTypeIDs != "" {
		inputs = append(inputs, m.Inputs.TokenTypeIDs)
	}
	for _, h := range m.Heads {
		i := slices.IndexFunc(outs, func(o ort.InputOutputInfo) bool { return o.Name == h.Output })
		if i < 0 {
			return nil, nil, fmt.Errorf("%s: head %q: graph has no output %q", path, h.Name, h.Output)
		}
		o := outs[i]
		if o.DataType != ort.TensorElementDataTypeFloat {
			return nil, nil, fmt.Errorf("%s: head %q: output %q is %v; want float32", path, h.Name, h.Output, o.DataType)
		}
		if len(o.Dimensions) != 2 {
			return nil, nil, fmt.Errorf("%s: head %q: output %q has shape %v; want [batch, labels]", path, h.Name, h.Output, o.Dimensions)
		}
		if w := o.Dimensions[1]; w > 0 && int(w) != len(h.Labels) {
			return nil, nil, fmt.Errorf("%s: head %q: model.json lists %d labels but output %q has %d columns", path, h.Name, len(h.Labels), h.Output, w)
		}
		outputs = append(outputs, h.Output)
	}
	return inputs, outputs, nil
}

// Manifest returns the bundle's manifest (read-only).
func (c *Classifier) Manifest() *Manifest { return c.manifest }

// Tokenizer returns the bundle's tokenizer.
func (c *Classifier) Tokenizer() *Tokenizer { return c.tok }

// Config returns the settings in effect, defaults filled in.
func (c *Classifier) Config() Config { return c.cfg }

// Provider is the execution provider in use: "cpu" or "cuda".
func (c *Classifier) Provider() string { return c.provider }

// QueueDepth is the number of requests waiting for a batch.
func (c *Classifier) QueueDepth() int { return len(c.queue) }

// Classify returns one Result per text, in order. Texts are cut to the model's max_seq_len;
// empty texts are classified as they are. It returns ErrOverloaded when the queue is full,
// ErrClosed after Close, and ctx.Err() when ctx ends first (a batch whose callers have all
// gone is terminated inside ONNX Runtime).
func (c *Classifier) Classify(ctx context.Context, texts []string) ([]Result, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.inflight.Done()

	maxLen := c.manifest.MaxSeqLen
	out := make([]Result, len(texts))
	ids := make([][]int64, len(texts))
	for i, t := range texts {
		enc, err := c.tok.Encode(make([]int64, 0, 32), t, maxLen+1)
		if err != nil {
			return nil, err
		}
		if len(enc) > maxLen {
			out[i].Truncated = true
			enc, err = c.tok.Encode(enc[:0], t, maxLen)
			if err != nil {
				return nil, err
			}
		}
		ids[i] = enc
		out[i].Tokens = len(enc)
	}
	// Refuse up front what cannot fit, and withdraw what was queued if the queue fills
	// meanwhile, so that a refused call leaves no work behind.
	n := (len(texts) + c.cfg.MaxBatch - 1) / c.cfg.MaxBatch
	if n > cap(c.queue)-len(c.queue) {
		return nil, ErrOverloaded
	}
	c.count(time.Now())
	jctx, withdraw := context.WithCancel(ctx)
	defer withdraw()
	jobs := make([]*job, 0, n)
	for start := 0; start < len(texts); start += c.cfg.MaxBatch {
		end := min(start+c.cfg.MaxBatch, len(texts))
		j := &job{ctx: jctx, ids: ids[start:end], out: out[start:end], done: make(chan error, 1)}
		select {
		case c.queue <- j:
			jobs = append(jobs, j)
		default:
			return nil, ErrOverloaded
		}
	}
	for _, j := range jobs {
		select {
		case err := <-j.done:
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// Run classifies already tokenized rows (as Tokenizer.Encode returns them, at most
// max_seq_len ids each) as one batch on the calling goroutine, without the queue. Benchmarks
// use it to measure the model alone. It returns ErrClosed after Close.
func (c *Classifier) Run(ctx context.Context, rows [][]int64) ([]Result, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.inflight.Done()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) > c.manifest.MaxSeqLen {
			return nil, fmt.Errorf("row of %d ids is longer than max_seq_len %d", len(r), c.manifest.MaxSeqLen)
		}
	}
	j := &job{ctx: ctx, ids: rows, out: make([]Result, len(rows))}
	for i, r := range rows {
		j.out[i].Tokens = len(r)
	}
	if err := c.runBatch([]*job{j}); err != nil {
		return nil, err
	}
	return j.out, nil
}

// enter registers a call, or returns ErrClosed; the caller calls c.inflight.Done.
func (c *Classifier) enter() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	c.inflight.Add(1)
	return nil
}

// Close stops accepting texts, waits for running calls, and releases the session. It is safe
// to call more than once.
func (c *Classifier) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.inflight.Wait()
	close(c.queue)
	c.workers.Wait()
	return c.session.Destroy()
}

// count updates the average time between requests with one arriving at now (an
// exponentially weighted mean, weight 1/8, from the first gap; racing updates may drop one,
// which is harmless).
func (c *Classifier) count(now time.Time) {
	t := now.UnixNano()
	if prev := c.arrived.Swap(t); prev > 0 && t > prev {
		if g := c.gap.Load(); g == 0 {
			c.gap.Store(t - prev)
		} else {
			c.gap.Store(g + (t-prev-g)/8)
		}
	}
}

// busy says whether requests arrive often enough for a batch to wait for company: on average
// one or more within MaxWait. (A rule of 1.5 cost 6 % more CPU per message at 3,000 turns/s.)
func (c *Classifier) busy() bool {
	g := c.gap.Load()
	return g > 0 && g <= int64(c.cfg.MaxWait)
}

// work gathers jobs into batches: it takes the first waiting job, then every one already
// queued, and while busy waits up to MaxWait for more, until MaxBatch texts; then it runs them.
func (c *Classifier) work() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *job
	for {
		first := carry
		carry = nil
		if first == nil {
			var ok bool
			if first, ok = <-c.queue; !ok {
				return
			}
		}
		batch := []*job{first}
		n := len(first.ids)
		waiting := false // the timer runs
	fill:
		for n < c.cfg.MaxBatch {
			var j *job
			var ok bool
			select {
			case j, ok = <-c.queue:
			default: // nothing queued: wait for company only while busy
				if !waiting {
					if !c.busy() {
						break fill
					}
					waiting = true
					timer.Reset(c.cfg.MaxWait)
				}
				select {
				case j, ok = <-c.queue:
				case <-timer.C:
					waiting = false
					break fill
				}
			}
			if !ok {
				break fill
			}
			if n+len(j.ids) > c.cfg.MaxBatch {
				carry = j
				break fill
			}
			batch = append(batch, j)
			n += len(j.ids)
		}
		if waiting {
			timer.Stop()
		}
		c.run(batch)
	}
}

// run executes one batch and answers every job in it.
func (c *Classifier) run(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- err
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	err := c.runBatch(live)
	for _, j := range live {
		j.done <- err
	}
}

func (c *Classifier) runBatch(batch []*job) (err error) {
	var rows [][]int64
	var results []*Result
	for _, j := range batch {
		rows = append(rows, j.ids...)
		for i := range j.out {
			results = append(results, &j.out[i])
		}
	}
	n, seq := len(rows), 0
	for _, r := range rows {
		seq = max(seq, len(r))
	}
	ids := make([]int64, n*seq)
	mask := make([]int64, n*seq)
	for i, r := range rows {
		copy(ids[i*seq:], r)
		for k := range r {
			mask[i*seq+k] = 1
		}
	}
	shape := ort.NewShape(int64(n), int64(seq))
	var values []ort.Value
	defer func() {
		for _, v := range values {
			err = errors.Join(err, v.Destroy())
		}
	}()
	for _, data := range [][]int64{ids, mask} {
		t, err := ort.NewTensor(shape, data)
		if err != nil {
			return fmt.Errorf("input tensor: %w", err)
		}
		values = append(values, t)
	}
	if len(c.inputs) == 3 {
		t, err := ort.NewTensor(shape, make([]int64, n*seq))
		if err != nil {
			return fmt.Errorf("input tensor: %w", err)
		}
		values = append(values, t)
	}
	inputs := values[:len(c.inputs)]
	outputs := make([]ort.Value, len(c.outputs))

	opts, err := ort.NewRunOptions()
	if err != nil {
		return err
	}
	// Terminate the run once every caller in the batch has gone.
	runCtx, cancel := context.WithCancel(context.Background())
	remaining := atomic.Int32{}
	remaining.Store(int32(len(batch)))
	stops := make([]func() bool, 0, len(batch)+1)
	for _, j := range batch {
		stops = append(stops, context.AfterFunc(j.ctx, func() {
			if remaining.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	stops = append(stops, context.AfterFunc(runCtx, func() { _ = opts.Terminate() }))
	runErr := c.session.RunWithOptions(inputs, outputs, opts)
	for _, stop := range stops {
		stop()
	}
	cancel()
	err = opts.Destroy()
	for _, o := range outputs {
		if o != nil {
			values = append(values, o)
		}
	}
	if runErr != nil {
		if runCtx.Err() != nil {
			return fmt.Errorf("run terminated: %w", context.Canceled)
		}
		return fmt.Errorf("run: %w", runErr)
	}
	if err != nil {
		return err
	}
	for h, o := range outputs {
		head := &c.manifest.Heads[h]
		t, ok := o.(*ort.Tensor[float32])
		if !ok {
			return fmt.Errorf("output %q is not a float32 tensor", head.Output)
		}
		if s := t.GetShape(); len(s) != 2 || s[0] != int64(n) || s[1] != int64(len(head.Labels)) {
			return fmt.Errorf("head %q: output %q has shape %v; model.json lists %d labels", head.Name, head.Output, s, len(head.Labels))
		}
		data := t.GetData()
		width := len(head.Labels)
		for i, r := range results {
			if h == 0 {
				r.Heads = make([]HeadResult, len(c.outputs))
			}
			r.Heads[h] = decide(head, data[i*width:(i+1)*width])
		}
	}
	return nil
}

// decide turns one row of a head's output into probabilities and the top label.
func decide(head *HeadSpec, logits []float32) HeadResult {
	scores := make([]float32, len(logits))
	switch head.Activation {
	case "softmax":
		top := logits[0]
		for _, v := range logits {
			top = max(top, v)
		}
		var sum float64
		for i, v := range logits {
			e := math.Exp(float64(v - top))
			scores[i] = float32(e)
			sum += e
		}
		for i := range scores {
			scores[i] = float32(float64(scores[i]) / sum)
		}
	case "sigmoid":
		for i, v := range logits {
			scores[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	default:
		copy(scores, logits)
	}
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return HeadResult{Head: head.Name, Label: head.Labels[best], Confidence: scores[best], Scores: scores}
}
