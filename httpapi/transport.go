package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/aisle/aisle/aisle"
)

// The GET and POST transports are gqlgen's (v0.17.95's transport.GET and
// transport.POST: the same request decoding, content negotiation, status
// codes and messages, step for step) with two changes:
//
//   - the answer is written by writeResponse, which copies the executor's
//     "data" instead of having encoding/json re-scan it: for a hot read
//     that scan was a quarter of the server's CPU (BENCHMARKS.md §13);
//   - a request error (a document that never ran) answered as
//     application/graphql-response+json has no "data", as GraphQL over
//     HTTP requires; gqlgen writes "data": null, which says that execution
//     started and failed. Such answers are the 4xx ones.
//
// TestTransportsMatchGqlgens compares whole answers (status, headers,
// body) with gqlgen's transports over generated requests.

// getQueries answers GET requests, and a GET of anything but a query with
// 405 and a coded error, as GraphQL over HTTP asks (gqlgen answers 406
// with an error that has no code).
type getQueries struct{}

var _ graphql.Transport = getQueries{}

func (getQueries) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method == http.MethodGet
}

func (getQueries) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if refuseGETOfNonQuery(w, r) {
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeResponse(w, errorResponse(err.Error()), true) // no Content-Type yet, as gqlgen
		return
	}
	contentType := responseContentType(r)
	w.Header().Add("Content-Type", contentType)
	params := &graphql.RawParams{
		Query:         query.Get("query"),
		OperationName: query.Get("operationName"),
		Headers:       r.Header,
	}
	params.ReadTime.Start = graphql.Now()
	if variables := query.Get("variables"); variables != "" {
		if err := jsonDecode(strings.NewReader(variables), &params.Variables); err != nil {
			writeRequestError(w, contentType, http.StatusBadRequest, errorResponse("variables could not be decoded"))
			return
		}
	}
	if extensions := query.Get("extensions"); extensions != "" {
		if err := jsonDecode(strings.NewReader(extensions), &params.Extensions); err != nil {
			writeRequestError(w, contentType, http.StatusBadRequest, errorResponse("extensions could not be decoded"))
			return
		}
	}
	params.ReadTime.End = graphql.Now()

	ctx := r.Context()
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		writeRequestError(w, contentType, statusFor(contentType, errs), exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	// A persisted operation's document is known only now.
	if op := opCtx.Doc.Operations.ForName(opCtx.OperationName); op.Operation != ast.Query {
		writeRequestError(w, contentType, http.StatusNotAcceptable, errorResponse("GET requests only allow query operations"))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, responses(ctx), true)
}

// refuseGETOfNonQuery answers 405 to a GET whose document is a mutation or
// a subscription, and reports whether it did.
func refuseGETOfNonQuery(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	// A document that does not parse is gqlgen's to answer; the token
	// limit bounds this parse as it does gqlgen's.
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q.Get("query")}, maxParserTokens)
	if err != nil {
		return false
	}
	op := doc.Operations.ForName(q.Get("operationName"))
	if op == nil || op.Operation == ast.Query {
		return false
	}
	w.Header().Set("Allow", "POST")
	writeJSON(w, http.StatusMethodNotAllowed, graphql.Response{Errors: gqlerror.List{{
		Message:    fmt.Sprintf("a %s must be sent with POST: GET runs queries only", op.Operation),
		Extensions: map[string]any{"code": aisle.EINVALID},
	}}})
	return true
}

// postQueries answers POST requests of Content-Type application/json.
type postQueries struct{}

var _ graphql.Transport = postQueries{}

func (postQueries) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && r.Method == http.MethodPost && mediaType == "application/json"
}

func (postQueries) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Add("Content-Type", contentType)
	start := graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %+v", err)}), true)
		return
	}
	params := &graphql.RawParams{}
	if err := jsonDecode(bytes.NewReader(body), params); err != nil {
		writeRequestError(w, contentType, http.StatusBadRequest, exec.DispatchError(ctx, gqlerror.List{
			gqlerror.Errorf("json request body could not be decoded: %+v body:%s", err, string(body)),
		}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		writeRequestError(w, contentType, statusFor(contentType, errs), exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, responses(ctx), true)
}

const graphQLResponseJSON = "application/graphql-response+json"

// responseContentType is gqlgen's content negotiation: the first of
// application/json and application/graphql-response+json that Accept
// names, application/json for an empty Accept or a wildcard, and
// application/graphql-response+json when Accept names neither.
func responseContentType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case graphQLResponseJSON:
			return graphQLResponseJSON
		}
	}
	return graphQLResponseJSON
}

// statusFor is gqlgen's status of a request error: a protocol error
// (parse, validation, variables) is 400 for application/graphql-response+json
// and 422 for application/json; anything else is 200.
func statusFor(contentType string, errs gqlerror.List) int {
	switch {
	case errcode.GetErrorKind(errs) != errcode.KindProtocol:
		return http.StatusOK
	case contentType == graphQLResponseJSON:
		return http.StatusBadRequest
	default:
		return http.StatusUnprocessableEntity
	}
}

func jsonDecode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return dec.Decode(v)
}

func errorResponse(message string) *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{Message: message}}}
}

