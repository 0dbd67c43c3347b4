package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

// clearAnswers rewrites the few answers of gqlgen and gqlparser that
// mislead a caller, and, in production, hides from anonymous callers the
// schema that validation messages would spell out.
type clearAnswers struct {
	production bool
}

var (
	_ graphql.HandlerExtension    = clearAnswers{}
	_ graphql.ResponseInterceptor = clearAnswers{}
)

func (clearAnswers) ExtensionName() string                   { return "ClearAnswers" }
func (clearAnswers) Validate(graphql.ExecutableSchema) error { return nil }

// messageHidden replaces validation messages for anonymous callers in
// production: "Field "AssessOrderInput.orderId" of required type "ID!" was
// not provided" lists an input type's fields, which introspection is off
// to hide. The locations still point at the mistake.
const messageHidden = "the operation is not valid for the schema at this location (callers with an API key see why)"

func (a clearAnswers) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	hide := a.production && aisle.PrincipalFromContext(ctx).KeyID == ""
	for _, e := range resp.Errors {
		switch {
		case e.Message == "operation  not found":
			// A document of several operations, without operationName.
			e.Message = "the document has more than one operation: name the one to run in operationName"
			e.Extensions = map[string]any{"code": aisle.EINVALID}
		case len(e.Path) == 2 && e.Path[0] == ast.PathName("variable") && strings.HasPrefix(e.Message, "cannot use value ") && strings.HasSuffix(e.Message, " as Int"):
			// gqlparser names the zero value, not the caller's 1.5.
			e.Message = fmt.Sprintf("variable $%s must be a whole number (Int)", e.Path[1])
		case hide && e.Extensions["code"] == errcode.ValidationFailed:
			e.Message = messageHidden
		}
	}
	return resp
}

// unsupportedRequests answers every request no other transport takes:
// gqlgen's own answer, 400 "transport not supported", has no code and does
// not say what would be supported.
type unsupportedRequests struct{}

func (unsupportedRequests) Supports(*http.Request) bool { return true }

func (unsupportedRequests) Do(w http.ResponseWriter, r *http.Request, _ graphql.GraphExecutor) {
	status, message := http.StatusUnsupportedMediaType, fmt.Sprintf("a POST to /graphql must have Content-Type application/json, not %q", r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		status, message = http.StatusMethodNotAllowed, "GraphQL is served with GET (queries) and POST (any operation), not "+r.Method
	}
	writeJSON(w, status, graphql.Response{Errors: gqlerror.List{{
		Message:    message,
		Extensions: map[string]any{"code": aisle.EINVALID},
	}}})
}
