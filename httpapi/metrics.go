package httpapi

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

var (
	operationSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aisle_graphql_request_duration_seconds",
		Help: "Time from reading a GraphQL query or mutation to its response, by operation (see operationLabel) and type (query, mutation, invalid).",
		// 0.5 ms .. 16 s: the operation timeout is 15 s.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"operation", "type"})
	operationErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "aisle_graphql_errors_total",
		Help: "GraphQL errors sent to clients, by operation and extensions.code, subscription events included: what callers are told, not only what failed inside.",
	}, []string{"operation", "code"})
	activeSubscriptions = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aisle_graphql_active_subscriptions",
		Help: "Subscriptions running now, by root field; each holds a goroutine and a fan-out buffer.",
	}, []string{"field"})
)

// Operation labels. Prometheus keeps a series per label value for the life
// of the process, so a label a client can choose must be bounded: a client
// sending a fresh operation name with each request would otherwise grow
// the server's memory and every scrape without limit.
const (
	// maxOperationLabels caps the distinct operation labels per process;
	// an application has tens of operations, so the cap only bites when
	// someone is minting names.
	maxOperationLabels = 200
	labelOther         = "other"     // a valid name past the cap, or an unsafe one
	labelInvalid       = "invalid"   // no operation was selected: parse or validation failed
	labelAnonymous     = "anonymous" // an unnamed operation without plain root fields
)

// safeOperationName is a GraphQL name short enough to read on a dashboard.
var safeOperationName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// safeCode is what extensions.code values look like (ours and gqlgen's).
var safeCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,39}$`)

// operationMetrics is a gqlgen extension that measures every operation.
// Queries and mutations are observed as their response handler returns;
// errors that end a request before an operation runs (parse, validation,
// complexity) only pass through the response interceptor, which counts
// them when no operation interceptor is around it.
type operationMetrics struct {
	labels *operationLabels
}

var (
	_ graphql.HandlerExtension     = operationMetrics{}
	_ graphql.OperationInterceptor = operationMetrics{}
	_ graphql.ResponseInterceptor  = operationMetrics{}
)

func newOperationMetrics() operationMetrics {
	return operationMetrics{labels: &operationLabels{seen: make(map[string]bool)}}
}

func (operationMetrics) ExtensionName() string                   { return "AisleOperationMetrics" }
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }

// measuredKey marks contexts under InterceptOperation, whose wrapper
// observes the responses.
type measuredKey struct{}

func (m operationMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	op := graphql.GetOperationContext(ctx)
	label, typ := m.labels.of(op)
	start := op.Stats.OperationStart
	subscription := typ == string(ast.Subscription)
	// Over plain HTTP a subscription is refused (graphqlHandler), not run.
	if subscription && ctx.Value(websocketKey{}) != nil {
		field := labelOther // a root field only in a fragment
		if fields := rootFieldNames(op.Operation); len(fields) == 1 {
			field = fields[0]
		}
		active := activeSubscriptions.WithLabelValues(field)
		active.Inc()
		// The websocket transport cancels a subscription's context however
		// it ends: complete, error, resolver done, connection closed, panic.
		context.AfterFunc(ctx, active.Dec)
	}
	handle := next(context.WithValue(ctx, measuredKey{}, true))
	return func(ctx context.Context) *graphql.Response {
		resp := handle(ctx)
		if resp == nil {
			return nil
		}
		if !subscription {
			operationSeconds.WithLabelValues(label, typ).Observe(time.Since(start).Seconds())
		}
		countErrors(label, resp.Errors)
		return resp
	}
}

func (m operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || ctx.Value(measuredKey{}) != nil {
		return resp
	}
	var op *graphql.OperationContext
	if graphql.HasOperationContext(ctx) {
		op = graphql.GetOperationContext(ctx)
	}
	label, typ := m.labels.of(op)
	// handler.Server sets the start time of every request, and the
	// websocket transport of every operation.
	operationSeconds.WithLabelValues(label, typ).Observe(time.Since(graphql.GetStartTime(ctx)).Seconds())
	countErrors(label, resp.Errors)
	return resp
}

func countErrors(label string, errs gqlerror.List) {
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		switch {
		case code == "":
			code = "NONE"
		case !safeCode.MatchString(code):
			code = "OTHER"
		}
		operationErrors.WithLabelValues(label, code).Inc()
	}
}

// operationLabels turns operations into bounded label values:
//   - a named operation is labelled with its name when the name is safe
//     (a short GraphQL name) and fewer than maxOperationLabels labels have
//     been handed out, else "other";
//   - an unnamed one with "anonymous:" and its sorted root field names, e.g.
//     "anonymous:availability,stores": fields exist in the schema (the
//     document was validated), so this stays small, and it still says
//     what the operation was; it counts towards the cap too;
//   - a request that never got a valid operation is "invalid".
//
// Under a persisted-operations allowlist the names are the allowlist's.
type operationLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

// of returns op's label and type; op may be nil.
func (l *operationLabels) of(op *graphql.OperationContext) (label, typ string) {
	if op == nil || op.Operation == nil {
		return labelInvalid, labelInvalid
	}
	typ = string(op.Operation.Operation)
	label = op.Operation.Name
	switch {
	case label == "":
		fields := rootFieldNames(op.Operation)
		if len(fields) == 0 {
			return labelAnonymous, typ
		}
		label = "anonymous:" + strings.Join(fields, ",")
	case !safeOperationName.MatchString(label):
		return labelOther, typ
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen[label] {
		if len(l.seen) >= maxOperationLabels {
			return labelOther, typ
		}
		l.seen[label] = true
	}
	return label, typ
}

// rootFieldNames returns the distinct names of the fields selected at the
// operation's root, sorted; fields inside fragments are not seen.
func rootFieldNames(op *ast.OperationDefinition) []string {
	var names []string
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return names
}
