package kb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Question is a customer's question to answer from the knowledge base.
type Question struct {
	Text string
	Lang string // zh, en, or "" for any
	// Customer and Conversation identify who asks: experiments assign variants by customer
	// (or conversation) and count outcomes per conversation. Both may be empty (no counting).
	Customer     string
	Conversation string
}

// Reply is the knowledge base's answer to a question.
type Reply struct {
	Article    string  `json:"article" required:"true"`
	Question   string  `json:"question" required:"true"` // the article's question closest to the customer's
	Text       string  `json:"text" required:"true"`
	Variant    string  `json:"variant" required:"true"`
	Experiment string  `json:"experiment,omitempty"`
	Score      float64 `json:"score" required:"true"`
	Confidence float64 `json:"confidence" required:"true"`
	// Found says whether Confidence reaches Options.MinConfidence: the article answers the
	// question, rather than being merely the least bad match.
	Found bool `json:"found" required:"true"`
}

// Answer is Find then Expose: the answer, counted in its experiment.
func (k *KB) Answer(ctx context.Context, q Question) (*Reply, error) {
	if err := checkRef(q.Conversation, q.Customer); err != nil {
		return nil, err
	}
	r, err := k.Find(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := k.Expose(ctx, q, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Find finds the best article for q and picks its answer variant: the experiment's
// assignment when one runs on the article, else the control. It counts nothing (see
// Expose), so a turn may ask again. ErrNotFound when no article matches at all.
func (k *KB) Find(ctx context.Context, q Question) (*Reply, error) {
	hits, err := k.Search(ctx, q.Text, q.Lang, 1)
	if err != nil {
		return nil, err
	}
	if len(hits) == 0 {
		return nil, fmt.Errorf("no article matches: %w", ErrNotFound)
	}
	h := hits[0]
	a, err := k.Get(h.ID)
	if err != nil {
		return nil, err
	}
	r := &Reply{Article: a.ID, Question: h.Question, Score: h.Score, Confidence: h.Confidence,
		Found: h.Confidence >= k.opt.MinConfidence, Variant: a.Answers[0].ID}
	if e := k.runningExperiment(a.ID); e != nil && r.Found {
		r.Experiment, r.Variant = e.ID, e.Assign(assignKey(e, q.Customer, q.Conversation))
	}
	lang := q.Lang
	if lang == "" {
		lang = a.Lang
	}
	r.Text = a.Text(r.Variant, lang)
	return r, nil
}

// Expose counts r, found for q, in its experiment: an exposure of the conversation, and the
// same article coming back in the same conversation means the first answer did not resolve
// the question. Nothing happens outside an experiment or without a conversation; call it
// once per answer the customer saw.
func (k *KB) Expose(ctx context.Context, q Question, r *Reply) error {
	if r.Experiment == "" || q.Conversation == "" {
		return nil
	}
	first, err := k.store.Expose(ctx, r.Experiment, r.Variant, q.Conversation)
	if err != nil {
		return fmt.Errorf("kb count exposure: %w", err)
	}
	if !first {
		if _, err := k.store.Outcome(ctx, r.Experiment, q.Conversation, OutcomeUnresolved, map[string]int64{"unresolved": 1}); err != nil {
			return fmt.Errorf("kb count repeat: %w", err)
		}
	}
	return nil
}

func assignKey(e *Experiment, customer, conversation string) string {
	if e.Unit == "customer" && customer != "" {
		return "customer:" + customer
	}
	return "conversation:" + conversation
}

// Feedback is what a conversation tells about an answer it got from an article.
type Feedback struct {
	Article      string
	Customer     string
	Conversation string
	CSAT         int  // 1–5, 0 for none
	Thumb        int  // +1 up, -1 down, 0 none
	Handoff      bool // the conversation went to a human after the answer: not resolved
}

// Feedback counts an outcome for the variant the conversation was assigned in the
// experiment running on the article; nothing happens when none runs.
func (k *KB) Feedback(ctx context.Context, f Feedback) error {
	if f.CSAT < 0 || f.CSAT > 5 {
		return &ValidationError{Field: "csat", Msg: fmt.Sprintf("must be 1 to 5, got %d", f.CSAT)}
	}
	if f.Thumb < -1 || f.Thumb > 1 {
		return &ValidationError{Field: "thumb", Msg: fmt.Sprintf("must be -1, 0 or 1, got %d", f.Thumb)}
	}
	if f.Conversation == "" {
		return &ValidationError{Field: "conversation", Msg: "is needed to count an outcome"}
	}
	if err := checkRef(f.Conversation, f.Customer); err != nil {
		return err
	}
	if _, err := k.Get(f.Article); err != nil {
		return err
	}
	e := k.runningExperiment(f.Article)
	if e == nil {
		return nil
	}
	// Only a conversation that was shown the article counts, once per kind of outcome, for
	// the variant it saw (the store remembers which): invented conversations and repeated
	// ratings change nothing.
	if f.Handoff {
		if _, err := k.store.Outcome(ctx, e.ID, f.Conversation, OutcomeUnresolved, map[string]int64{"unresolved": 1}); err != nil {
			return err
		}
	}
	if f.CSAT != 0 {
		if _, err := k.store.Outcome(ctx, e.ID, f.Conversation, OutcomeCSAT, RateFields(f.CSAT, 0)); err != nil {
			return err
		}
	}
	if f.Thumb != 0 {
		if _, err := k.store.Outcome(ctx, e.ID, f.Conversation, OutcomeThumb, RateFields(0, f.Thumb)); err != nil {
			return err
		}
	}
	return nil
}

// Forget drops what the experiments remember of conversation conv (which variant it saw,
// which outcomes it gave), for its erasure; the counts themselves name no one and stay.
func (k *KB) Forget(ctx context.Context, conv string) error {
	k.mu.RLock()
	ids := make([]string, 0, len(k.experiments))
	for id := range k.experiments {
		ids = append(ids, id)
	}
	k.mu.RUnlock()
	for _, id := range ids {
		if err := k.store.Forget(ctx, id, conv); err != nil {
			return err
		}
	}
	return nil
}

// runningExperiment is the experiment running on an article now, or nil.
func (k *KB) runningExperiment(article string) *Experiment {
	now := k.opt.Now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, e := range k.experiments {
		if e.Article == article && e.Running(now) {
			c := *e
			return &c
		}
	}
	return nil
}

// CreateExperiment starts an A/B test on an article's answer variants. One experiment at a
// time may run on an article (ErrConflict).
func (k *KB) CreateExperiment(ctx context.Context, e Experiment, actor string) (Experiment, error) {
	a, err := k.Get(e.Article)
	if err != nil {
		return Experiment{}, err
	}
	if err := e.validate(&a); err != nil {
		return Experiment{}, err
	}
	if _, err := k.Experiment(e.ID); err == nil {
		return Experiment{}, fmt.Errorf("experiment %q exists already: %w", e.ID, ErrConflict)
	}
	if r := k.runningExperiment(a.ID); r != nil {
		return Experiment{}, fmt.Errorf("experiment %q already runs on article %q: %w", r.ID, a.ID, ErrConflict)
	}
	now := k.opt.Now().UTC()
	e.Version, e.Author, e.CreatedAt, e.UpdatedAt, e.Stopped, e.Winner = k.version("experiment:"+e.ID)+1, actor, now, now, false, ""
	return e, k.commit(ctx, Change{Experiment: &e, Audit: k.audit(actor, "experiment.create", "experiment", e.ID, e.Version)})
}

// Experiment returns an experiment.
func (k *KB) Experiment(id string) (Experiment, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.experiments[id]
	if !ok {
		return Experiment{}, fmt.Errorf("experiment %q: %w", id, ErrNotFound)
	}
	return *e, nil
}

// Experiments lists every experiment, by id.
func (k *KB) Experiments() []Experiment {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Experiment, 0, len(k.experiments))
	for _, e := range k.experiments {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Experiment) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Report computes an experiment's result from the counters shared by every node.
func (k *KB) Report(ctx context.Context, id string) (*Report, error) {
	e, err := k.Experiment(id)
	if err != nil {
		return nil, err
	}
	counts, err := k.store.Counts(ctx, id)
	if err != nil {
		return nil, err
	}
	return NewReport(e, counts, e.Running(k.opt.Now())), nil
}

// StopExperiment stops assigning traffic; counts stay.
func (k *KB) StopExperiment(ctx context.Context, id, actor string) (Experiment, error) {
	e, err := k.Experiment(id)
	if err != nil {
		return Experiment{}, err
	}
	if e.Stopped {
		return e, nil
	}
	e.Stopped, e.Version, e.UpdatedAt = true, e.Version+1, k.opt.Now().UTC()
	return e, k.commit(ctx, Change{Experiment: &e, Audit: k.audit(actor, "experiment.stop", "experiment", e.ID, e.Version)})
}

// Promote stops the experiment and makes variant the article's control (its first answer),
// in one commit.
func (k *KB) Promote(ctx context.Context, id, variant, actor string) (Experiment, error) {
	e, err := k.Experiment(id)
	if err != nil {
		return Experiment{}, err
	}
	if !slices.ContainsFunc(e.Variants, func(v Arm) bool { return v.Answer == variant }) {
		return Experiment{}, &ValidationError{Field: "variant", Msg: fmt.Sprintf("experiment %q has no variant %q", id, variant)}
	}
	a, err := k.Get(e.Article)
	if err != nil {
		return Experiment{}, err
	}
	i := slices.IndexFunc(a.Answers, func(x Answer) bool { return x.ID == variant })
	if i < 0 {
		return Experiment{}, fmt.Errorf("article %q no longer has variant %q: %w", a.ID, variant, ErrConflict)
	}
	a.Answers = append([]Answer{a.Answers[i]}, slices.Delete(slices.Clone(a.Answers), i, i+1)...)
	now := k.opt.Now().UTC()
	a.Version, a.Author, a.UpdatedAt = a.Version+1, actor, now
	e.Stopped, e.Winner, e.Version, e.UpdatedAt = true, variant, e.Version+1, now
	return e, k.commit(ctx,
		Change{Experiment: &e, Audit: k.audit(actor, "experiment.promote", "experiment", e.ID, e.Version)},
		Change{Article: &a, Audit: k.audit(actor, "promote", "article", a.ID, a.Version)})
}
