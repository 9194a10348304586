// Command generate writes the GraphQL layer's generated code (graph/) from
// schema.graphqls and gqlgen.yml: gqlgen, with two changes to what it
// writes.
//
// First, gqlgen resolves every resolver field of an object in a goroutine
// of its own; here the fields of one object are resolved one after
// another, and only the items of a list run side by side.
//
// A page of 50 deployments asks for about 300 nested objects. A goroutine
// for each (its start, its stack growing through gqlgen's deep calls, and
// parking it while its loader waits) cost more than the lookups
// themselves. Batching does not need them: the items of a list still run
// side by side, so the dataloaders gather one key from every item, and
// outside lists a lookup is sent at once (see Loader.Load).
//
// Second, every object that gqlgen writes computes its response path for
// the @defer fragments under it, which it drops when there are none (it
// nearly always is): a slice built for every object of a page. Here the
// path is only computed when there are some.
package main

import (
	"bytes"
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
	if err := deferPathsOnlyWhenDeferred(cfg.Exec.Filename); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(4)
	}
}

// deferredGroup is what gqlgen writes at the end of every object's
// marshaler; ProcessDeferredGroup does nothing when Defers is empty, but
// its argument, the path, is built first.
var (
	deferredGroup = []byte(`
	ec.ProcessDeferredGroup(graphql.DeferredGroup{
		Defers:   deferLabelToView,
		Path:     graphql.GetPath(ctx),
		FieldSet: deferredFieldSet,
		Context:  ctx,
	})
`)
	deferredGroupWhenDeferred = []byte(`
	if len(deferLabelToView) > 0 {
		ec.ProcessDeferredGroup(graphql.DeferredGroup{
			Defers:   deferLabelToView,
			Path:     graphql.GetPath(ctx),
			FieldSet: deferredFieldSet,
			Context:  ctx,
		})
	}
`)
)

// deferPathsOnlyWhenDeferred rewrites every deferredGroup of the generated
// file; it fails if a gqlgen upgrade wrote them differently.
func deferPathsOnlyWhenDeferred(filename string) error {
	code, err := os.ReadFile(filename)
	if err != nil {
		return err
	}
	n := bytes.Count(code, deferredGroup)
	if n == 0 || n != bytes.Count(code, []byte("ec.ProcessDeferredGroup(")) {
		return fmt.Errorf("%s: gqlgen no longer writes the deferred group this command rewrites (%d of %d found); update deferredGroup",
			filename, n, bytes.Count(code, []byte("ec.ProcessDeferredGroup(")))
	}
	return os.WriteFile(filename, bytes.ReplaceAll(code, deferredGroup, deferredGroupWhenDeferred), 0o644)
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
