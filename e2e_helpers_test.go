package main

// Helpers shared by the end-to-end tests (e2e_*_test.go). Everything here
// sets up data through import documents and tokens, and reads results only
// over HTTP.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// fxDeployment is one deployment of an import document, as the tests
// compute expectations from it.
type fxDeployment struct {
	ID, IID  int64
	Ref      string
	SHA      string
	Status   string // GraphQL enum (upper case)
	EnvID    int64
	Env      string
	Created  time.Time
	Updated  time.Time
	Finished *time.Time
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func asInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	panic(fmt.Sprintf("not a number: %#v", v))
}

// docProjects returns the projects of a document built in Go.
func docProjects(doc map[string]any) []map[string]any {
	return doc["projects"].([]map[string]any)
}

// fxDeploymentsOf reads the deployments of a document's project (by index).
func fxDeploymentsOf(doc map[string]any, project int) []fxDeployment {
	p := docProjects(doc)[project]
	deps, _ := p["deployments"].([]map[string]any)
	out := make([]fxDeployment, 0, len(deps))
	for _, d := range deps {
		env := d["environment"].(map[string]any)
		fd := fxDeployment{
			ID: asInt64(d["id"]), IID: asInt64(d["iid"]),
			Ref: d["ref"].(string), SHA: d["sha"].(string),
			Status: strings.ToUpper(d["status"].(string)),
			EnvID:  asInt64(env["id"]), Env: env["name"].(string),
			Created: mustTime(d["created_at"].(string)),
			Updated: mustTime(d["updated_at"].(string)),
		}
		if f, ok := d["finished_at"].(string); ok {
			t := mustTime(f)
			fd.Finished = &t
		}
		out = append(out, fd)
	}
	return out
}

// scrambledDoc is fixtureDoc(n) with iids, creation, update and finish
// times shuffled (deterministically) and full of ties, so that every order
// differs from the id order. n must be coprime with 7.
func scrambledDoc(n int) map[string]any {
	doc := fixtureDoc(n)
	p := docProjects(doc)[0]
	for _, d := range p["deployments"].([]map[string]any) {
		i := d["id"].(int)
		d["iid"] = (i*7)%n + 1
		d["created_at"] = at((i * 7) % 20 * 10) // each value three times
		d["updated_at"] = at(1000 + (i*13)%25)  // two or three times each
		if d["finished_at"] != nil {            // only finished ones
			d["finished_at"] = at(2000 + (i*11)%7) // many ties
		}
	}
	return doc
}

