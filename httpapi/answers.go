package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

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

// getQueries is gqlgen's GET transport, answering a GET of anything but a
// query with 405 and a coded error, as GraphQL over HTTP asks (gqlgen
// answers 406 with an error that has no code).
type getQueries struct {
	transport.GET
}

func (t getQueries) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	q := r.URL.Query()
	// A document that does not parse is gqlgen's to answer; the token
	// limit bounds this parse as it does gqlgen's.
	if doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q.Get("query")}, maxParserTokens); err == nil {
		if op := doc.Operations.ForName(q.Get("operationName")); op != nil && op.Operation != ast.Query {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, graphql.Response{Errors: gqlerror.List{{
				Message:    fmt.Sprintf("a %s must be sent with POST: GET runs queries only", op.Operation),
				Extensions: map[string]any{"code": aisle.EINVALID},
			}}})
			return
		}
	}
	t.GET.Do(&requestErrorsWithoutData{ResponseWriter: w}, r, exec)
}

// postQueries is gqlgen's POST transport, writing request errors without
// "data" as getQueries does.
type postQueries struct {
	transport.POST
}

func (t postQueries) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.POST.Do(&requestErrorsWithoutData{ResponseWriter: w}, r, exec)
}

// requestErrorsWithoutData leaves "data" out of a request error (a
// document that did not parse, validate or coerce its variables, so never
// ran) answered as application/graphql-response+json, as GraphQL over HTTP
// requires: gqlgen writes "data": null, which says that execution started
// and failed. Such answers are the 4xx ones; gqlgen writes each answer in
// one Write of one JSON object.
type requestErrorsWithoutData struct {
	http.ResponseWriter
	status int
}

func (w *requestErrorsWithoutData) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *requestErrorsWithoutData) Write(b []byte) (int, error) {
	if w.status < 400 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/graphql-response+json") {
		return w.ResponseWriter.Write(b)
	}
	var answer map[string]json.RawMessage
	if json.Unmarshal(b, &answer) != nil || string(answer["data"]) != "null" {
		return w.ResponseWriter.Write(b)
	}
	delete(answer, "data")
	trimmed, err := json.Marshal(answer)
	if err != nil {
		return w.ResponseWriter.Write(b)
	}
	if _, err := w.ResponseWriter.Write(trimmed); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (w *requestErrorsWithoutData) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
