package main

import (
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

func (ec *executionContext) marshalNDeploymentStatus2store(ctx context.Context, sel ast.SelectionSet, v store.DeploymentStatus) graphql.Marshaler {
	_ = sel
	res := graphql.MarshalString(marshalNDeploymentStatus2store[v])
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
		{"marshalNDeploymentStatus2store", true},
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
