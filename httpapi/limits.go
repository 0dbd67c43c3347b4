package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/postgres"
)

// Limits on the shape of one operation. Our schema has no cycles, so its
// deepest and widest honest operations are known; each limit sits well above
// them (limits_test.go runs the real ones) and far below what hurts.
const (
	// maxParserTokens bounds the work of parsing one document before any
	// other check can run. GraphiQL's introspection query has about 190
	// tokens; an availability query naming its 500 products inline, 520.
	maxParserTokens = 5000
	// maxDepth counts fields from the operation's root field down.
	// stores → edges → node → products → edges → node → availability →
	// status is 8, the deepest path of the schema; GraphiQL's introspection query is 15
	// deep (__Type.ofType nests).
	maxDepth = 20
	// maxAliases bounds the aliased fields of one operation, fragments
	// expanded: aliases are how one request asks for the same expensive
	// field many times over. A client comparing a few stores needs a few.
	maxAliases = 20
	// maxComplexity bounds the fields an operation may make the server
	// resolve, list sizes multiplied in (measure). It admits availability
	// of the documented maximum of 500 products with every field (2,501)
	// and 20 stores with 20 products each (1,321); it refuses two such
	// availability lists in one request, and 100 stores × 100 products
	// (30,601).
	maxComplexity = 5000
	// maxSelectionFields bounds the fields that merge into one selection
	// set, fragments spread into it included, before gqlparser validates
	// the document: its OverlappingFieldsCanBeMerged rule compares every
	// pair of them, so 4,990 fields in one set (10 KB) cost it 1.6 s of
	// CPU. Our widest type has about 10 fields; GraphiQL's introspection
	// query selects at most 12 in one set.
	maxSelectionFields = 100
	// maxSamePathPairs bounds the pairs of fields answering at the same
	// response path (fragments expanded), which the same rule compares
	// one by one, recursing into their selections: 65 `store(id: "s")`
	// fields of 65 `id`s each are 4,225 ids at one path, 8.9 million
	// pairs and a second of CPU. An honest document repeats a field a few
	// times at most, through overlapping fragments.
	maxSamePathPairs = 50_000
	// maxErrors bounds the errors of one answer: a document of thousands
	// of unknown fields would otherwise get an answer 70 times its size.
	maxErrors = 20
	// maxMessageBytes bounds one error message: gqlgen quotes a body it
	// cannot decode in full.
	maxMessageBytes = 300
)

// codeLimitExceeded is the extensions.code of an operation refused by a
// limit on its size or shape; extensions.limit names the limit and
// extensions.max its value. gqlgen answers it over HTTP with 422 like any
// other error in the document (init below).
const codeLimitExceeded = "LIMIT_EXCEEDED"

// Names of the limits, as the rejections metric and extensions.limit say them.
const (
	limitTokens       = "tokens"
	limitSelection    = "selection_fields"
	limitErrors       = "errors"
	limitSamePath     = "same_path_pairs"
	limitDepth        = "depth"
	limitAliases      = "aliases"
	limitComplexity   = "complexity"
	limitRequestBytes = "request_bytes"
	limitRate         = "rate"
	limitRefusedKeys  = "refused_keys"
	limitPersisted    = "persisted_operations"
)

func init() {
	errcode.RegisterErrorType(codeLimitExceeded, errcode.KindProtocol)
}

var limitRejections = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "aisle_graphql_limit_rejections_total",
	Help: "GraphQL requests and operations refused by a limit, by limit.",
}, []string{"limit"})

// limitError is the error of a refused operation, counted once here.
func limitError(limit string, max int, format string, args ...any) *gqlerror.Error {
	limitRejections.WithLabelValues(limit).Inc()
	return &gqlerror.Error{
		Message:    fmt.Sprintf(format, args...),
		Extensions: map[string]any{"code": codeLimitExceeded, "limit": limit, "max": max},
	}
}

