package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/deploygraph/deploygraph/store"
)

type ctxKey int

const (
	viewerKey ctxKey = iota
	operationKey
)

// WithViewer records who is asking.
func WithViewer(ctx context.Context, v store.Viewer) context.Context {
	return context.WithValue(ctx, viewerKey, v)
}

// ViewerFrom returns who is asking; anonymous when nobody was recorded.
func ViewerFrom(ctx context.Context) store.Viewer {
	v, _ := ctx.Value(viewerKey).(store.Viewer)
	return v
}

// WithOperation gives one operation (an HTTP request, or one event of a
// subscription) its own state: its dataloaders, made by newLoaders on their
// first use (many requests, most mutations and every refused one, use
// none, and making two dozen loaders is a measurable share of a small
// request), and its memo of field arguments (see fieldArgs).
func WithOperation(ctx context.Context, newLoaders func() *Loaders) context.Context {
	return context.WithValue(ctx, operationKey, &operation{newLoaders: newLoaders})
}

type operation struct {
	once       sync.Once
	newLoaders func() *Loaders
	loaders    *Loaders
	args       sync.Map // *ast.Field → its arguments
}

// loadersFrom returns the operation's dataloaders.
// IMPORTANT: loaders cache per operation; never share them across
// requests, or one caller would see what another was allowed to read.
func loadersFrom(ctx context.Context) *Loaders {
	op, ok := ctx.Value(operationKey).(*operation)
	if !ok {
		panic("graph: request context has no operation state (WithOperation missing)")
	}
	op.once.Do(func() { op.loaders = op.newLoaders() })
	return op.loaders
}

// fieldArgs returns a field's arguments, read by read once per operation:
// they depend only on the query and its variables, and a field of a page's
// items would otherwise have them read again for every item. The generated
// code calls it (see graph/generate). A read that fails is not kept, so
// that each item reports its own error.
func fieldArgs(ctx context.Context, field graphql.CollectedField, read func() (map[string]any, error)) (map[string]any, error) {
	op, _ := ctx.Value(operationKey).(*operation)
	if op == nil || field.Field == nil {
		return read()
	}
	if args, ok := op.args.Load(field.Field); ok {
		return args.(map[string]any), nil
	}
	args, err := read()
	if err == nil {
		op.args.Store(field.Field, args)
	}
	return args, err
}
