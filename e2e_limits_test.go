package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deepQuery selects fields nested depth levels deep: project, environment,
// project, … and id at the bottom. With viaFragment, the bottom half is
// spelled in a fragment, which must count all the same.
func deepQuery(depth int, viaFragment bool) string {
	fields := make([]string, depth-1)
	for i := range fields {
		if i%2 == 0 {
			fields[i] = `project(id: "root/project")`
			if i > 0 {
				fields[i] = "project"
			}
		} else {
			fields[i] = `environment(name: "production")`
		}
	}
	var open, close strings.Builder
	cut := len(fields) / 2
	for i, f := range fields {
		if viaFragment && i == cut {
			typ := "Environment" // the type of fields[i-1]
			if i%2 == 1 {
				typ = "Project"
			}
			fragment := "fragment Bottom on " + typ + " { " + nested(fields[cut:]) + " }"
			return "{ " + open.String() + "...Bottom" + close.String() + " }\n" + fragment
		}
		open.WriteString(f + " { ")
		close.WriteString(" }")
	}
	return "{ " + open.String() + "id" + close.String() + " }"
}

func nested(fields []string) string {
	if len(fields) == 0 {
		return "id"
	}
	return fields[0] + " { " + nested(fields[1:]) + " }"
}

// aliasQuery asks for the current user's name under n aliases.
func aliasQuery(n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "u%d: currentUser { username } ", i)
	}
	b.WriteString("}")
	return b.String()
}

// Ensure that every limit of SPEC 8 refuses with its code and HTTP status,
// and that a request just within each limit runs.
func TestE2ELimits(t *testing.T) {
	t.Parallel()
	s := startDemoServer(t)
	// Exponential fragments: every fragment spreads the next one twice, so
	// the operation expands to 2^40 fields.
	var fragments strings.Builder
	for i := range 40 {
		fmt.Fprintf(&fragments, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fragments.WriteString("fragment F40 on Query { __typename }")

	cases := []struct {
		name, query string
		status      int
		code        string // "" for success
	}{
		{"DepthAtTheLimit", deepQuery(15, false), http.StatusOK, ""},
		{"DepthOverTheLimit", deepQuery(16, false), http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"DepthAtTheLimitThroughAFragment", deepQuery(15, true), http.StatusOK, ""},
		{"DepthOverTheLimitThroughAFragment", deepQuery(16, true), http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		// 1 + 40 × (1 + 1 + 100 × 2) = 8081
		{"ComplexityOfNestedConnections", `{ projects(first: 40) { nodes { deployments(first: 100) { nodes { id } } } } }`,
			http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		// 1 + 20 × (1 + 1 + 20 × (1 + 1)) = 841: the default page is 20.
		{"ComplexityOfDefaultPages", `{ projects { nodes { deployments { nodes { id } } } } }`, http.StatusOK, ""},
		// 1 + 24 × (2 + 100 × 2) = 4849
		{"ComplexityWithinTheLimit", `{ projects(last: 24) { nodes { deployments(first: 100) { nodes { id } } } } }`, http.StatusOK, ""},
		// 1 + 25 × (2 + 100 × 2) = 5051
		{"ComplexityJustOverTheLimit", `{ projects(last: 25) { nodes { deployments(first: 100) { nodes { id } } } } }`,
			http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"ComplexityOfExponentialFragments", "{ ...F0 }\n" + fragments.String(), http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"AliasesAtTheLimit", aliasQuery(30), http.StatusOK, ""},
		{"AliasesOverTheLimit", aliasQuery(31), http.StatusUnprocessableEntity, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"TokensOverTheLimit", "{ " + strings.Repeat("__typename ", 16000) + "}", http.StatusOK, "GRAPHQL_PARSE_FAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := s.query(t, rootToken, tc.query, nil)
			if r.Status != tc.status {
				t.Errorf("status: got %d, want %d (%.300s)", r.Status, tc.status, r.raw)
			}
			if tc.code == "" {
				expectNoError(t, r)
				return
			}
			expectError(t, r, tc.code, "")
			if r.Data != nil {
				t.Errorf("a refused operation has data: %.300s", r.raw)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused after %v", d)
			}
		})
	}

	t.Run("ComplexityUsesVariables", func(t *testing.T) {
		q := `query($n: Int) { projects(first: $n) { nodes { deployments(first: 100) { nodes { id } } } } }`
		if r := s.query(t, rootToken, q, map[string]any{"n": 25}); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("first: $n = 25: got %d, want 422 (%.300s)", r.Status, r.raw)
		}
		expectNoError(t, s.query(t, rootToken, q, map[string]any{"n": 2}))
	})
	t.Run("LimitsAre422WhateverTheAcceptedMediaType", func(t *testing.T) {
		r := s.queryHeaders(t, map[string]string{"Accept": "application/graphql-response+json"}, deepQuery(16, false), nil)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("status: got %d, want 422", r.Status)
		}
		expectError(t, r, "COMPLEXITY_LIMIT_EXCEEDED", "")
	})
	t.Run("BodyOverOneMiBIs413", func(t *testing.T) {
		pad := strings.Repeat(" ", 1<<20)
		r := s.postRaw(t, map[string]string{"Content-Type": "application/json"}, `{"query": "{ __typename }"`+pad+`}`)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status: got %d, want 413", r.Status)
		}
		expectError(t, r, "BAD_REQUEST", "")
		// Just under the limit is served.
		r = s.postRaw(t, map[string]string{"Content-Type": "application/json"}, `{"query": "{ __typename }"`+pad[:1<<20-64]+`}`)
		expectNoError(t, r)
	})
}

