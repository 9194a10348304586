package graph

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/store"
)

// collectedFields answers what graphql.CollectFields answers, for every
// selection set and type of an operation (an interface's selection set
// under each type it resolves to, fields kept or dropped by @include and
// @skip with the operation's variables, fragments spread and inline). The
// fields of a selection without directives are kept with the document, for
// the next operation on it; the others only for their operation.
func TestCollectedFieldsAreWhatGqlgenCollects(t *testing.T) {
	const query = `query($full: Boolean!, $brief: Boolean!) {
  nodes(ids: ["gid://deploygraph/Deployment/1", "gid://deploygraph/Environment/1"]) {
    __typename
    id
    ... on Deployment { iid status @include(if: $full) ref @skip(if: $brief) }
    ... on Environment { name tier @include(if: $full) }
    ...named
  }
  again: nodes(ids: ["gid://deploygraph/Deployment/1"]) { id ... on Deployment { iid } ...named }
}
fragment named on Deployment { sha iid }`
	doc, errs := gqlparser.LoadQuery(parsedSchema, query)
	if errs != nil {
		t.Fatal(errs)
	}
	withDirectives := doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet
	without := doc.Operations[0].SelectionSet[1].(*ast.Field).SelectionSet
	types := [][]string{deploymentImplementors, environmentImplementors}
	var first []string
	for i, vars := range []map[string]any{
		{"full": true, "brief": false},
		{"full": false, "brief": true},
	} {
		t.Run(fmt.Sprint(vars), func(t *testing.T) {
			op := &graphql.OperationContext{RawQuery: query, Variables: vars, Doc: doc}
			var c collectedFields // as each operation's execution context has
			for round := range 2 {
				for _, sel := range []ast.SelectionSet{withDirectives, without} {
					for _, implementors := range types {
						got := c.of(op, sel, implementors)
						want := graphql.CollectFields(op, sel, implementors)
						if !reflect.DeepEqual(names(got), names(want)) {
							t.Errorf("round %d, %v: collected %v, want %v", round, implementors, names(got), names(want))
						}
					}
				}
			}
			if own, document := c.own.kept.size(), fieldsOfDocument(doc).kept.size(); own != 2 || document != 2 {
				t.Errorf("kept %d selections for the operation and %d for the document, want 2 and 2", own, document)
			}
			got := names(c.of(op, withDirectives, deploymentImplementors))
			if i == 0 {
				first = got
			} else if reflect.DeepEqual(got, first) {
				t.Errorf("both variable sets collected %v: the test shows nothing", got)
			}
		})
	}
}

// What is kept for a document goes when the document does.
func TestDocumentFieldsGoWithTheirDocument(t *testing.T) {
	kept := func() (weak.Pointer[ast.QueryDocument], string) {
		doc, errs := gqlparser.LoadQuery(parsedSchema, `{ nodes(ids: []) { id } }`)
		if errs != nil {
			t.Fatal(errs)
		}
		op := &graphql.OperationContext{Doc: doc}
		var c collectedFields
		c.of(op, doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet, deploymentImplementors)
		if _, ok := documentFields.Load(weak.Make(doc)); !ok {
			return weak.Pointer[ast.QueryDocument]{}, "nothing was kept for the document"
		}
		return weak.Make(doc), ""
	}
	key, problem := kept()
	if problem != "" {
		t.Fatal(problem)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, ok := documentFields.Load(key); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the fields of a collected document are still kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func names(fields []graphql.CollectedField) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.Alias+":"+f.Name)
	}
	return out
}

// A fieldSet is written exactly as gqlgen's graphql.FieldSet is: into the
// response's buffer and into any other writer, with a response name given
// twice written once (its first value), and with more fields than it holds
// in place.
func TestFieldSetWritesWhatGqlgenWrites(t *testing.T) {
	field := func(alias string) graphql.CollectedField {
		return graphql.CollectedField{Field: &ast.Field{Alias: alias, Name: alias}}
	}
	for _, tc := range []struct {
		name    string
		aliases []string
	}{
		{"Empty", nil},
		{"One", []string{"id"}},
		{"Several", []string{"__typename", "id", "iid", "status"}},
		{"NameTwice", []string{"id", "name", "id", "ref", "name"}},
		{"MoreThanItHolds", strings.Fields("a b c d e f g h i j k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields []graphql.CollectedField
			for _, a := range tc.aliases {
				fields = append(fields, field(a))
			}
			ours, theirs := newFieldSet(context.Background(), fields), graphql.NewFieldSet(fields)
			for i := range fields {
				v := graphql.MarshalString(fmt.Sprintf("value %d <&>", i))
				ours.Values[i], theirs.Values[i] = v, v
			}
			var want bytes.Buffer
			theirs.MarshalGQL(&want)
			var got bytes.Buffer
			got.WriteString("[")
			ours.MarshalGQL(&got)
			if got.String() != "["+want.String() {
				t.Errorf("into a buffer wrote\n%s\nwant\n[%s", got.String(), want.String())
			}
			var other strings.Builder
			ours.MarshalGQL(&other)
			if other.String() != want.String() {
				t.Errorf("into another writer wrote\n%s\nwant\n%s", other.String(), want.String())
			}
		})
	}
}

