package httpapi

import (
	"context"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/aisle/aisle/graph"
)

// objectLists is the fast path of hot reads (BENCHMARKS.md §12). gqlgen
// executes a list of objects element by element and field by field: a
// goroutine, a field context, a CollectFields and a marshaler per value,
// which for availability(100 products) is 600 field executions per
// request. When a field's answer is a list of objects whose selection is
// plain data (scalars, enums, __typename, and objects of plain data read
// from struct fields, through any aliases, fragments and @include/@skip),
// objectLists plans that selection once per list (a field index and a
// writer per selected field, checked against the schema and the Go type)
// and writes the list's
// JSON straight from the Go values, byte for byte what the executor would
// write. Anything the plan does not cover is the executor's, with the
// value the resolver already returned: a selection with another directive
// or @defer, a field that has a resolver (other than plannedResolvers) or
// no struct field, a nil where the schema says non-null, a float that JSON
// cannot hold (the executor answers those with an error). Resolvers, auth,
// limits, errors and extensions are untouched: the plan only replaces the
// marshalling of a resolver's successful result, and calls only the
// resolvers of plannedResolvers itself.
type objectLists struct {
	schema   *ast.Schema
	resolved map[string]bool // "object.field" (lower case) of every field with a resolver
	// callable holds the resolver methods of plannedResolvers, bound to
	// the resolver root, by "object.field".
	callable map[string]reflect.Value
}

// plannedResolvers are the resolver fields ("object.field", lower case) a
// plan calls itself, element by element, instead of leaving the whole list
// to the executor. Each takes no arguments and reads only its object and the
// operation's dataloaders, not the field context (which, called from a plan,
// is the list's). Product.availability is the availability nested in a
// store's listing, which Store.products reads for the whole page at once.
// An error from one of them sends the list to the executor, which calls it
// again (the dataloaders answer the same, from memory).
var plannedResolvers = map[string]bool{"product.availability": true}

var (
	_ graphql.HandlerExtension = (*objectLists)(nil)
	_ graphql.FieldInterceptor = (*objectLists)(nil)
)

// newObjectLists reads which fields have resolvers from the generated
// resolver interfaces: graph.ResolverRoot has one method per object with
// resolvers (Query, Store, …), returning an interface with one method per
// resolved field. root is the resolver the schema was built with.
func newObjectLists(schema *ast.Schema, root graph.ResolverRoot) *objectLists {
	l := &objectLists{schema: schema, resolved: map[string]bool{}, callable: map[string]reflect.Value{}}
	rootType := reflect.TypeFor[graph.ResolverRoot]()
	for i := range rootType.NumMethod() {
		object := rootType.Method(i)
		fields := object.Type.Out(0)
		for j := range fields.NumMethod() {
			key := strings.ToLower(object.Name + "." + fields.Method(j).Name)
			l.resolved[key] = true
			if plannedResolvers[key] {
				resolver := reflect.ValueOf(root).MethodByName(object.Name).Call(nil)[0]
				l.callable[key] = resolver.MethodByName(fields.Method(j).Name)
			}
		}
	}
	return l
}

func (*objectLists) ExtensionName() string                   { return "ObjectLists" }
func (*objectLists) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptField runs the field's resolver and, when its result is a list
// the plan covers, answers with the list's JSON instead (gqlgen takes a
// Marshaler from a field middleware as the field's output).
func (l *objectLists) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	fc := graphql.GetFieldContext(ctx)
	if err != nil || res == nil || fc == nil || len(fc.Field.Selections) == 0 || fc.Field.Definition == nil || fc.Field.Definition.Type.Elem == nil {
		return res, err
	}
	list := reflect.ValueOf(res)
	if list.Kind() != reflect.Slice || list.IsNil() {
		return res, err
	}
	p := l.planList(ctx, fc.Field.Selections, fc.Field.Definition.Type, list.Type())
	buf := make([]byte, 0, 64+list.Len()*128)
	if p == nil || !p.write(&buf, list) {
		objectListAnswers.WithLabelValues("executor").Inc()
		return res, err // the executor's: it answers what the plan does not cover
	}
	objectListAnswers.WithLabelValues("planned").Inc()
	return rawJSON(buf), nil
}

