package graph

import (
	"context"
	"runtime"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

// DefaultMaxRunningQueries is how many queries run at once unless
// Options say otherwise: twice the processors Go runs on.
func DefaultMaxRunningQueries() int { return 2 * runtime.GOMAXPROCS(0) }

// queryTurns lets at most cap(turns) queries run at once; the others wait
// their turn, in the order they came (a channel's senders wait in order).
//
// A query waits for little but the processors (its store reads come from
// the mapped file, in memory once read), so running more of them at once
// than the processors can hold makes none of them done sooner: it only
// interleaves them. Interleaved,
// 32 pages of 50 deployments hold 1,600 items in flight, with their
// goroutines, stacks and batches; taking turns, a few pages do, whose
// data stays in the processors' caches. At 32 clients, pages of 50
// deployments were served 1.2 times as fast, at two thirds of the p99 and
// of the memory (README, Performance).
//
// Mutations and subscriptions do not take turns: a mutation waits for its
// commit, which the writes waiting with it share, and a subscription waits
// for events.
type queryTurns struct {
	turns   chan struct{}
	metrics *observe.Metrics
}

func newQueryTurns(n int, m *observe.Metrics) *queryTurns {
	return &queryTurns{turns: make(chan struct{}, n), metrics: m}
}

func (*queryTurns) ExtensionName() string                   { return "QueryTurns" }
func (*queryTurns) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse runs a query in its turn. One whose request ends while
// it waits (its deadline, or its client gone) does not run.
func (q *queryTurns) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !isQuery(ctx) {
		return next(ctx)
	}
	select {
	case q.turns <- struct{}{}:
	default:
		if !q.wait(ctx) {
			return &graphql.Response{Errors: gqlerror.List{errTookTooLong()}}
		}
	}
	defer func() { <-q.turns }()
	return next(ctx)
}

// isQuery reports whether ctx's operation is a query: one that only
// reads.
func isQuery(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return false
	}
	op := graphql.GetOperationContext(ctx).Operation
	return op != nil && op.Operation == ast.Query
}

// querySnapshot has a query's reads share one read transaction
// (store.WithSnapshot): they answer from one committed state, and a page
// of deployments with its nested fields begins one transaction, not one
// per batch. Mutations read in transactions of their own, so that a
// field reads what the fields before it wrote, and so do subscriptions,
// which live for as long as their client listens.
type querySnapshot struct{ store *store.Store }

func (querySnapshot) ExtensionName() string                   { return "QuerySnapshot" }
func (querySnapshot) Validate(graphql.ExecutableSchema) error { return nil }

func (q querySnapshot) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !isQuery(ctx) {
		return next(ctx)
	}
	ctx, end := q.store.WithSnapshot(ctx)
	defer end()
	return next(ctx)
}

// wait waits for a turn, and reports whether it got one before ctx ended.
func (q *queryTurns) wait(ctx context.Context) bool {
	defer q.metrics.QueryWaitStarted()()
	select {
	case q.turns <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
