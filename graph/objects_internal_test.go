package graph

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectedFields answers what graphql.CollectFields answers, for every
// selection set and type of an operation (an interface's selection set
// under each type it resolves to, fields kept or dropped by @include and
// @skip with the operation's variables, fragments spread and inline), and
// asks gqlgen once per selection set and type.
func TestCollectedFieldsAreWhatGqlgenCollects(t *testing.T) {
	const query = `query($full: Boolean!, $brief: Boolean!) {
  nodes(ids: ["gid://deploygraph/Deployment/1", "gid://deploygraph/Environment/1"]) {
    __typename
    id
    ... on Deployment { iid status @include(if: $full) ref @skip(if: $brief) }
    ... on Environment { name tier @include(if: $full) }
    ...named
  }
}
fragment named on Deployment { sha iid }`
	doc, errs := gqlparser.LoadQuery(parsedSchema, query)
	if errs != nil {
		t.Fatal(errs)
	}
	nodes := doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet
	for _, vars := range []map[string]any{
		{"full": true, "brief": false},
		{"full": false, "brief": true},
	} {
		t.Run(fmt.Sprint(vars), func(t *testing.T) {
			op := &graphql.OperationContext{RawQuery: query, Variables: vars, Doc: doc}
			var c collectedFields
			for round := range 2 {
				for _, implementors := range [][]string{deploymentImplementors, environmentImplementors} {
					got := c.of(op, nodes, implementors)
					want := graphql.CollectFields(op, nodes, implementors)
					if !reflect.DeepEqual(names(got), names(want)) {
						t.Errorf("round %d, %v: collected %v, want %v", round, implementors, names(got), names(want))
					}
				}
			}
			if len(c.kept) != 2 {
				t.Errorf("kept %d selection sets, want 2 (one per type)", len(c.kept))
			}
		})
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
			ours, theirs := newFieldSet(fields), graphql.NewFieldSet(fields)
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
