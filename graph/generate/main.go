// Command generate writes the GraphQL layer's generated code (graph/) from
// schema.graphqls and gqlgen.yml: gqlgen, with one change to what it
// writes. gqlgen resolves every resolver field of an object in a goroutine
// of its own; here the fields of one object are resolved one after
// another, and only the items of a list run side by side.
//
// A page of 50 deployments asks for about 300 nested objects. A goroutine
// for each (its start, its stack growing through gqlgen's deep calls, and
// parking it while its loader waits) cost more than the lookups
// themselves. Batching does not need them: the items of a list still run
// side by side, so the dataloaders gather one key from every item, and
// outside lists a lookup is sent at once (see Loader.Load).
package main

import (
	"fmt"
	"os"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
	"github.com/99designs/gqlgen/plugin"
)

func main() {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate: gqlgen.yml:", err)
		os.Exit(2)
	}
	if err := api.Generate(cfg, api.AddPlugin(fieldsInOrder{})); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(3)
	}
}

// fieldsInOrder turns off gqlgen's goroutine per resolver field.
type fieldsInOrder struct{}

var _ plugin.CodeGenerator = fieldsInOrder{}

func (fieldsInOrder) Name() string { return "fields-in-order" }

// GenerateCode runs before gqlgen writes its code from data.
func (fieldsInOrder) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		o.DisableConcurrency = true
	}
	return nil
}
