package graph

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"

	"github.com/deploygraph/deploygraph/store"
)

type ctxKey int

const (
	viewerKey ctxKey = iota
	operationKey
	listItemKey
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
	op := &operation{newLoaders: newLoaders}
	op.busy.Store(1) // the goroutine that runs it
	return context.WithValue(ctx, operationKey, op)
}

type operation struct {
	once       sync.Once
	newLoaders func() *Loaders
	loaders    atomic.Pointer[Loaders]
	args       sync.Map // *ast.Field → its arguments
	// busy counts the operation's goroutines that are resolving fields:
	// the one that runs it and the items of its lists, less those waiting
	// for a loader's batch or for the items of a list (see pause).
	busy atomic.Int64
}

// operationOf returns ctx's operation, or nil outside one.
func operationOf(ctx context.Context) *operation {
	op, _ := ctx.Value(operationKey).(*operation)
	return op
}

// pause notes that one of the operation's goroutines stops resolving: it
// waits for a batch or for the items of a list, or it is done. When none
// is left resolving, no lookup can join the batches being gathered, so
// they are sent now rather than at the next quiet moment (BatchQuiet):
// the level of a list is sent as soon as its last item waits.
func (op *operation) pause() {
	if op == nil {
		return
	}
	if op.busy.Add(-1) == 0 {
		if l := op.loaders.Load(); l != nil {
			l.quiet.flush()
		}
	}
}

// resume notes that n of the operation's goroutines resolve fields again
// or begin to: counted before they run, by whoever wakes or starts them.
func (op *operation) resume(n int) {
	if op != nil && n != 0 {
		op.busy.Add(int64(n))
	}
}

// loadersFrom returns the operation's dataloaders.
// IMPORTANT: loaders cache per operation; never share them across
// requests, or one caller would see what another was allowed to read.
func loadersFrom(ctx context.Context) *Loaders {
	op, ok := ctx.Value(operationKey).(*operation)
	if !ok {
		panic("graph: request context has no operation state (WithOperation missing)")
	}
	op.once.Do(func() {
		l := op.newLoaders()
		l.quiet.op = op
		op.loaders.Store(l)
	})
	return op.loaders.Load()
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
