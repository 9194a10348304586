package graph

//go:generate go run github.com/99designs/gqlgen generate

import "github.com/deploygraph/deploygraph/store"

// Resolver answers GraphQL fields from the store. Resolvers stay thin: they
// parse arguments, check access, and load through the request's dataloaders.
type Resolver struct {
	Store *store.Store
}
