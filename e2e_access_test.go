package main

// End-to-end tests of who may read what (SPEC 2 "Authentication", 4, 6.1).

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

const (
	userBlocked     = 7 // blocked; REPORTER in acme/app
	userDeactivated = 8 // deactivated; REPORTER in acme/app
	groupLeads      = 11
)

// accessDoc is fixtureDoc(12) plus blocked and deactivated members, some
// contents in the internal and public projects and a subgroup.
func accessDoc() map[string]any {
	doc := fixtureDoc(12)
	doc["users"] = append(doc["users"].([]map[string]any),
		map[string]any{"id": userBlocked, "username": "blocked", "name": "Blocked User", "state": "blocked"},
		map[string]any{"id": userDeactivated, "username": "deact", "name": "Deactivated User", "state": "deactivated"},
	)
	doc["groups"] = append(doc["groups"].([]map[string]any),
		map[string]any{"id": groupLeads, "name": "leads", "path": "leads", "full_path": "approvers/leads"})
	ps := docProjects(doc)
	ps[0]["members"] = append(ps[0]["members"].([]map[string]any),
		map[string]any{"user_id": userBlocked, "access_level": 20}, map[string]any{"user_id": userDeactivated, "access_level": 20})
	ps[1]["merge_requests"] = []map[string]any{{
		"id": 900, "iid": 1, "title": "Public MR", "state": "opened", "source_branch": "x", "target_branch": "main",
		"author": map[string]any{"id": userRoot}, "created_at": at(1), "updated_at": at(1),
	}}
	ps[2]["environments"] = []map[string]any{{"id": 60, "name": "production", "state": "available", "created_at": at(0), "updated_at": at(0)}}
	ps[2]["deployments"] = []map[string]any{{
		"id": 6000, "iid": 1, "ref": "main", "sha": sha(6000), "tag": false, "status": "success",
		"created_at": at(1), "updated_at": at(2), "finished_at": at(2),
		"user": map[string]any{"id": userRoot}, "environment": map[string]any{"id": 60, "name": "production"},
		"deployable": map[string]any{
			"id": 7000, "name": "deploy", "stage": "deploy", "status": "success", "ref": "main", "tag": false, "created_at": at(1),
			"commit":   map[string]any{"id": sha(6000), "message": "Tools"},
			"pipeline": map[string]any{"id": 8000, "sha": sha(6000), "ref": "main", "status": "success"},
		},
	}}
	ps[2]["merge_requests"] = []map[string]any{{
		"id": 901, "iid": 1, "title": "Internal MR", "state": "opened", "source_branch": "y", "target_branch": "main",
		"author": map[string]any{"id": userRoot}, "created_at": at(1), "updated_at": at(1),
	}}
	return doc
}

// accessProject describes one project of accessDoc and some of its records.
type accessProject struct {
	id                                     int64
	path                                   string
	deployment, environment, job, pipeline int64
	mergeRequest, mrIID, deploymentIID     int64
	envName                                string
	see, read                              []string // viewers who see the project / read its contents
}

var (
	everyone     = []string{"anonymous", "outsider", "guest", "reporter", "developer", "maintainer", "admin"}
	signedIn     = everyone[1:]
	members      = []string{"guest", "reporter", "developer", "maintainer", "admin"}
	reportersUp  = []string{"reporter", "developer", "maintainer", "admin"}
	accessViewer = map[string]int64{"outsider": userOutsider, "guest": userGuest, "reporter": userReporter, "developer": userDeveloper, "maintainer": userMaintainer, "admin": userRoot}
)

var accessProjects = []accessProject{
	{id: 1, path: "acme/app", deployment: 1, deploymentIID: 1, environment: 1, envName: "production", job: 1001, pipeline: 2001, mergeRequest: 2, mrIID: 2, see: members, read: reportersUp},
	{id: 2, path: "acme/site", deployment: 5000, deploymentIID: 1, environment: 50, envName: "production", mergeRequest: 900, mrIID: 1, see: everyone, read: everyone},
	{id: 3, path: "acme/tools", deployment: 6000, deploymentIID: 1, environment: 60, envName: "production", job: 7000, pipeline: 8000, mergeRequest: 901, mrIID: 1, see: signedIn, read: signedIn},
}

