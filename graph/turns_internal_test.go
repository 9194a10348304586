package graph

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// Queries run at most so many at once; one whose request ends while it
// waits does not run; mutations and subscriptions never wait; a turn given
// back goes to the next query.
func TestQueryTurns(t *testing.T) {
	q := newQueryTurns(2, nil)
	opCtx := func(op ast.Operation) context.Context {
		return graphql.WithOperationContext(context.Background(),
			&graphql.OperationContext{Operation: &ast.OperationDefinition{Operation: op}})
	}
	// runs reports whether an operation ran within a few seconds.
	runs := func(ctx context.Context) bool {
		ran := make(chan struct{})
		go q.InterceptResponse(ctx, func(context.Context) *graphql.Response { close(ran); return &graphql.Response{} })
		select {
		case <-ran:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}

	// Two queries hold both turns.
	started, release := make(chan struct{}), make(chan struct{})
	var holders sync.WaitGroup
	for range 2 {
		holders.Go(func() {
			q.InterceptResponse(opCtx(ast.Query), func(context.Context) *graphql.Response {
				started <- struct{}{}
				<-release
				return &graphql.Response{}
			})
		})
	}
	<-started
	<-started

	// A third waits, and gives up when its request ends.
	ctx, cancel := context.WithCancel(opCtx(ast.Query))
	cancel()
	resp := q.InterceptResponse(ctx, func(context.Context) *graphql.Response {
		t.Error("a third query ran while two held both turns")
		return &graphql.Response{}
	})
	if len(resp.Errors) != 1 || resp.Errors[0].Message != "The request took too long" {
		t.Errorf("a query whose request ended while it waited got %v, want the request timeout error", resp.Errors)
	}

	for _, op := range []ast.Operation{ast.Mutation, ast.Subscription} {
		if !runs(opCtx(op)) {
			t.Errorf("a %s waited for a turn", op)
		}
	}
	if !runs(context.Background()) {
		t.Error("a response outside an operation waited for a turn")
	}

	close(release)
	holders.Wait()
	for range 3 { // more than the turns: each was given back
		if !runs(opCtx(ast.Query)) {
			t.Fatal("a query did not run once the turns were free")
		}
	}
}
