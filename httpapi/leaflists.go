package httpapi

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"

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
// objectLists plans that selection once per list and writes the list's
// JSON straight from the Go values, byte for byte what the executor would
// write. Anything the plan does not cover is the executor's, with the
// value the resolver already returned: a selection with another directive
// or @defer, a field that has a resolver or no struct field, a nil where
// the schema says non-null, a float that JSON cannot hold (the executor
// answers those with an error). Resolvers, auth, limits, errors and
// extensions are untouched: the plan only replaces the marshalling of a
// resolver's successful result.
type objectLists struct {
	schema    *ast.Schema
	resolved  map[string]bool // "Object.field" of every field with a resolver
	accessors sync.Map        // accessorKey → *accessor (nil: none)
}

var (
	_ graphql.HandlerExtension = (*objectLists)(nil)
	_ graphql.FieldInterceptor = (*objectLists)(nil)
)

// newObjectLists reads which fields have resolvers from the generated
// resolver interfaces: graph.ResolverRoot has one method per object with
// resolvers (Query, Store, …), returning an interface with one method per
// resolved field.
func newObjectLists(schema *ast.Schema) *objectLists {
	resolved := map[string]bool{}
	root := reflect.TypeFor[graph.ResolverRoot]()
	for i := range root.NumMethod() {
		object := root.Method(i)
		fields := object.Type.Out(0)
		for j := range fields.NumMethod() {
			resolved[strings.ToLower(object.Name+"."+fields.Method(j).Name)] = true
		}
	}
	return &objectLists{schema: schema, resolved: resolved}
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
	oc := graphql.GetOperationContext(ctx)
	var buf bytes.Buffer
	if !l.writeList(&buf, ctx, oc, fc.Field.Selections, fc.Field.Definition.Type, list) {
		objectListAnswers.WithLabelValues("executor").Inc()
		return res, err // the executor's: it answers what the plan does not cover
	}
	objectListAnswers.WithLabelValues("planned").Inc()
	return rawJSON(buf.Bytes()), nil
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

// writeList writes a list of objects of type typ ([T] or [T!], T an object
// type) from list, false when the plan does not cover it.
func (l *objectLists) writeList(buf *bytes.Buffer, ctx context.Context, oc *graphql.OperationContext, sel ast.SelectionSet, typ *ast.Type, list reflect.Value) bool {
	def := l.schema.Types[typ.Elem.Name()]
	if typ.Elem.Elem != nil || def == nil || def.Kind != ast.Object {
		return false
	}
	fields := graphql.CollectFields(oc, sel, []string{def.Name})
	buf.WriteByte('[')
	for i := range list.Len() {
		if i > 0 {
			buf.WriteByte(',')
		}
		if !l.writeObject(buf, ctx, oc, def, fields, typ.Elem.NonNull, list.Index(i)) {
			return false
		}
	}
	buf.WriteByte(']')
	return true
}

// writeObject writes one object of type def with its collected fields.
func (l *objectLists) writeObject(buf *bytes.Buffer, ctx context.Context, oc *graphql.OperationContext, def *ast.Definition, fields []graphql.CollectedField, nonNull bool, v reflect.Value) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if nonNull {
				return false // the executor's error
			}
			buf.WriteString("null")
			return true
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	buf.WriteByte('{')
	for i, f := range fields {
		if len(f.Deferrables) > 0 || hasOtherDirectives(f.Directives) {
			return false
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		graphql.MarshalString(f.Alias).MarshalGQL(buf)
		buf.WriteByte(':')
		if f.Name == "__typename" {
			graphql.MarshalString(def.Name).MarshalGQL(buf)
			continue
		}
		if f.Definition == nil || l.resolved[strings.ToLower(def.Name+"."+f.Name)] {
			return false
		}
		a := l.accessor(v.Type(), f.Name)
		if a == nil {
			return false
		}
		fv := v.Field(a.index)
		ftyp := f.Definition.Type
		if ftyp.Elem != nil {
			if fv.Kind() != reflect.Slice || (fv.IsNil() && ftyp.NonNull) || len(f.Selections) == 0 {
				return false
			}
			if fv.IsNil() {
				buf.WriteString("null")
				continue
			}
			if !l.writeList(buf, ctx, oc, f.Selections, ftyp, fv) {
				return false
			}
			continue
		}
		fdef := l.schema.Types[ftyp.Name()]
		if fdef == nil {
			return false
		}
		switch fdef.Kind {
		case ast.Object:
			if len(f.Selections) == 0 || !l.writeObject(buf, ctx, oc, fdef, graphql.CollectFields(oc, f.Selections, []string{fdef.Name}), ftyp.NonNull, fv) {
				return false
			}
		case ast.Scalar, ast.Enum:
			if !writeLeaf(buf, ctx, fdef, ftyp.NonNull, fv) {
				return false
			}
		default:
			return false // interfaces and unions need the executor's type resolution
		}
	}
	buf.WriteByte('}')
	return true
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

// scalarWriters marshal the schema's scalars as the generated code does,
// each from the Go type gqlgen.yml binds it to (nil for any other type).
var scalarWriters = map[string]func(v reflect.Value) graphql.ContextMarshaler{
	"ID":      stringScalar(graph.MarshalID),
	"String":  stringScalar(graphql.MarshalString),
	"Boolean": scalarOf(func(b bool) graphql.ContextMarshaler { return contextual(graphql.MarshalBoolean(b)) }),
	"Float":   scalarOf(graphql.MarshalFloatContext),
	"Int":     scalarOf(func(i int) graphql.ContextMarshaler { return contextual(graphql.MarshalInt(i)) }),
	// The generated code turns a zero time into null (an error where the
	// schema says non-null): the executor's to answer.
	"Time": scalarOf(func(t time.Time) graphql.ContextMarshaler {
		if t.IsZero() {
			return nil
		}
		return contextual(graphql.MarshalTime(t))
	}),
}

func scalarOf[T any](marshal func(T) graphql.ContextMarshaler) func(v reflect.Value) graphql.ContextMarshaler {
	return func(v reflect.Value) graphql.ContextMarshaler {
		if v.Type() != reflect.TypeFor[T]() {
			return nil
		}
		return marshal(v.Interface().(T))
	}
}

func stringScalar(marshal func(string) graphql.Marshaler) func(v reflect.Value) graphql.ContextMarshaler {
	return scalarOf(func(s string) graphql.ContextMarshaler { return contextual(marshal(s)) })
}

func contextual(m graphql.Marshaler) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(_ context.Context, w io.Writer) error {
		m.MarshalGQL(w)
		return nil
	})
}

