package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// fieldScope is a field's graphql.FieldContext together with the context
// that carries it to the field's resolver, its marshaler and everything
// under them, in one allocation. graphql.WithFieldContext takes two, a
// context value over a field context made apart, and gqlgen's field
// context functions a third, the closure of its Child function; a page of
// 50 deployments resolves some 400 fields with a resolver, and a list's
// items one context each (see graph/generate, and listItem).
//
// The generated code makes a field's scope and resolves the field in it
// (resolveField), which hands the scope as the context to the field's
// generated fieldContext_ function: that function fills in the
// scope's field context (newFieldContext) instead of allocating one.
// Until the scope is installed, it answers for its field context as its
// parent does, as the context handed to fieldContext_ always did.
type fieldScope struct {
	context.Context // the parent field's
	fc              graphql.FieldContext
	state           scopeState
	// op is the operation the scope's field is part of, which its
	// resolver asks for (its loaders, its arguments) from under as many
	// scopes as the field is deep: each scope answers it at once.
	op *operation
	// spare is where the field's object is written, made with the scope
	// (objectScope, and a list's items): its marshaler takes it
	// (newFieldSet) rather than allocating one.
	spare *fieldSet
	// item is the list item whose scope this is, if it is one's.
	item *listItem
}

// objectScope is the scope of a field whose value is an object, with the
// set its object is written in: one allocation where there were two. The
// generated code resolves such fields in one (newObjectScope).
type objectScope struct {
	fieldScope
	set fieldSet
}

type scopeState uint8

const (
	scopeFresh     scopeState = iota // made, its field context not yet handed out
	scopeClaimed                     // its field context handed out, not yet carried
	scopeInstalled                   // carries its field context, whose Parent is set
)

// Value answers graphql.GetFieldContext with the scope's field context once
// installed, operationOf with the operation, itemIn with the list item
// whose scope it is, and every other key as the parent does.
func (s *fieldScope) Value(key any) any {
	switch key {
	case fieldContextKey:
		if s.state == scopeInstalled {
			return &s.fc
		}
	case operationKey:
		if s.op != nil {
			return s.op
		}
	case listItemKey:
		if s.item != nil {
			return s.item
		}
	}
	return s.Context.Value(key)
}

// fieldContextKey is the key gqlgen keeps a field's context under, which it
// does not export: the key graphql.GetFieldContext asks a context for.
var fieldContextKey = func() any {
	var probe keyProbe
	graphql.GetFieldContext(&probe)
	return probe.key
}()

// keyProbe is a context that records the key it was last asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// newFieldScope starts a field's scope under ctx.
func newFieldScope(ctx context.Context) *fieldScope {
	return &fieldScope{Context: ctx, op: operationIn(ctx)}
}

// newObjectScope starts the scope of a field whose value is an object.
func newObjectScope(ctx context.Context) *fieldScope {
	o := &objectScope{fieldScope: fieldScope{Context: ctx, op: operationIn(ctx)}}
	o.spare = &o.set
	return &o.fieldScope
}

// operationIn is operationOf, at once when ctx is a scope.
func operationIn(ctx context.Context) *operation {
	if p, ok := ctx.(*fieldScope); ok {
		return p.op
	}
	return operationOf(ctx)
}

// newFieldContext is where a generated fieldContext_ function puts the
// field context it makes: in the scope it was handed, when that scope is
// fresh (resolveField's), else in one of its own (for a Child function,
// called with any context).
func newFieldContext(ctx context.Context) *graphql.FieldContext {
	if s, ok := ctx.(*fieldScope); ok && s.state == scopeFresh {
		s.state = scopeClaimed
		return &s.fc
	}
	return new(graphql.FieldContext)
}

// scalarFieldContext is graphql.NewScalarFieldContext made by
// newFieldContext, with a Child function that returns the type's error
// (the generated noChildFields<Type>), not a closure over it.
func scalarFieldContext(
	ctx context.Context,
	object string,
	field graphql.CollectedField,
	isMethod, isResolver bool,
	child func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error),
) (*graphql.FieldContext, error) {
	fc := newFieldContext(ctx)
	*fc = graphql.FieldContext{Object: object, Field: field, IsMethod: isMethod, IsResolver: isResolver, Child: child}
	return fc, nil
}

// withFieldContext is graphql.WithFieldContext: when fc is the field
// context of the scope ctx is, the scope itself carries it (once, however
// often asked), else a context value over ctx does.
func withFieldContext(ctx context.Context, fc *graphql.FieldContext) context.Context {
	if s, ok := ctx.(*fieldScope); ok && fc == &s.fc {
		s.install()
		return s
	}
	return graphql.WithFieldContext(ctx, fc)
}

// install makes the scope carry its field context, below its parent's.
func (s *fieldScope) install() {
	if s.state != scopeInstalled {
		s.fc.Parent = graphql.GetFieldContext(s.Context)
		s.state = scopeInstalled
	}
}