// objectListAnswers counts lists of objects by who wrote them: a share of
// "executor" on a hot read says its selection is one the plan leaves alone.
var objectListAnswers = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "aisle_graphql_object_lists_total",
	Help: "Lists of objects answered, by who wrote their JSON: planned (written from the resolver's values) or executor (gqlgen's field-by-field execution).",
}, []string{"path"})

// rawJSON is JSON already written.
type rawJSON []byte

func (r rawJSON) MarshalGQL(w io.Writer) { _, _ = w.Write(r) }

// A writer appends the JSON of one value to buf, false when the executor
// would answer it differently (with an error or a null it propagates).
type writer func(buf *[]byte, v reflect.Value) bool

// listPlan writes a list of objects.
type listPlan struct {
	object  *objectPlan
	nonNull bool // elements are non-null
}

// objectPlan writes one object: its fields in the executor's order.
type objectPlan struct {
	fields []fieldPlan
	// calls says the object, or one nested in it, has a field of
	// plannedResolvers: lists of it write their elements concurrently, as
	// the executor resolves them, so that the resolvers' dataloaders batch.
	calls bool
}

type fieldPlan struct {
	key   []byte // "alias":, with the comma before it unless first
	index int    // of the struct field; -1 for __typename and resolver calls, which read the object
	write writer
}

// planList plans a list of objects of GraphQL type typ ([T] or [T!], T an
// object type) held in a Go slice of type goType; nil when it cannot.
func (l *objectLists) planList(ctx context.Context, sel ast.SelectionSet, typ *ast.Type, goType reflect.Type) *listPlan {
	def := l.schema.Types[typ.Elem.Name()]
	if typ.Elem.Elem != nil || def == nil || def.Kind != ast.Object || goType.Kind() != reflect.Slice {
		return nil
	}
	object := l.planObject(ctx, def, sel, goType.Elem())
	if object == nil {
		return nil
	}
	return &listPlan{object: object, nonNull: typ.Elem.NonNull}
}

func (p *listPlan) write(buf *[]byte, list reflect.Value) bool {
	if p.object.calls && list.Len() > 1 {
		return p.writeConcurrently(buf, list)
	}
	*buf = append(*buf, '[')
	for i := range list.Len() {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		if !p.object.writeValue(buf, list.Index(i), p.nonNull) {
			return false
		}
	}
	*buf = append(*buf, ']')
	return true
}

// writeConcurrently writes each element in a goroutine of its own, all
// awaited.
func (p *listPlan) writeConcurrently(buf *[]byte, list reflect.Value) bool {
	elements := make([][]byte, list.Len())
	written := make([]bool, list.Len())
	var wg sync.WaitGroup
	for i := range elements {
		wg.Go(func() { written[i] = p.object.writeValue(&elements[i], list.Index(i), p.nonNull) })
	}
	wg.Wait()
	*buf = append(*buf, '[')
	for i, element := range elements {
		if !written[i] {
			return false
		}
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = append(*buf, element...)
	}
	*buf = append(*buf, ']')
	return true
}

// planObject plans the fields of sel on object type def, read from Go type
// goType (a struct or pointers to one); nil when it cannot.
func (l *objectLists) planObject(ctx context.Context, def *ast.Definition, sel ast.SelectionSet, goType reflect.Type) *objectPlan {
	for goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	if goType.Kind() != reflect.Struct {
		return nil
	}
	p := &objectPlan{}
	for i, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), sel, []string{def.Name}) {
		if len(f.Deferrables) > 0 || hasOtherDirectives(f.Directives) {
			return nil
		}
		var key []byte
		if i > 0 {
			key = append(key, ',')
		}
		key = append(appendQuoted(key, f.Alias), ':')
		if f.Name == "__typename" {
			name := appendQuoted(nil, def.Name)
			p.fields = append(p.fields, fieldPlan{key: key, index: -1, write: func(buf *[]byte, _ reflect.Value) bool {
				*buf = append(*buf, name...)
				return true
			}})
			continue
		}
		if f.Definition == nil {
			return nil
		}
		if resolver := strings.ToLower(def.Name + "." + f.Name); l.resolved[resolver] {
			write := l.planCall(ctx, f, resolver, goType)
			if write == nil {
				return nil
			}
			p.fields = append(p.fields, fieldPlan{key: key, index: -1, write: write})
			p.calls = true
			continue
		}
		index, ok := structField(goType, f.Name)
		if !ok {
			return nil
		}
		write, calls := l.planValue(ctx, f, goType.Field(index).Type)
		if write == nil {
			return nil
		}
		p.fields = append(p.fields, fieldPlan{key: key, index: index, write: write})
		p.calls = p.calls || calls
	}
	return p
}

