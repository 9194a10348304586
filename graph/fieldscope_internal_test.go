package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deploygraph/deploygraph/store"
)

type testKey struct{}

// A field's scope carries its field context as graphql.WithFieldContext
// would: its parent's until installed, its own after, with its Parent set
// once; every other key, the deadline and the cancellation as its parent's.
func TestFieldScopeIsWithFieldContext(t *testing.T) {
	parentFC := &graphql.FieldContext{Object: "Query", Field: graphql.CollectedField{Field: &ast.Field{Alias: "project", Name: "project"}}}
	base, cancel := context.WithCancel(context.WithValue(context.Background(), testKey{}, "kept"))
	base = WithOperation(base, func() *Loaders { return &Loaders{} })
	op := operationOf(base)
	parent := graphql.WithFieldContext(base, parentFC)

	s := newFieldScope(parent)
	if got := graphql.GetFieldContext(s); got != parentFC {
		t.Fatalf("a fresh scope carries %v, want its parent's field context", got)
	}
	fc := newFieldContext(s)
	if fc != &s.fc {
		t.Fatal("a fresh scope's field context was not handed out")
	}
	if other := newFieldContext(s); other == fc {
		t.Fatal("a scope handed out its field context twice")
	}
	if got := graphql.GetFieldContext(s); got != parentFC {
		t.Fatalf("a scope not yet installed carries %v, want its parent's field context", got)
	}
	fc.Field = graphql.CollectedField{Field: &ast.Field{Alias: "env", Name: "environment"}}
	ctx := withFieldContext(s, fc)
	if ctx != context.Context(s) {
		t.Fatal("the scope's own field context was put in a context value over it")
	}
	if got := graphql.GetFieldContext(ctx); got != fc || fc.Parent != parentFC {
		t.Fatalf("an installed scope carries %v (parent %v), want its own field context under its parent's", got, fc.Parent)
	}
	if withFieldContext(ctx, fc); fc.Parent != parentFC || graphql.GetFieldContext(ctx) != fc {
		t.Fatal("installing a scope again changed it")
	}
	if got, want := graphql.GetPath(ctx).String(), graphql.GetPath(graphql.WithFieldContext(parent, &graphql.FieldContext{Field: fc.Field})).String(); got != want {
		t.Errorf("path %q, want %q", got, want)
	}

	child := &graphql.FieldContext{Object: "Environment"}
	childCtx := withFieldContext(ctx, child)
	if graphql.GetFieldContext(childCtx) != child || child.Parent != fc {
		t.Error("a field context of another scope is not carried under the scope's")
	}
	if ctx.Value(testKey{}) != "kept" || childCtx.Value(testKey{}) != "kept" {
		t.Error("a scope does not answer its parent's keys")
	}
	nested := newFieldScope(ctx)
	if s.op != op || nested.op != op || operationOf(nested) != op || operationOf(newFieldScope(context.Background())) != nil {
		t.Error("a scope does not answer its operation")
	}
	cancel()
	select {
	case <-ctx.Done():
	default:
		t.Error("a scope is not canceled with its parent")
	}
}

// A field with a resolver takes one allocation for its field context and
// the context carrying it, whatever its field context holds: the field
// context of a field with children (whose Child function closed over the
// execution context), of a scalar (whose Child function closed over its
// error), and of a field with arguments (carried while they are read).
// graphql.WithFieldContext and gqlgen's field context functions took 3, 3
// and 4.
func TestResolveFieldAllocatesOneScope(t *testing.T) {
	oc := &graphql.OperationContext{RecoverFunc: graphql.DefaultRecover}
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
	ctx = graphql.WithOperationContext(ctx, oc)
	ctx = WithOperation(ctx, func() *Loaders { return &Loaders{} })
	parentFC := &graphql.FieldContext{Object: "Query"}
	ctx = graphql.WithFieldContext(ctx, parentFC)
	var ec *executionContext // the field context functions below read nothing of it
	field := func(name string) graphql.CollectedField {
		return graphql.CollectedField{Field: &ast.Field{Alias: name, Name: name}}
	}
	lastDeployment := field("lastDeployment")
	operationOf(ctx).args.Store(lastDeployment.Field, map[string]any{}) // read once per operation

	user := &store.User{ID: 1}
	tests := []struct {
		name    string
		field   graphql.CollectedField
		context func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error)
	}{
		{"object", field("user"), func(ctx context.Context, f graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Deployment_user(ctx, f)
		}},
		{"scalar", field("pendingApprovalCount"), func(ctx context.Context, f graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Deployment_pendingApprovalCount(ctx, f)
		}},
		{"arguments", lastDeployment, func(ctx context.Context, f graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Environment_lastDeployment(ctx, f)
		}},
	}
	for _, tt := range tests {
		var seen *graphql.FieldContext
		resolve := func() {
			resolveField(newFieldScope(ctx), oc, tt.field, tt.context,
				func(context.Context) (any, error) { return user, nil },
				func(ctx context.Context, _ ast.SelectionSet, _ *store.User) graphql.Marshaler {
					seen = graphql.GetFieldContext(ctx)
					return graphql.Null
				},
				true, false)
		}
		resolve()
		if seen == nil || seen.Field.Name != tt.field.Name || seen.Parent != parentFC || seen.Result != user {
			t.Errorf("%s: the marshaler saw field context %+v, want the field's, under its parent's, with the result", tt.name, seen)
		}
		if n := testing.AllocsPerRun(100, resolve); n != 1 {
			t.Errorf("%s: %v allocations, want 1", tt.name, n)
		}
	}

	// A field whose value is an object writes it in the set its scope
	// holds: the object takes no allocation of its own.
	fields, userField := []graphql.CollectedField{field("username"), field("name")}, field("user")
	userContext := func(ctx context.Context, f graphql.CollectedField) (*graphql.FieldContext, error) {
		return ec.fieldContext_Deployment_user(ctx, f)
	}
	resolveUser := func(context.Context) (any, error) { return user, nil }
	writeUser := func(ctx context.Context, _ ast.SelectionSet, _ *store.User) graphql.Marshaler {
		return newFieldSet(ctx, fields)
	}
	if n := testing.AllocsPerRun(100, func() {
		resolveField(newObjectScope(ctx), oc, userField, userContext, resolveUser, writeUser, true, false)
	}); n != 1 {
		t.Errorf("an object field and its object: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		resolveField(newFieldScope(ctx), oc, userField, userContext, resolveUser, writeUser, true, false)
	}); n != 2 {
		t.Errorf("a field and an object written in a set of its own: %v allocations, want 2", n)
	}
}

// A scope's set is taken once: an object written from a struct field of
// the first, under the same scope, gets a set of its own.
func TestFieldSetTakenOncePerScope(t *testing.T) {
	scope := newObjectScope(context.Background())
	fields := []graphql.CollectedField{{Field: &ast.Field{Alias: "a", Name: "a"}}}
	first, second := newFieldSet(scope, fields), newFieldSet(scope, fields)
	if first == second {
		t.Fatal("two objects were written in one set")
	}
	if len(first.Values) != 1 || len(second.Values) != 1 || &first.fields[0] != &fields[0] {
		t.Error("a set is not made for its fields")
	}
	if newFieldSet(newFieldScope(context.Background()), fields) == nil {
		t.Error("a scope without a set gave none")
	}
}
