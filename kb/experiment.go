package kb

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Experiment is an A/B test of an article's answer variants on live traffic.
type Experiment struct {
	ID      string `json:"id" required:"true" pattern:"kb.IDPattern"`
	Article string `json:"article" required:"true"`
	// Variants are the answer variants compared, with traffic weights; the first is the
	// control. Weights need not sum to 1; each must be ≥ 0 and their sum > 0.
	Variants []Arm `json:"variants" required:"true" minItems:"2"`
	// Unit is what assignment sticks to: "customer" (default; falls back to the
	// conversation when no customer id is known) or "conversation".
	Unit string `json:"unit,omitempty" enum:"customer,conversation"`
	// Start and Stop bound when the experiment runs; zero means now / until stopped.
	Start time.Time `json:"start,omitzero"`
	Stop  time.Time `json:"stop,omitzero"`
	// MinEffect is the smallest difference in resolution rate (absolute, e.g. 0.05 for five
	// points) worth detecting; it sets the sample size each arm needs before a result is
	// called. Default 0.05.
	MinEffect float64 `json:"min_effect,omitempty"`
	// Stopped is set when an editor stops the experiment; Winner when one was promoted.
	Stopped bool   `json:"stopped,omitempty"`
	Winner  string `json:"winner,omitempty"`

	Version   int64     `json:"version"`
	Author    string    `json:"author,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Arm is one variant of an experiment.
type Arm struct {
	Answer string  `json:"answer" required:"true"` // the article's answer variant id
	Weight float64 `json:"weight" required:"true" minimum:"0"`
}

// Running says whether the experiment assigns traffic at t.
func (e *Experiment) Running(t time.Time) bool {
	return !e.Stopped && (e.Start.IsZero() || !t.Before(e.Start)) && (e.Stop.IsZero() || t.Before(e.Stop))
}

// validate checks the experiment against its article and fills defaults.
func (e *Experiment) validate(a *Article) error {
	if !idPattern.MatchString(e.ID) {
		return &ValidationError{Field: "id", Msg: fmt.Sprintf("must match %s, got %q", ValidIDPattern, e.ID)}
	}
	if len(e.Variants) < 2 {
		return &ValidationError{Field: "variants", Msg: "an experiment needs at least two variants"}
	}
	var sum float64
	seen := map[string]bool{}
	for i, v := range e.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0) || v.Weight < 0 {
			return &ValidationError{Field: field + ".weight", Msg: fmt.Sprintf("must be a number ≥ 0, got %v", v.Weight)}
		}
		if seen[v.Answer] {
			return &ValidationError{Field: field + ".answer", Msg: fmt.Sprintf("variant %q appears twice", v.Answer)}
		}
		seen[v.Answer] = true
		if !hasVariant(a, v.Answer) {
			return &ValidationError{Field: field + ".answer", Msg: fmt.Sprintf("article %q has no answer variant %q", a.ID, v.Answer)}
		}
		sum += v.Weight
	}
	if !(sum > 0) {
		return &ValidationError{Field: "variants", Msg: "weights must sum to a positive number"}
	}
	switch e.Unit {
	case "":
		e.Unit = "customer"
	case "customer", "conversation":
	default:
		return &ValidationError{Field: "unit", Msg: fmt.Sprintf("must be customer or conversation, got %q", e.Unit)}
	}
	if !e.Stop.IsZero() && !e.Stop.After(e.Start) {
		return &ValidationError{Field: "stop", Msg: "must be after start"}
	}
	switch {
	case e.MinEffect == 0:
		e.MinEffect = 0.05
	case !(e.MinEffect > 0 && e.MinEffect < 1):
		return &ValidationError{Field: "min_effect", Msg: fmt.Sprintf("must be between 0 and 1, got %v", e.MinEffect)}
	}
	return nil
}

func hasVariant(a *Article, id string) bool {
	for _, ans := range a.Answers {
		if ans.ID == id {
			return true
		}
	}
	return false
}

// Assign picks the variant for key (a customer or conversation id): SHA-256 of the
// experiment id and the key, read as a number in [0, 1), against the cumulative weights.
// The same key gets the same variant on every node and every visit.
func (e *Experiment) Assign(key string) string {
	h := sha256.Sum256([]byte(e.ID + "\x00" + key))
	u := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
	var sum float64
	for _, v := range e.Variants {
		sum += v.Weight
	}
	var acc float64
	for _, v := range e.Variants {
		acc += v.Weight / sum
		if u < acc && v.Weight > 0 {
			return v.Answer
		}
	}
	for i := len(e.Variants) - 1; i >= 0; i-- { // rounding left u ≥ the last sum
		if e.Variants[i].Weight > 0 {
			return e.Variants[i].Answer
		}
	}
	return e.Variants[0].Answer
}