// planCall plans field f, whose resolver is "object.field" resolver, on an
// object of Go struct type goType: the resolver is called with the object
// and its answer written by the plan of its type; nil when it cannot (a
// resolver outside plannedResolvers, a field with arguments).
func (l *objectLists) planCall(ctx context.Context, f graphql.CollectedField, resolver string, goType reflect.Type) writer {
	method, ok := l.callable[resolver]
	if !ok || len(f.Arguments) > 0 || method.Type().NumIn() != 2 || method.Type().In(1) != reflect.PointerTo(goType) {
		return nil
	}
	write, _ := l.planValue(ctx, f, method.Type().Out(0))
	if write == nil {
		return nil
	}
	in := reflect.ValueOf(ctx)
	return func(buf *[]byte, object reflect.Value) bool {
		if !object.CanAddr() {
			return false
		}
		answer, ok := call(method, in, object.Addr())
		return ok && write(buf, answer)
	}
}

// call runs a resolver method; ok is false when it returned an error or
// panicked: the executor, which answers both, calls it again.
func call(method, ctx, object reflect.Value) (answer reflect.Value, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	out := method.Call([]reflect.Value{ctx, object})
	return out[0], out[1].IsNil()
}

// writeValue writes the object held in v (a struct or pointers to one).
func (p *objectPlan) writeValue(buf *[]byte, v reflect.Value, nonNull bool) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if nonNull {
				return false // the executor's error
			}
			*buf = append(*buf, "null"...)
			return true
		}
		v = v.Elem()
	}
	*buf = append(*buf, '{')
	for _, f := range p.fields {
		*buf = append(*buf, f.key...)
		fv := v
		if f.index >= 0 {
			fv = v.Field(f.index)
		}
		if !f.write(buf, fv) {
			return false
		}
	}
	*buf = append(*buf, '}')
	return true
}

// planValue plans the value of field f, of Go type goType; calls says the
// plan calls a resolver (see objectPlan).
func (l *objectLists) planValue(ctx context.Context, f graphql.CollectedField, goType reflect.Type) (write writer, calls bool) {
	typ := f.Definition.Type
	if typ.Elem != nil {
		if len(f.Selections) == 0 {
			return nil, false // lists of scalars: left to the executor
		}
		list := l.planList(ctx, f.Selections, typ, goType)
		if list == nil {
			return nil, false
		}
		return func(buf *[]byte, v reflect.Value) bool {
			if v.IsNil() {
				if typ.NonNull {
					return false
				}
				*buf = append(*buf, "null"...)
				return true
			}
			return list.write(buf, v)
		}, list.object.calls
	}
	def := l.schema.Types[typ.Name()]
	if def == nil {
		return nil, false
	}
	switch def.Kind {
	case ast.Object:
		if len(f.Selections) == 0 {
			return nil, false
		}
		object := l.planObject(ctx, def, f.Selections, goType)
		if object == nil {
			return nil, false
		}
		return func(buf *[]byte, v reflect.Value) bool { return object.writeValue(buf, v, typ.NonNull) }, object.calls
	case ast.Scalar, ast.Enum:
		leaf := leafWriter(def, goType)
		if leaf == nil {
			return nil, false
		}
		if goType.Kind() != reflect.Pointer {
			return leaf, false
		}
		return func(buf *[]byte, v reflect.Value) bool {
			if v.IsNil() {
				if typ.NonNull {
					return false
				}
				*buf = append(*buf, "null"...)
				return true
			}
			return leaf(buf, v.Elem())
		}, false
	}
	return nil, false // interfaces and unions need the executor's type resolution
}

