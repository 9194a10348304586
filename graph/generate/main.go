// Command generate writes the GraphQL layer's generated code (graph/) from
// schema.graphqls and gqlgen.yml: gqlgen, with ten changes to what it
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
// Second, every object that gqlgen writes prepares for the @defer
// fragments under it: a field set, a map, its response path, and an atomic
// add to a counter the whole response shares. Resolved in order, no field
// is deferred (a fragment's fields are resolved with the rest of the
// object's), so here none of that is written.
//
// Third, gqlgen reads a field's arguments every time it resolves the
// field, so a field of a page's items has its arguments read once per
// item (Deployment.mergeRequests has 17). They depend only on the query
// and its variables: here they are read once per operation (see
// fieldArgs).
//
// Fourth, gqlgen resolves a field that only reads a struct field of its
// object the way it resolves any other: a field context, a context value,
// a panic guard, the field middleware and its result boxed in an any, about
// ten allocations for what is a copy. A page of 50 deployments has some
// 700 such fields. Here a field that reads a struct field and is written
// by a marshaler that never fails (strings, booleans, numbers, times, enum
// values) is written directly. What that skips is unused: the handler has
// no field middleware (NewHandler refuses one), reading a field of an
// object that is there cannot panic, and these marshalers never report an
// error that would need the field's path. They are then written through a
// pointer to the field (model.StringAt and its kin), or for enum values
// their names boxed once (model.NameOf), rather than a copy boxed per
// field, which takes an allocation each. The
// fields that still get a field context share one error value per type for
// "has no child fields", rather than making it anew each time.
//
// Fifth, the items of a list run on a pool of goroutines that outlive the
// request (see marshalItems) rather than on a new goroutine each, and an
// empty list is written as one value made once (emptyList).
//
// Sixth, every object written finds the fields of its selection in a
// cache of the operation, which gqlgen keys by a hash it allocates anew
// each time; here the operation's execution context finds them by the
// selection's address, kept with the parsed document (which repeated
// queries share) when no directive makes them depend on the variables
// (see collectedFields). The object is then filled in
// and written as a fieldSet: gqlgen's field set without what @defer and
// fields resolved side by side need, one allocation instead of two and no
// map of the names written.
//
// Seventh, a field with a resolver is resolved by resolveField, which is
// gqlgen's without the field middleware (NewHandler refuses any, as for
// the fourth change): gqlgen wraps the resolver in a closure over it and
// the context, which escape, three allocations per field.
//
// Eighth, an object's id, a global ID that names the object's type, is
// written through a pointer to the field as a number of a type that knows
// the type's name (globalIDOf<Type>), rather than by a marshaler that
// reads the name from the field's context, which takes a field context, a
// context value, a closure and its wrapper for every id: a page of 50
// deployments writes 100 ids.
//
// Ninth, a query's response is written into a buffer as large as the last
// response to the same document (collectedFields.responseBuffer), not
// into one grown from nothing.
//
// Tenth, a field with a resolver has its field context and the context
// that carries it made in one allocation (fieldScope), which its field
// context function fills in: gqlgen's takes three (the field context, the
// closure of its Child function, and a context value), four for a field
// with arguments. A Child function (for field middleware, which the
// handler has none of) makes what it needs when called rather than
// closing over it. A field whose value is an object is resolved in an
// objectScope, which also holds the set the object is written in.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"strings"

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
// otherwise, the generation fails instead of leaving some unchanged. With
// only, a rewrite replaces the matches only accepts (given the code and
// the match's submatches), and fails if it accepts none.
type rewrite struct {
	find        *regexp.Regexp
	every       string
	only        func(code []byte, submatches []string) bool
	replacement string
}