// sortDeployments orders deployments by the spec's rules (SPEC 6.3): the
// key, ties by id in the same direction, a missing finishedAt after every
// time in ASC and before every time in DESC. DESC is therefore exactly the
// reverse of ASC.
func sortDeployments(deps []fxDeployment, orderBy string, desc bool) []fxDeployment {
	out := slices.Clone(deps)
	cmpKey := func(a, b fxDeployment) int {
		switch orderBy {
		case "ID":
			return 0
		case "IID":
			return cmpInt(a.IID, b.IID)
		case "CREATED_AT":
			return a.Created.Compare(b.Created)
		case "UPDATED_AT":
			return a.Updated.Compare(b.Updated)
		case "FINISHED_AT":
			switch {
			case a.Finished == nil && b.Finished == nil:
				return 0
			case a.Finished == nil:
				return 1
			case b.Finished == nil:
				return -1
			}
			return a.Finished.Compare(*b.Finished)
		case "REF":
			return strings.Compare(a.Ref, b.Ref)
		}
		panic("unknown order " + orderBy)
	}
	sort.SliceStable(out, func(i, j int) bool {
		c := cmpKey(out[i], out[j])
		if c == 0 {
			c = cmpInt(out[i].ID, out[j].ID)
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func filterDeployments(deps []fxDeployment, keep func(fxDeployment) bool) []fxDeployment {
	var out []fxDeployment
	for _, d := range deps {
		if keep == nil || keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func depIDs(deps []fxDeployment) []int64 {
	out := make([]int64, len(deps))
	for i, d := range deps {
		out[i] = d.ID
	}
	return out
}

// inHalfOpen: t in [after, before); a missing t is in no window.
func inHalfOpen(t *time.Time, after, before *time.Time) bool {
	if t == nil {
		return false
	}
	if after != nil && t.Before(*after) {
		return false
	}
	if before != nil && !t.Before(*before) {
		return false
	}
	return true
}

func tp(minutes int) *time.Time {
	t := fixtureBase.Add(time.Duration(minutes) * time.Minute)
	return &t
}

// gidNumber reads the number of a global ID of the given type, failing the
// test when the ID does not have the documented shape.
func gidNumber(t testing.TB, v any, typ string) int64 {
	t.Helper()
	s, _ := v.(string)
	prefix := "gid://deploygraph/" + typ + "/"
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		t.Fatalf("id %q: want the form %s<number>", s, prefix)
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		t.Fatalf("id %q: want the form %s<number>", s, prefix)
	}
	return n
}

func gidNumbers(t testing.TB, ids []any, typ string) []int64 {
	t.Helper()
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = gidNumber(t, id, typ)
	}
	return out
}

func gid(typ string, id int64) string {
	return fmt.Sprintf("gid://deploygraph/%s/%d", typ, id)
}

// expectError asserts that a response failed with one error of the given
// code (and, when msg is not empty, a message containing msg).
func expectError(t testing.TB, r gqlResponse, code, msg string) {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Errorf("got no error (data %s), want %s", r.raw, code)
		return
	}
	if got := r.codes(); !slices.Contains(got, code) {
		t.Errorf("error codes: got %v, want %s (%s)", got, code, r.raw)
		return
	}
	if msg != "" {
		found := false
		for _, e := range r.Errors {
			if strings.Contains(e.Message, msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("error messages: got %s, want one containing %q", r.raw, msg)
		}
	}
}

// expectNoError asserts that a query succeeded and returns its data.
func expectNoError(t testing.TB, r gqlResponse) map[string]any {
	t.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Errorf("query failed (%d): %s", r.Status, r.raw)
	}
	return r.Data
}

// queryHeaders posts a query with arbitrary headers.
func (s *testServer) queryHeaders(t testing.TB, headers map[string]string, q string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.do(t, req)
}

// equalJSON compares decoded JSON values structurally.
func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

// writeDoc writes an import document into dir and returns its path.
func writeDoc(t testing.TB, dir, name string, doc any) string {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond until it holds, failing the test after limit: for
// what a test cannot be told of directly (a subscription started, a
// process stopped listening).
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

// openServer serves a store opened with c and options of the test's
// choosing (always without fsync), and returns an explicit close, so that
// a second server can open the same store file. Closing checks the file's
// consistency.
func openServer(t testing.TB, c config, opts store.Options) (*testServer, func()) {
	t.Helper()
	if c.logger == nil {
		c.logger = discardLogger
	}
	opts.NoSync = true
	a, err := newApp(context.Background(), c, opts)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	srv := httptest.NewServer(a.handler)
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			srv.Close()
			if err := a.store.Check(); err != nil {
				t.Errorf("store consistency check: %v", err)
			}
			a.store.Close()
		})
	}
	t.Cleanup(closeFn)
	return &testServer{url: srv.URL, store: a.store}, closeFn
}

// fakeClock is a settable clock for the store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// timeLayoutOut is the output format of every Time (SPEC 3).
const timeLayoutOut = "2006-01-02T15:04:05.000Z"

// fmtTime formats an instant the way the API must print it.
func fmtTime(t time.Time) string { return t.UTC().Format(timeLayoutOut) }

// mintToken creates an access token for a user as an administrator would
// (setup only) and returns its secret and id.
func mintToken(t testing.TB, s *testServer, userID int64, name string, expiresAt *time.Time) (string, int64) {
	t.Helper()
	secret, tok, err := s.store.CreateAccessToken(context.Background(), store.System, userID, name, expiresAt)
	if err != nil {
		t.Fatalf("token for user %d: %v", userID, err)
	}
	return secret, tok.ID
}

// revokeToken revokes a token as an administrator would (setup only).
func revokeToken(t testing.TB, s *testServer, id int64) {
	t.Helper()
	if _, err := s.store.RevokeAccessToken(context.Background(), store.System, id); err != nil {
		t.Fatalf("revoke token %d: %v", id, err)
	}
}