// operationLimits refuses operations deeper, more aliased or more complex
// than its limits before any resolver runs. It replaces gqlgen's
// FixedComplexityLimit, which counts a list of 100 like a single object.
type operationLimits struct {
	maxDepth, maxAliases, maxComplexity int
	// production refuses __schema and __type with a clear error (gqlgen's
	// own switch, extension.Introspection left out, fails them with a plain
	// error that the presenter must, and does, hide as INTERNAL), and
	// strips the suggestions that SetDisableSuggestion leaves in.
	production bool
	// cache is gqlgen's cache of validated documents: those in it have
	// passed MutateOperationParameters already.
	cache graphql.Cache[*ast.QueryDocument]
}

var (
	_ graphql.HandlerExtension          = operationLimits{}
	_ graphql.OperationParameterMutator = operationLimits{}
	_ graphql.OperationContextMutator   = operationLimits{}
	_ graphql.ResponseInterceptor       = operationLimits{}
)

func (operationLimits) ExtensionName() string                   { return "OperationLimits" }
func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters refuses a document whose selection sets are
// too wide, or whose fields are too many, before gqlparser validates it:
// gqlgen validates a document it has not cached before any
// OperationContextMutator sees it, and validation costs time quadratic in
// the fields of one selection set. Parsing here costs under a millisecond
// at the token limit, and only documents not in the cache pay it; a
// document that does not parse passes, for gqlgen to report.
func (l operationLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if l.cache != nil {
		if _, ok := l.cache.Get(ctx, params.Query); ok {
			return nil
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, maxParserTokens)
	if err != nil {
		return nil
	}
	w := widthWalker{fragments: doc.Fragments, onPath: map[string]bool{}, paths: map[string]int{}}
	for i, op := range doc.Operations {
		w.selectionSet(op.SelectionSet, strconv.Itoa(i))
	}
	for _, f := range doc.Fragments {
		w.selectionSet(f.SelectionSet, f.Name)
	}
	return w.err
}

// widthWalker counts, before validation, the fields that merge into each
// selection set (fragments spread into it expanded), the pairs of fields
// that answer at the same response path (which validation compares with
// each other), and every selection it visits; it stops at the first limit
// passed.
type widthWalker struct {
	fragments ast.FragmentDefinitionList
	onPath    map[string]bool // fragments being expanded: a cycle is validation's to report
	paths     map[string]int  // response path → fields seen answering there
	pairs     int
	visits    int
	err       *gqlerror.Error
}

func (w *widthWalker) selectionSet(set ast.SelectionSet, path string) {
	if n := w.fields(set, path, 0); n > maxSelectionFields && w.err == nil {
		w.err = limitError(limitSelection, maxSelectionFields,
			"a selection set has more than %d fields, fragments spread into it included: select fewer fields", maxSelectionFields)
	}
}

// fields adds to n the fields of set and of the fragments in it, whose
// response path is below path, checking the selection set of each field on
// the way.
func (w *widthWalker) fields(set ast.SelectionSet, path string, n int) int {
	for _, sel := range set {
		if w.err != nil || n > maxSelectionFields {
			return n
		}
		if w.visits++; w.visits > maxComplexity {
			w.err = limitError(limitComplexity, maxComplexity,
				"the operation selects more than %d fields, fragments expanded: ask for fewer fields", maxComplexity)
			return n
		}
		switch s := sel.(type) {
		case *ast.Field:
			n++
			fieldPath := path + "." + s.Alias
			w.pairs += w.paths[fieldPath] // the new field pairs with each one seen there
			w.paths[fieldPath]++
			if w.pairs > maxSamePathPairs {
				w.err = limitError(limitSamePath, maxSamePathPairs,
					"the document repeats fields too often: fields answering at the same path, fragments expanded, make more than %d pairs; remove the repeats", maxSamePathPairs)
				return n
			}
			w.selectionSet(s.SelectionSet, fieldPath)
		case *ast.InlineFragment:
			n = w.fields(s.SelectionSet, path, n)
		case *ast.FragmentSpread:
			if f := w.fragments.ForName(s.Name); f != nil && !w.onPath[s.Name] {
				w.onPath[s.Name] = true
				n = w.fields(f.SelectionSet, path, n)
				delete(w.onPath, s.Name)
			}
		}
	}
	return n
}

func (l operationLimits) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if op := opCtx.Operation; op.Operation == ast.Subscription {
		// gqlparser counts the root fields' names, so two aliases of one
		// field pass its check, and gqlgen then fails the operation with
		// a plain error that the presenter must hide as INTERNAL.
		if names := rootResponseNames(op.SelectionSet, map[string]bool{}); len(names) != 1 {
			return &gqlerror.Error{
				Message:    fmt.Sprintf("a subscription must select exactly one root field (aliases count apart); this one selects %d", len(names)),
				Extensions: map[string]any{"code": aisle.EINVALID},
			}
		}
	}
	_, err := l.measure(opCtx.Operation, opCtx.Variables)
	return err
}

