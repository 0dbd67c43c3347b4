package aisle

import (
	"errors"
	"strings"
)

// FieldError is a domain error about one field of an event's data. The
// stream and the dead-letter topic report it with the event's field name
// (amount_cents); an API call whose input mirrors the event reports it with
// the GraphQL argument's (input.amountCents), through InArgument: one
// message, named for whoever sent the value.
type FieldError struct {
	Field  string // the event's name of the field: amount_cents, items[2].quantity
	code   string
	format string // its first verb is the field's name
	args   []any
}

// fieldErrorf builds a FieldError; format's first verb (%s) is the field.
func fieldErrorf(code, field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, code: code, format: format, args: args}
}

func (e *FieldError) named(field string) *Error {
	return Errorf(e.code, e.format, append([]any{field}, e.args...)...)
}

func (e *FieldError) Error() string { return e.named(e.Field).Error() }

// Unwrap is the domain error with the event's field name, for ErrorCode and
// ErrorMessage.
func (e *FieldError) Unwrap() error { return e.named(e.Field) }

// InArgument renames the field of a FieldError in err's chain to the
// GraphQL argument that carried it: items[2].quantity of argument "input"
// becomes input.items[2].quantity, card_fingerprint input.cardFingerprint.
// Any other error is returned as it is.
func InArgument(err error, argument string) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return fe.named(argument + "." + camelPath(fe.Field))
}

// camelPath writes each snake_case segment of a field path in camelCase.
func camelPath(path string) string {
	var b strings.Builder
	upper := false
	for _, r := range path {
		switch {
		case r == '_':
			upper = true
		case upper:
			b.WriteString(strings.ToUpper(string(r)))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
