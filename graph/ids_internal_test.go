package graph

import (
	"context"
	"strings"
	"testing"
)

// FuzzGlobalID checks global ID parsing on any input: it never panics, a
// parsed ID names a type and a positive number, and only the form that
// globalID writes is accepted (so one object has one global ID).
func FuzzGlobalID(f *testing.F) {
	for _, s := range []string{
		"gid://deploygraph/Deployment/42", "gid://deploygraph/Project/1", "gid://deploygraph/Deployment/0",
		"gid://deploygraph/Deployment/-1", "gid://deploygraph//1", "gid://deploygraph/Deployment/",
		"gid://deploygraph/Deployment/9223372036854775808", "gid://gitlab/Deployment/42", "42", "",
		"gid://deploygraph/Deployment/+7", "gid://deploygraph/A/B/1", "gid://deploygraph/Deployment/007",
		"gid://deploygraph/Deployment/4 2", "gid://deploygraph/Deployment/٤٢",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, id, err := parseGlobalID(s)
		if err != nil {
			return
		}
		if typ == "" || strings.Contains(typ, "/") || id <= 0 {
			t.Fatalf("parseGlobalID(%q) = %q, %d: want a type without '/' and a positive number", s, typ, id)
		}
		if again := globalID(typ, id); again != s {
			t.Fatalf("parseGlobalID(%q) = %q, %d, which globalID writes as %q", s, typ, id, again)
		}
	})
}

// FuzzGlobalIDRoundTrip checks that every type name without '/' and every
// positive number survive formatting and parsing.
func FuzzGlobalIDRoundTrip(f *testing.F) {
	f.Add("Deployment", int64(1))
	f.Add("MergeRequest", int64(9223372036854775807))
	f.Add("é", int64(10))
	f.Fuzz(func(t *testing.T, typ string, id int64) {
		if typ == "" || strings.Contains(typ, "/") || id <= 0 {
			return
		}
		got, n, err := parseGlobalID(globalID(typ, id))
		if err != nil || got != typ || n != id {
			t.Fatalf("parseGlobalID(globalID(%q, %d)) = %q, %d, %v", typ, id, got, n, err)
		}
		if n, err := parseID(globalID(typ, id), typ); err != nil || n != id {
			t.Fatalf("parseID(globalID(%q, %d)) = %d, %v", typ, id, n, err)
		}
	})
}

// FuzzReference checks references to projects (a number, a global ID or a
// path) on any input: no panic, a number or global ID is positive, and a
// path reaches the lookup trimmed of spaces and slashes.
func FuzzReference(f *testing.F) {
	for _, s := range []string{
		"1", "acme/app", " /acme/app/ ", "gid://deploygraph/Project/3", "gid://deploygraph/Deployment/3",
		"gid://", "0", "99999999999999999999", "", "  ", "/", "ünïcödé/päth",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		var looked string
		id, err := refID(context.Background(), ref, typeProject, func(path string) (int64, error) {
			looked = path
			return 7, nil
		})
		if err != nil {
			return
		}
		if id <= 0 {
			t.Fatalf("refID(%q) = %d: want a positive id", ref, id)
		}
		if looked != "" && (looked != strings.Trim(strings.TrimSpace(ref), "/") || strings.HasPrefix(ref, "gid://")) {
			t.Fatalf("refID(%q) looked up the path %q", ref, looked)
		}
	})
}