// resolveField answers as graphql.ResolveField does without field
// middleware: the same value or null, the same errors at the same paths,
// for a resolver that answers, fails, answers nothing, panics, answers a
// marshaler or a value of another type, in fields that may and may not be
// null; with a field context made in its scope (scoped), as the generated
// code makes it, or apart.
func TestResolveFieldIsGqlgens(t *testing.T) {
	type answer struct {
		value any
		err   error
		panic bool
	}
	for _, tc := range []struct {
		name   string
		answer answer
		// nonNull is the field's type; elementNonNull a FieldContext's
		// NonNull, which gqlgen sets for the items of a list of non-null.
		nonNull, elementNonNull bool
	}{
		{"Value", answer{value: "main"}, true, false},
		{"Error", answer{err: fmt.Errorf("not allowed")}, false, false},
		{"ErrorInNonNull", answer{err: fmt.Errorf("not allowed")}, true, false},
		{"ErrorInNonNullElement", answer{err: fmt.Errorf("not allowed")}, false, true},
		{"NilInNullable", answer{}, false, false},
		{"NilInNonNull", answer{}, true, false},
		{"NilInNonNullElement", answer{}, false, true},
		{"NilInBoth", answer{}, true, true},
		{"Panic", answer{panic: true}, false, false},
		{"PanicInNonNull", answer{panic: true}, true, false},
		{"Marshaler", answer{value: graphql.MarshalString("as is")}, true, false},
		{"OtherType", answer{value: 42}, false, false},
	} {
		for _, scoped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/scoped=%v", tc.name, scoped), func(t *testing.T) {
				run := func(resolve func(ctx context.Context, oc *graphql.OperationContext, field graphql.CollectedField,
					fieldContext func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error),
					resolver func(context.Context) (any, error),
					marshal func(context.Context, ast.SelectionSet, string) graphql.Marshaler) graphql.Marshaler) (string, gqlerror.List) {
					oc := &graphql.OperationContext{
						RecoverFunc: func(ctx context.Context, err any) error { return fmt.Errorf("internal system error: %v", err) },
						// What gqlgen's executor sets without field middleware.
						ResolverMiddleware: func(ctx context.Context, next graphql.Resolver) (any, error) { return next(ctx) },
					}
					ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, oc.RecoverFunc)
					ctx = graphql.WithOperationContext(ctx, oc)
					ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query", Field: graphql.CollectedField{Field: &ast.Field{Alias: "deployment", Name: "deployment"}}})
					field := graphql.CollectedField{Field: &ast.Field{Alias: "ref", Name: "ref"}}
					m := resolve(ctx, oc, field,
						func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
							fc := new(graphql.FieldContext)
							if scoped {
								fc = newFieldContext(ctx) // as the generated field context functions do
							}
							*fc = graphql.FieldContext{Object: "Deployment", Field: field, NonNull: tc.elementNonNull}
							return fc, nil
						},
						func(ctx context.Context) (any, error) {
							if tc.answer.panic {
								panic("boom")
							}
							return tc.answer.value, tc.answer.err
						},
						func(ctx context.Context, _ ast.SelectionSet, v string) graphql.Marshaler {
							return graphql.MarshalString(v)
						})
					var out bytes.Buffer
					switch m {
					case graphql.Null:
						out.WriteString("Null")
					case graphql.RequiredNull:
						out.WriteString("RequiredNull")
					default:
						m.MarshalGQL(&out)
					}
					return out.String(), graphql.GetErrors(ctx)
				}
				got, gotErrs := run(func(ctx context.Context, oc *graphql.OperationContext, field graphql.CollectedField,
					fieldContext func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error),
					resolver func(context.Context) (any, error),
					marshal func(context.Context, ast.SelectionSet, string) graphql.Marshaler) graphql.Marshaler {
					return resolveField(newFieldScope(ctx), oc, field, fieldContext, resolver, marshal, true, tc.nonNull)
				})
				want, wantErrs := run(func(ctx context.Context, oc *graphql.OperationContext, field graphql.CollectedField,
					fieldContext func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error),
					resolver func(context.Context) (any, error),
					marshal func(context.Context, ast.SelectionSet, string) graphql.Marshaler) graphql.Marshaler {
					return graphql.ResolveField(ctx, oc, field, fieldContext, resolver, nil, marshal, true, tc.nonNull)
				})
				if got != want || gotErrs.Error() != wantErrs.Error() || fmt.Sprint(pathsOf(gotErrs)) != fmt.Sprint(pathsOf(wantErrs)) {
					t.Errorf("got %s with errors %v at %v\nwant %s with errors %v at %v", got, gotErrs, pathsOf(gotErrs), want, wantErrs, pathsOf(wantErrs))
				}
			})
		}
	}
}