// Ensure that -max-depth and -max-complexity move the limits.
func TestE2ELimitFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	strict := serve(t, config{db: filepath.Join(dir, "strict.db"), adminToken: rootToken, introspection: true, demo: true,
		maxDepth: 3, maxComplexity: 30})
	lax := serve(t, config{db: filepath.Join(dir, "lax.db"), adminToken: rootToken, introspection: true, demo: true,
		maxDepth: 40, maxComplexity: 20000})
	defaults := startDemoServer(t)

	cases := []struct {
		name                 string
		query                string
		strict, def, laxCode int
	}{
		{"Depth3", deepQuery(3, false), 200, 200, 200},
		{"Depth4", deepQuery(4, false), 422, 200, 200},
		{"Depth20", deepQuery(20, false), 422, 422, 200},
		// 1 + 2 × (1 + 1 + 10 × 2) = 45
		{"Complexity45", `{ projects(first: 2) { nodes { deployments(first: 10) { nodes { id } } } } }`, 422, 200, 200},
		// 1 + 50 × (2 + 100 × 2) = 10101
		{"Complexity10101", `{ projects(first: 50) { nodes { deployments(first: 100) { nodes { id } } } } }`, 422, 422, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, srv := range []struct {
				name   string
				s      *testServer
				status int
			}{{"strict", strict, tc.strict}, {"default", defaults, tc.def}, {"lax", lax, tc.laxCode}} {
				r := srv.s.query(t, rootToken, tc.query, nil)
				if r.Status != srv.status {
					t.Errorf("%s server: got %d, want %d (%.200s)", srv.name, r.Status, srv.status, r.raw)
					continue
				}
				if srv.status == 422 {
					expectError(t, r, "COMPLEXITY_LIMIT_EXCEEDED", "")
				} else {
					expectNoError(t, r)
				}
			}
		})
	}
}

// Ensure that with -introspection=false the schema cannot be read: neither
// through __schema and __type nor through "Did you mean" suggestions.
func TestE2EIntrospectionOff(t *testing.T) {
	t.Parallel()
	on := startDemoServer(t)
	off := serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, introspection: false, demo: true})

	for _, q := range []string{
		`{ __schema { types { name } } }`,
		`{ __type(name: "Deployment") { fields { name } } }`,
		`{ ...Schema } fragment Schema on Query { __schema { queryType { name } } }`,
	} {
		expectNoError(t, on.query(t, rootToken, q, nil))
		r := off.query(t, rootToken, q, nil)
		expectError(t, r, "GRAPHQL_VALIDATION_FAILED", "Introspection is disabled")
		if r.Data != nil {
			t.Errorf("%s: refused introspection has data: %s", q, r.raw)
		}
	}
	if got := get(off.mustQuery(t, "", `{ __typename }`, nil), "__typename"); got != "Query" {
		t.Errorf("__typename: got %v, want Query", got)
	}

	for name, q := range map[string]string{
		"Field":     `{ projetc(id: "root/project") { id } }`,
		"Argument":  `{ project(idd: "root/project") { id } }`,
		"EnumValue": `{ project(id: "root/project") { deployments(status: SUCESS) { count } } }`,
		"Type":      `{ project(id: "root/project") { ...P } } fragment P on Projetc { id }`,
		"SubField":  `{ project(id: "root/project") { deployments { nodes { statsu } } } }`,
		"InputField": `mutation { createDeployment(input: {projectID: "1", environment: "x", sha: "x", ref: "x", tag: false, status: RUNNING}) {
			deployment { id } } }`,
	} {
		t.Run("NoSuggestionFor"+name, func(t *testing.T) {
			// With introspection on, gqlparser suggests a name: the test
			// would see a leak if there were one.
			expectError(t, on.query(t, rootToken, q, nil), "GRAPHQL_VALIDATION_FAILED", "Did you mean")
			r := off.query(t, rootToken, q, nil)
			expectError(t, r, "GRAPHQL_VALIDATION_FAILED", "")
			if strings.Contains(string(r.raw), "Did you mean") {
				t.Errorf("got a suggestion: %s", r.raw)
			}
		})
	}
}