// hasOtherDirectives reports a directive other than @include and @skip,
// which CollectFields has applied already.
func hasOtherDirectives(ds ast.DirectiveList) bool {
	for _, d := range ds {
		if d.Name != "include" && d.Name != "skip" {
			return true
		}
	}
	return false
}

// leafWriter writes a scalar or enum as the generated code does, for the Go
// type gqlgen.yml binds it to (goType, or a pointer to it); nil for any
// other Go type.
func leafWriter(def *ast.Definition, goType reflect.Type) writer {
	if goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	if def.Kind == ast.Enum {
		// Generated enums are strings that write strconv.Quote of themselves.
		if goType.Kind() != reflect.String || !goType.Implements(reflect.TypeFor[graphql.Marshaler]()) {
			return nil
		}
		return func(buf *[]byte, v reflect.Value) bool {
			*buf = strconv.AppendQuote(*buf, v.String())
			return true
		}
	}
	switch {
	case (def.Name == "ID" || def.Name == "String") && goType == reflect.TypeFor[string]():
		// graph.MarshalID and graphql.MarshalString quote the same way.
		return func(buf *[]byte, v reflect.Value) bool {
			*buf = appendQuoted(*buf, v.String())
			return true
		}
	case def.Name == "Boolean" && goType == reflect.TypeFor[bool]():
		return func(buf *[]byte, v reflect.Value) bool {
			*buf = strconv.AppendBool(*buf, v.Bool())
			return true
		}
	case def.Name == "Int" && goType == reflect.TypeFor[int]():
		return func(buf *[]byte, v reflect.Value) bool {
			*buf = strconv.AppendInt(*buf, v.Int(), 10)
			return true
		}
	case def.Name == "Float" && goType == reflect.TypeFor[float64]():
		return func(buf *[]byte, v reflect.Value) bool {
			f := v.Float()
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return false // graphql.MarshalFloatContext's error
			}
			*buf = strconv.AppendFloat(*buf, f, 'g', -1, 64) // fmt's %g
			return true
		}
	case def.Name == "Time" && goType == reflect.TypeFor[time.Time]():
		return func(buf *[]byte, v reflect.Value) bool {
			t, _ := reflect.TypeAssert[time.Time](v) // v.Interface() would allocate a copy
			if t.IsZero() {
				return false // the generated code's null: an error where non-null
			}
			*buf = append(t.AppendFormat(append(*buf, '"'), time.RFC3339Nano), '"') // RFC 3339 needs no escaping
			return true
		}
	}
	return nil
}

// appendQuoted quotes s as graphql.MarshalString does: only control
// characters, backslash and the quote are escaped.
func appendQuoted(buf []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			continue
		}
		if c >= 0x20 && c != '\\' && c != '"' {
			i++
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '\t':
			buf = append(buf, `\t`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\\':
			buf = append(buf, `\\`...)
		case '"':
			buf = append(buf, `\"`...)
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	return append(append(buf, s[start:]...), '"')
}

// structField finds the exported struct field of t that gqlgen binds to
// GraphQL field name (same name ignoring case). A type with a method of
// that name is left to the executor: gqlgen would call the method.
func structField(t reflect.Type, name string) (int, bool) {
	if hasMethodFold(t, name) || hasMethodFold(reflect.PointerTo(t), name) {
		return 0, false
	}
	found := -1
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.IsExported() && !sf.Anonymous && strings.EqualFold(sf.Name, name) {
			if found >= 0 {
				return 0, false // ambiguous: the executor knows which
			}
			found = i
		}
	}
	return found, found >= 0
}

func hasMethodFold(t reflect.Type, name string) bool {
	for i := range t.NumMethod() {
		if strings.EqualFold(t.Method(i).Name, name) {
			return true
		}
	}
	return false
}
