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
	if err := rewriteFile(cfg.Exec.Filename); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(4)
	}
}

// A rewrite replaces every match of find in the generated code. Each
// occurrence of every must be a match: if a gqlgen upgrade writes the code
// otherwise, the generation fails instead of leaving some unchanged.
type rewrite struct {
	find        *regexp.Regexp
	every       string
	replacement string
}

var rewrites = []rewrite{{
	// An object's marshaler builds the response path for its @defer
	// fragments, which ProcessDeferredGroup drops when there are none.
	find: regexp.MustCompile(regexp.QuoteMeta(`
	ec.ProcessDeferredGroup(graphql.DeferredGroup{
		Defers:   deferLabelToView,
		Path:     graphql.GetPath(ctx),
		FieldSet: deferredFieldSet,
		Context:  ctx,
	})
`)),
	every: "ec.ProcessDeferredGroup(",
	replacement: `
	if len(deferLabelToView) > 0 {
		ec.ProcessDeferredGroup(graphql.DeferredGroup{
			Defers:   deferLabelToView,
			Path:     graphql.GetPath(ctx),
			FieldSet: deferredFieldSet,
			Context:  ctx,
		})
	}
`,
}, {
	// A field's context function reads its arguments; fieldArgs reads them
	// once per operation.
	find:  regexp.MustCompile(`fc\.Args, err = ec\.(field_\w+_args)\(ctx, field\.ArgumentMap\(ec\.Variables\)\); err != nil \{`),
	every: "field.ArgumentMap(",
	replacement: `fc.Args, err = fieldArgs(ctx, field, func() (map[string]any, error) {
		return ec.$1(ctx, field.ArgumentMap(ec.Variables))
	}); err != nil {`,
}}

// rewriteFile applies every rewrite to the generated file.
func rewriteFile(filename string) error {
	code, err := os.ReadFile(filename)
	if err != nil {
		return err
	}
	for _, r := range rewrites {
		n, all := len(r.find.FindAllIndex(code, -1)), bytes.Count(code, []byte(r.every))
		if n == 0 || n != all {
			return fmt.Errorf("%s: gqlgen no longer writes %q as this command rewrites it (%d of %d found); update the rewrite", filename, r.every, n, all)
		}
		code = r.find.ReplaceAll(code, []byte(r.replacement))
	}
	if code, err = format.Source(code); err != nil {
		return fmt.Errorf("%s after rewriting: %w", filename, err)
	}
	return os.WriteFile(filename, code, 0o644)
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
