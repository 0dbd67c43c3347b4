package graph

import (
	"github.com/99designs/gqlgen/graphql"

	"github.com/aisle/aisle/aisle"
)

// MarshalID writes an ID as gqlgen does.
func MarshalID(id string) graphql.Marshaler { return graphql.MarshalID(id) }

// UnmarshalID reads every ID the caller sends, in arguments, input objects
// and variables alike, and checks it with aisle.ValidateID, the rule of
// every identifier in events, so an ID with a character no identifier may
// have (a NUL, a colon, whitespace) is the caller's BAD_USER_INPUT here
// rather than a failure in a store behind a resolver.
func UnmarshalID(v any) (string, error) {
	id, err := graphql.UnmarshalID(v)
	if err != nil {
		return "", aisle.Errorf(aisle.EINVALID, "an ID must be a string or an integer")
	}
	if err := aisle.ValidateID("ID", id); err != nil {
		return "", err
	}
	return id, nil
}