var rewrites = []rewrite{{
	// An object's marshaler makes a field set and a map for the fields of
	// its @defer fragments, adds their number to a counter every object of
	// the response shares, and hands them to ProcessDeferredGroup. With
	// fieldsInOrder no field is deferred (rewriteFile checks), so all of
	// that is for nothing: two allocations per object, and an atomic add
	// that the items of a list contend for.
	find:  regexp.MustCompile(`\tdeferredFieldSet := graphql\.NewFieldSet\(nil\)\n\tdeferLabelToView := make\(map\[string\]\*graphql\.FieldSetView\)\n`),
	every: "deferredFieldSet := ",
}, {
	// …and the count and the hand-over at the marshaler's end.
	find: regexp.MustCompile(regexp.QuoteMeta(`
	atomic.AddInt32(&ec.Deferred, int32(min(len(deferLabelToView), math.MaxInt32)))

	ec.ProcessDeferredGroup(graphql.DeferredGroup{
		Defers:   deferLabelToView,
		Path:     graphql.GetPath(ctx),
		FieldSet: deferredFieldSet,
		Context:  ctx,
	})
`)),
	every: "ec.ProcessDeferredGroup(",
}, {
	// A field's context function reads its arguments; fieldArgs reads them
	// once per operation.
	find:  regexp.MustCompile(`fc\.Args, err = ec\.(field_\w+_args)\(ctx, field\.ArgumentMap\(ec\.Variables\)\); err != nil \{`),
	every: "field.ArgumentMap(",
	replacement: `fc.Args, err = fieldArgs(ctx, field, func() (map[string]any, error) {
		return ec.$1(ctx, field.ArgumentMap(ec.Variables))
	}); err != nil {`,
}, {
	// A field that reads a struct field, written by a marshaler that never
	// fails, is written directly. gqlgen's marshaler names have letters
	// outside ASCII (marshalNTime2timeᚐTime), which \w does not match.
	find: structFieldRead(`(_\w+)`, `(\*?[\w.]+)`, `[^)]+`, `(marshal[\pL\pN_]+)`),
	only: func(code []byte, m []string) bool { return neverFails(code, m[4]) },
	replacement: `func (ec *executionContext) $1(ctx context.Context, field graphql.CollectedField, obj $2) (ret graphql.Marshaler) {
	return ec.$4(ctx, field.Selections, obj.$3)
}`,
}, {
	// A global ID is written with its object's type name, which gqlgen's
	// marshaler (model.MarshalGlobalID) reads from the field's context: a
	// field context, a context value, a closure and its wrapper for every
	// id written, 100 of them in a page of 50 deployments. The type is
	// known here: each type's id is written through a pointer to the field
	// as a number of a type that writes it as that type's global ID
	// (declareGlobalIDs), which takes no allocation.
	find:  structFieldRead(`(_(\w+?)_\w+)`, `(\*[\w.]+)`, `int64`, `marshalNID2int64`),
	every: "return ec.marshalNID2int64(ctx, selections, v)",
	replacement: `func (ec *executionContext) $1(ctx context.Context, field graphql.CollectedField, obj $3) (ret graphql.Marshaler) {
	return (*globalIDOf$2)(&obj.$4)
}`,
}, {
	// A query's response is written into a buffer as large as the last
	// response to the same document (see collectedFields.responseBuffer).
	find: regexp.MustCompile(`\t\t\tvar buf bytes\.Buffer
			data\.MarshalGQL\(&buf\)
			response\.Data = buf\.Bytes\(\)
`),
	every: "response.Data = buf.Bytes()",
	replacement: `			buf := ec.fields.responseBuffer(opCtx)
			data.MarshalGQL(buf)
			response.Data = buf.Bytes()
			ec.fields.wrote(opCtx, len(response.Data))
`,
}, {
	// An object's marshaler finds the fields of its selection in a cache
	// gqlgen keys by a hash it allocates anew each time; the operation's
	// execution context keeps them by address (see collectedFields).
	find:        regexp.MustCompile(`graphql\.CollectFields\(ec\.OperationContext, sel, (\w+Implementors)\)`),
	every:       "graphql.CollectFields(",
	replacement: `ec.fields.of(ec.OperationContext, sel, $1)`,
}, {
	find:  regexp.MustCompile(`(type executionContext struct \{\n\t\*graphql\.ExecutionContextState\[ResolverRoot, DirectiveRoot, ComplexityRoot\]\n)\}`),
	every: "type executionContext struct",
	replacement: `$1	fields collectedFields
}`,
}, {
	// A field with a resolver is resolved by resolveField: gqlgen's, less
	// the field middleware (NewHandler refuses any), whose closure over
	// the resolver and the context takes three allocations per field.
	find: regexp.MustCompile(`\treturn graphql\.ResolveField\(
		ctx,
		ec\.OperationContext,
		field,
(		func\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{
(?:			[^\n]*\n)+		\},
		func\(ctx context\.Context\) \(any, error\) \{
(?:			[^\n]*\n)+		\},
)		nil,
`),
	every: "graphql.ResolveField(",
	replacement: `	return resolveField(
		newFieldScope(ctx),
		ec.OperationContext,
		field,
$1`,
}, {
	// An object is written as a fieldSet: one allocation, no map.
	find:        regexp.MustCompile(`out := graphql\.NewFieldSet\(fields\)`),
	every:       "graphql.NewFieldSet(",
	replacement: `out := newFieldSet(ctx, fields)`,
}, {
	// A field whose value is an object (not a list) is resolved in a scope
	// that holds the set its object is written in (newObjectScope).
	find: regexp.MustCompile(`\treturn resolveField\(
		newFieldScope\(ctx\),
(` + fieldContextArgs + `(?:			[^\n]*\n)+		\},
		func\(ctx context\.Context, selections ast\.SelectionSet, v [^)]+\) graphql\.Marshaler \{
			return ec\.(marshal[\pL\pN_]+)\(ctx, selections, v\)
)`),
	only:        func(code []byte, m []string) bool { return writesObject(code, m[2]) },
	replacement: "\treturn resolveField(\n\t\tnewObjectScope(ctx),\n$1",
}, {
	// The items of a list run on goroutines that keep their grown stacks.
	find:        regexp.MustCompile(regexp.QuoteMeta(`graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, `)),
	every:       "graphql.MarshalSliceConcurrently(",
	replacement: `marshalItems(ctx, len(v), `,
}, {
	// An empty list is written as one value made once: its items' closure
	// and the list boxed as a marshaler took two allocations, for each of
	// a page's deployments without approvals or merge requests.
	find:  regexp.MustCompile(`\tret := marshalItems\(ctx, len\(v\), `),
	every: "marshalItems(ctx, len(v), ",
	replacement: `	if len(v) == 0 {
		return emptyList
	}
	ret := marshalItems(ctx, len(v), `,
}, {
	// A scalar field's context is given the error its Child function
	// returns, made anew each time; one value per type is enough.
	find:        regexp.MustCompile(`errors\.New\("field of type (\w+) does not have child fields"\)`),
	every:       "does not have child fields",
	replacement: `errNoChildFields$1`,
}, {
	// A field's context is made in the fieldScope its resolveField hands
	// to the field's context function as the context (newFieldContext):
	// the field context and the context carrying it, one allocation for
	// what took three. The functions that ignored their context now use it.
	find:        regexp.MustCompile(`(func \(ec \*executionContext\) fieldContext_\w+\()_( context\.Context, field graphql\.CollectedField\) \(fc \*graphql\.FieldContext, err error\) \{)`),
	every:       "(_ context.Context, field graphql.CollectedField) (fc *graphql.FieldContext, err error)",
	replacement: `${1}ctx$2`,
}, {
	find:  regexp.MustCompile(`\tfc = &graphql\.FieldContext\{\n`),
	every: "fc = &graphql.FieldContext{",
	replacement: `	fc = newFieldContext(ctx)
	*fc = graphql.FieldContext{
`,
}, {
	find:        regexp.MustCompile(`return graphql\.NewScalarFieldContext\(("\w+"), field, (true|false), (true|false), errNoChildFields(\w+)\)`),
	every:       "graphql.NewScalarFieldContext(",
	replacement: `return scalarFieldContext(ctx, $1, field, $2, $3, noChildFields$4)`,
}, {
	// A field whose context reads its arguments carries it while it does;
	// the scope carries it, rather than a context value over the scope.
	find:        regexp.MustCompile(`\tctx = graphql\.WithFieldContext\(ctx, fc\)\n`),
	every:       "graphql.WithFieldContext(ctx, fc)",
	replacement: "\tctx = withFieldContext(ctx, fc)\n",
}, {
	// A field context's Child function (for field middleware, which the
	// handler has none of) closed over the execution context: a closure
	// allocated with every field context. It makes one from its context
	// when called instead, and so is allocated once.
	find:        regexp.MustCompile(`\t\t\treturn ec\.(childFields_\w+)\(ctx, field\)\n`),
	every:       "return ec.childFields_",
	replacement: "\t\t\treturn argumentReader(ctx).$1(ctx, field)\n",
}, {
	// Exec builds, for every operation, a map from each input type to its
	// unmarshaler, some thirty allocations, and puts it in the context for
	// graphql.UnmarshalInputFromContext, which nothing here calls (a test
	// in graph keeps it so).
	find:        regexp.MustCompile(`(?s)\tinputUnmarshalMap := graphql\.BuildUnmarshalerMap\(\n.*?\n\t\)\n`),
	every:       "graphql.BuildUnmarshalerMap(",
	replacement: ``,
}, {
	find:        regexp.MustCompile(`\n\t+ctx = graphql\.WithUnmarshalerMap\(ctx, inputUnmarshalMap\)`),
	every:       "graphql.WithUnmarshalerMap(",
	replacement: ``,
}, {
	// Complexity runs for every field of every operation, and made an
	// execution context (two allocations) each time; only the fields whose
	// complexity reads their arguments need one.
	find:        regexp.MustCompile(`\tec := newExecutionContext\(nil, e, nil\)\n\t_ = ec\n`),
	every:       "newExecutionContext(nil, e, nil)",
	replacement: ``,
}, {
	find:        regexp.MustCompile(`args, err := ec\.(field_\w+_args)\(ctx, rawArgs\)`),
	every:       "(ctx, rawArgs)",
	replacement: `args, err := newExecutionContext(nil, e, nil).$1(ctx, rawArgs)`,
}}