// rootResponseNames adds to names the response names (aliases) of a
// validated selection set, fragments expanded: the fields gqlgen runs.
func rootResponseNames(set ast.SelectionSet, names map[string]bool) map[string]bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			names[s.Alias] = true
		case *ast.InlineFragment:
			rootResponseNames(s.SelectionSet, names)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				rootResponseNames(s.Definition.SelectionSet, names)
			}
		}
	}
	return names
}

// InterceptResponse rewrites the errors of a refused document, which pass
// here (DispatchError). The parser reports its token limit as a plain parse
// error ("exceeded token limit of N"), which a client cannot tell from a
// typo: it gets the code and extensions of every other limit.
func (l operationLimits) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] == errcode.ParseFailed && strings.HasPrefix(e.Message, "exceeded token limit") {
			limitRejections.WithLabelValues(limitTokens).Inc()
			e.Message = fmt.Sprintf("the document has more than %d tokens; send a smaller operation", maxParserTokens)
			e.Extensions = map[string]any{"code": codeLimitExceeded, "limit": limitTokens, "max": maxParserTokens}
		}
		e.Message = shortMessage(e.Message)
	}
	if n := len(resp.Errors); n > maxErrors {
		resp.Errors = append(resp.Errors[:maxErrors:maxErrors], limitError(limitErrors, maxErrors,
			"%d more errors are not shown: fix these and send the operation again", n-maxErrors))
	}
	return resp
}

