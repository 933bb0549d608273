// Package kb is kefu's knowledge base: articles (the questions customers ask and the answer
// scripts that reply), their BM25 search in Chinese and English, edit history and audit, and
// A/B tests of answer wordings. It knows nothing of HTTP; storage is a small interface with
// an on-disk journal here and a Redis implementation in kb/redisstore.
package kb

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Status says whether customers can see an article.
type Status string

// Article statuses. Only published articles are searched.
const (
	Draft     Status = "draft"
	Published Status = "published"
)

// Langs are the languages answers are written in.
var Langs = []string{"zh", "en"}

// Article is one entry of the knowledge base.
type Article struct {
	ID string `json:"id" yaml:"id" required:"true" pattern:"kb.IDPattern"`
	// Lang restricts the article to one language ("zh" or "en"); empty means every language
	// it has answers for.
	Lang string `json:"lang,omitempty" yaml:"lang,omitempty" enum:"zh,en"`
	// Status is draft or published; default draft for the API, published for bundle files.
	Status Status `json:"status" yaml:"status,omitempty" enum:"draft,published"`
	// Questions are the ways customers ask; searched with more weight than answers.
	Questions []string `json:"questions" yaml:"questions" required:"true" minItems:"1"`
	// Answers are the variants of the answer script; the first is the control, served when
	// no experiment runs.
	Answers []Answer `json:"answers" yaml:"answers" required:"true" minItems:"1"`
	Tags    []string `json:"tags,omitempty" yaml:"tags,omitempty"`

	// Set by the knowledge base on every change.
	Version   int64     `json:"version" yaml:"version,omitempty" doc:"set by the knowledge base; in an update, the version being replaced (409 if it is not the current one)"`
	Author    string    `json:"author,omitempty" yaml:"author,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero" yaml:"created_at,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero" yaml:"updated_at,omitempty"`
	// Deleted marks the version that removed the article (history only).
	Deleted bool `json:"deleted,omitempty" yaml:"-"`
}

// Answer is one variant of an answer script, its text per language.
type Answer struct {
	ID   string            `json:"id" yaml:"id" required:"true" pattern:"kb.VariantPattern"`
	Text map[string]string `json:"text" yaml:"text" required:"true" doc:"the answer by language (zh, en)"`
}

// Text returns the article's answer text in lang for variant id ("" for the control),
// falling back to the control variant and then to any language the variant has.
func (a *Article) Text(variant, lang string) string {
	i := slices.IndexFunc(a.Answers, func(x Answer) bool { return x.ID == variant })
	if i < 0 {
		i = 0
	}
	if len(a.Answers) == 0 {
		return ""
	}
	if t := a.Answers[i].Text[lang]; t != "" {
		return t
	}
	for _, l := range Langs {
		if t := a.Answers[i].Text[l]; t != "" {
			return t
		}
	}
	return ""
}

// Limits on what an article may hold.
const (
	MaxQuestions = 100
	MaxAnswers   = 20
	MaxTextBytes = 8 << 10
	MaxTags      = 32
	MaxTagBytes  = 64
)

// IDPattern is the shape of article and experiment ids; VariantPattern of answer variant ids.
const (
	IDPattern      = `^[A-Za-z0-9._:-]{1,128}$`
	VariantPattern = `^[A-Za-z0-9_-]{1,32}$`
)

var (
	idPattern      = regexp.MustCompile(IDPattern)
	variantPattern = regexp.MustCompile(VariantPattern)
)

// ValidIDPattern is the shape of article, variant and experiment ids, for error messages.
const ValidIDPattern = "[A-Za-z0-9._:-]{1,128}"

