package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/kefu-ai/kefu/kb"
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

// KBError gives a knowledge-base error its code; the message is kb's own, which names the
// article, field, file and line but nothing internal.
func KBError(err error) error {
	var ve *kb.ValidationError
	code := Internal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		code = Invalid
	case errors.Is(err, kb.ErrNotFound):
		code = NotFound
	case errors.Is(err, kb.ErrConflict):
		code = Conflict
	case errors.Is(err, kb.ErrUnavailable), errors.Is(err, kb.ErrClosed):
		return &Error{Code: Unavailable, Message: "the knowledge base store is unavailable; retry later", Err: err}
	case errors.Is(err, context.Canceled):
		code = Canceled
	default:
		return err
	}
	return &Error{Code: code, Message: err.Error()}
}