// shortMessage cuts a message to maxMessageBytes. gqlgen ends the message
// of a body that is not a GraphQL request with the whole body; the caller
// has it already.
func shortMessage(m string) string {
	if strings.HasPrefix(m, "json request body could not be decoded") {
		m, _, _ = strings.Cut(m, " body:")
	}
	if len(m) <= maxMessageBytes {
		return m
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "…"
}

// measure returns op's complexity, or the error of the first limit it
// exceeds. It expands fragments where they are spread, so a fragment used
// twice counts twice: never less than execution does, and a document whose
// fragments multiply is stopped as soon as it passes a limit.
func (l operationLimits) measure(op *ast.OperationDefinition, vars map[string]any) (int, *gqlerror.Error) {
	m := &measurer{limits: l, vars: vars}
	cost := m.selectionCost(op.SelectionSet, 0)
	if m.err != nil {
		return 0, m.err
	}
	if cost > l.maxComplexity {
		return 0, limitError(limitComplexity, l.maxComplexity,
			"the operation's complexity is %d, over the limit of %d: ask for smaller pages (first) or fewer fields", cost, l.maxComplexity)
	}
	return cost, nil
}

type measurer struct {
	limits  operationLimits
	vars    map[string]any
	aliases int
	fields  int // fields visited; each costs at least 1
	err     *gqlerror.Error
}

// selectionCost is the cost of a selection set whose fields are at depth+1.
// The cost of a field is 1 plus its children's cost times its list size
// (listSize); a leaf costs 1.
func (m *measurer) selectionCost(set ast.SelectionSet, depth int) int {
	total := 0
	for _, sel := range set {
		if m.err != nil {
			return 0
		}
		switch s := sel.(type) {
		case *ast.Field:
			total = addCapped(total, m.fieldCost(s, depth+1))
		case *ast.InlineFragment:
			total = addCapped(total, m.selectionCost(s.SelectionSet, depth))
		case *ast.FragmentSpread:
			if s.Definition != nil { // validation has resolved every spread
				total = addCapped(total, m.selectionCost(s.Definition.SelectionSet, depth))
			}
		}
	}
	return total
}

func (m *measurer) fieldCost(f *ast.Field, depth int) int {
	l := m.limits
	if depth > l.maxDepth {
		m.err = limitError(limitDepth, l.maxDepth, "the operation is nested more than %d fields deep (at %s)", l.maxDepth, f.Alias)
		return 0
	}
	if l.production && (f.Name == "__schema" || f.Name == "__type") {
		m.err = &gqlerror.Error{
			Message:    "introspection is off in production (AISLE_ENV=production); the schema is in the API's documentation",
			Extensions: map[string]any{"code": aisle.EFORBIDDEN},
		}
		return 0
	}
	if f.Alias != f.Name {
		m.aliases++
		if m.aliases > l.maxAliases {
			m.err = limitError(limitAliases, l.maxAliases, "the operation has more than %d aliased fields, fragments expanded", l.maxAliases)
			return 0
		}
	}
	// Every field costs at least 1, so once more fields than the limit have
	// been visited the answer is known; stopping here bounds the walk of
	// fragments that spread each other many times over.
	m.fields++
	if m.fields > l.maxComplexity {
		m.err = limitError(limitComplexity, l.maxComplexity,
			"the operation selects more than %d fields, fragments expanded: ask for fewer fields", l.maxComplexity)
		return 0
	}
	if len(f.SelectionSet) == 0 {
		return 1
	}
	return addCapped(1, mulCapped(m.listSize(f), m.selectionCost(f.SelectionSet, depth)))
}

// listSize is how many items a field returns at most, judged from the
// schema and the field's arguments: a list or connection with a `first`
// argument returns first items (the schema's default, else the catalog's
// default page size, when the caller leaves it out); one with a list
// argument (availability's productIds) returns an item per element.
// Other fields return one object, and lists without such arguments (edges,
// reasons) are already counted by their parent's `first` or are small by
// contract.
func (m *measurer) listSize(f *ast.Field) int {
	def := f.Definition
	if def == nil || (def.Type.Elem == nil && !strings.HasSuffix(def.Type.Name(), "Connection")) {
		return 1
	}
	args := f.ArgumentMap(m.vars)
	if def.Arguments.ForName("first") != nil {
		if n, ok := asInt(args["first"]); ok {
			return max(n, 1)
		}
		return postgres.DefaultPageSize
	}
	size := 1
	for _, a := range def.Arguments {
		if list, ok := args[a.Name].([]any); ok {
			size = max(size, len(list))
		}
	}
	return size
}

// asInt reads an Int argument, whether it came from the document (int64)
// or from JSON variables (json.Number, int64 or float64 once coerced).
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(min(n, math.MaxInt32)), true
	case float64:
		return int(min(n, math.MaxInt32)), true
	case json.Number:
		i, err := n.Int64()
		return int(min(i, math.MaxInt32)), err == nil
	}
	return 0, false
}

// addCapped and mulCapped saturate instead of overflowing: a cost past
// MaxInt32 is over every limit anyway.
func addCapped(a, b int) int { return min(a+b, math.MaxInt32) }

func mulCapped(a, b int) int {
	if a != 0 && b > math.MaxInt32/a {
		return math.MaxInt32
	}
	return a * b
}

// rulesWithoutSuggestions are gqlparser's validation rules with the
// variants that suggest no names, for production: gqlgen's
// SetDisableSuggestion swaps only the field and scalar-leaf rules, and the
// suggestions of the others (arguments, types, enum values) would name the
// schema that introspection hides there.
func rulesWithoutSuggestions() *rules.Rules {
	r := rules.NewDefaultRules()
	for _, quiet := range []core.Rule{
		rules.KnownArgumentNamesRuleWithoutSuggestions,
		rules.KnownTypeNamesRuleWithoutSuggestions,
		rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
	} {
		r.RemoveRule(strings.TrimSuffix(quiet.Name, "WithoutSuggestions"))
		r.AddRule(quiet.Name, quiet.RuleFunc)
	}
	return r
}
