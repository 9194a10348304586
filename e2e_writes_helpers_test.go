package main

// Helpers for the end-to-end tests of mutations (e2e_mutations_test.go,
// e2e_roles_test.go). Set-up goes through import documents and tokens;
// every result is read over HTTP.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// wMutate runs one mutation `name` with `input` as token and selects
// `selection` from its payload. The input type is the mutation's name with
// an upper-case initial and "Input" appended (SPEC 3, "Mutations").
func wMutate(t testing.TB, s *testServer, token, name, selection string, input map[string]any) gqlResponse {
	t.Helper()
	q := fmt.Sprintf("mutation($input: %s%sInput!) { %s(input: $input) { %s } }",
		strings.ToUpper(name[:1]), name[1:], name, selection)
	return s.query(t, token, q, map[string]any{"input": input})
}

// wMustMutate is wMutate for a mutation that must succeed; it returns the
// mutation's payload.
func wMustMutate(t testing.TB, s *testServer, token, name, selection string, input map[string]any) map[string]any {
	t.Helper()
	r := wMutate(t, s, token, name, selection, input)
	if len(r.Errors) > 0 || r.Status != http.StatusOK || r.Data[name] == nil {
		t.Fatalf("%s(%v) failed (%d): %s", name, input, r.Status, r.raw)
	}
	p, _ := r.Data[name].(map[string]any)
	return p
}

// wRefused asserts that a mutation failed with code (and a message
// containing msg when msg is not empty) and returned no payload.
func wRefused(t testing.TB, r gqlResponse, name, code, msg string) {
	t.Helper()
	expectError(t, r, code, msg)
	if r.Data != nil && r.Data[name] != nil {
		t.Errorf("refused %s still returned a payload: %s", name, r.raw)
	}
	if strings.HasPrefix(code, "GRAPHQL_") || r.Data == nil {
		return // parse and validation failures, and requests refused whole (a bad token), have no path
	}
	// SPEC 4: a failure of the mutation carries its path.
	for _, e := range r.Errors {
		if len(e.Path) == 0 || e.Path[0] != name {
			t.Errorf("error %q: path %v, want [%s]", e.Message, e.Path, name)
		}
	}
}

// wAdmin runs a query as root that must succeed.
func wAdmin(t testing.TB, s *testServer, q string, vars map[string]any) map[string]any {
	t.Helper()
	return s.mustQuery(t, rootToken, q, vars)
}

const wEnvFields = `id name slug state tier externalUrl autoStopAt autoDeleteAt folder createdAt updatedAt logsApiPath`

// wEnvByName reads an environment of a project as root; nil when the
// project has none of that name (checked with the exact-name filter, so a
// missing environment is not an error).
func wEnvByName(t testing.TB, s *testServer, project, name string) map[string]any {
	t.Helper()
	d := wAdmin(t, s, `query($p: ID!, $n: String!) { project(id: $p) { environments(name: $n) { count nodes { `+wEnvFields+` } } } }`,
		map[string]any{"p": project, "n": name})
	nodes := list(d, "project.environments.nodes")
	if n := asInt64(get(d, "project.environments.count")); n != int64(len(nodes)) || n > 1 {
		t.Fatalf("environments(name: %q): count %d, %d nodes", name, n, len(nodes))
	}
	if len(nodes) == 0 {
		return nil
	}
	return nodes[0].(map[string]any)
}