// fieldContextArgs matches the arguments of a generated call that resolves
// a field after its context: the operation, the field, the function that
// makes its field context, and the first line of its resolver.
const fieldContextArgs = `		ec\.OperationContext,
		field,
		func\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{
			return ec\.fieldContext_\w+\(ctx, field\)
		\},
		func\(ctx context\.Context\) \(any, error\) \{
`

// structFieldRead matches gqlgen's resolution of a field that reads a
// struct field of its object, given the patterns of the function's name,
// the object's type, the value's type and its marshaler's name; the
// struct field's name is the group that follows those of name and obj.
func structFieldRead(name, obj, value, marshaler string) *regexp.Regexp {
	return regexp.MustCompile(`func \(ec \*executionContext\) ` + name + `\(ctx context\.Context, field graphql\.CollectedField, obj ` + obj + `\) \(ret graphql\.Marshaler\) \{
	return graphql\.ResolveField\(
		ctx,
` + fieldContextArgs + `			return obj\.(\w+), nil
		\},
		nil,
		func\(ctx context\.Context, selections ast\.SelectionSet, v ` + value + `\) graphql\.Marshaler \{
			return ec\.` + marshaler + `\(ctx, selections, v\)
		\},
		true,
		(?:true|false),
	\)
\}`)
}

