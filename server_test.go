package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

// rootToken authenticates as the admin user root in every test server.
const rootToken = "test-root-token"

// testServer is the real server on 127.0.0.1 with a random port and a
// temporary store.
type testServer struct {
	url   string
	store *store.Store
}

// startServer imports doc (nil: nothing) into a fresh store and serves it.
func startServer(t testing.TB, doc any) *testServer {
	t.Helper()
	dir := t.TempDir()
	c := config{db: filepath.Join(dir, "deploygraph.db"), adminToken: rootToken, introspection: true}
	if doc != nil {
		c.importFile = writeDoc(t, dir, "import.json", doc)
	}
	return serve(t, c)
}

// startDemoServer serves the built-in demo data.
func startDemoServer(t testing.TB) *testServer {
	t.Helper()
	return serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, introspection: true, demo: true})
}

// discardLogger formats the request log lines, as in production, and
// drops them, so that test and benchmark output stays readable.
var discardLogger = slog.New(slog.NewJSONHandler(io.Discard, nil))

func serve(t testing.TB, c config) *testServer {
	t.Helper()
	s, _ := openServer(t, c, store.Options{})
	return s
}

// tokenFor mints a token for a user, as an administrator would.
func (s *testServer) tokenFor(t testing.TB, userID int64) string {
	t.Helper()
	secret, _, err := s.store.CreateAccessToken(context.Background(), store.System, userID, "test", nil)
	if err != nil {
		t.Fatalf("token for user %d: %v", userID, err)
	}
	return secret
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Status int
	Data   map[string]any
	Errors []gqlError
	raw    []byte
}

// codes lists the errors' extensions.code values.
func (r gqlResponse) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// query posts a GraphQL request as token ("" for anonymous).
func (s *testServer) query(t testing.TB, token, q string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(t, req)
}

func (s *testServer) do(t testing.TB, req *http.Request) gqlResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := gqlResponse{Status: resp.StatusCode, raw: raw}
	var decoded struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatalf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	out.Data, out.Errors = decoded.Data, decoded.Errors
	return out
}

// mustQuery is query for a request that must succeed.
func (s *testServer) mustQuery(t testing.TB, token, q string, vars map[string]any) map[string]any {
	t.Helper()
	r := s.query(t, token, q, vars)
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("query failed (%d): %s\nquery: %s", r.Status, r.raw, q)
	}
	return r.Data
}

// get walks a decoded JSON value by a dotted path ("project.deployments.nodes").
func get(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// list is get for a JSON array.
func list(v any, path string) []any {
	l, _ := get(v, path).([]any)
	return l
}

// pluck collects one field of every element of a list.
func pluck(items []any, field string) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = get(it, field)
	}
	return out
}