// writeRequestError writes an answer with its status, without "data" when
// it is a 4xx answered as application/graphql-response+json.
func writeRequestError(w http.ResponseWriter, contentType string, status int, resp *graphql.Response) {
	w.WriteHeader(status)
	writeResponse(w, resp, status < 400 || contentType != graphQLResponseJSON)
}

// responseBuffers hold answers while they are written; an answer over
// maxPooledResponse is not kept.
var responseBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledResponse = 1 << 20

// writeResponse writes resp in one Write, with the bytes encoding/json's
// Marshal gives (gqlgen's transports write that), without or with "data".
func writeResponse(w io.Writer, resp *graphql.Response, withData bool) {
	buf := responseBuffers.Get().(*[]byte)
	b, ok := appendResponse((*buf)[:0], resp, withData)
	if !ok {
		// What appendResponse does not write as encoding/json would, it
		// leaves to encoding/json, which fails as gqlgen's transports do.
		var err error
		if b, err = marshalResponse(resp, withData); err != nil {
			panic(fmt.Errorf("unable to marshal %s: %w", string(resp.Data), err))
		}
	}
	_, _ = w.Write(b) // the client may be gone; nothing to do then
	if cap(b) <= maxPooledResponse && ok {
		*buf = b[:0]
	}
	responseBuffers.Put(buf)
}

// marshalResponse is encoding/json's answer; without data, the fields
// left are in the order of their names, as gqlgen's answer re-marshalled
// as an object without "data" was before this transport.
func marshalResponse(resp *graphql.Response, withData bool) ([]byte, error) {
	b, err := json.Marshal(resp)
	if err != nil || withData {
		return b, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	delete(fields, "data")
	return json.Marshal(fields)
}

// appendResponse appends the JSON of resp as encoding/json's Marshal
// writes it: the fields in graphql.Response's order, each omitted when
// empty as its tag says, and "data" compacted with HTML characters
// escaped. The fields other than data are marshalled by encoding/json.
// It reports false when it cannot: a field fails to marshal, "data" is
// empty but not nil (not JSON), data has whitespace between tokens (the
// executor writes none) that compacting would drop, or an answer without
// data has more than errors and extensions (a request error has no more;
// marshalResponse would order the others by name).
func appendResponse(dst []byte, resp *graphql.Response, withData bool) ([]byte, bool) {
	if !withData && (resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil) {
		return dst, false
	}
	dst = append(dst, '{')
	fields := 0
	field := func(name string, v any) bool {
		if fields > 0 {
			dst = append(dst, ',')
		}
		fields++
		dst = append(dst, name...)
		if v == nil {
			return true
		}
		b, err := json.Marshal(v)
		dst = append(dst, b...)
		return err == nil
	}
	if len(resp.Errors) > 0 && !field(`"errors":`, resp.Errors) {
		return dst, false
	}
	if withData {
		field(`"data":`, nil)
		switch {
		case resp.Data == nil:
			dst = append(dst, "null"...)
		case len(resp.Data) == 0:
			return dst, false
		default:
			var ok bool
			if dst, ok = appendCompactData(dst, resp.Data); !ok {
				return dst, false
			}
		}
	}
	if resp.Label != "" && !field(`"label":`, resp.Label) {
		return dst, false
	}
	if len(resp.Path) > 0 && !field(`"path":`, resp.Path) {
		return dst, false
	}
	if resp.HasNext != nil && !field(`"hasNext":`, *resp.HasNext) {
		return dst, false
	}
	if len(resp.Extensions) > 0 && !field(`"extensions":`, resp.Extensions) {
		return dst, false
	}
	return append(dst, '}'), true
}

// dataBytes are the bytes appendCompactData looks at: those
// encoding/json's compacting with HTML escaping changes (<, >, &, the
// first byte of U+2028 and U+2029, whitespace between tokens), and those
// that start or end a string or escape within one.
var dataBytes = [256]bool{'<': true, '>': true, '&': true, 0xE2: true, ' ': true, '\t': true, '\n': true, '\r': true, '"': true, '\\': true}

const hexDigits = "0123456789abcdef"

// appendCompactData appends data as encoding/json's compacting with HTML
// escaping writes valid JSON (json.RawMessage's encoding in Marshal):
// <, > and & become \u003c, \u003e and \u0026 and U+2028 and U+2029
// become \u2028 and \u2029, wherever they are. data is the executor's
// answer, valid JSON by construction, which Marshal would also check; this
// reads each byte once and checks only that no whitespace lies between
// tokens, reporting false if some does (compacting would drop it).
func appendCompactData(dst, data []byte) ([]byte, bool) {
	inString := false
	start := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !dataBytes[c] {
			continue
		}
		switch c {
		case '"':
			inString = !inString
		case '\\':
			i++ // an escaped byte: never one of dataBytes that matters
		case '<', '>', '&':
			dst = append(dst, data[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case 0xE2:
			if i+2 < len(data) && data[i+1] == 0x80 && data[i+2]&^1 == 0xA8 {
				dst = append(dst, data[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[data[i+2]&0xF])
				start = i + 3
				i += 2
			}
		default: // whitespace
			if !inString {
				return dst, false
			}
		}
	}
	return append(dst, data[start:]...), true
}
