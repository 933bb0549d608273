package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

// Code classifies an engine error. engine/httpapi maps each code to one HTTP status.
type Code string

// Error codes.
const (
	Invalid      Code = "invalid"      // the request is malformed or a field is out of range
	Unauthorized Code = "unauthorized" // no valid API key
	Forbidden    Code = "forbidden"    // the key's role may not do this
	NotFound     Code = "not_found"    // the thing asked for does not exist
	Conflict     Code = "conflict"     // it exists already, or changed since the version given
	TooLarge     Code = "too_large"    // the request body is over the limit
	RateLimited  Code = "rate_limited" // the key sent more requests than its rate allows
	Overloaded   Code = "overloaded"   // too much work queued; retry shortly
	Unavailable  Code = "unavailable"  // a dependency (model, Redis) is not ready; retry later
	Canceled     Code = "canceled"     // the caller went away
	Internal     Code = "internal"     // a bug or an unexpected failure; details only in logs
)

// Codes lists every code, for the HTTP mapping's completeness test.
var Codes = []Code{Invalid, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, RateLimited, Overloaded, Unavailable, Canceled, Internal}

// Error is the one error shape kefu's API speaks.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause, logged but never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its Error's code, or Internal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// sentinels are the errors of kefu's leaves and of context, each with its code and the
// message callers see (the cause is logged).
var sentinels = []struct {
	err  error
	code Code
	msg  string
}{
	{context.Canceled, Canceled, "request canceled"},
	{context.DeadlineExceeded, Unavailable, "a dependency did not answer in time; retry later"},
	{models.ErrOverloaded, Overloaded, "the model is busy; retry shortly"},
	{models.ErrClosed, Unavailable, "the model is not loaded"},
	{conversation.ErrNotFound, NotFound, "no such conversation"},
	{conversation.ErrConflict, Conflict, "the conversation changed too often concurrently; retry"},
	{conversation.ErrUnavailable, Unavailable, "the conversation store is unavailable; retry later"},
	{handoff.ErrUnavailable, Unavailable, "the handoff outbox is unavailable; retry later"},
	{handoff.ErrNoDeadLetter, NotFound, "no dead letter has this key"},
	{kb.ErrUnavailable, Unavailable, "the knowledge base store is unavailable; retry later"},
	{analytics.ErrUnavailable, Unavailable, "the analytics store is unavailable; retry later"},
	{kb.ErrClosed, Unavailable, "the knowledge base store is unavailable; retry later"},
}

// Translate gives any error of kefu's packages its code: an *Error stays as it is; a
// knowledge-base validation, not-found or conflict error keeps kb's own message (it names
// the article, field, file and line but nothing internal); the other sentinels get a fixed
// message; anything else is returned as it is (Internal). It is the one translator: the
// engine's methods return its errors, and engine/httpapi applies it to what else fails.
func Translate(err error) error {
	var e *Error
	var ve *kb.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.As(err, &ve):
		return &Error{Code: Invalid, Message: err.Error()}
	case errors.Is(err, kb.ErrNotFound):
		return &Error{Code: NotFound, Message: err.Error()}
	case errors.Is(err, kb.ErrConflict):
		return &Error{Code: Conflict, Message: err.Error()}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return &Error{Code: s.code, Message: s.msg, Err: err}
		}
	}
	return err
}
