package main

import (
	"net/http"
	"net/url"
	"testing"
)

// Ensure that GET runs queries and refuses mutations with 405, so that a
// link or an image tag can never change anything.
func TestE2EGetRefusesMutations(t *testing.T) {
	s := startServer(t, fixtureDoc(3))
	cases := []struct {
		name, query, operationName string
		status                     int
	}{
		{"Query", `{ currentUser { username } }`, "", http.StatusOK},
		{"Mutation", `mutation { createGroup(input: {name: "x", path: "x"}) { group { id } } }`, "", http.StatusMethodNotAllowed},
		{"NamedMutationAmongQueries", `query Q { currentUser { id } } mutation M { createGroup(input: {name: "x", path: "x"}) { group { id } } }`, "M", http.StatusMethodNotAllowed},
		{"NamedQueryAmongMutations", `query Q { currentUser { username } } mutation M { createGroup(input: {name: "x", path: "x"}) { group { id } } }`, "Q", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := url.Values{"query": {tc.query}}
			if tc.operationName != "" {
				params.Set("operationName", tc.operationName)
			}
			req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?"+params.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+rootToken)
			r := s.do(t, req)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.raw)
			}
			if tc.status != http.StatusOK && (len(r.codes()) != 1 || r.codes()[0] != "BAD_REQUEST") {
				t.Errorf("errors %s, want one BAD_REQUEST", r.raw)
			}
		})
	}
	// The refused mutations changed nothing.
	if g := s.query(t, rootToken, `{ group(id: "x") { id } }`, nil); len(g.Errors) == 0 {
		t.Errorf("group x exists after refused GET mutations: %s", g.raw)
	}
}
