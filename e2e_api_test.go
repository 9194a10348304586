package main

// End-to-end tests of the API's conventions (SPEC 3, 4), its HTTP routes
// (SPEC 2), approvals (6.4), Deployment.mergeRequests (6.5) and import
// validation (7).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

func TestE2EGlobalIDs(t *testing.T) {
	s := startServer(t, fixtureDoc(12))
	token := s.tokenFor(t, userDeveloper)

	data := s.mustQuery(t, token, `{
		project(id: "acme/app") { id
			environment(name: "staging") { id project { id } }
			deployment(iid: 3) { id user { id } environment { id } project { id } deployable { id user { id } pipeline { id project { id } } } }
			mergeRequest(iid: 6) { id author { id } project { id } } }
		group(id: "approvers") { id }
		currentUser { id } }`, nil)
	want := map[string]string{
		"project.id":                                        gid("Project", 1),
		"project.environment.id":                            gid("Environment", 2),
		"project.environment.project.id":                    gid("Project", 1),
		"project.deployment.id":                             gid("Deployment", 3),
		"project.deployment.user.id":                        gid("User", userRoot),
		"project.deployment.environment.id":                 gid("Environment", 3),
		"project.deployment.project.id":                     gid("Project", 1),
		"project.deployment.deployable.id":                  gid("Job", 1003),
		"project.deployment.deployable.user.id":             gid("User", userRoot),
		"project.deployment.deployable.pipeline.id":         gid("Pipeline", 2003),
		"project.deployment.deployable.pipeline.project.id": gid("Project", 1),
		"project.mergeRequest.id":                           gid("MergeRequest", 6),
		"project.mergeRequest.author.id":                    gid("User", userDeveloper),
		"project.mergeRequest.project.id":                   gid("Project", 1),
		"group.id":                                          gid("Group", groupApprovers),
		"currentUser.id":                                    gid("User", userDeveloper),
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	t.Run("every Node type has a gid://deploygraph/<Type>/<number> id", func(t *testing.T) {
		for _, p := range paths {
			if got := get(data, p); got != want[p] {
				t.Errorf("%s: got %v, want %s", p, got, want[p])
			}
		}
	})
	t.Run("node resolves every global ID to the same object", func(t *testing.T) {
		for _, p := range paths {
			id := want[p]
			typ := strings.Split(strings.TrimPrefix(id, "gid://deploygraph/"), "/")[0]
			d := s.mustQuery(t, token, `query($id: ID!) { node(id: $id) { id __typename } }`, map[string]any{"id": id})
			if got := get(d, "node"); !equalJSON(got, map[string]any{"id": id, "__typename": typ}) {
				t.Errorf("node(%s): got %v", id, got)
			}
		}
	})
	t.Run("AccessToken global ID, visible to its owner only", func(t *testing.T) {
		_, tokID := mintToken(t, s, userDeveloper, "mine", nil)
		id := gid("AccessToken", tokID)
		q := `query($id: ID!) { node(id: $id) { id ... on AccessToken { name revoked expiresAt user { username } } } }`
		d := s.mustQuery(t, token, q, map[string]any{"id": id})
		if got := get(d, "node"); !equalJSON(got, map[string]any{"id": id, "name": "mine", "revoked": false, "expiresAt": nil, "user": map[string]any{"username": "dev"}}) {
			t.Errorf("owner: got %v", got)
		}
		d = s.mustQuery(t, rootToken, q, map[string]any{"id": id})
		if got := get(d, "node.id"); got != id {
			t.Errorf("admin: got %v, want %s", got, id)
		}
		r := s.query(t, s.tokenFor(t, userReporter), q, map[string]any{"id": id})
		expectError(t, r, "NOT_FOUND", "")
		if get(r.Data, "node") != nil {
			t.Errorf("another user: got %s, want null", r.raw)
		}
	})
	t.Run("references accept a global ID or a bare number", func(t *testing.T) {
		for _, c := range []struct{ query, path, want string }{
			{`project(id: "%s") { id }`, "project.id", "Project/1"},
			{`project(id: "acme/app") { environment(id: "%s") { id } }`, "project.environment.id", "Environment/2"},
			{`project(id: "acme/app") { deployment(id: "%s") { id } }`, "project.deployment.id", "Deployment/5"},
			{`user(id: "%s") { id }`, "user.id", "User/3"},
			{`group(id: "%s") { id }`, "group.id", "Group/10"},
		} {
			num := c.want[strings.Index(c.want, "/")+1:]
			for _, ref := range []string{num, "gid://deploygraph/" + c.want} {
				q := "{ " + fmt.Sprintf(c.query, ref) + " }"
				d := s.mustQuery(t, token, q, nil)
				if got := get(d, c.path); got != "gid://deploygraph/"+c.want {
					t.Errorf("%s: got %v, want gid://deploygraph/%s", q, got, c.want)
				}
			}
		}
	})
	t.Run("a global ID of the wrong type or shape is BAD_USER_INPUT", func(t *testing.T) {
		for _, q := range []string{
			`project(id: "gid://deploygraph/Deployment/1") { id }`,
			`project(id: "acme/app") { environment(id: "gid://deploygraph/Project/1") { id } }`,
			`project(id: "acme/app") { deployment(id: "gid://deploygraph/Environment/1") { id } }`,
			`user(id: "gid://deploygraph/Group/10") { id }`,
			`group(id: "gid://deploygraph/User/1") { id }`,
			`project(id: "gid://deploygraph/Project/abc") { id }`,
			`project(id: "gid://deploygraph/Project/") { id }`,
			`project(id: "acme/app") { deployment(id: "gid://deploygraph/Deployment/x1") { id } }`,
			// "gid://" makes a global ID (SPEC 3), and this one is not ours.
			`project(id: "gid://gitlab/Project/1") { id }`,
			`node(id: "not-a-global-id") { id }`,
			`node(id: "gid://deploygraph/Deployment/abc") { id }`,
		} {
			t.Run(q, func(t *testing.T) {
				expectError(t, s.query(t, token, "{ "+q+" }", nil), "BAD_USER_INPUT", "")
			})
		}
	})
	t.Run("imported commit title defaults to the first line of its message", func(t *testing.T) {
		d := s.mustQuery(t, token, `{ project(id: "acme/app") { deployment(iid: 3) { sha commit { sha title message } deployable { commit { sha title } } } } }`, nil)
		want := map[string]any{"sha": sha(3), "commit": map[string]any{"sha": sha(3), "title": "Change 3", "message": "Change 3\n\nDetails"},
			"deployable": map[string]any{"commit": map[string]any{"sha": sha(3), "title": "Change 3"}}}
		if got := get(d, "project.deployment"); !equalJSON(got, want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})
	t.Run("nodes keeps the order and gives null with an error for missing ones", func(t *testing.T) {
		ids := []string{gid("Deployment", 1), gid("Deployment", 99999), gid("Environment", 2), gid("Project", 1), gid("Project", 424242), gid("User", 5)}
		r := s.query(t, token, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": ids})
		got := list(r.Data, "nodes")
		if len(got) != len(ids) {
			t.Fatalf("got %s, want %d entries", r.raw, len(ids))
		}
		for i, id := range ids {
			missing := i == 1 || i == 4
			if missing && got[i] != nil {
				t.Errorf("nodes[%d]: got %v, want null", i, got[i])
			}
			if !missing && get(got[i], "id") != id {
				t.Errorf("nodes[%d]: got %v, want %s", i, got[i], id)
			}
		}
		var paths []string
		for _, e := range r.Errors {
			paths = append(paths, fmt.Sprint(e.Path))
			if e.Extensions["code"] != "NOT_FOUND" {
				t.Errorf("error %v: code %v, want NOT_FOUND", e.Path, e.Extensions["code"])
			}
		}
		slices.Sort(paths)
		if want := []string{"[nodes 1]", "[nodes 4]"}; !slices.Equal(paths, want) {
			t.Errorf("error paths: got %v, want %v", paths, want)
		}
	})
}

var timeOut = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// walkTimes calls fn for every value in data under a key that names a Time
// field of the schema.
func walkTimes(v any, path string, fn func(path string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			p := path + "." + k
			if strings.HasSuffix(k, "At") || strings.HasSuffix(k, "Date") {
				fn(p, val)
				continue
			}
			walkTimes(val, p, fn)
		}
	case []any:
		for i, val := range x {
			walkTimes(val, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

func TestE2EHTTPAndConventions(t *testing.T) {
	s := startDemoServer(t)

	t.Run("Time output is UTC with milliseconds", func(t *testing.T) {
		data := s.mustQuery(t, rootToken, `{ project(id: "root/project") {
			deployment(id: "41") { createdAt updatedAt finishedAt
				deployable { createdAt startedAt finishedAt commit { authoredDate committedDate createdAt } pipeline { createdAt updatedAt } } }
			environment(name: "review/fix-foo") { createdAt updatedAt autoStopAt } } }`, nil)
		for path, want := range map[string]any{
			"project.deployment.createdAt":                       "2016-08-11T07:36:40.222Z",
			"project.deployment.updatedAt":                       "2016-08-11T07:38:12.414Z",
			"project.deployment.finishedAt":                      "2016-08-11T07:38:12.914Z",
			"project.deployment.deployable.createdAt":            "2016-08-11T07:36:27.357Z",
			"project.deployment.deployable.startedAt":            nil,
			"project.deployment.deployable.finishedAt":           "2016-08-11T07:36:39.851Z",
			"project.deployment.deployable.commit.authoredDate":  "2016-08-11T07:36:01.000Z", // given as +02:00
			"project.deployment.deployable.commit.committedDate": "2016-08-11T07:36:01.000Z",
			"project.deployment.deployable.pipeline.createdAt":   "2016-08-11T02:12:10.222Z",
			"project.environment.createdAt":                      "2019-05-25T18:55:13.252Z",
			"project.environment.autoStopAt":                     "2019-06-03T18:55:13.252Z",
		} {
			if got := get(data, path); got != want {
				t.Errorf("%s: got %v, want %v", path, got, want)
			}
		}
	})
	t.Run("every Time in a broad query has the output format", func(t *testing.T) {
		data := s.mustQuery(t, rootToken, `{ project(id: "root/project") { createdAt
			environments(first: 100) { nodes { createdAt updatedAt autoStopAt autoDeleteAt } }
			deployments(first: 50) { nodes { createdAt updatedAt finishedAt approvals { createdAt }
				deployable { createdAt startedAt finishedAt artifactsExpireAt commit { authoredDate committedDate createdAt } pipeline { createdAt updatedAt } }
				mergeRequests(first: 10) { nodes { createdAt updatedAt mergedAt } } } } } }`, nil)
		n := 0
		walkTimes(data, "", func(path string, v any) {
			if v == nil {
				return
			}
			n++
			if s, _ := v.(string); !timeOut.MatchString(s) {
				t.Errorf("%s: got %v, want the form 2016-08-11T07:36:40.222Z", path, v)
			}
		})
		if n < 200 {
			t.Errorf("only %d times checked", n)
		}
	})
	t.Run("Time input accepts RFC 3339 with offsets and fractions", func(t *testing.T) {
		// Deployment 41 was updated at 07:38:12.414Z: an inclusive bound at
		// exactly that instant, written in another zone, keeps it.
		data := s.mustQuery(t, rootToken, `{ project(id: "root/project") {
			a: deployments(updatedAfter: "2016-08-11T09:38:12.414+02:00", updatedBefore: "2016-08-11T07:38:12.415Z") { nodes { id } }
			b: deployments(updatedAfter: "2016-08-11T07:38:12.415Z", updatedBefore: "2016-08-11T07:38:13Z") { count } } }`, nil)
		if got := pluck(list(data, "project.a.nodes"), "id"); !equalJSON(got, []any{gid("Deployment", 41)}) {
			t.Errorf("got %v, want [deployment 41]", got)
		}
		if got := get(data, "project.b.count"); got != float64(0) {
			t.Errorf("after 41's update: got %v, want 0", got)
		}
	})
	t.Run("unparseable Time is BAD_USER_INPUT", func(t *testing.T) {
		for _, v := range []string{"soon", "2016-02-30T00:00:00Z", "11/08/2016 07:36", "2016-08-11T25:00:00Z", ""} {
			r := s.query(t, rootToken, `query($t: Time) { project(id: "root/project") { deployments(updatedAfter: $t) { count } } }`, map[string]any{"t": v})
			expectError(t, r, "BAD_USER_INPUT", "")
			r = s.query(t, rootToken, fmt.Sprintf(`{ project(id: "root/project") { mergeRequests(createdAfter: %q) { count } } }`, v), nil)
			expectError(t, r, "BAD_USER_INPUT", "")
		}
	})
	t.Run("every error carries extensions.code", func(t *testing.T) {
		for q, want := range map[string]string{
			`{ project(`: "GRAPHQL_PARSE_FAILED",
			`{ nope }`:   "GRAPHQL_VALIDATION_FAILED",
			`{ project(id: "root/project") { nope } }`:                                 "GRAPHQL_VALIDATION_FAILED",
			`{ project(id: "root/project") { deployments(first: 1000) { count } } }`:   "BAD_USER_INPUT",
			`{ project(id: "nope/nope") { id } }`:                                      "NOT_FOUND",
			`{ node(id: "gid://deploygraph/Deployment/1") { id } }`:                    "NOT_FOUND",
			`{ project(id: "root/project") { environments(search: "ab") { count } } }`: "BAD_USER_INPUT",
		} {
			r := s.query(t, rootToken, q, nil)
			if len(r.Errors) == 0 {
				t.Errorf("%s: no error", q)
			}
			for _, e := range r.Errors {
				if c, _ := e.Extensions["code"].(string); c == "" {
					t.Errorf("%s: error %q has no code", q, e.Message)
				}
			}
			if !slices.Contains(r.codes(), want) {
				t.Errorf("%s: codes %v, want %s", q, r.codes(), want)
			}
		}
		r := s.query(t, rootToken, `query($n: Int!) { project(id: "root/project") { deployments(first: $n) { count } } }`, map[string]any{"n": "x"})
		if len(r.Errors) == 0 || slices.Contains(r.codes(), "") {
			t.Errorf("bad variable: got %s, want errors with codes", r.raw)
		}
	})

	post := func(t *testing.T, contentType, body string) gqlResponse {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+rootToken)
		return s.do(t, req)
	}
	for name, c := range map[string][2]string{
		"a body that is not JSON":      {"application/json", "query { currentUser { id } }"},
		"a truncated JSON body":        {"application/json", `{"query": "{ currentUser { id } }"`},
		"an empty body":                {"application/json", ""},
		"a body without query":         {"application/json", `{"variables": {}}`},
		"an empty query":               {"application/json", `{"query": ""}`},
		"a query that is not a string": {"application/json", `{"query": 42}`},
		"a JSON array body":            {"application/json", `[{"query": "{ currentUser { id } }"}]`},
		"a form body":                  {"application/x-www-form-urlencoded", "query=%7B+currentUser+%7B+id+%7D+%7D"},
		"a text/plain body":            {"text/plain", `{"query": "{ currentUser { id } }"}`},
		"no content type":              {"", `{"query": "{ currentUser { id } }"}`},
	} {
		t.Run(name+" is BAD_REQUEST", func(t *testing.T) {
			r := post(t, c[0], c[1])
			expectError(t, r, "BAD_REQUEST", "")
			if r.Status < 400 || r.Status > 499 {
				t.Errorf("status: got %d, want 4xx", r.Status)
			}
			if r.Data != nil {
				t.Errorf("a refused request has data: %s", r.raw)
			}
		})
	}
	t.Run("GET /graphql runs a query", func(t *testing.T) {
		v := url.Values{"query": {`query($p: ID!) { project(id: $p) { fullPath } currentUser { username } }`}, "variables": {`{"p": "qa-group/website"}`}}
		req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?"+v.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+rootToken)
		r := s.do(t, req)
		if len(r.Errors) > 0 || r.Status != 200 || get(r.Data, "project.fullPath") != "qa-group/website" || get(r.Data, "currentUser.username") != "root" {
			t.Errorf("got %d %s", r.Status, r.raw)
		}
		req, _ = http.NewRequest(http.MethodGet, s.url+"/graphql", nil)
		expectError(t, s.do(t, req), "BAD_REQUEST", "")
	})

	getPath := func(t *testing.T, path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	t.Run("healthz and readyz", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, _, body := getPath(t, p); code != 200 {
				t.Errorf("%s: got %d %s, want 200", p, code, body)
			}
		}
	})
	t.Run("schema.graphql serves the SDL", func(t *testing.T) {
		code, _, body := getPath(t, "/schema.graphql")
		for _, want := range []string{"scalar Time", "interface Node", "type Deployment implements Node", "enum DeploymentOrderBy"} {
			if !strings.Contains(body, want) {
				t.Errorf("got %d, body lacks %q", code, want)
			}
		}
	})
	t.Run("GET / serves GraphiQL", func(t *testing.T) {
		code, ct, body := getPath(t, "/")
		if code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(strings.ToLower(body), "graphiql") {
			t.Errorf("got %d %q, want 200 text/html with GraphiQL (%.200s)", code, ct, body)
		}
	})
}

const approvalQuery = `query($p: ID!, $id: ID!) { project(id: $p) { deployment(id: $id) { status pendingApprovalCount
	approvals { user { username } status comment createdAt representedAs }
	approvalSummary { status rules { user { username } group { fullPath } accessLevel accessLevelDescription
		requiredApprovals approvedCount pendingApprovalCount status canApprove
		deploymentApprovals { user { username } status } } } } } }`

type ruleWant struct {
	desc                        string
	required, approved, pending int
	status                      string
	approvers                   []string // usernames of deploymentApprovals
}

func checkApprovals(t *testing.T, dep any, pending int, summary string, rules []ruleWant) {
	t.Helper()
	if got := get(dep, "pendingApprovalCount"); got != float64(pending) {
		t.Errorf("pendingApprovalCount: got %v, want %d", got, pending)
	}
	if got := get(dep, "approvalSummary.status"); got != summary {
		t.Errorf("approvalSummary.status: got %v, want %s", got, summary)
	}
	got := list(dep, "approvalSummary.rules")
	if len(got) != len(rules) {
		t.Fatalf("rules: got %d, want %d: %v", len(got), len(rules), got)
	}
	for i, w := range rules {
		g := got[i]
		var approvers []string
		for _, a := range list(g, "deploymentApprovals") {
			approvers = append(approvers, fmt.Sprint(get(a, "user.username")))
		}
		slices.Sort(approvers)
		wantApprovers := slices.Clone(w.approvers)
		slices.Sort(wantApprovers)
		gotRule := fmt.Sprint(get(g, "accessLevelDescription"), get(g, "requiredApprovals"), get(g, "approvedCount"), get(g, "pendingApprovalCount"), get(g, "status"), approvers)
		wantRule := fmt.Sprint(w.desc, float64(w.required), float64(w.approved), float64(w.pending), w.status, wantApprovers)
		if gotRule != wantRule {
			t.Errorf("rule %d (description, required, approved, pending, status, approvers):\n got %s\nwant %s", i, gotRule, wantRule)
		}
	}
}

func canApprove(dep any) []bool {
	var out []bool
	for _, r := range list(dep, "approvalSummary.rules") {
		b, _ := get(r, "canApprove").(bool)
		out = append(out, b)
	}
	return out
}

func TestE2EApprovalsOnDemoData(t *testing.T) {
	s := startDemoServer(t)
	dave, bob := s.tokenFor(t, 104), s.tokenFor(t, 102)
	vars := func(id string) map[string]any { return map[string]any{"p": "root/project", "id": id} }

	t.Run("deployment 87 waits for qa-group and a second security-group approval", func(t *testing.T) {
		dep := get(s.mustQuery(t, rootToken, approvalQuery, vars("87")), "project.deployment")
		if got := get(dep, "status"); got != "BLOCKED" {
			t.Errorf("status: got %v, want BLOCKED", got)
		}
		wantApprovals := []any{map[string]any{"user": map[string]any{"username": "security-user-1"}, "status": "APPROVED",
			"comment": "Security review passed", "createdAt": "2016-12-31T10:20:00.000Z", "representedAs": "security-group"}}
		if got := get(dep, "approvals"); !equalJSON(got, wantApprovals) {
			t.Errorf("approvals:\n got %v\nwant %v", got, wantApprovals)
		}
		checkApprovals(t, dep, 2, "PENDING_APPROVAL", []ruleWant{
			{desc: "qa-group", required: 1, approved: 0, pending: 1, status: "PENDING_APPROVAL"},
			{desc: "security-group", required: 2, approved: 1, pending: 1, status: "PENDING_APPROVAL", approvers: []string{"security-user-1"}},
		})
		rules := list(dep, "approvalSummary.rules")
		if len(rules) == 2 && (get(rules[0], "group.fullPath") != "qa-group" || get(rules[1], "group.fullPath") != "security-group" || get(rules[0], "user") != nil || get(rules[0], "accessLevel") != nil) {
			t.Errorf("rule subjects: got %v", rules)
		}
	})
	t.Run("canApprove follows the caller's groups", func(t *testing.T) {
		dep := get(s.mustQuery(t, dave, approvalQuery, vars("87")), "project.deployment")
		if got := canApprove(dep); !slices.Equal(got, []bool{true, false}) {
			t.Errorf("dave (qa-group): got %v, want [true false]", got)
		}
		dep = get(s.mustQuery(t, bob, approvalQuery, vars("87")), "project.deployment")
		if got := canApprove(dep); !slices.Equal(got, []bool{false, false}) {
			t.Errorf("bob (reporter, no group): got %v, want [false false]", got)
		}
	})
	t.Run("deployment 42: approvals counted under the represented or first matching rule", func(t *testing.T) {
		dep := get(s.mustQuery(t, rootToken, approvalQuery, vars("42")), "project.deployment")
		// project_6_bot gave no representedAs: it counts for its first
		// matching rule, qa-group. SPEC 6.4's sum does not depend on the
		// deployment's status.
		checkApprovals(t, dep, 1, "PENDING_APPROVAL", []ruleWant{
			{desc: "qa-group", required: 1, approved: 1, pending: 0, status: "APPROVED", approvers: []string{"project_6_bot"}},
			{desc: "security-group", required: 2, approved: 1, pending: 1, status: "PENDING_APPROVAL", approvers: []string{"security-user-1"}},
		})
		var users []string
		for _, a := range list(dep, "approvals") {
			users = append(users, fmt.Sprint(get(a, "user.username"), "/", get(a, "comment"), "/", get(a, "representedAs")))
		}
		slices.Sort(users)
		if want := []string{"project_6_bot/Looks good to me/<nil>", "security-user-1/<nil>/security-group"}; !slices.Equal(users, want) {
			t.Errorf("approvals: got %v, want %v", users, want)
		}
	})
	t.Run("a deployment in an unprotected environment has no rules", func(t *testing.T) {
		dep := get(s.mustQuery(t, rootToken, approvalQuery, vars("44")), "project.deployment")
		if got := get(dep, "pendingApprovalCount"); got != float64(0) {
			t.Errorf("pendingApprovalCount: got %v, want 0", got)
		}
		if got := list(dep, "approvalSummary.rules"); len(got) != 0 {
			t.Errorf("rules: got %v, want none", got)
		}
	})
}

const (
	userAlice = 7
	userCarol = 9
)

// approvalDoc: production requires Alice, two of the approvers group and
// one maintainer; deployments 101..107 carry different approvals.
func approvalDoc() map[string]any {
	dep := func(id int, status string, approvals ...map[string]any) map[string]any {
		d := map[string]any{
			"id": id, "iid": id - 100, "ref": "main", "sha": sha(id), "tag": false, "status": status,
			"created_at": at(id), "updated_at": at(id + 1),
			"user": map[string]any{"id": userReporter}, "environment": map[string]any{"id": 1, "name": "production"},
			"approvals": approvals,
		}
		if status == "failed" {
			d["finished_at"] = at(id + 1)
		}
		return d
	}
	appr := func(user int, status, representedAs string) map[string]any {
		a := map[string]any{"user": map[string]any{"id": user}, "status": status, "created_at": at(500 + user)}
		if representedAs != "" {
			a["represented_as"] = representedAs
		}
		if status == "rejected" {
			a["comment"] = "not yet"
		}
		return a
	}
	return map[string]any{
		"users": []map[string]any{
			{"id": userRoot, "username": "root", "name": "Administrator", "state": "active", "admin": true},
			{"id": userDeveloper, "username": "dev", "name": "Dev Eloper", "state": "active"},
			{"id": userReporter, "username": "rep", "name": "Rep Orter", "state": "active"},
			{"id": userMaintainer, "username": "maint", "name": "Main Tainer", "state": "active"},
			{"id": userAlice, "username": "alice", "name": "Alice Able", "state": "active"},
			{"id": userCarol, "username": "carol", "name": "Carol Core", "state": "active"},
		},
		"groups": []map[string]any{{"id": groupApprovers, "name": "approvers", "path": "approvers", "full_path": "approvers",
			"members": []map[string]any{{"user_id": userDeveloper}, {"user_id": userCarol}}}},
		"projects": []map[string]any{{
			"id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private", "created_at": at(0),
			"members": []map[string]any{
				{"user_id": userDeveloper, "access_level": 30}, {"user_id": userReporter, "access_level": 20},
				{"user_id": userMaintainer, "access_level": 40}, {"user_id": userAlice, "access_level": 30}, {"user_id": userCarol, "access_level": 30},
			},
			"protected_environments": []map[string]any{{
				"name": "production", "deploy_access_levels": []map[string]any{{"access_level": 40}},
				"approval_rules": []map[string]any{
					{"user_id": userAlice, "required_approvals": 1},
					{"group_id": groupApprovers, "required_approvals": 2},
					{"access_level": 40, "required_approvals": 1},
				},
			}},
			"environments": []map[string]any{{"id": 1, "name": "production", "state": "available", "created_at": at(0), "updated_at": at(0)}},
			"deployments": []map[string]any{
				dep(101, "blocked"),
				dep(102, "blocked", appr(userAlice, "approved", "")),
				dep(103, "failed", appr(userDeveloper, "rejected", "")),
				dep(104, "blocked", appr(userMaintainer, "approved", "Maintainers"), appr(userRoot, "approved", "")),
				dep(105, "blocked", appr(userRoot, "approved", "approvers"), appr(userDeveloper, "approved", "")),
				dep(106, "blocked", appr(userAlice, "approved", ""), appr(userDeveloper, "approved", ""), appr(userCarol, "approved", ""), appr(userMaintainer, "approved", "")),
				dep(107, "blocked", appr(userDeveloper, "approved", ""), appr(userCarol, "rejected", "")),
			},
		}},
	}
}

func TestE2EApprovalSummaries(t *testing.T) {
	s := startServer(t, approvalDoc())
	vars := func(id int) map[string]any { return map[string]any{"p": "acme/app", "id": fmt.Sprint(id)} }
	const alice, group, maint = "Alice Able", "approvers", "Maintainers"
	cases := []struct {
		name    string
		id      int
		pending int
		summary string
		rules   []ruleWant
	}{
		{"no approvals yet", 101, 4, "PENDING_APPROVAL", []ruleWant{
			{alice, 1, 0, 1, "PENDING_APPROVAL", nil}, {group, 2, 0, 2, "PENDING_APPROVAL", nil}, {maint, 1, 0, 1, "PENDING_APPROVAL", nil}}},
		{"a user rule approved", 102, 3, "PENDING_APPROVAL", []ruleWant{
			{alice, 1, 1, 0, "APPROVED", []string{"alice"}}, {group, 2, 0, 2, "PENDING_APPROVAL", nil}, {maint, 1, 0, 1, "PENDING_APPROVAL", nil}}},
		{"a rejection rejects its rule and the summary and does not count", 103, 4, "REJECTED", []ruleWant{
			{alice, 1, 0, 1, "PENDING_APPROVAL", nil}, {group, 2, 0, 2, "REJECTED", []string{"dev"}}, {maint, 1, 0, 1, "PENDING_APPROVAL", nil}}},
		{"representedAs picks the rule; an admin without it counts for the first rule", 104, 2, "PENDING_APPROVAL", []ruleWant{
			{alice, 1, 1, 0, "APPROVED", []string{"root"}}, {group, 2, 0, 2, "PENDING_APPROVAL", nil}, {maint, 1, 1, 0, "APPROVED", []string{"maint"}}}},
		{"an admin represented as a group counts for that group", 105, 2, "PENDING_APPROVAL", []ruleWant{
			{alice, 1, 0, 1, "PENDING_APPROVAL", nil}, {group, 2, 2, 0, "APPROVED", []string{"dev", "root"}}, {maint, 1, 0, 1, "PENDING_APPROVAL", nil}}},
		{"every rule approved", 106, 0, "APPROVED", []ruleWant{
			{alice, 1, 1, 0, "APPROVED", []string{"alice"}}, {group, 2, 2, 0, "APPROVED", []string{"carol", "dev"}}, {maint, 1, 1, 0, "APPROVED", []string{"maint"}}}},
		{"one rejection among approvals", 107, 3, "REJECTED", []ruleWant{
			{alice, 1, 0, 1, "PENDING_APPROVAL", nil}, {group, 2, 1, 1, "REJECTED", []string{"carol", "dev"}}, {maint, 1, 0, 1, "PENDING_APPROVAL", nil}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dep := get(s.mustQuery(t, rootToken, approvalQuery, vars(c.id)), "project.deployment")
			checkApprovals(t, dep, c.pending, c.summary, c.rules)
		})
	}
	t.Run("rejection keeps its comment", func(t *testing.T) {
		dep := get(s.mustQuery(t, rootToken, approvalQuery, vars(103)), "project.deployment")
		want := []any{map[string]any{"user": map[string]any{"username": "dev"}, "status": "REJECTED", "comment": "not yet", "createdAt": fmtTime(*tp(502)), "representedAs": nil}}
		if got := get(dep, "approvals"); !equalJSON(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("canApprove per caller", func(t *testing.T) {
		for user, want := range map[int64][]bool{
			userDeveloper:  {false, true, false},
			userCarol:      {false, true, false},
			userAlice:      {true, false, false},
			userMaintainer: {false, false, true},
			userReporter:   {false, false, false},
			userRoot:       {true, true, true},
		} {
			token := rootToken
			if user != userRoot {
				token = s.tokenFor(t, user)
			}
			dep := get(s.mustQuery(t, token, approvalQuery, vars(101)), "project.deployment")
			if got := canApprove(dep); !slices.Equal(got, want) {
				t.Errorf("user %d: got %v, want %v", user, got, want)
			}
		}
	})

	t.Run("fixture deployment 10: approvers approved, a maintainer still missing", func(t *testing.T) {
		f := startServer(t, fixtureDoc(20))
		dep := get(f.mustQuery(t, rootToken, approvalQuery, map[string]any{"p": "acme/app", "id": "10"}), "project.deployment")
		checkApprovals(t, dep, 1, "PENDING_APPROVAL", []ruleWant{
			{"approvers", 1, 1, 0, "APPROVED", []string{"dev"}}, {"Maintainers", 1, 0, 1, "PENDING_APPROVAL", nil}})
		if got := pluck(list(dep, "approvals"), "user.username"); !equalJSON(got, []any{"dev"}) {
			t.Errorf("approvals: got %v", got)
		}
		// Deployment 20 is in staging, which is not protected.
		dep = get(f.mustQuery(t, rootToken, approvalQuery, map[string]any{"p": "acme/app", "id": "20"}), "project.deployment")
		if get(dep, "pendingApprovalCount") != float64(0) || len(list(dep, "approvalSummary.rules")) != 0 || len(list(dep, "approvals")) != 1 {
			t.Errorf("deployment 20: got %v, want 0 pending, no rules, its one approval", dep)
		}
	})
}

type fxMR struct {
	ID                 int64
	Title, Description string
	State              string
	Source, Target     string
	Author             string
	Labels             []string
	Draft              bool
	Created, Updated   int // minutes
	Merged             int // minutes; 0: not merged
	Linked             bool
}

var mrFixture = []fxMR{
	{ID: 11, Title: "Fix login bug", Description: "Users could not sign in", State: "MERGED", Source: "fix-login", Target: "main", Author: "dev", Labels: []string{"backend", "bug"}, Created: 10, Updated: 50, Merged: 60, Linked: true},
	{ID: 12, Title: "Add dashboard", Description: "A new page", State: "MERGED", Source: "dashboard", Target: "main", Author: "maint", Labels: []string{"frontend"}, Created: 30, Updated: 40, Merged: 45, Linked: true},
	{ID: 13, Title: "Session timeout", Description: "Expire the LOGIN session", State: "MERGED", Source: "session", Target: "release", Author: "dev", Labels: []string{"backend"}, Created: 20, Updated: 90, Merged: 70, Linked: true},
	{ID: 14, Title: "Draft: Dark mode", Description: "", State: "OPENED", Source: "dark", Target: "main", Author: "root", Labels: []string{"frontend", "bug"}, Draft: true, Created: 50, Updated: 55, Linked: true},
	{ID: 15, Title: "Cache lookups", Description: "Faster login page", State: "CLOSED", Source: "cache", Target: "main", Author: "maint", Labels: nil, Created: 5, Updated: 80, Linked: true},
	{ID: 16, Title: "Bump deps", Description: "Routine", State: "LOCKED", Source: "deps", Target: "release", Author: "root", Labels: []string{"bug"}, Created: 40, Updated: 45, Linked: true},
	{ID: 17, Title: "Experiment", Description: "login experiment", State: "OPENED", Source: "exp", Target: "main", Author: "dev", Labels: []string{"backend", "bug"}, Draft: false, Created: 60, Updated: 65, Linked: true},
	{ID: 18, Title: "Not shipped", Description: "login", State: "MERGED", Source: "fix-login", Target: "main", Author: "dev", Labels: []string{"backend", "bug"}, Created: 15, Updated: 50, Merged: 61, Linked: false},
}

func mrDoc() map[string]any {
	doc := fixtureDoc(1)
	p := docProjects(doc)[0]
	userIDs := map[string]int{"root": userRoot, "dev": userDeveloper, "maint": userMaintainer}
	var mrs []map[string]any
	links := []map[string]any{}
	for i, m := range mrFixture {
		mr := map[string]any{
			"id": m.ID, "iid": i + 1, "title": m.Title, "description": m.Description, "state": strings.ToLower(m.State),
			"source_branch": m.Source, "target_branch": m.Target, "author": map[string]any{"id": userIDs[m.Author]},
			"labels": m.Labels, "draft": m.Draft, "created_at": at(m.Created), "updated_at": at(m.Updated),
		}
		if m.Merged != 0 {
			mr["merged_at"] = at(m.Merged)
		}
		mrs = append(mrs, mr)
		if m.Linked {
			links = append(links, map[string]any{"deployment_id": 1, "merge_request_id": m.ID})
		}
	}
	p["merge_requests"], p["deployment_merge_requests"] = mrs, links
	return doc
}

func TestE2EDeploymentMergeRequests(t *testing.T) {
	s := startServer(t, mrDoc())
	token := s.tokenFor(t, userReporter)
	sortMRs := func(ms []fxMR, orderBy string, desc bool) []int64 {
		ms = slices.Clone(ms)
		key := func(m fxMR) string {
			switch orderBy {
			case "CREATED_AT":
				return fmt.Sprintf("%06d", m.Created)
			case "UPDATED_AT":
				return fmt.Sprintf("%06d", m.Updated)
			case "MERGED_AT":
				return fmt.Sprintf("%06d", m.Merged)
			case "TITLE":
				return m.Title
			}
			panic(orderBy)
		}
		sort.SliceStable(ms, func(i, j int) bool {
			a, b := key(ms[i]), key(ms[j])
			if a == b {
				return desc != (ms[i].ID < ms[j].ID)
			}
			return desc != (a < b)
		})
		var ids []int64
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids
	}
	linked := func(keep func(fxMR) bool) []fxMR {
		var out []fxMR
		for _, m := range mrFixture {
			if m.Linked && (keep == nil || keep(m)) {
				out = append(out, m)
			}
		}
		return out
	}
	hasLabels := func(ls ...string) func(fxMR) bool {
		return func(m fxMR) bool {
			for _, l := range ls {
				if !slices.Contains(m.Labels, l) {
					return false
				}
			}
			return true
		}
	}
	search := func(s string) func(fxMR) bool {
		return func(m fxMR) bool {
			return strings.Contains(strings.ToLower(m.Title), s) || strings.Contains(strings.ToLower(m.Description), s)
		}
	}
	// Window bounds fall between the data's values, so they hold whether
	// the bounds are inclusive or not.
	cases := []struct {
		name, args string
		keep       func(fxMR) bool
		order      string
		desc       bool
	}{
		{"default order is CREATED_AT DESC", "", nil, "CREATED_AT", true},
		{"sort ASC alone orders by CREATED_AT ASC", "sort: ASC", nil, "CREATED_AT", false},
		{"ordered by UPDATED_AT", "orderBy: UPDATED_AT, sort: ASC", nil, "UPDATED_AT", false},
		{"ordered by UPDATED_AT DESC", "orderBy: UPDATED_AT", nil, "UPDATED_AT", true},
		{"ordered by TITLE ASC", "orderBy: TITLE, sort: ASC", nil, "TITLE", false},
		{"ordered by TITLE DESC", "orderBy: TITLE", nil, "TITLE", true},
		{"merged ones ordered by MERGED_AT", "state: MERGED, orderBy: MERGED_AT, sort: ASC", func(m fxMR) bool { return m.State == "MERGED" }, "MERGED_AT", false},
		{"state OPENED", "state: OPENED", func(m fxMR) bool { return m.State == "OPENED" }, "CREATED_AT", true},
		{"state CLOSED", "state: CLOSED", func(m fxMR) bool { return m.State == "CLOSED" }, "CREATED_AT", true},
		{"state LOCKED", "state: LOCKED", func(m fxMR) bool { return m.State == "LOCKED" }, "CREATED_AT", true},
		{"one label", `labels: ["bug"]`, hasLabels("bug"), "CREATED_AT", true},
		{"every label must match", `labels: ["backend", "bug"]`, hasLabels("backend", "bug"), "CREATED_AT", true},
		{"search in title and description, case-insensitive", `search: "login"`, search("login"), "CREATED_AT", true},
		{"authorUsername", `authorUsername: "maint"`, func(m fxMR) bool { return m.Author == "maint" }, "CREATED_AT", true},
		{"sourceBranch", `sourceBranch: "fix-login"`, func(m fxMR) bool { return m.Source == "fix-login" }, "CREATED_AT", true},
		{"targetBranch", `targetBranch: "release"`, func(m fxMR) bool { return m.Target == "release" }, "CREATED_AT", true},
		{"created window", "createdAfter: " + tq(fixtureBase.Add(12*time.Minute)) + ", createdBefore: " + tq(fixtureBase.Add(45*time.Minute)),
			func(m fxMR) bool { return m.Created > 12 && m.Created < 45 }, "CREATED_AT", true},
		{"updated window", "updatedAfter: " + tq(fixtureBase.Add(52*time.Minute)) + ", updatedBefore: " + tq(fixtureBase.Add(85*time.Minute)),
			func(m fxMR) bool { return m.Updated > 52 && m.Updated < 85 }, "CREATED_AT", true},
		{"created window whose end precedes its start", "createdAfter: " + tq(fixtureBase.Add(45*time.Minute)) + ", createdBefore: " + tq(fixtureBase.Add(12*time.Minute)),
			func(fxMR) bool { return false }, "CREATED_AT", true},
		{"draft true", "draft: true", func(m fxMR) bool { return m.Draft }, "CREATED_AT", true},
		{"draft false", "draft: false", func(m fxMR) bool { return !m.Draft }, "CREATED_AT", true},
		{"filters combined with TITLE ASC", `state: MERGED, labels: ["backend"], authorUsername: "dev", orderBy: TITLE, sort: ASC`,
			func(m fxMR) bool { return m.State == "MERGED" && hasLabels("backend")(m) && m.Author == "dev" }, "TITLE", false},
		{"search and targetBranch and draft", `search: "LOGIN", targetBranch: "main", draft: false, orderBy: UPDATED_AT`,
			func(m fxMR) bool { return search("login")(m) && m.Target == "main" && !m.Draft }, "UPDATED_AT", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := sortMRs(linked(c.keep), c.order, c.desc)
			args := "first: 100"
			if c.args != "" {
				args = c.args + ", " + args
			}
			p, ok := fetchConnection(t, s, token, `{ project(id: "acme/app") { deployment(iid: 1) { mergeRequests(`+args+`) { `+depConnFields+` } } } }`,
				"project.deployment.mergeRequests", "MergeRequest")
			if !ok {
				return
			}
			if !slices.Equal(p.IDs, want) {
				t.Errorf("%s: got %v, want %v", c.args, fmtIDs(p.IDs), fmtIDs(want))
			}
			if p.Count != len(want) {
				t.Errorf("count: got %d, want %d", p.Count, len(want))
			}
		})
	}
	t.Run("pagination both ways", func(t *testing.T) {
		want := sortMRs(linked(nil), "CREATED_AT", true)
		fetch := func(a string) (depPage, bool) {
			return fetchConnection(t, s, token, `{ project(id: "acme/app") { deployment(iid: 1) { mergeRequests(`+a+`) { `+depConnFields+` } } } }`,
				"project.deployment.mergeRequests", "MergeRequest")
		}
		walkForwardWith(t, fetch, "", 3, want)
		walkBackwardWith(t, fetch, "", 3, want)
	})
	t.Run("merge request deployments answer where it shipped", func(t *testing.T) {
		for i, m := range mrFixture {
			d := s.mustQuery(t, token, fmt.Sprintf(`{ project(id: "acme/app") { mergeRequest(iid: %d) { id deployments { count nodes { id } } } } }`, i+1), nil)
			var want []any
			if m.Linked {
				want = []any{gid("Deployment", 1)}
			}
			if got := pluck(list(d, "project.mergeRequest.deployments.nodes"), "id"); !equalJSON(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("merge request %d: got %v, want %v", m.ID, got, want)
			}
		}
	})
	t.Run("merge request fields", func(t *testing.T) {
		d := s.mustQuery(t, token, `{ project(id: "acme/app") { mergeRequest(iid: 1) { id iid title description state sourceBranch targetBranch author { username } labels draft createdAt updatedAt mergedAt project { fullPath } } } }`, nil)
		want := map[string]any{"id": gid("MergeRequest", 11), "iid": 1, "title": "Fix login bug", "description": "Users could not sign in", "state": "MERGED",
			"sourceBranch": "fix-login", "targetBranch": "main", "author": map[string]any{"username": "dev"}, "labels": []any{"backend", "bug"}, "draft": false,
			"createdAt": fmtTime(*tp(10)), "updatedAt": fmtTime(*tp(50)), "mergedAt": fmtTime(*tp(60)), "project": map[string]any{"fullPath": "acme/app"}}
		if got := get(d, "project.mergeRequest"); !equalJSON(got, want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})
}

// importCase breaks a valid document in one or more places; want is the
// JSON path of the first problem.
type importCase struct {
	name   string
	want   string
	mutate func(doc map[string]any)
}

// ownEnvironments gives a project its own copies of the environment maps
// (fixtureDoc shares them between documents).
func ownEnvironments(p map[string]any) []map[string]any {
	var out []map[string]any
	for _, e := range p["environments"].([]map[string]any) {
		c := map[string]any{}
		for k, v := range e {
			c[k] = v
		}
		out = append(out, c)
	}
	p["environments"] = out
	return out
}

func TestE2EImportValidation(t *testing.T) {
	deps := func(doc map[string]any) []map[string]any {
		return docProjects(doc)[0]["deployments"].([]map[string]any)
	}
	cases := []importCase{
		{"unknown deployment status", "projects[0].deployments[0].status", func(d map[string]any) { deps(d)[0]["status"] = "done" }},
		{"the first of two problems", "projects[0].deployments[2].status", func(d map[string]any) {
			deps(d)[2]["status"] = "finished"
			deps(d)[4]["sha"] = "xyz"
		}},
		{"a bad sha", "projects[0].deployments[4].sha", func(d map[string]any) { deps(d)[4]["sha"] = "xyz" }},
		{"an unparseable time", "projects[0].deployments[1].created_at", func(d map[string]any) { deps(d)[1]["created_at"] = "yesterday" }},
		{"a deployment in an unknown environment", "projects[0].deployments[1].environment", func(d map[string]any) {
			deps(d)[1]["environment"] = map[string]any{"id": 999, "name": "nope"}
		}},
		{"an unknown user state", "users[1].state", func(d map[string]any) { d["users"].([]map[string]any)[1]["state"] = "sleeping" }},
		{"an unknown visibility in a later project", "projects[1].visibility", func(d map[string]any) { docProjects(d)[1]["visibility"] = "secret" }},
		{"a bad environment name", "projects[0].environments[0].name", func(d map[string]any) { ownEnvironments(docProjects(d)[0])[0]["name"] = "/bad" }},
		{"a duplicate environment name", "projects[0].environments[1].name", func(d map[string]any) { ownEnvironments(docProjects(d)[0])[1]["name"] = "production" }},
		{"a malformed slug", "projects[0].environments[2].slug", func(d map[string]any) { ownEnvironments(docProjects(d)[0])[2]["slug"] = "Bad Slug" }},
		{"an unknown merge request state", "projects[0].merge_requests[3].state", func(d map[string]any) {
			docProjects(d)[0]["merge_requests"].([]map[string]any)[3]["state"] = "open"
		}},
		{"a link to a missing merge request", "projects[0].deployment_merge_requests[0]", func(d map[string]any) {
			docProjects(d)[0]["deployment_merge_requests"].([]map[string]any)[0]["merge_request_id"] = 99999
		}},
		{"an unknown approval status", "projects[0].deployments[9].approvals[0].status", func(d map[string]any) {
			deps(d)[9]["approvals"].([]map[string]any)[0]["status"] = "maybe"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			doc := fixtureDoc(10)
			c.mutate(doc)
			cfg := config{db: filepath.Join(dir, "deploygraph.db"), adminToken: rootToken, introspection: true, importFile: writeDoc(t, dir, "bad.json", doc)}
			a, err := newApp(context.Background(), cfg, store.Options{NoSync: true})
			if err == nil {
				a.store.Close()
				t.Fatalf("import succeeded, want an error at %s", c.want)
			}
			msg := strings.TrimPrefix(err.Error(), "import "+cfg.importFile+": ")
			if !strings.HasPrefix(msg, c.want) {
				t.Errorf("error: got %q, want it to start with %q", msg, c.want)
			}
			// Nothing of the refused file is stored.
			cfg.importFile = ""
			s := serve(t, cfg)
			data := s.mustQuery(t, rootToken, `{ projects { count } }`, nil)
			if got := get(data, "projects.count"); got != float64(0) {
				t.Errorf("projects after a refused import: got %v, want 0", got)
			}
			// A missing user may be null with or without a NOT_FOUND error.
			r := s.query(t, rootToken, `{ dev: user(username: "dev") { id } }`, nil)
			if r.Data == nil || r.Data["dev"] != nil {
				t.Errorf("user dev after a refused import: got %s, want null", r.raw)
			}
		})
	}
}

// The server answers a query whole, in one response: fields under @defer
// are resolved with the rest of their object (graph/generate), and the
// answer is the same as without the directive.
func TestE2EDeferredFragmentsAnswerInOneResponse(t *testing.T) {
	s := startServer(t, fixtureDoc(12))
	token := s.tokenFor(t, userDeveloper)
	const plain = `{ project(id: "acme/app") { deployments(first: 4) { nodes { iid ref environment { name } user { username } } } } }`
	cases := []struct{ name, query string }{
		{"an inline fragment", `{ project(id: "acme/app") { deployments(first: 4) { nodes { iid ... @defer(label: "more") { ref environment { name } user { username } } } } } }`},
		{"a named fragment", `query { project(id: "acme/app") { deployments(first: 4) { nodes { iid ...More @defer } } } }
			fragment More on Deployment { ref environment { name } user { username } }`},
		{"nested fragments", `{ project(id: "acme/app") { deployments(first: 4) { nodes { iid ... @defer { ref ... @defer(label: "inner") { environment { name } user { username } } } } } } }`},
	}
	want := s.mustQuery(t, token, plain, nil)
	if n := len(get(want, "project.deployments.nodes").([]any)); n != 4 {
		t.Fatalf("fixture: %d deployments, want 4", n)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.query(t, token, c.query, nil)
			if r.Status != http.StatusOK || len(r.Errors) > 0 {
				t.Fatalf("status %d: %s", r.Status, r.raw)
			}
			if !equalJSON(r.Data, want) {
				t.Errorf("got %s, want the answer without @defer: %v", r.raw, want)
			}
			if bytes.Contains(r.raw, []byte("hasNext")) {
				t.Errorf("the answer announces more parts: %s", r.raw)
			}
		})
	}
}
