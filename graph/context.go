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
	loadersKey
	argsKey
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

// WithLoaders attaches one request's dataloaders, made by newLoaders on
// their first use: many requests (most mutations, every refused one) use
// none, and making two dozen loaders is a measurable share of a small
// request.
func WithLoaders(ctx context.Context, newLoaders func() *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey, &requestLoaders{make: newLoaders})
}

type requestLoaders struct {
	once    sync.Once
	make    func() *Loaders
	loaders *Loaders
}

// loadersFrom returns the request's dataloaders.
// IMPORTANT: loaders cache per request; never share them across requests,
// or one caller would see what another was allowed to read.
func loadersFrom(ctx context.Context) *Loaders {
	l, ok := ctx.Value(loadersKey).(*requestLoaders)
	if !ok {
		panic("graph: request context has no dataloaders (WithLoaders missing)")
	}
	l.once.Do(func() { l.loaders = l.make() })
	return l.loaders
}

// WithFieldArgs gives an operation its memo of field arguments (see
// fieldArgs).
func WithFieldArgs(ctx context.Context) context.Context {
	return context.WithValue(ctx, argsKey, &sync.Map{})
}

// fieldArgs returns a field's arguments, read by read once per operation:
// they depend only on the query and its variables, and a field of a page's
// items would otherwise have them read again for every item. The generated
// code calls it (see graph/generate). A read that fails is not kept, so
// that each item reports its own error.
func fieldArgs(ctx context.Context, field graphql.CollectedField, read func() (map[string]any, error)) (map[string]any, error) {
	memo, _ := ctx.Value(argsKey).(*sync.Map)
	if memo == nil || field.Field == nil {
		return read()
	}
	if args, ok := memo.Load(field.Field); ok {
		return args.(map[string]any), nil
	}
	args, err := read()
	if err == nil {
		memo.Store(field.Field, args)
	}
	return args, err
}
