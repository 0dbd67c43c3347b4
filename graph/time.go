package graph

import (
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/aisle/aisle/aisle"
)

// MarshalTime writes the Time scalar as gqlgen does: RFC 3339 with
// nanoseconds.
func MarshalTime(t time.Time) graphql.Marshaler { return graphql.MarshalTime(t) }

// UnmarshalTime reads the Time scalar as gqlgen does, but a value that is
// not a time is the caller's mistake (BAD_USER_INPUT) rather than the plain
// error gqlgen returns, which the error presenter must treat as internal.
func UnmarshalTime(v any) (time.Time, error) {
	t, err := graphql.UnmarshalTime(v)
	if err == nil {
		return t, nil
	}
	if s, ok := v.(string); ok {
		return time.Time{}, aisle.Errorf(aisle.EINVALID, "time %q is not an RFC 3339 time such as 2026-11-21T09:59:00Z", s)
	}
	return time.Time{}, aisle.Errorf(aisle.EINVALID, "a time must be an RFC 3339 string such as 2026-11-21T09:59:00Z")
}