// Validate checks what an editor wrote and fills defaults (trims spaces, drops empty tags).
// The error names the field.
func (a *Article) Validate() error {
	a.ID = strings.TrimSpace(a.ID)
	if !idPattern.MatchString(a.ID) {
		return &ValidationError{Field: "id", Msg: fmt.Sprintf("must match %s, got %q", ValidIDPattern, a.ID)}
	}
	if a.Lang != "" && !slices.Contains(Langs, a.Lang) {
		return &ValidationError{Field: "lang", Msg: fmt.Sprintf("must be zh, en or empty, got %q", a.Lang)}
	}
	switch a.Status {
	case "":
		a.Status = Draft
	case Draft, Published:
	default:
		return &ValidationError{Field: "status", Msg: fmt.Sprintf("must be draft or published, got %q", a.Status)}
	}
	a.Questions = trimAll(a.Questions)
	if len(a.Questions) == 0 {
		return &ValidationError{Field: "questions", Msg: "at least one question is needed"}
	}
	if len(a.Questions) > MaxQuestions {
		return &ValidationError{Field: "questions", Msg: fmt.Sprintf("at most %d questions, got %d", MaxQuestions, len(a.Questions))}
	}
	for i, q := range a.Questions {
		if err := checkText(q); err != nil {
			return &ValidationError{Field: fmt.Sprintf("questions[%d]", i), Msg: err.Error()}
		}
	}
	if len(a.Answers) == 0 {
		return &ValidationError{Field: "answers", Msg: "at least one answer is needed"}
	}
	if len(a.Answers) > MaxAnswers {
		return &ValidationError{Field: "answers", Msg: fmt.Sprintf("at most %d variants, got %d", MaxAnswers, len(a.Answers))}
	}
	seen := map[string]bool{}
	for i := range a.Answers {
		ans := &a.Answers[i]
		field := fmt.Sprintf("answers[%d]", i)
		if ans.ID == "" {
			ans.ID = fmt.Sprintf("v%d", i+1)
		}
		if !variantPattern.MatchString(ans.ID) {
			return &ValidationError{Field: field + ".id", Msg: fmt.Sprintf("must match [A-Za-z0-9_-]{1,32}, got %q", ans.ID)}
		}
		if seen[ans.ID] {
			return &ValidationError{Field: field + ".id", Msg: fmt.Sprintf("variant %q appears twice", ans.ID)}
		}
		seen[ans.ID] = true
		if len(ans.Text) == 0 {
			return &ValidationError{Field: field + ".text", Msg: "needs a text in zh or en"}
		}
		for lang, t := range ans.Text {
			if !slices.Contains(Langs, lang) {
				return &ValidationError{Field: field + ".text", Msg: fmt.Sprintf("language must be zh or en, got %q", lang)}
			}
			t = strings.TrimSpace(t)
			if err := checkText(t); err != nil {
				return &ValidationError{Field: field + ".text." + lang, Msg: err.Error()}
			}
			ans.Text[lang] = t
		}
		if a.Lang != "" && ans.Text[a.Lang] == "" {
			return &ValidationError{Field: field + ".text." + a.Lang, Msg: "the article's language needs a text in every variant"}
		}
	}
	a.Tags = trimAll(a.Tags)
	if len(a.Tags) > MaxTags {
		return &ValidationError{Field: "tags", Msg: fmt.Sprintf("at most %d tags, got %d", MaxTags, len(a.Tags))}
	}
	for i, t := range a.Tags {
		if len(t) > MaxTagBytes || !utf8.ValidString(t) {
			return &ValidationError{Field: fmt.Sprintf("tags[%d]", i), Msg: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxTagBytes)}
		}
	}
	return nil
}

// checkRef checks the conversation and customer a question or an outcome comes with: they
// become parts of stored keys, so they are ids, not free text.
func checkRef(conversation, customer string) error {
	if conversation != "" && !idPattern.MatchString(conversation) {
		return &ValidationError{Field: "conversation", Msg: fmt.Sprintf("must match %s", ValidIDPattern)}
	}
	if customer != "" && (len(customer) > 128 || !utf8.ValidString(customer)) {
		return &ValidationError{Field: "customer", Msg: "must be valid UTF-8 of at most 128 bytes"}
	}
	return nil
}

func checkText(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case len(s) > MaxTextBytes:
		return fmt.Errorf("is %d bytes, over the limit of %d", len(s), MaxTextBytes)
	}
	return nil
}

func trimAll(in []string) []string {
	out := in[:0:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Errors the knowledge base returns.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: the id exists already, or the version asked for is not the current one.
	ErrConflict = errors.New("conflict")
	ErrClosed   = errors.New("knowledge base closed")
	// ErrUnavailable: the store (Redis) cannot be reached; retry later.
	ErrUnavailable = errors.New("knowledge base store unavailable")
)

// ValidationError is an article, experiment or query that cannot be accepted. File and Line
// are set for rows of an import file.
type ValidationError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + " ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
