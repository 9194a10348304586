package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The marshalers a plain field may be written by directly: those that
// never fail, so never need the field's context.
func TestNeverFails(t *testing.T) {
	code := `
func (ec *executionContext) marshalNString2string(ctx context.Context, sel ast.SelectionSet, v string) graphql.Marshaler {
	_ = sel
	res := graphql.MarshalString(v)
	if res == graphql.Null {
		if !graphql.HasFieldError(ctx, graphql.GetFieldContext(ctx)) {
			graphql.AddErrorf(ctx, "the requested element is null which the schema does not allow")
		}
	}
	return res
}

func (ec *executionContext) marshalNDeploymentStatus2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatus(ctx context.Context, sel ast.SelectionSet, v store.DeploymentStatus) graphql.Marshaler {
	_ = sel
	res := graphql.MarshalString(marshalNDeploymentStatus2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatus[v])
	if res == graphql.Null {
		if !graphql.HasFieldError(ctx, graphql.GetFieldContext(ctx)) {
			graphql.AddErrorf(ctx, "the requested element is null which the schema does not allow")
		}
	}
	return res
}

func (ec *executionContext) marshalOTime2ᚖtimeᚐTime(ctx context.Context, sel ast.SelectionSet, v *time.Time) graphql.Marshaler {
	if v == nil {
		return graphql.Null
	}
	_ = sel
	_ = ctx
	res := model.MarshalTime(*v)
	return res
}

func (ec *executionContext) marshalNID2int64(ctx context.Context, sel ast.SelectionSet, v int64) graphql.Marshaler {
	_ = sel
	res := model.MarshalGlobalID(v)
	if res == graphql.Null {
		if !graphql.HasFieldError(ctx, graphql.GetFieldContext(ctx)) {
			graphql.AddErrorf(ctx, "the requested element is null which the schema does not allow")
		}
	}
	return graphql.WrapContextMarshaler(ctx, res)
}

func (ec *executionContext) marshalNUser2ᚖstoreᚐUser(ctx context.Context, sel ast.SelectionSet, v *store.User) graphql.Marshaler {
	if v == nil {
		if !graphql.HasFieldError(ctx, graphql.GetFieldContext(ctx)) {
			graphql.AddErrorf(ctx, "the requested element is null which the schema does not allow")
		}
		return graphql.Null
	}
	return ec._User(ctx, sel, v)
}

func (ec *executionContext) marshalNCustom2string(ctx context.Context, sel ast.SelectionSet, v string) graphql.Marshaler {
	_ = sel
	res := model.MarshalCustom(v)
	if res == graphql.Null {
		if !graphql.HasFieldError(ctx, graphql.GetFieldContext(ctx)) {
			graphql.AddErrorf(ctx, "the requested element is null which the schema does not allow")
		}
	}
	return res
}
`
	for _, tc := range []struct {
		marshaler string
		want      bool
	}{
		{"marshalNString2string", true},
		{"marshalNDeploymentStatus2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatus", true},
		{"marshalOTime2ᚖtimeᚐTime", true},
		{"marshalNID2int64", false},         // needs the field's context for its type
		{"marshalNUser2ᚖstoreᚐUser", false}, // an object, which may be null
		{"marshalNCustom2string", false},    // a marshaler not known never to fail
		{"marshalNMissing2string", false},   // not in the code
	} {
		if got := neverFails([]byte(code), tc.marshaler); got != tc.want {
			t.Errorf("neverFails(%s) = %v, want %v", tc.marshaler, got, tc.want)
		}
	}
}

// A rewrite with only replaces the matches it accepts, and fails when it
// accepts none (gqlgen no longer writes what it looks for).
func TestRewriteSome(t *testing.T) {
	r := rewrite{
		find:        regexp.MustCompile(`keep\((\w+)\)`),
		only:        func(_ []byte, m []string) bool { return strings.HasPrefix(m[1], "a") },
		replacement: `kept($1)`,
	}
	got, err := rewriteSome([]byte("keep(ab) keep(b) keep(ac)"), r)
	if err != nil || string(got) != "kept(ab) keep(b) kept(ac)" {
		t.Errorf("rewriteSome = %q, %v", got, err)
	}
	if _, err := rewriteSome([]byte("keep(b)"), r); err == nil {
		t.Error("rewriteSome accepted no match without an error")
	}
}

// Every field of the generated code that only reads a struct field and is
// written by a marshaler that never fails is written directly. gqlgen
// names many marshalers with letters outside ASCII (marshalNTime2timeᚐTime),
// so this looks for what the rewrite left with patterns of its own.
func TestPlainFieldsAreWrittenDirectly(t *testing.T) {
	code, err := os.ReadFile("../generated.go")
	if err != nil {
		t.Fatal(err)
	}
	resolved := regexp.MustCompile(`(?s)func \(ec \*executionContext\) (_\S+)\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n\treturn graphql\.ResolveField\(.*?\n\}\n`)
	readsField := regexp.MustCompile(`\n\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn obj\.[^.(\s]+, nil\n`)
	marshaler := regexp.MustCompile(`return ec\.(marshal[^(\s]+)\(ctx, selections, v\)`)
	for _, m := range resolved.FindAllSubmatch(code, -1) {
		name := marshaler.FindSubmatch(m[0])
		if readsField.Match(m[0]) && name != nil && neverFails(code, string(name[1])) {
			t.Errorf("%s reads a struct field through ResolveField; its marshaler %s never fails", m[1], name[1])
		}
	}
	// Times, enum values and nullable strings are among them: q2 alone
	// reads a status, a time and a tier this way: through a pointer to the
	// field, and enum values through their names boxed once.
	for f, want := range map[string]string{
		"_Deployment_createdAt":       "model.TimeAt(&obj.CreatedAt)",
		"_Deployment_finishedAt":      "model.TimeAt(obj.FinishedAt)",
		"_Deployment_iid":             "model.Int64At(&obj.IID)",
		"_DeploymentApproval_comment": "model.StringAt(obj.Comment)",
		"_Deployment_status":          "model.NameOf(marshalNDeploymentStatus2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatusMarshalers, obj.Status)",
		"_Environment_tier":           "model.NameOf(marshalNEnvironmentTier2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐEnvironmentTierMarshalers, obj.Tier)",
	} {
		if !regexp.MustCompile(`func \(ec \*executionContext\) ` + f + `\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n\treturn ` + regexp.QuoteMeta(want) + `\n\}`).Match(code) {
			t.Errorf("%s is not written directly by %s", f, want)
		}
	}
}
