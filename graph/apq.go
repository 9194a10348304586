package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
)

// What the server keeps of the queries it is sent. Dashboards send the same
// few queries again and again: parsing and validating them is a good part
// of a small request's cost, so the validated documents of recent queries
// are kept; automatic persisted queries keep query texts by their hash.
// Both caches hold a fixed number of entries and refuse large ones, so
// that distinct large queries cannot fill the memory: a client whose query
// is not kept keeps sending it in full.
const (
	cachedQueries          = 1000
	maxCachedQueryBytes    = 16 << 10
	persistedQueries       = 1000
	maxPersistedQueryBytes = 32 << 10
)

var (
	_ graphql.Cache[*ast.QueryDocument] = (*boundedCache[*ast.QueryDocument])(nil)
	_ graphql.Cache[string]             = (*boundedCache[string])(nil)
)

// boundedCache is an LRU of a fixed number of entries that refuses an
// entry whose size is over maxBytes.
type boundedCache[T any] struct {
	lru      *lru.LRU[T]
	maxBytes int
	size     func(key string, value T) int
}

func newBoundedCache[T any](entries, maxBytes int, size func(key string, value T) int) *boundedCache[T] {
	return &boundedCache[T]{lru: lru.New[T](entries), maxBytes: maxBytes, size: size}
}

func (c *boundedCache[T]) Get(ctx context.Context, key string) (T, bool) {
	return c.lru.Get(ctx, key)
}

func (c *boundedCache[T]) Add(ctx context.Context, key string, value T) {
	if c.size(key, value) <= c.maxBytes {
		c.lru.Add(ctx, key, value)
	}
}
