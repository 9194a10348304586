package graph

import (
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// operationCost applies operationLimits and then gqlgen's complexity limit,
// and remembers the operations that passed both. Dashboards send the same
// operations with the same variables again and again, and the complexity
// walk builds an argument map for every field it visits: about 7 % of the
// CPU of a deployment's page (q3). What both limits judge is a function of
// the query text, the operation's name and the variables' values alone, so
// an operation with all three equal to one that passed passes again. Only
// passes are kept: every refusal is worked out, and worded, anew.
type operationCost struct {
	limits     operationLimits
	complexity complexityLimit
	passed     *boundedCache[int] // operation key → its complexity
}

// complexityLimit is gqlgen's extension.ComplexityLimit.
type complexityLimit interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
}

// Passed operations kept, and the longest key kept (query text, name and
// variables): a longer one is judged every time it is sent.
const (
	passedOperations  = 1000
	maxPassedKeyBytes = maxCachedQueryBytes + 4<<10
)

func newOperationCost(limits operationLimits) *operationCost {
	return &operationCost{
		limits:     limits,
		complexity: extension.FixedComplexityLimit(limits.MaxComplexity),
		passed:     newBoundedCache(passedOperations, maxPassedKeyBytes, func(key string, _ int) int { return len(key) }),
	}
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*operationCost)(nil)

func (*operationCost) ExtensionName() string { return "OperationCost" }

func (c *operationCost) Validate(schema graphql.ExecutableSchema) error {
	return c.complexity.Validate(schema)
}

func (c *operationCost) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	key, keyed := passKey(opCtx)
	if keyed {
		if complexity, ok := c.passed.Get(ctx, key); ok {
			// Where the complexity limit puts them (under its name), for
			// extension.GetComplexityStats.
			opCtx.Stats.SetExtension(c.complexity.ExtensionName(), &extension.ComplexityStats{
				Complexity: complexity, ComplexityLimit: c.limits.MaxComplexity,
			})
			return nil
		}
	}
	if err := c.limits.check(opCtx.Operation); err != nil {
		return err
	}
	if err := c.complexity.MutateOperationContext(ctx, opCtx); err != nil {
		return err
	}
	if stats, ok := opCtx.Stats.GetExtension(c.complexity.ExtensionName()).(*extension.ComplexityStats); keyed && ok {
		c.passed.Add(ctx, key, stats.Complexity)
	}
	return nil
}

// passKey identifies what the limits judge of a query: its text, its name
// and its variables' values (JSON with sorted keys). Only queries have one:
// a mutation's input differs every time, so judging it costs less than
// keeping it; nor has a query whose variables cannot be written as JSON.
func passKey(opCtx *graphql.OperationContext) (string, bool) {
	if opCtx.Operation == nil || opCtx.Operation.Operation != ast.Query {
		return "", false
	}
	vars, err := json.Marshal(opCtx.Variables)
	if err != nil {
		return "", false
	}
	return opCtx.RawQuery + "\x00" + opCtx.OperationName + "\x00" + string(vars), true
}
