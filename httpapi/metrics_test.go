package httpapi

import (
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

var labelSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
type Query { stores: Int availability: Int }
type Subscription { availabilityChanged: Int }`})

func operation(t *testing.T, doc string) *graphql.OperationContext {
	t.Helper()
	d, err := gqlparser.LoadQuery(labelSchema, doc)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return &graphql.OperationContext{Operation: d.Operations[0]}
}

// Operation labels stay bounded whatever names clients send.
func TestOperationLabels(t *testing.T) {
	l := &operationLabels{seen: map[string]bool{}}
	for _, tc := range []struct {
		doc, label, typ string
	}{
		{"query Stores { stores }", "Stores", "query"},
		{"{ stores availability stores }", "anonymous:availability,stores", "query"},
		{"{ ... on Query { stores } }", "anonymous", "query"},
		{"subscription Live { availabilityChanged }", "Live", "subscription"},
		{"query " + fmt.Sprintf("Q%065d", 0) + " { stores }", "other", "query"}, // 66 characters
	} {
		label, typ := l.of(operation(t, tc.doc))
		if label != tc.label || typ != tc.typ {
			t.Errorf("%s: label %q type %q, want %q %q", tc.doc, label, typ, tc.label, tc.typ)
		}
	}
	if label, typ := l.of(nil); label != "invalid" || typ != "invalid" {
		t.Errorf("no operation: %q %q, want invalid", label, typ)
	}
	// Names already seen keep their label once the cap is reached; new
	// ones become "other".
	for i := 0; len(l.seen) < maxOperationLabels; i++ {
		l.of(operation(t, fmt.Sprintf("query Minted%d { stores }", i)))
	}
	if label, _ := l.of(operation(t, "query Stores { stores }")); label != "Stores" {
		t.Errorf("a known name past the cap: %q, want Stores", label)
	}
	if label, _ := l.of(operation(t, "query OneMore { stores }")); label != "other" {
		t.Errorf("a new name past the cap: %q, want other", label)
	}
}
