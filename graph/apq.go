package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
)

// persistedQueryCache keeps the queries of automatic persisted queries by
// their SHA-256 hash, the most recently used first. A query longer than
// maxBytes is not kept: its client keeps sending it in full.
type persistedQueryCache struct {
	lru      *lru.LRU[string]
	maxBytes int
}

var _ graphql.Cache[string] = persistedQueryCache{}

func newPersistedQueryCache(size, maxBytes int) persistedQueryCache {
	return persistedQueryCache{lru: lru.New[string](size), maxBytes: maxBytes}
}

func (c persistedQueryCache) Get(ctx context.Context, hash string) (string, bool) {
	return c.lru.Get(ctx, hash)
}

func (c persistedQueryCache) Add(ctx context.Context, hash, query string) {
	if len(query) <= c.maxBytes {
		c.lru.Add(ctx, hash, query)
	}
}