// wNode reads an object by global ID as root with the given fragment; nil
// when it does not exist (NOT_FOUND).
func wNode(t testing.TB, s *testServer, id, fragment string) map[string]any {
	t.Helper()
	r := s.query(t, rootToken, `query($id: ID!) { node(id: $id) { `+fragment+` } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		if slices.Contains(r.codes(), "NOT_FOUND") && get(r.Data, "node") == nil {
			return nil
		}
		t.Fatalf("node(%s): %s", id, r.raw)
	}
	m, _ := r.Data["node"].(map[string]any)
	return m
}

const wDepFields = `id iid ref sha tag status createdAt updatedAt finishedAt isLastDeployment
	user { username } environment { id name state } mergeRequests(first: 100) { count nodes { id iid } }`

// wDeployment reads a deployment by its number as root; nil when gone.
func wDeployment(t testing.TB, s *testServer, id int64) map[string]any {
	t.Helper()
	return wNode(t, s, gid("Deployment", id), `... on Deployment { `+wDepFields+` }`)
}

// wEnvironment reads an environment by its number as root; nil when gone.
func wEnvironment(t testing.TB, s *testServer, id int64) map[string]any {
	t.Helper()
	return wNode(t, s, gid("Environment", id), `... on Environment { `+wEnvFields+` }`)
}

// wDeploymentCount is the number of deployments of a project (all
// statuses), as root.
func wDeploymentCount(t testing.TB, s *testServer, project string) int64 {
	t.Helper()
	d := wAdmin(t, s, `query($p: ID!) { project(id: $p) { deployments { count } } }`, map[string]any{"p": project})
	return asInt64(get(d, "project.deployments.count"))
}

// wEnvironmentCount is the number of environments of a project, as root.
func wEnvironmentCount(t testing.TB, s *testServer, project string) int64 {
	t.Helper()
	d := wAdmin(t, s, `query($p: ID!) { project(id: $p) { environments { count } } }`, map[string]any{"p": project})
	return asInt64(get(d, "project.environments.count"))
}

// wEnvDeploymentIDs lists the numbers of an environment's deployments, all
// statuses, as root.
func wEnvDeploymentIDs(t testing.TB, s *testServer, project, env string) []int64 {
	t.Helper()
	d := wAdmin(t, s, `query($p: ID!, $e: String!) { project(id: $p) { deployments(environment: $e, first: 100) { nodes { id } } } }`,
		map[string]any{"p": project, "e": env})
	return gidNumbers(t, pluck(list(d, "project.deployments.nodes"), "id"), "Deployment")
}

// wMRIIDs lists the iids of a deployment's merge requests, ascending.
func wMRIIDs(t testing.TB, dep map[string]any) []int64 {
	t.Helper()
	var out []int64
	for _, n := range list(dep, "mergeRequests.nodes") {
		out = append(out, asInt64(get(n, "iid")))
	}
	slices.Sort(out)
	return out
}

// wTime parses a Time the API printed; it fails the test when the value is
// not a time.
func wTime(t testing.TB, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("not a time: %#v", v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("not a time: %q", s)
	}
	return tm
}

// wNear asserts that v is a time within tolerance of want.
func wNear(t testing.TB, what string, v any, want time.Time, tolerance time.Duration) {
	t.Helper()
	if v == nil {
		t.Errorf("%s: got null, want about %s", what, fmtTime(want))
		return
	}
	got := wTime(t, v)
	if d := got.Sub(want); d > tolerance || d < -tolerance {
		t.Errorf("%s: got %s, want about %s (±%s)", what, fmtTime(got), fmtTime(want), tolerance)
	}
}

// wWorks reports whether a token authenticates (a request with it is not
// refused as UNAUTHENTICATED) and returns the current user's username.
func wWorks(t testing.TB, s *testServer, token string) (bool, string) {
	t.Helper()
	r := s.query(t, token, `{ currentUser { username } }`, nil)
	if slices.Contains(r.codes(), "UNAUTHENTICATED") {
		return false, ""
	}
	if len(r.Errors) > 0 {
		t.Fatalf("currentUser: %s", r.raw)
	}
	u, _ := get(r.Data, "currentUser.username").(string)
	return true, u
}

// wAccessLevel is the caller's currentUserAccessLevel in a project, ""
// when the project is not visible to them (NOT_FOUND or null) or they are
// not a member.
func wAccessLevel(t testing.TB, s *testServer, token, project string) string {
	t.Helper()
	r := s.query(t, token, `query($p: ID!) { project(id: $p) { currentUserAccessLevel } }`, map[string]any{"p": project})
	if len(r.Errors) > 0 && !slices.Contains(r.codes(), "NOT_FOUND") {
		t.Fatalf("project %s: %s", project, r.raw)
	}
	l, _ := get(r.Data, "project.currentUserAccessLevel").(string)
	return l
}

// wPost is a goroutine-safe GraphQL POST (no testing.T): it returns the
// decoded data and errors.
func wPost(url, token, q string, vars map[string]any) (map[string]any, []gqlError, error) {
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	return out.Data, out.Errors, nil
}

// wSHA is a distinct full commit SHA for a number (40 hex digits).
func wSHA(i int) string { return sha(100000 + i) }

// wNowMinus formats time.Now() minus d for the API.
func wNowMinus(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339Nano) }

// wEnvRec is an environment of an import document.
func wEnvRec(id int, name, state string, created, updated string) map[string]any {
	return map[string]any{"id": id, "name": name, "state": state, "created_at": created, "updated_at": updated}
}

// wDepRec is a deployment of an import document without a CI job.
func wDepRec(id, iid int, envID int, envName, status string, minutes int) map[string]any {
	var finished any
	if status == "success" || status == "failed" || status == "canceled" {
		finished = at(minutes + 5)
	}
	return map[string]any{
		"id": id, "iid": iid, "ref": "main", "sha": sha(id), "tag": false, "status": status,
		"created_at": at(minutes), "updated_at": at(minutes + 6), "finished_at": finished,
		"user":        map[string]any{"id": userRoot},
		"environment": map[string]any{"id": envID, "name": envName},
		"deployable":  nil,
	}
}

// wUsers are the fixture's users plus an owner for the documents of these
// tests.
const userOwner = 9 // OWNER of the projects of wDoc

func wUsers(extra ...map[string]any) []map[string]any {
	users := []map[string]any{
		{"id": userRoot, "username": "root", "name": "Administrator", "state": "active", "admin": true},
		{"id": userDeveloper, "username": "dev", "name": "Dev Eloper", "state": "active"},
		{"id": userReporter, "username": "rep", "name": "Rep Orter", "state": "active"},
		{"id": userGuest, "username": "guest", "name": "Guest User", "state": "active"},
		{"id": userMaintainer, "username": "maint", "name": "Main Tainer", "state": "active"},
		{"id": userOutsider, "username": "outsider", "name": "Out Sider", "state": "active"},
		{"id": userOwner, "username": "owner", "name": "Own Er", "state": "active"},
	}
	return append(users, extra...)
}

// wMembers are the standard memberships: every role once.
func wMembers(extra ...map[string]any) []map[string]any {
	m := []map[string]any{
		{"user_id": userGuest, "access_level": 10}, {"user_id": userReporter, "access_level": 20},
		{"user_id": userDeveloper, "access_level": 30}, {"user_id": userMaintainer, "access_level": 40},
		{"user_id": userOwner, "access_level": 50},
	}
	return append(m, extra...)
}

// wProject is a private project of an import document with the standard
// members.
func wProject(id int, path string) map[string]any {
	name := path[strings.LastIndex(path, "/")+1:]
	return map[string]any{
		"id": id, "name": name, "path": name, "path_with_namespace": path, "visibility": "private",
		"created_at": at(0), "members": wMembers(),
	}
}