func pathsOf(errs gqlerror.List) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Path.String())
	}
	return out
}

// An object's id is written as the global ID that model.MarshalGlobalID
// writes in that type's field context, and without allocating.
func TestGlobalIDsWrittenWithoutTheirFieldContext(t *testing.T) {
	var ec *executionContext // the id fields read nothing of it
	d, p := &store.Deployment{ID: 42}, &store.Pipeline{ID: 7}
	tests := []struct {
		typeName string
		id       int64
		write    func() graphql.Marshaler
	}{
		{"Deployment", 42, func() graphql.Marshaler { return ec._Deployment_id(context.Background(), graphql.CollectedField{}, d) }},
		{"Pipeline", 7, func() graphql.Marshaler { return ec._Pipeline_id(context.Background(), graphql.CollectedField{}, p) }},
	}
	for _, tt := range tests {
		var got, want bytes.Buffer
		tt.write().MarshalGQL(&got)
		ctx := graphql.WithFieldContext(context.Background(), &graphql.FieldContext{Object: tt.typeName})
		if err := model.MarshalGlobalID(tt.id).MarshalGQLContext(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: wrote %s, want %s", tt.typeName, got.String(), want.String())
		}
		if n := testing.AllocsPerRun(100, func() { tt.write() }); n != 0 {
			t.Errorf("%s: %v allocations for its id, want none", tt.typeName, n)
		}
	}
}

// A query's response is written into a buffer as large as the last
// response to the same document, and an eighth more; the first, and one
// without a document, from nothing.
func TestResponseBufferFitsTheLastResponse(t *testing.T) {
	doc := &ast.QueryDocument{}
	op := &graphql.OperationContext{Doc: doc}
	var first collectedFields
	if got := first.responseBuffer(op).Cap(); got != 0 {
		t.Fatalf("the first response's buffer holds %d bytes, want none", got)
	}
	first.wrote(op, 8000)
	var next collectedFields // the next operation on the same document
	if got := next.responseBuffer(op).Cap(); got < 9000 {
		t.Errorf("the next response's buffer holds %d bytes, want at least 9000", got)
	}
	var none collectedFields
	none.wrote(&graphql.OperationContext{}, 8000)
	if got := none.responseBuffer(&graphql.OperationContext{}).Cap(); got != 0 {
		t.Errorf("a response without a document: a buffer of %d bytes, want none", got)
	}
	runtime.KeepAlive(doc)
}

// subfields answers what collecting each field's selection answers; a
// selection without directives is collected once per document, and one
// with directives for each operation, by its variables.
func TestSubfieldsKeptForTheirDocument(t *testing.T) {
	const query = `query($full: Boolean!) {
  plain: project(id: "p") { deployments { nodes { iid status } } }
  directed: project(id: "p") { deployments { nodes { iid status @include(if: $full) } } }
}`
	doc, errs := gqlparser.LoadQuery(parsedSchema, query)
	if errs != nil {
		t.Fatal(errs)
	}
	connectionOf := func(i int) []graphql.CollectedField {
		project := doc.Operations[0].SelectionSet[i].(*ast.Field)
		deployments := project.SelectionSet[0].(*ast.Field)
		return []graphql.CollectedField{{Field: deployments, Selections: deployments.SelectionSet}}
	}
	names := func(m map[string][]graphql.CollectedField) []string {
		return slices.Sorted(maps.Keys(m))
	}
	nodesOf := func(vars map[string]any, i int) map[string][]graphql.CollectedField {
		ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{RawQuery: query, Variables: vars, Doc: doc})
		return subfields(ctx, subfields(ctx, connectionOf(i), "DeploymentConnection")["nodes"], "Deployment")
	}
	full, brief := map[string]any{"full": true}, map[string]any{"full": false}

	first, again := nodesOf(full, 0), nodesOf(brief, 0)
	if got := names(first); !slices.Equal(got, []string{"iid", "status"}) {
		t.Fatalf("plain: %v", got)
	}
	if reflect.ValueOf(first).Pointer() != reflect.ValueOf(again).Pointer() {
		t.Error("a selection without directives was collected again for the next operation")
	}
	if got := names(nodesOf(full, 1)); !slices.Equal(got, []string{"iid", "status"}) {
		t.Errorf("directed, full: %v", got)
	}
	if got := names(nodesOf(brief, 1)); !slices.Equal(got, []string{"iid"}) {
		t.Errorf("directed, brief: %v (kept from the operation before?)", got)
	}
}
