package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// countedComplexity stands in for gqlgen's complexity limit: an operation
// costs its variable n (1 without one), and each judgement is counted.
type countedComplexity struct {
	limit, judged int
}

func (*countedComplexity) ExtensionName() string                   { return "ComplexityLimit" }
func (*countedComplexity) Validate(graphql.ExecutableSchema) error { return nil }

func (c *countedComplexity) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	c.judged++
	n := 1
	if v, ok := opCtx.Variables["n"].(int); ok {
		n = v
	}
	opCtx.Stats.SetExtension(c.ExtensionName(), &extension.ComplexityStats{Complexity: n, ComplexityLimit: c.limit})
	if n > c.limit {
		return gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", n, c.limit)
	}
	return nil
}

// An operation that passed both limits passes again without being judged
// while its query text, name and variables are the same; anything else is
// judged, and refusals are never kept.
func TestOperationCostKeepsOnlyPasses(t *testing.T) {
	const (
		page   = `query Page($n: Int) { project(id: "p") { deployments(first: $n) { nodes { id } } } }`
		nested = `query { a { b { c { d { e } } } } }`
		write  = `mutation Create($n: Int) { createDeployment(input: {}) { deployment { id } } }`
	)
	type send struct {
		query, name string
		vars        map[string]any
		refused     bool
		judged      bool // by the complexity limit, not from what was kept
	}
	tests := []struct {
		name  string
		sends []send
	}{
		{"the same operation again", []send{
			{query: page, name: "Page", vars: map[string]any{"n": 24}, judged: true},
			{query: page, name: "Page", vars: map[string]any{"n": 24}},
		}},
		{"other variables", []send{
			{query: page, name: "Page", vars: map[string]any{"n": 24}, judged: true},
			{query: page, name: "Page", vars: map[string]any{"n": 25}, refused: true, judged: true},
			{query: page, name: "Page", vars: map[string]any{"n": 25}, refused: true, judged: true},
			{query: page, name: "Page", vars: map[string]any{"n": 23}, judged: true},
		}},
		{"another query text", []send{
			{query: page, name: "Page", vars: map[string]any{"n": 5}, judged: true},
			{query: page + " ", name: "Page", vars: map[string]any{"n": 5}, judged: true},
		}},
		{"too deep, before the complexity", []send{
			{query: nested, refused: true},
			{query: nested, refused: true},
		}},
		{"mutations", []send{
			{query: write, name: "Create", vars: map[string]any{"n": 3}, judged: true},
			{query: write, name: "Create", vars: map[string]any{"n": 3}, judged: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted := &countedComplexity{limit: 24}
			cost := newOperationCost(operationLimits{MaxDepth: 4, MaxAliases: 5, MaxComplexity: counted.limit})
			cost.complexity = counted
			for i, s := range tt.sends {
				doc, err := parser.ParseQuery(&ast.Source{Input: s.query})
				if err != nil {
					t.Fatal(err)
				}
				opCtx := &graphql.OperationContext{
					RawQuery: s.query, OperationName: s.name, Variables: s.vars,
					Doc: doc, Operation: doc.Operations.ForName(s.name),
				}
				before := counted.judged
				gotErr := cost.MutateOperationContext(context.Background(), opCtx)
				if (gotErr != nil) != s.refused {
					t.Fatalf("send %d: error %v, want refused %v", i, gotErr, s.refused)
				}
				if judged := counted.judged > before; judged != s.judged {
					t.Fatalf("send %d: judged by the complexity limit %v, want %v", i, judged, s.judged)
				}
				// As gqlgen's own readers find them.
				stats := extension.GetComplexityStats(graphql.WithOperationContext(context.Background(), opCtx))
				if !s.refused && (stats == nil || stats.ComplexityLimit != counted.limit) {
					t.Fatalf("send %d: complexity stats %+v", i, stats)
				}
				if want, ok := s.vars["n"].(int); ok && !s.refused && stats.Complexity != want {
					t.Fatalf("send %d: complexity %d, want %d", i, stats.Complexity, want)
				}
			}
		})
	}
}
