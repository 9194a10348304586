package graph

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectedFields finds, for one operation, the fields of each object's
// selection set (graph/generate has every object's marshaler ask it).
// gqlgen keeps them per operation too, but finds them by a key it hashes
// and allocates anew for every object written: some 330 times for a page
// of 50 deployments, which has a dozen selection sets. Here the key is the
// selection set's address and length and the implementors list's address.
//
// The fields of a selection without directives do not depend on the
// operation's variables, only on its document, which the query cache
// shares between the operations that send the same text: those are kept
// with the document (see documentFields), so that a dashboard's repeated
// query collects them once. The others are kept for the operation.
type collectedFields struct {
	own      fieldsMemo
	document atomic.Pointer[fieldsMemo] // found on first use
}

// collectedKey names one selection set of a document under one object
// type's implementors (an interface's selection is collected once per
// type it resolves to).
type collectedKey struct {
	sel          *ast.Selection
	n            int
	implementors *string
}

// fieldsMemo is read for every object written, by every operation on its
// document at once, and added to once per selection set.
type fieldsMemo struct {
	kept publishedMap[collectedKey, []graphql.CollectedField]
	// subfields keeps subfields' answers, for the prefetches.
	subfields publishedMap[subfieldsKey, map[string][]graphql.CollectedField]
	// responseSize is the size of the last response written for the
	// document (see responseBuffer).
	responseSize atomic.Int64
}

// documentOf is the memo of op's document, nil when op has none.
func (c *collectedFields) documentOf(op *graphql.OperationContext) *fieldsMemo {
	document := c.document.Load()
	if document == nil && op.Doc != nil {
		document = fieldsOfDocument(op.Doc)
		c.document.Store(document)
	}
	return document
}

// responseBuffer is the buffer the operation's response is written into:
// as large as the last response to the same document, and an eighth more,
// so that a dashboard's repeated query is written without growing a
// buffer from nothing (a copy at each doubling, twice the response in
// all). The generated code has every query ask for it (see graph/generate)
// and report what it wrote (see wrote).
func (c *collectedFields) responseBuffer(op *graphql.OperationContext) *bytes.Buffer {
	if document := c.documentOf(op); document != nil {
		if n := document.responseSize.Load(); n > 0 {
			return bytes.NewBuffer(make([]byte, 0, n+n/8))
		}
	}
	return new(bytes.Buffer)
}

// wrote notes the size of the response written for op's document.
func (c *collectedFields) wrote(op *graphql.OperationContext, n int) {
	if document := c.documentOf(op); document != nil && document.responseSize.Load() != int64(n) {
		document.responseSize.Store(int64(n))
	}
}

// of is graphql.CollectFields(op, sel, implementors).
func (c *collectedFields) of(op *graphql.OperationContext, sel ast.SelectionSet, implementors []string) []graphql.CollectedField {
	key := collectedKey{unsafe.SliceData(sel), len(sel), unsafe.SliceData(implementors)}
	document := c.documentOf(op)
	if document != nil {
		if fields, ok := document.kept.get(key); ok {
			return fields
		}
	}
	if fields, ok := c.own.kept.get(key); ok {
		return fields
	}
	fields := graphql.CollectFields(op, sel, implementors)
	memo := &c.own
	if document != nil && !hasDirectives(op.Doc, sel, nil) {
		memo = document
	}
	memo.kept.add(1, func(m map[collectedKey][]graphql.CollectedField) { m[key] = fields })
	return fields
}

// documentFields holds the fields of the selections without directives of
// each parsed query document, for as long as the document lives: it is
// keyed by a weak pointer to the document (which a later document at the
// same address does not share), and the entry is removed once the
// document is collected.
var documentFields sync.Map // weak.Pointer[ast.QueryDocument] → *fieldsMemo

func fieldsOfDocument(doc *ast.QueryDocument) *fieldsMemo {
	key := weak.Make(doc)
	if m, ok := documentFields.Load(key); ok {
		return m.(*fieldsMemo)
	}
	m, loaded := documentFields.LoadOrStore(key, &fieldsMemo{})
	if !loaded {
		runtime.AddCleanup(doc, func(key weak.Pointer[ast.QueryDocument]) { documentFields.Delete(key) }, key)
	}
	return m.(*fieldsMemo)
}

// hasDirectives reports whether a field or fragment of sel, or of the
// fragments it spreads, has a directive: @include, @skip and @defer make
// the fields collected depend on the operation's variables.
func hasDirectives(doc *ast.QueryDocument, sel ast.SelectionSet, spread map[string]bool) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if len(s.Directives) > 0 {
				return true
			}
		case *ast.InlineFragment:
			if len(s.Directives) > 0 || hasDirectives(doc, s.SelectionSet, spread) {
				return true
			}
		case *ast.FragmentSpread:
			if len(s.Directives) > 0 {
				return true
			}
			if spread[s.Name] {
				continue
			}
			if spread == nil {
				spread = map[string]bool{}
			}
			spread[s.Name] = true
			f := doc.Fragments.ForName(s.Name)
			if f == nil || len(f.Directives) > 0 || hasDirectives(doc, f.SelectionSet, spread) {
				return true
			}
		default:
			return true
		}
	}
	return false
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

// newFieldSet is the set an object of fields is written in: the one made
// with the scope ctx is, the first time it is asked for, else a new one.
// (An object's marshaler is called with its field's scope; an object
// read from a struct field of another is written under that other's,
// whose set its own marshaler took first.)
func newFieldSet(ctx context.Context, fields []graphql.CollectedField) *fieldSet {
	var s *fieldSet
	if scope, ok := ctx.(*fieldScope); ok && scope.spare != nil {
		s, scope.spare = scope.spare, nil
	} else {
		s = new(fieldSet)
	}
	s.fields = fields
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
// what a null in a non-null field makes of its parent. The field resolves
// in scope, made under its parent's context (newFieldScope, or
// newObjectScope for a field whose value is an object), which its
// generated fieldContext_ function fills in.
func resolveField[T any](
	scope *fieldScope,
	oc *graphql.OperationContext,
	field graphql.CollectedField,
	initializeFieldContext func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error),
	fieldResolver func(ctx context.Context) (any, error),
	marshal func(ctx context.Context, sel ast.SelectionSet, v T) graphql.Marshaler,
	recoverFromPanic bool,
	nonNull bool,
) (ret graphql.Marshaler) {
	fc, err := initializeFieldContext(scope, field)
	if err != nil {
		return graphql.Null
	}
	ctx := withFieldContext(scope, fc)
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
