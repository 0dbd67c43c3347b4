// Package aisle holds Aisle's vocabulary: identifiers, the event envelope,
// principals and the domain error type. It imports nothing of the application
// so every other package can depend on it.
package aisle

import (
	"errors"
	"fmt"
)

// Error codes are the strings sent to clients as GraphQL extensions.code.
const (
	EUNAUTHENTICATED = "UNAUTHENTICATED"
	EFORBIDDEN       = "FORBIDDEN"
	ENOTFOUND        = "NOT_FOUND"
	EINVALID         = "BAD_USER_INPUT"
	ECONFLICT        = "CONFLICT"
	EUNAVAILABLE     = "UNAVAILABLE"
	ERATELIMITED     = "RATE_LIMITED" // the caller sent too much; retry after a pause
	EINTERNAL        = "INTERNAL"
)

// Error is a domain error: a code plus a message that is safe to show to the
// caller. Anything that is not an *Error is internal and its text is never
// shown to clients.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("aisle error: code=%s message=%s", e.Code, e.Message)
}

// Errorf builds a domain error with a formatted, user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain, or
// EINTERNAL for anything else (and "" for nil).
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of a domain error, or a generic
// message for internal errors, whose details belong in logs only.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