// declareNoChildFields declares what the rewrites name noChildFields<Type>:
// the Child function of a field context of a scalar type, which returns
// the error errNoChildFields<Type>.
func declareNoChildFields(code []byte) []byte {
	var decls bytes.Buffer
	var funcs []byte
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`noChildFields(\w+)`).FindAllSubmatch(code, -1) {
		if name := string(m[1]); !seen[name] {
			seen[name] = true
			fmt.Fprintf(&decls, "\terrNoChildFields%s = errors.New(%q)\n", name, "field of type "+name+" does not have child fields")
			funcs = fmt.Appendf(funcs, "\nfunc noChildFields%[1]s(context.Context, graphql.CollectedField) (*graphql.FieldContext, error) {\n\treturn nil, errNoChildFields%[1]s\n}\n", name)
		}
	}
	if decls.Len() == 0 {
		return code
	}
	return append(appendVars(code, decls.String()), funcs...)
}

// declareGlobalIDs declares the types the rewrites name globalIDOf<Type>:
// a number written as a global ID of Type.
func declareGlobalIDs(code []byte) []byte {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(\*globalIDOf(\w+)\)`).FindAllSubmatch(code, -1) {
		name := string(m[1])
		if seen[name] {
			continue
		}
		seen[name] = true
		code = fmt.Appendf(code, "\ntype globalIDOf%[1]s int64\n\nfunc (id *globalIDOf%[1]s) MarshalGQL(w io.Writer) { model.WriteGlobalID(w, %[1]q, int64(*id)) }\n", name)
	}
	if len(seen) == 0 || bytes.Contains(code, []byte("\t\"io\"\n")) {
		return code
	}
	return bytes.Replace(code, []byte("import (\n"), []byte("import (\n\t\"io\"\n"), 1) // format.Source sorts it
}

// appendVars appends a var block of decls (one declaration a line).
func appendVars(code []byte, decls string) []byte {
	return append(code, "\nvar (\n"+decls+")\n"...)
}

// dropUnusedImport removes the import of pkg when the code no longer uses
// it, which would not compile.
func dropUnusedImport(code []byte, pkg string) []byte {
	if bytes.Contains(code, []byte(pkg+".")) {
		return code
	}
	return bytes.Replace(code, []byte("\t\""+pkg+"\"\n"), nil, 1)
}

// A field written directly, and the two shapes of marshaler neverFails
// accepts, by value and by pointer.
var (
	directField = regexp.MustCompile(`(func \(ec \*executionContext\) \w+\(ctx context\.Context, field graphql\.CollectedField, obj (\*?)[\w.]+\) \(ret graphql\.Marshaler\) \{\n\treturn )ec\.(marshal[\pL\pN_]+)\(ctx, field\.Selections, obj\.(\w+)\)\n\}`)
	byValue     = regexp.MustCompile(`\n\tres := (` + infallible + `)\(v\)\n`)
	byPointer   = regexp.MustCompile(`\n\tres := (` + infallible + `)\(\*v\)\n`)
	enumByValue = regexp.MustCompile(`\n\tres := graphql\.MarshalString\((marshalN[\pL\pN_]+)\[v\]\)\n`)
)

// pointAt names the marshaler of a field by pointer for each marshaler
// neverFails accepts.
var pointAt = map[string]string{
	"graphql.MarshalString":  "model.StringAt",
	"graphql.MarshalBoolean": "model.BoolAt",
	"graphql.MarshalInt":     "model.IntAt",
	"graphql.MarshalInt64":   "model.Int64At",
	"graphql.MarshalFloat":   "model.FloatAt",
	"model.MarshalTime":      "model.TimeAt",
}

// pointToFields has the fields of objects held by pointer that are written
// directly by value (strings, booleans, numbers, times) written through a
// pointer to the field instead, and enum values through their names boxed
// once (model.Names).
func pointToFields(code []byte) ([]byte, error) {
	n := 0
	var failed error
	var decls bytes.Buffer
	seen := map[string]bool{}
	out := directField.ReplaceAllFunc(code, func(m []byte) []byte {
		sub := directField.FindSubmatch(m)
		if len(sub[2]) == 0 {
			return m // an object held by value: a pointer into it would move it to the heap
		}
		body := marshalerBody(code, string(sub[3]))
		if body == nil {
			failed = fmt.Errorf("no marshaler %s", sub[3])
			return m
		}
		if enum := enumByValue.FindSubmatch(body); enum != nil {
			names := string(enum[1]) + "Marshalers"
			if !seen[names] {
				seen[names] = true
				fmt.Fprintf(&decls, "\t%s = model.Names(%s)\n", names, enum[1])
			}
			n++
			return []byte(string(sub[1]) + "model.NameOf(" + names + ", obj." + string(sub[4]) + ")\n}")
		}
		ref := "&obj."
		marshal := byValue.FindSubmatch(body)
		if marshal == nil {
			ref, marshal = "obj.", byPointer.FindSubmatch(body)
		}
		if marshal == nil {
			failed = fmt.Errorf("marshaler %s is not one pointToFields knows", sub[3])
			return m
		}
		n++
		return []byte(string(sub[1]) + pointAt[string(marshal[1])] + "(" + ref + string(sub[4]) + ")\n}")
	})
	if failed != nil {
		return nil, failed
	}
	if n == 0 || len(seen) == 0 {
		return nil, fmt.Errorf("no field written directly is written through a pointer or a boxed enum name; update pointToFields")
	}
	return appendVars(out, decls.String()), nil
}

// neverFails reports whether the marshaler named is one that writes a value
// without a context and cannot fail: a string, boolean, number, time or
// enum value, or null for a nil pointer to one.
func neverFails(code []byte, marshaler string) bool {
	body := marshalerBody(code, marshaler)
	return body != nil && (plainValue.Match(body) || plainPointer.Match(body))
}

// writesObject reports whether the marshaler named writes one object, not
// a list or a scalar: its body ends by handing the value to the object's
// marshaler (ec._Type).
func writesObject(code []byte, marshaler string) bool {
	body := marshalerBody(code, marshaler)
	return body != nil && objectMarshal.Match(body)
}

var objectMarshal = regexp.MustCompile(`\n\treturn ec\._\w+\(ctx, sel, &?v\)$`)

// marshalerBody is the body of the generated marshaler named, nil when the
// code has none.
func marshalerBody(code []byte, marshaler string) []byte {
	m := regexp.MustCompile(`(?s)\nfunc \(ec \*executionContext\) ` + regexp.QuoteMeta(marshaler) + `\(ctx context\.Context, sel ast\.SelectionSet, v [^)]+\) graphql\.Marshaler \{\n(.*?)\n\}\n`).FindSubmatch(code)
	if m == nil {
		return nil
	}
	return m[1]
}

// The bodies of the marshalers neverFails accepts. graphql.MarshalString,
// MarshalBoolean, MarshalInt, MarshalInt64, MarshalFloat and
// model.MarshalTime never return graphql.Null, so the branch that reports
// a null (the only use of ctx) is never taken.
var (
	infallible   = `(?:graphql\.Marshal(?:String|Boolean|Int|Int64|Float)|model\.MarshalTime)`
	plainValue   = regexp.MustCompile(`^\t_ = sel\n\tres := ` + infallible + `\((?:v|marshalN[\pL\pN_]+\[v\])\)\n\tif res == graphql\.Null \{\n\t\tif !graphql\.HasFieldError\(ctx, graphql\.GetFieldContext\(ctx\)\) \{\n\t\t\tgraphql\.AddErrorf\(ctx, "the requested element is null which the schema does not allow"\)\n\t\t\}\n\t\}\n\treturn res$`)
	plainPointer = regexp.MustCompile(`^\tif v == nil \{\n\t\treturn graphql\.Null\n\t\}\n\t_ = sel\n\t_ = ctx\n\tres := ` + infallible + `\(\*v\)\n\treturn res$`)
)

// rewriteFile applies every rewrite to the generated file.
func rewriteFile(filename string) error {
	code, err := os.ReadFile(filename)
	if err != nil {
		return err
	}
	if bytes.Contains(code, []byte(".IsDeferred()")) {
		return fmt.Errorf("%s: gqlgen now defers fields, whose field sets the rewrites remove; update them", filename)
	}
	for _, r := range rewrites {
		if r.only != nil {
			if code, err = rewriteSome(code, r); err != nil {
				return fmt.Errorf("%s: %w", filename, err)
			}
			continue
		}
		n, all := len(r.find.FindAllIndex(code, -1)), bytes.Count(code, []byte(r.every))
		if n == 0 || n != all {
			return fmt.Errorf("%s: gqlgen no longer writes %q as this command rewrites it (%d of %d found); update the rewrite", filename, r.every, n, all)
		}
		code = r.find.ReplaceAll(code, []byte(r.replacement))
	}
	if code, err = pointToFields(code); err != nil {
		return fmt.Errorf("%s: %w", filename, err)
	}
	code = declareNoChildFields(code)
	code = declareGlobalIDs(code)
	// The deferred fields' counter was the generated code's only use of math.
	code = dropUnusedImport(code, "math")
	if code, err = format.Source(code); err != nil {
		return fmt.Errorf("%s after rewriting: %w", filename, err)
	}
	return os.WriteFile(filename, code, 0o644)
}

// rewriteSome replaces the matches of r that r.only accepts.
func rewriteSome(code []byte, r rewrite) ([]byte, error) {
	var out []byte
	last, n := 0, 0
	for _, loc := range r.find.FindAllSubmatchIndex(code, -1) {
		m := make([]string, len(loc)/2)
		for i := range m {
			if loc[2*i] >= 0 {
				m[i] = string(code[loc[2*i]:loc[2*i+1]])
			}
		}
		if !r.only(code, m) {
			continue
		}
		out = append(out, code[last:loc[0]]...)
		out = r.find.Expand(out, []byte(r.replacement), code, loc)
		last, n = loc[1], n+1
	}
	if n == 0 {
		return nil, fmt.Errorf("gqlgen no longer writes what %q matches; update the rewrite", strings.SplitN(r.find.String(), "\n", 2)[0])
	}
	return append(out, code[last:]...), nil
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
