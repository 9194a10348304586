package graph

import (
	"context"
	"sync"

	"github.com/deploygraph/deploygraph/store"
)

type ctxKey int

const (
	viewerKey ctxKey = iota
	loadersKey
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