// writeLeaf writes a scalar or enum value; false when the executor would
// answer it with an error (nil for non-null, a value the scalar refuses)
// or its Go type is not the one the plan knows.
func writeLeaf(buf *bytes.Buffer, ctx context.Context, def *ast.Definition, nonNull bool, v reflect.Value) bool {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if nonNull {
				return false
			}
			buf.WriteString("null")
			return true
		}
		v = v.Elem()
	}
	var m graphql.ContextMarshaler
	if def.Kind == ast.Enum {
		enum, ok := v.Interface().(graphql.Marshaler)
		if !ok || v.Kind() != reflect.String {
			return false
		}
		m = contextual(enum)
	} else {
		write := scalarWriters[def.Name]
		if write == nil {
			return false
		}
		if m = write(v); m == nil {
			return false
		}
	}
	mark := buf.Len()
	if err := m.MarshalGQLContext(ctx, buf); err != nil {
		buf.Truncate(mark)
		return false
	}
	return true
}

type accessorKey struct {
	typ   reflect.Type
	field string
}

// accessor reads a GraphQL field from an exported struct field of the same
// name (ignoring case), as gqlgen binds it. A type with a method of that
// name is left to the executor: gqlgen would call the method.
type accessor struct{ index int }

func (l *objectLists) accessor(t reflect.Type, field string) *accessor {
	key := accessorKey{t, field}
	if a, ok := l.accessors.Load(key); ok {
		return a.(*accessor)
	}
	var found *accessor
	if !hasMethodFold(t, field) && !hasMethodFold(reflect.PointerTo(t), field) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.IsExported() && !sf.Anonymous && strings.EqualFold(sf.Name, field) {
				if found != nil {
					found = nil // ambiguous: the executor knows which
					break
				}
				found = &accessor{index: i}
			}
		}
	}
	l.accessors.Store(key, found)
	return found
}

func hasMethodFold(t reflect.Type, name string) bool {
	for i := range t.NumMethod() {
		if strings.EqualFold(t.Method(i).Name, name) {
			return true
		}
	}
	return false
}
