package graph

//go:generate go run ./generate

import (
	"sync/atomic"

	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

// Resolver answers GraphQL fields from the store. Resolvers stay thin: they
// parse arguments, check access, and load through the request's dataloaders.
type Resolver struct {
	Store *store.Store
	// Metrics, when set, count active subscriptions and dataloader batches.
	Metrics *observe.Metrics

	// streams counts the subscriptions still delivering (see Drain).
	streams atomic.Int64
}

// loaders are fresh dataloaders for one request or one event.
func (r *Resolver) loaders() *Loaders { return NewLoaders(r.Store, r.Metrics.ObserveBatch) }