// expectAccess checks one response against the three possible outcomes:
// "ok" (the value at path is present, no error), "FORBIDDEN" or "NOT_FOUND"
// (that error, and nothing at path).
func expectAccess(t *testing.T, r gqlResponse, path, want string) {
	t.Helper()
	switch want {
	case "ok":
		if len(r.Errors) > 0 || get(r.Data, path) == nil {
			t.Errorf("got %s, want %s readable", r.raw, path)
		}
	default:
		if !slices.Contains(r.codes(), want) {
			t.Errorf("error codes: got %v (%s), want %s", r.codes(), r.raw, want)
		}
		if get(r.Data, path) != nil {
			t.Errorf("got data at %s: %s, want none", path, r.raw)
		}
	}
}

func TestE2EAccess(t *testing.T) {
	s := startServer(t, accessDoc())
	tokens := map[string]string{"anonymous": ""}
	for name, id := range accessViewer {
		tokens[name] = s.tokenFor(t, id)
	}

	for _, p := range accessProjects {
		for _, viewer := range everyone {
			see, read := slices.Contains(p.see, viewer), slices.Contains(p.read, viewer)
			projectOutcome, contentOutcome := "NOT_FOUND", "NOT_FOUND"
			if see {
				projectOutcome, contentOutcome = "ok", "FORBIDDEN"
			}
			if read {
				contentOutcome = "ok"
			}
			token := tokens[viewer]
			t.Run(fmt.Sprintf("%s reads %s project: %s", viewer, p.path, projectOutcome), func(t *testing.T) {
				for _, ref := range []string{fmt.Sprint(p.id), gid("Project", p.id), p.path} {
					r := s.query(t, token, `query($id: ID!) { project(id: $id) { id fullPath } }`, map[string]any{"id": ref})
					expectAccess(t, r, "project.id", projectOutcome)
					if projectOutcome == "ok" && get(r.Data, "project.id") != gid("Project", p.id) {
						t.Errorf("project(id: %q): got %v", ref, get(r.Data, "project.id"))
					}
					if projectOutcome != "ok" && len(r.Errors) > 0 && fmt.Sprint(r.Errors[0].Path) != "[project]" {
						t.Errorf("project(id: %q): error path got %v, want [project]", ref, r.Errors[0].Path)
					}
				}
				r := s.query(t, token, `query($id: ID!) { node(id: $id) { id ... on Project { fullPath } } }`, map[string]any{"id": gid("Project", p.id)})
				expectAccess(t, r, "node.id", projectOutcome)
				r = s.query(t, token, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{gid("Project", p.id)}})
				if nodes := list(r.Data, "nodes"); len(nodes) != 1 {
					t.Errorf("nodes: got %s, want a list of one", r.raw)
				} else if (nodes[0] != nil) != (projectOutcome == "ok") {
					t.Errorf("nodes: got %s, want visible=%v", r.raw, projectOutcome == "ok")
				} else if projectOutcome != "ok" && !slices.Contains(r.codes(), "NOT_FOUND") {
					t.Errorf("nodes: error codes got %v, want NOT_FOUND", r.codes())
				}
				data := s.mustQuery(t, token, `{ projects(first: 100) { count nodes { id } } }`, nil)
				if got := slices.Contains(pluck(list(data, "projects.nodes"), "id"), any(gid("Project", p.id))); got != see {
					t.Errorf("projects list contains %s: got %v, want %v", p.path, got, see)
				}
			})
			t.Run(fmt.Sprintf("%s reads %s contents: %s", viewer, p.path, contentOutcome), func(t *testing.T) {
				for field, sel := range map[string]string{
					"environments":  "environments { count nodes { id } }",
					"deployments":   "deployments { count nodes { id } }",
					"mergeRequests": "mergeRequests { count nodes { id } }",
					"environment":   fmt.Sprintf("environment(name: %q) { id }", p.envName),
					"deployment":    fmt.Sprintf("deployment(iid: %d) { id }", p.deploymentIID),
					"mergeRequest":  fmt.Sprintf("mergeRequest(iid: %d) { id }", p.mrIID),
				} {
					r := s.query(t, token, fmt.Sprintf(`{ project(id: %q) { %s } }`, p.path, sel), nil)
					// On failure the field, or the whole project when the field
					// is non-null, is null.
					expectAccess(t, r, "project."+field, contentOutcome)
				}
				objects := map[string]int64{"Deployment": p.deployment, "Environment": p.environment, "MergeRequest": p.mergeRequest}
				if p.job != 0 {
					objects["Job"], objects["Pipeline"] = p.job, p.pipeline
				}
				for typ, id := range objects {
					r := s.query(t, token, `query($id: ID!) { node(id: $id) { id __typename } }`, map[string]any{"id": gid(typ, id)})
					expectAccess(t, r, "node.id", contentOutcome)
					if contentOutcome == "ok" && get(r.Data, "node.__typename") != typ {
						t.Errorf("node(%s): __typename got %v", gid(typ, id), get(r.Data, "node.__typename"))
					}
					r = s.query(t, token, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{gid(typ, id)}})
					nodes := list(r.Data, "nodes")
					if len(nodes) != 1 || (nodes[0] != nil) != (contentOutcome == "ok") {
						t.Errorf("nodes(%s): got %s, want readable=%v", gid(typ, id), r.raw, contentOutcome == "ok")
					}
					if contentOutcome != "ok" && !slices.Contains(r.codes(), contentOutcome) {
						t.Errorf("nodes(%s): codes got %v, want %s", gid(typ, id), r.codes(), contentOutcome)
					}
				}
			})
		}
	}

	t.Run("an invisible project is the same error as a missing one", func(t *testing.T) {
		for _, viewer := range []string{"anonymous", "outsider"} {
			pairs := [][2]string{
				{`project(id: "acme/app") { id }`, `project(id: "acme/missing") { id }`},
				{`project(id: "1") { id }`, `project(id: "999") { id }`},
				{`project(id: "gid://deploygraph/Project/1") { id }`, `project(id: "gid://deploygraph/Project/999") { id }`},
				{`node(id: "gid://deploygraph/Project/1") { id }`, `node(id: "gid://deploygraph/Project/999") { id }`},
				{`node(id: "gid://deploygraph/Deployment/1") { id }`, `node(id: "gid://deploygraph/Deployment/99999") { id }`},
				{`node(id: "gid://deploygraph/Environment/1") { id }`, `node(id: "gid://deploygraph/Environment/99999") { id }`},
				{`node(id: "gid://deploygraph/Job/1001") { id }`, `node(id: "gid://deploygraph/Job/99999") { id }`},
				{`node(id: "gid://deploygraph/Pipeline/2001") { id }`, `node(id: "gid://deploygraph/Pipeline/99999") { id }`},
				{`node(id: "gid://deploygraph/MergeRequest/2") { id }`, `node(id: "gid://deploygraph/MergeRequest/99999") { id }`},
			}
			if viewer == "anonymous" {
				pairs = append(pairs, [2]string{`project(id: "acme/tools") { id }`, `project(id: "acme/missing") { id }`})
			}
			for _, pair := range pairs {
				a := s.query(t, tokens[viewer], "{ "+pair[0]+" }", nil)
				b := s.query(t, tokens[viewer], "{ "+pair[1]+" }", nil)
				if len(a.Errors) != 1 || len(b.Errors) != 1 {
					t.Errorf("%s: %s gave %s; %s gave %s; want one NOT_FOUND error each", viewer, pair[0], a.raw, pair[1], b.raw)
					continue
				}
				ea, eb := a.Errors[0], b.Errors[0]
				if ea.Message != eb.Message || !equalJSON(ea.Extensions, eb.Extensions) || !equalJSON(a.Data, b.Data) || fmt.Sprint(ea.Path) != fmt.Sprint(eb.Path) {
					t.Errorf("%s: hidden %s answers %s; missing %s answers %s; want the same", viewer, pair[0], a.raw, pair[1], b.raw)
				}
				if !slices.Contains(a.codes(), "NOT_FOUND") {
					t.Errorf("%s: %s: codes %v, want NOT_FOUND", viewer, pair[0], a.codes())
				}
			}
		}
	})

	t.Run("nodes: a hidden object is the same error as a missing one", func(t *testing.T) {
		for _, typ := range []struct {
			name           string
			hidden, absent int64
		}{{"Project", 1, 999}, {"Deployment", 1, 99999}, {"Environment", 1, 99999}, {"Job", 1001, 99999}, {"Pipeline", 2001, 99999}, {"MergeRequest", 2, 99999}} {
			r := s.query(t, tokens["outsider"], `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
				map[string]any{"ids": []string{gid(typ.name, typ.hidden), gid(typ.name, typ.absent)}})
			if len(r.Errors) != 2 || !equalJSON(list(r.Data, "nodes"), []any{nil, nil}) {
				t.Errorf("%s: got %s, want [null, null] and two errors", typ.name, r.raw)
				continue
			}
			if r.Errors[0].Message != r.Errors[1].Message || !equalJSON(r.Errors[0].Extensions, r.Errors[1].Extensions) {
				t.Errorf("%s: hidden gives %q %v, missing gives %q %v; want the same", typ.name,
					r.Errors[0].Message, r.Errors[0].Extensions, r.Errors[1].Message, r.Errors[1].Extensions)
			}
		}
	})
	t.Run("projects list by viewer", func(t *testing.T) {
		want := map[string][]any{
			"anonymous": {gid("Project", 2)},
			"outsider":  {gid("Project", 2), gid("Project", 3)},
			"guest":     {gid("Project", 1), gid("Project", 2), gid("Project", 3)},
			"admin":     {gid("Project", 1), gid("Project", 2), gid("Project", 3)},
		}
		for viewer, ids := range want {
			data := s.mustQuery(t, tokens[viewer], `{ projects { count nodes { id } } }`, nil)
			if got := pluck(list(data, "projects.nodes"), "id"); !equalJSON(got, ids) {
				t.Errorf("%s: got %v, want %v (by id)", viewer, got, ids)
			}
			if got := get(data, "projects.count"); got != float64(len(ids)) {
				t.Errorf("%s: count got %v, want %d", viewer, got, len(ids))
			}
		}
	})
	t.Run("projects paginate by id", func(t *testing.T) {
		fetch := func(a string) (depPage, bool) {
			return fetchConnection(t, s, rootToken, `{ projects(`+a+`) { `+depConnFields+` } }`, "projects", "Project")
		}
		walkForwardWith(t, fetch, "", 1, []int64{1, 2, 3})
		walkBackwardWith(t, fetch, "", 2, []int64{1, 2, 3})
		fetchOutsider := func(a string) (depPage, bool) {
			return fetchConnection(t, s, tokens["outsider"], `{ projects(`+a+`) { `+depConnFields+` } }`, "projects", "Project")
		}
		walkForwardWith(t, fetchOutsider, "", 1, []int64{2, 3})
	})
	t.Run("projects with membership", func(t *testing.T) {
		want := map[string][]any{
			"developer": {gid("Project", 1)},
			"guest":     {gid("Project", 1)},
			"outsider":  {},
			"admin":     {}, // root is a member of nothing in the fixture
		}
		for viewer, ids := range want {
			data := s.mustQuery(t, tokens[viewer], `{ projects(membership: true) { count nodes { id } } }`, nil)
			if got := pluck(list(data, "projects.nodes"), "id"); !equalJSON(got, ids) {
				t.Errorf("%s: got %v, want %v", viewer, got, ids)
			}
			if got := get(data, "projects.count"); got != float64(len(ids)) {
				t.Errorf("%s: count got %v, want %d", viewer, got, len(ids))
			}
		}
	})
	t.Run("projects search", func(t *testing.T) {
		data := s.mustQuery(t, "", `{ projects(search: "site") { nodes { fullPath } } }`, nil)
		if got := pluck(list(data, "projects.nodes"), "fullPath"); !equalJSON(got, []any{"acme/site"}) {
			t.Errorf("got %v, want [acme/site]", got)
		}
		data = s.mustQuery(t, tokens["outsider"], `{ projects(search: "app") { nodes { fullPath } } }`, nil)
		if got := list(data, "projects.nodes"); len(got) != 0 {
			t.Errorf("search must not reveal a hidden project: got %v", got)
		}
	})
	t.Run("currentUser", func(t *testing.T) {
		r := s.query(t, "", `{ currentUser { username } }`, nil)
		if len(r.Errors) > 0 || r.Data == nil || r.Data["currentUser"] != nil {
			t.Errorf("anonymous: got %s, want currentUser null without error", r.raw)
		}
		for viewer, want := range map[string]string{"developer": "dev", "admin": "root", "outsider": "outsider"} {
			data := s.mustQuery(t, tokens[viewer], `{ currentUser { id username } }`, nil)
			if got := get(data, "currentUser.username"); got != want {
				t.Errorf("%s: got %v, want %s", viewer, got, want)
			}
		}
	})
	t.Run("currentUserAccessLevel", func(t *testing.T) {
		want := map[string]any{"guest": "GUEST", "reporter": "REPORTER", "developer": "DEVELOPER", "maintainer": "MAINTAINER", "admin": nil}
		for viewer, level := range want {
			data := s.mustQuery(t, tokens[viewer], `{ project(id: "acme/app") { currentUserAccessLevel } }`, nil)
			if got := get(data, "project.currentUserAccessLevel"); got != level {
				t.Errorf("%s in acme/app: got %v, want %v", viewer, got, level)
			}
		}
		for _, viewer := range []string{"anonymous", "outsider", "developer"} {
			data := s.mustQuery(t, tokens[viewer], `{ project(id: "acme/site") { currentUserAccessLevel } }`, nil)
			if got := get(data, "project.currentUserAccessLevel"); got != nil {
				t.Errorf("%s in acme/site (not a member): got %v, want null", viewer, got)
			}
		}
	})
	t.Run("user by id, global ID and username", func(t *testing.T) {
		for _, a := range []string{`id: "2"`, `id: "gid://deploygraph/User/2"`, `username: "dev"`} {
			data := s.mustQuery(t, tokens["reporter"], `{ user(`+a+`) { id username name state } }`, nil)
			want := map[string]any{"id": gid("User", 2), "username": "dev", "name": "Dev Eloper", "state": "ACTIVE"}
			if got := get(data, "user"); !equalJSON(got, want) {
				t.Errorf("user(%s): got %v, want %v", a, got, want)
			}
		}
		data := s.mustQuery(t, tokens["reporter"], `{ user(username: "blocked") { id state } }`, nil)
		if got := get(data, "user.state"); got != "BLOCKED" {
			t.Errorf("blocked user: state got %v, want BLOCKED", got)
		}
		for _, a := range []string{`id: "999"`, `username: "nobody"`} {
			r := s.query(t, tokens["reporter"], `{ user(`+a+`) { id } }`, nil)
			if r.Data == nil || r.Data["user"] != nil {
				t.Errorf("user(%s): got %s, want null", a, r.raw)
			}
		}
		for _, a := range []string{"", `(id: "2", username: "dev")`} {
			expectError(t, s.query(t, tokens["reporter"], `{ user`+a+` { id } }`, nil), "BAD_USER_INPUT", "")
		}
		expectError(t, s.query(t, tokens["reporter"], `{ user(id: "gid://deploygraph/Group/10") { id } }`, nil), "BAD_USER_INPUT", "")
	})
	t.Run("group by number, global ID and path", func(t *testing.T) {
		for ref, want := range map[string]map[string]any{
			"10":                         {"id": gid("Group", 10), "name": "approvers", "path": "approvers", "fullPath": "approvers"},
			"gid://deploygraph/Group/10": {"id": gid("Group", 10), "name": "approvers", "path": "approvers", "fullPath": "approvers"},
			"approvers":                  {"id": gid("Group", 10), "name": "approvers", "path": "approvers", "fullPath": "approvers"},
			"approvers/leads":            {"id": gid("Group", 11), "name": "leads", "path": "leads", "fullPath": "approvers/leads"},
			"gid://deploygraph/Group/11": {"id": gid("Group", 11), "name": "leads", "path": "leads", "fullPath": "approvers/leads"},
		} {
			data := s.mustQuery(t, tokens["developer"], `query($id: ID!) { group(id: $id) { id name path fullPath } }`, map[string]any{"id": ref})
			if got := get(data, "group"); !equalJSON(got, want) {
				t.Errorf("group(%q): got %v, want %v", ref, got, want)
			}
		}
		for _, ref := range []string{"999", "nope"} {
			r := s.query(t, tokens["developer"], `query($id: ID!) { group(id: $id) { id } }`, map[string]any{"id": ref})
			if r.Data == nil || r.Data["group"] != nil {
				t.Errorf("group(%q): got %s, want null", ref, r.raw)
			}
		}
		expectError(t, s.query(t, tokens["developer"], `{ group(id: "gid://deploygraph/Project/1") { id } }`, nil), "BAD_USER_INPUT", "")
	})
}

// Tokens that do not authenticate are refused, never taken as anonymous.
func TestE2EAccessTokens(t *testing.T) {
	clock := &fakeClock{now: time.Now().UTC()}
	dir := t.TempDir()
	c := config{db: dir + "/deploygraph.db", adminToken: rootToken, introspection: true, importFile: writeDoc(t, dir, "doc.json", accessDoc())}
	s, _ := openServer(t, c, store.Options{Clock: clock.Now})
	// A query that would succeed anonymously: a bad token must still fail.
	const anonymousOK = `{ project(id: "acme/site") { name } currentUser { username } }`
	send := func(t *testing.T, header, token string) gqlResponse {
		t.Helper()
		h := map[string]string{"PRIVATE-TOKEN": token}
		if header == "Authorization" {
			h = map[string]string{"Authorization": "Bearer " + token}
		}
		return s.queryHeaders(t, h, anonymousOK, nil)
	}
	expectUnauthenticated := func(t *testing.T, r gqlResponse) {
		t.Helper()
		expectError(t, r, "UNAUTHENTICATED", "")
		if get(r.Data, "project") != nil || get(r.Data, "currentUser") != nil {
			t.Errorf("a refused token still got data: %s", r.raw)
		}
	}

	devToken := s.tokenFor(t, userDeveloper)
	revokedSecret, revokedID := mintToken(t, s, userDeveloper, "to revoke", nil)
	revokeToken(t, s, revokedID)
	laterRevokedSecret, laterRevokedID := mintToken(t, s, userReporter, "revoked after use", nil)
	expiry := clock.Now().Add(time.Hour)
	expiringSecret, _ := mintToken(t, s, userReporter, "expiring", &expiry)
	blockedToken, deactToken := s.tokenFor(t, userBlocked), s.tokenFor(t, userDeactivated)

	for _, header := range []string{"Authorization", "PRIVATE-TOKEN"} {
		t.Run("valid token via "+header, func(t *testing.T) {
			r := send(t, header, devToken)
			if len(r.Errors) > 0 || get(r.Data, "currentUser.username") != "dev" {
				t.Errorf("got %s, want currentUser dev", r.raw)
			}
		})
		for name, token := range map[string]string{
			"unknown token":               "dgp-not-a-token",
			"revoked token":               revokedSecret,
			"token of a blocked user":     blockedToken,
			"token of a deactivated user": deactToken,
		} {
			t.Run(name+" via "+header+" is UNAUTHENTICATED", func(t *testing.T) {
				expectUnauthenticated(t, send(t, header, token))
			})
		}
	}
	t.Run("a token stops working the moment it is revoked", func(t *testing.T) {
		if r := send(t, "Authorization", laterRevokedSecret); len(r.Errors) > 0 {
			t.Fatalf("before revoking: %s", r.raw)
		}
		revokeToken(t, s, laterRevokedID)
		expectUnauthenticated(t, send(t, "Authorization", laterRevokedSecret))
		expectUnauthenticated(t, send(t, "PRIVATE-TOKEN", laterRevokedSecret))
	})
	t.Run("an expired token is UNAUTHENTICATED", func(t *testing.T) {
		if r := send(t, "PRIVATE-TOKEN", expiringSecret); len(r.Errors) > 0 || get(r.Data, "currentUser.username") != "rep" {
			t.Fatalf("before expiry: %s", r.raw)
		}
		clock.Advance(2 * time.Hour)
		expectUnauthenticated(t, send(t, "Authorization", expiringSecret))
		expectUnauthenticated(t, send(t, "PRIVATE-TOKEN", expiringSecret))
		// Other tokens are not affected by the clock.
		if r := send(t, "Authorization", devToken); len(r.Errors) > 0 {
			t.Errorf("a token without expiry after 2 hours: %s", r.raw)
		}
	})
	// A credential the server cannot use must not silently downgrade the
	// caller to anonymous (the spec's rule for bad tokens, read strictly).
	t.Run("an Authorization header that is not a bearer token is UNAUTHENTICATED", func(t *testing.T) {
		r := s.queryHeaders(t, map[string]string{"Authorization": "Basic " + devToken}, anonymousOK, nil)
		expectUnauthenticated(t, r)
	})
	t.Run("no token is anonymous", func(t *testing.T) {
		r := s.queryHeaders(t, nil, anonymousOK, nil)
		if len(r.Errors) > 0 || get(r.Data, "project.name") != "site" || r.Data["currentUser"] != nil {
			t.Errorf("got %s, want the public project and currentUser null", r.raw)
		}
	})
}
