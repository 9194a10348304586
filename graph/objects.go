package graph

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"
	"unsafe"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectedFields keeps, for one operation, the fields collected for each
// object's selection set (graph/generate has every object's marshaler ask
// it). gqlgen keeps them too, but finds them by a key it hashes and
// allocates anew for every object written: some 330 times for a page of
// 50 deployments, which has a dozen selection sets. Here the key is the
// selection set's address and length and the implementors list's address,
// which stay put while the operation runs.
type collectedFields struct {
	mu   sync.RWMutex
	kept map[collectedKey][]graphql.CollectedField
}

// collectedKey names one selection set of an operation under one object
// type's implementors (an interface's selection is collected once per
// type it resolves to).
type collectedKey struct {
	sel          *ast.Selection
	n            int
	implementors *string
}

// of is graphql.CollectFields(op, sel, implementors).
func (c *collectedFields) of(op *graphql.OperationContext, sel ast.SelectionSet, implementors []string) []graphql.CollectedField {
	key := collectedKey{unsafe.SliceData(sel), len(sel), unsafe.SliceData(implementors)}
	c.mu.RLock()
	fields, ok := c.kept[key]
	c.mu.RUnlock()
	if ok {
		return fields
	}
	fields = graphql.CollectFields(op, sel, implementors)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept == nil {
		c.kept = make(map[collectedKey][]graphql.CollectedField)
	}
	c.kept[key] = fields
	return fields
}

// fieldSet is an object as its marshaler fills it in and the response
// writes it: gqlgen's graphql.FieldSet without what @defer fragments and
// fields resolved side by side need, neither of which happens here (see
// graph/generate). An object of up to eight fields takes one allocation
// instead of two, and is written without a map of the names written so
// far.
type fieldSet struct {
	fields   []graphql.CollectedField
	Values   []graphql.Marshaler
	Invalids uint32
	values   [8]graphql.Marshaler
}

func newFieldSet(fields []graphql.CollectedField) *fieldSet {
	s := &fieldSet{fields: fields}
	if len(fields) <= len(s.values) {
		s.Values = s.values[:len(fields)]
	} else {
		s.Values = make([]graphql.Marshaler, len(fields))
	}
	return s
}

// Dispatch resolves the fields left to resolve side by side: none.
func (s *fieldSet) Dispatch(context.Context) {}

// MarshalGQL writes the object as graphql.FieldSet does: each response
// name once, with the value of its first field. A response name is a
// GraphQL name (letters, digits, underscores), which needs no escaping.
func (s *fieldSet) MarshalGQL(w io.Writer) {
	buf, ok := w.(*bytes.Buffer)
	if !ok {
		buf = new(bytes.Buffer)
		defer buf.WriteTo(w)
	}
	buf.WriteByte('{')
	written := 0
	for i := range s.fields {
		alias := s.fields[i].Alias
		if slices.ContainsFunc(s.fields[:i], func(f graphql.CollectedField) bool { return f.Alias == alias }) {
			continue
		}
		if written > 0 {
			buf.WriteByte(',')
		}
		written++
		buf.WriteByte('"')
		buf.WriteString(alias)
		buf.WriteString(`":`)
		s.Values[i].MarshalGQL(buf)
	}
	buf.WriteByte('}')
}

// resolveField is graphql.ResolveField without the field middleware, which
// NewHandler refuses: the resolver is called directly, where gqlgen wraps
// it in a closure over it and the context (which then escape, three
// allocations for every field that has a resolver). Everything else is
// as gqlgen does it: the field's context, the panic guard, the errors and
// what a null in a non-null field makes of its parent.
func resolveField[T any](
	ctx context.Context,
	oc *graphql.OperationContext,
	field graphql.CollectedField,
	initializeFieldContext func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error),
	fieldResolver func(ctx context.Context) (any, error),
	marshal func(ctx context.Context, sel ast.SelectionSet, v T) graphql.Marshaler,
	recoverFromPanic bool,
	nonNull bool,
) (ret graphql.Marshaler) {
	fc, err := initializeFieldContext(ctx, field)
	if err != nil {
		return graphql.Null
	}
	ctx = graphql.WithFieldContext(ctx, fc)
	if recoverFromPanic {
		defer func() {
			if r := recover(); r != nil {
				oc.Error(ctx, oc.Recover(ctx, r))
				ret = graphql.Null
			}
		}()
	}
	// A null in a field that may not be null makes its parent null: the
	// parent's field sees RequiredNull and counts it as invalid.
	null := func() graphql.Marshaler {
		if fc.NonNull && !nonNull {
			return graphql.RequiredNull
		}
		return graphql.Null
	}
	res, err := fieldResolver(ctx)
	if err != nil {
		oc.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
		return null()
	}
	if res == nil {
		if (nonNull || fc.NonNull) && !graphql.HasFieldError(ctx, fc) {
			oc.Errorf(ctx, "must not be null")
		}
		return null()
	}
	if v, ok := res.(T); ok {
		fc.Result = v
		return marshal(ctx, field.Selections, v)
	}
	if m, ok := res.(graphql.Marshaler); ok {
		fc.Result = m
		return m
	}
	var t T
	oc.Errorf(ctx, "unexpected type %T from middleware/directive chain, should be %T", res, t)
	return graphql.Null
}
