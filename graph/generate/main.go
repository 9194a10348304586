// Command generate writes the GraphQL layer's generated code (graph/) from
// schema.graphqls and gqlgen.yml: gqlgen, with three changes to what it
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
//
// Third, gqlgen reads a field's arguments every time it resolves the
// field, so a field of a page's items has its arguments read once per
// item (Deployment.mergeRequests has 17). They depend only on the query
// and its variables: here they are read once per operation (see
// fieldArgs).
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"regexp"

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
	for _, rewrite := range []func(code []byte) ([]byte, error){deferPathsOnlyWhenDeferred, argumentsOncePerOperation} {
		if err := rewriteFile(cfg.Exec.Filename, rewrite); err != nil {
			fmt.Fprintln(os.Stderr, "generate:", err)
			os.Exit(4)
		}
	}
}

func rewriteFile(filename string, rewrite func(code []byte) ([]byte, error)) error {
	code, err := os.ReadFile(filename)
	if err != nil {
		return err
	}
	if code, err = rewrite(code); err != nil {
		return fmt.Errorf("%s: %w", filename, err)
	}
	if code, err = format.Source(code); err != nil {
		return fmt.Errorf("%s after rewriting: %w", filename, err)
	}
	return os.WriteFile(filename, code, 0o644)
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

// deferPathsOnlyWhenDeferred rewrites every deferredGroup; it fails if a
// gqlgen upgrade wrote them differently.
func deferPathsOnlyWhenDeferred(code []byte) ([]byte, error) {
	n, all := bytes.Count(code, deferredGroup), bytes.Count(code, []byte("ec.ProcessDeferredGroup("))
	if n == 0 || n != all {
		return nil, fmt.Errorf("gqlgen no longer writes the deferred group this command rewrites (%d of %d found); update deferredGroup", n, all)
	}
	return bytes.ReplaceAll(code, deferredGroup, deferredGroupWhenDeferred), nil
}

// fieldArgsCall is how gqlgen reads a field's arguments in the field's
// context function.
var fieldArgsCall = regexp.MustCompile(`fc\.Args, err = ec\.(field_\w+_args)\(ctx, field\.ArgumentMap\(ec\.Variables\)\); err != nil \{`)

// argumentsOncePerOperation has every field read its arguments through
// fieldArgs; it fails if a gqlgen upgrade reads them otherwise.
func argumentsOncePerOperation(code []byte) ([]byte, error) {
	n, all := len(fieldArgsCall.FindAllIndex(code, -1)), bytes.Count(code, []byte("field.ArgumentMap("))
	if n == 0 || n != all {
		return nil, fmt.Errorf("gqlgen no longer reads arguments as this command rewrites (%d of %d found); update fieldArgsCall", n, all)
	}
	return fieldArgsCall.ReplaceAll(code, []byte(`fc.Args, err = fieldArgs(ctx, field, func() (map[string]any, error) {
		return ec.$1(ctx, field.ArgumentMap(ec.Variables))
	}); err != nil {`)), nil
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
