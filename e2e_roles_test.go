package main

// End-to-end tests of who may call which mutation (SPEC 4, 6.1): a role ×
// mutation table, protected-environment deploy access, and the rule that
// maintainers never grant more than their own role.

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// wCaller is one row caller of the role table.
type wCaller struct {
	name  string
	user  int64 // 0: anonymous
	level int   // role in the table's projects; 0: not a member
	admin bool
}

var wCallers = []wCaller{
	{name: "anonymous"},
	{name: "non-member", user: userOutsider},
	{name: "guest", user: userGuest, level: 10},
	{name: "reporter", user: userReporter, level: 20},
	{name: "developer", user: userDeveloper, level: 30},
	{name: "maintainer", user: userMaintainer, level: 40},
	{name: "owner", user: userOwner, level: 50},
	{name: "admin", user: userRoot, admin: true},
}

var wUsernames = map[int64]string{
	userRoot: "root", userDeveloper: "dev", userReporter: "rep", userGuest: "guest",
	userMaintainer: "maint", userOutsider: "outsider", userOwner: "owner",
}

// Target users and group of the role table.
const (
	wUserAdd       = 200 // never a member: addProjectMember adds them
	wUserRemove    = 201 // REPORTER everywhere: removeProjectMember removes them
	wUserRename    = 202 // updateUser renames them
	wUserTok       = 203 // someone else's tokens
	wUserGroupBase = 210 // 210+i: addGroupMember adds them to crew
	wGroupCrew     = 20
)

// Rule names of the role table.
const (
	ruleDeveloper   = "DEVELOPER+"
	ruleMaintainer  = "MAINTAINER+"
	ruleAdmin       = "admin only"
	ruleAnyUser     = "any user"
	ruleOtherCreate = "admin for another user"
	ruleOtherRevoke = "admin for another user's token"
)

// expect is the outcome SPEC 6.1 gives for a caller under a rule: "ok" or
// an error code.
func (c wCaller) expect(rule string) string {
	if c.user == 0 {
		return "UNAUTHENTICATED" // before any other check
	}
	switch rule {
	case ruleAnyUser:
		return "ok"
	case ruleAdmin, ruleOtherCreate:
		if c.admin {
			return "ok"
		}
		return "FORBIDDEN"
	case ruleOtherRevoke:
		// Another user's token is not visible to a non-admin (node() hides
		// it too), so it is NOT_FOUND rather than FORBIDDEN (SPEC 4: never
		// reveal existence).
		if c.admin {
			return "ok"
		}
		return "NOT_FOUND"
	case ruleDeveloper, ruleMaintainer:
		need := 30
		if rule == ruleMaintainer {
			need = 40
		}
		switch {
		case c.admin:
			return "ok"
		case c.level == 0:
			return "NOT_FOUND" // a private project they cannot see
		case c.level < need:
			return "FORBIDDEN"
		}
		return "ok"
	}
	panic("unknown rule " + rule)
}

// rolesDoc has one private project per caller (roles/p-<caller>), all with
// the same members and the same targets, so that each row of the table
// acts on a project of its own. In project i (base = (i+1)*100):
// environments base+1 env-upd, base+2 env-stop, base+3 env-del (stopped,
// with deployment base+1), base+4 env-stale, base+5 review/old (stopped),
// base+6 env-dep with deployments base+2 (CREATED), base+3 (FAILED), base+4
// (SUCCESS, linked to merge request base+3); merge requests base+1 (open),
// base+2 and base+3 (merged). None is protected.
func rolesDoc() map[string]any {
	users := wUsers(
		map[string]any{"id": wUserAdd, "username": "target-add", "name": "Target Add", "state": "active"},
		map[string]any{"id": wUserRemove, "username": "target-rm", "name": "Target Remove", "state": "active"},
		map[string]any{"id": wUserRename, "username": "target-upd", "name": "Original Name", "state": "active"},
		map[string]any{"id": wUserTok, "username": "target-tok", "name": "Target Token", "state": "active"},
	)
	var projects []map[string]any
	for i, c := range wCallers {
		users = append(users, map[string]any{"id": wUserGroupBase + i, "username": "grp-target-" + c.name, "name": "Group Target", "state": "active"})
		base := (i + 1) * 100
		p := wProject(100+i, "roles/p-"+c.name)
		p["members"] = wMembers(map[string]any{"user_id": wUserRemove, "access_level": 20})
		p["environments"] = []map[string]any{
			wEnvRec(base+1, "env-upd", "available", at(0), at(1)),
			wEnvRec(base+2, "env-stop", "available", at(0), at(1)),
			wEnvRec(base+3, "env-del", "stopped", at(0), at(1)),
			wEnvRec(base+4, "env-stale", "available", at(0), at(1)),
			wEnvRec(base+5, "review/old", "stopped", at(0), at(1)),
			wEnvRec(base+6, "env-dep", "available", at(0), at(1)),
		}
		p["deployments"] = []map[string]any{
			wDepRec(base+1, 1, base+3, "env-del", "failed", 10),
			wDepRec(base+2, 2, base+6, "env-dep", "created", 20),
			wDepRec(base+3, 3, base+6, "env-dep", "failed", 30),
			wDepRec(base+4, 4, base+6, "env-dep", "success", 40),
		}
		mr := func(id, iid int, state string) map[string]any {
			m := map[string]any{
				"id": id, "iid": iid, "title": fmt.Sprintf("MR %d", iid), "state": state,
				"source_branch": fmt.Sprintf("topic-%d", iid), "target_branch": "main",
				"author": map[string]any{"id": userDeveloper}, "created_at": at(1), "updated_at": at(2),
			}
			if state == "merged" {
				m["merged_at"] = at(3)
			}
			return m
		}
		p["merge_requests"] = []map[string]any{mr(base+1, 1, "opened"), mr(base+2, 2, "merged"), mr(base+3, 3, "merged")}
		p["deployment_merge_requests"] = []map[string]any{{"deployment_id": base + 4, "merge_request_id": base + 3}}
		projects = append(projects, p)
	}
	return map[string]any{
		"users":    users,
		"groups":   []map[string]any{{"id": wGroupCrew, "name": "crew", "path": "crew", "full_path": "crew"}},
		"projects": projects,
	}
}

// roleCtx is what one row of the table acts on.
type roleCtx struct {
	s       *testServer
	c       wCaller
	i       int
	token   string
	project string // full path of the caller's own project
	base    int
	// set by prep
	secret  string
	tokenID int64
}

func (rc *roleCtx) env(k int) string { return gid("Environment", int64(rc.base+k)) }
func (rc *roleCtx) dep(k int) string { return gid("Deployment", int64(rc.base+k)) }
func (rc *roleCtx) mr(k int) string  { return gid("MergeRequest", int64(rc.base+k)) }

// actingUser is the caller's user id, or the developer's when anonymous
// (an anonymous call names somebody).
func (rc *roleCtx) actingUser() int64 {
	if rc.c.user == 0 {
		return userDeveloper
	}
	return rc.c.user
}

type roleRow struct {
	name, mutation, selection, rule string
	prep                            func(t *testing.T, rc *roleCtx)
	input                           func(rc *roleCtx) map[string]any
	// check verifies, by re-reading, that the call took effect (applied)
	// or changed nothing.
	check func(t *testing.T, rc *roleCtx, applied bool, payload map[string]any)
}

func wExists(t *testing.T, s *testServer, q string, vars map[string]any) bool {
	t.Helper()
	r := s.query(t, rootToken, q, vars)
	switch {
	case len(r.Errors) == 0:
		return true
	case slices.Contains(r.codes(), "NOT_FOUND"):
		return false
	}
	t.Fatalf("query: %s", r.raw)
	return false
}

var roleRows = []roleRow{
	{
		name: "createEnvironment", mutation: "createEnvironment", selection: "environment { id name }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"projectId": rc.project, "name": "new-env"} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if got := wEnvByName(t, rc.s, rc.project, "new-env") != nil; got != applied {
				t.Errorf("environment new-env exists: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "updateEnvironment", mutation: "updateEnvironment", selection: "environment { id externalUrl }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"environmentId": rc.env(1), "externalUrl": "https://changed.example.com"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			e := wEnvironment(t, rc.s, int64(rc.base+1))
			if got := e["externalUrl"] == "https://changed.example.com"; got != applied {
				t.Errorf("externalUrl: got %v, applied want %v", e["externalUrl"], applied)
			}
		},
	},
	{
		name: "stopEnvironment", mutation: "stopEnvironment", selection: "environment { id state }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"environmentId": rc.env(2)} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "STOPPED", false: "AVAILABLE"}[applied]
			if got := wEnvironment(t, rc.s, int64(rc.base+2))["state"]; got != want {
				t.Errorf("state: got %v, want %s", got, want)
			}
		},
	},
	{
		name: "deleteEnvironment", mutation: "deleteEnvironment", selection: "deletedEnvironmentId", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"environmentId": rc.env(3)} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if gone := wEnvironment(t, rc.s, int64(rc.base+3)) == nil; gone != applied {
				t.Errorf("environment deleted: %v, want %v", gone, applied)
			}
			if gone := wDeployment(t, rc.s, int64(rc.base+1)) == nil; gone != applied {
				t.Errorf("its deployment deleted: %v, want %v", gone, applied)
			}
		},
	},
	{
		name: "stopStaleEnvironments", mutation: "stopStaleEnvironments", selection: "message environments { id }", rule: ruleMaintainer,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"projectId": rc.project, "before": wNowMinus(14 * 24 * time.Hour)}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "STOPPED", false: "AVAILABLE"}[applied]
			if got := wEnvironment(t, rc.s, int64(rc.base+4))["state"]; got != want {
				t.Errorf("stale environment state: got %v, want %s", got, want)
			}
		},
	},
	{
		name: "deleteStoppedReviewApps", mutation: "deleteStoppedReviewApps", selection: "dryRun message scheduledEntries { id } unprocessableEntries { id }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"projectId": rc.project, "dryRun": false} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if got := wEnvironment(t, rc.s, int64(rc.base+5))["autoDeleteAt"] != nil; got != applied {
				t.Errorf("review/old scheduled for deletion: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "createDeployment", mutation: "createDeployment", selection: "deployment { id iid }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"projectId": rc.project, "environment": "new-dep-env", "sha": wSHA(rc.i), "ref": "main", "tag": false, "status": "SUCCESS"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]int64{true: 5, false: 4}[applied]
			if got := wDeploymentCount(t, rc.s, rc.project); got != want {
				t.Errorf("deployments: got %d, want %d", got, want)
			}
			if got := wEnvByName(t, rc.s, rc.project, "new-dep-env") != nil; got != applied {
				t.Errorf("environment new-dep-env created: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "updateDeployment", mutation: "updateDeployment", selection: "deployment { id status }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"deploymentId": rc.dep(2), "status": "RUNNING"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "RUNNING", false: "CREATED"}[applied]
			if got := wDeployment(t, rc.s, int64(rc.base+2))["status"]; got != want {
				t.Errorf("status: got %v, want %s", got, want)
			}
		},
	},
	{
		name: "deleteDeployment", mutation: "deleteDeployment", selection: "deletedDeploymentId", rule: ruleMaintainer,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"deploymentId": rc.dep(3)} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if gone := wDeployment(t, rc.s, int64(rc.base+3)) == nil; gone != applied {
				t.Errorf("deployment deleted: %v, want %v", gone, applied)
			}
		},
	},
	{
		name: "createMergeRequest", mutation: "createMergeRequest", selection: "mergeRequest { id iid }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"projectId": rc.project, "title": "New work", "sourceBranch": "feature-x", "targetBranch": "main"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			d := wAdmin(t, rc.s, `query($p: ID!) { project(id: $p) { mergeRequests { count } } }`, map[string]any{"p": rc.project})
			want := map[bool]int64{true: 4, false: 3}[applied]
			if got := asInt64(get(d, "project.mergeRequests.count")); got != want {
				t.Errorf("merge requests: got %d, want %d", got, want)
			}
		},
	},
	{
		name: "mergeMergeRequest", mutation: "mergeMergeRequest", selection: "mergeRequest { id state }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any { return map[string]any{"mergeRequestId": rc.mr(1)} },
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "MERGED", false: "OPENED"}[applied]
			if got := get(wNode(t, rc.s, rc.mr(1), "... on MergeRequest { state }"), "state"); got != want {
				t.Errorf("state: got %v, want %s", got, want)
			}
		},
	},
	{
		name: "linkMergeRequests", mutation: "linkMergeRequests", selection: "deployment { id }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"deploymentId": rc.dep(4), "mergeRequestIds": []string{rc.mr(2)}}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if got := slices.Contains(wMRIIDs(t, wDeployment(t, rc.s, int64(rc.base+4))), 2); got != applied {
				t.Errorf("merge request !2 linked: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "unlinkMergeRequests", mutation: "unlinkMergeRequests", selection: "deployment { id }", rule: ruleDeveloper,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"deploymentId": rc.dep(4), "mergeRequestIds": []string{rc.mr(3)}}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if got := slices.Contains(wMRIIDs(t, wDeployment(t, rc.s, int64(rc.base+4))), 3); got == applied {
				t.Errorf("merge request !3 still linked: %v, want %v", got, !applied)
			}
		},
	},
	{
		name: "addProjectMember", mutation: "addProjectMember", selection: "project { id }", rule: ruleMaintainer,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"projectId": rc.project, "userId": gid("User", wUserAdd), "accessLevel": "DEVELOPER"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "DEVELOPER", false: ""}[applied]
			if got := wAccessLevel(t, rc.s, rc.s.tokenFor(t, wUserAdd), rc.project); got != want {
				t.Errorf("target's access level: got %q, want %q", got, want)
			}
		},
	},
	{
		name: "removeProjectMember", mutation: "removeProjectMember", selection: "project { id }", rule: ruleMaintainer,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"projectId": rc.project, "userId": gid("User", wUserRemove)}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			want := map[bool]string{true: "", false: "REPORTER"}[applied]
			if got := wAccessLevel(t, rc.s, rc.s.tokenFor(t, wUserRemove), rc.project); got != want {
				t.Errorf("target's access level: got %q, want %q", got, want)
			}
		},
	},
	{
		name: "createUser", mutation: "createUser", selection: "user { id username }", rule: ruleAdmin,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"username": "new-" + rc.c.name, "name": "New User"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			got := wExists(t, rc.s, `query($u: String!) { user(username: $u) { id } }`, map[string]any{"u": "new-" + rc.c.name})
			if got != applied {
				t.Errorf("user exists: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "updateUser", mutation: "updateUser", selection: "user { id name }", rule: ruleAdmin,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"userId": gid("User", wUserRename), "name": "Renamed by " + rc.c.name}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			d := wAdmin(t, rc.s, `query($id: ID!) { user(id: $id) { name } }`, map[string]any{"id": gid("User", wUserRename)})
			if got := get(d, "user.name") == "Renamed by "+rc.c.name; got != applied {
				t.Errorf("name: got %v, applied want %v", get(d, "user.name"), applied)
			}
		},
	},
	{
		name: "createGroup", mutation: "createGroup", selection: "group { id fullPath }", rule: ruleAdmin,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"name": "Group " + rc.c.name, "path": "grp-" + rc.c.name}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			got := wExists(t, rc.s, `query($id: ID!) { group(id: $id) { id } }`, map[string]any{"id": "grp-" + rc.c.name})
			if got != applied {
				t.Errorf("group exists: %v, want %v", got, applied)
			}
		},
	},
	{
		name: "addGroupMember", mutation: "addGroupMember", selection: "group { id }", rule: ruleAdmin,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"groupId": gid("Group", wGroupCrew), "userId": gid("User", int64(wUserGroupBase+rc.i))}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			// Membership shows in what the user may do: create a project in
			// the group's namespace (SPEC 6.1).
			tok := rc.s.tokenFor(t, int64(wUserGroupBase+rc.i))
			r := wMutate(t, rc.s, tok, "createProject", "project { fullPath }", map[string]any{"name": "Probe", "path": "probe-" + rc.c.name, "namespace": "crew"})
			if applied {
				if len(r.Errors) > 0 || get(r.Data, "createProject.project.fullPath") != "crew/probe-"+rc.c.name {
					t.Errorf("a new member of crew could not create a project in it: %s", r.raw)
				}
			} else {
				wRefused(t, r, "createProject", "FORBIDDEN", "")
			}
		},
	},
	{
		name: "createAccessToken for oneself", mutation: "createAccessToken", selection: "token accessToken { id name revoked user { id } }", rule: ruleAnyUser,
		prep: func(t *testing.T, rc *roleCtx) { _, rc.tokenID = mintToken(t, rc.s, userRoot, "probe", nil) },
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"userId": gid("User", rc.actingUser()), "name": "mine"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, payload map[string]any) {
			checkTokenCreated(t, rc, applied, payload, rc.actingUser())
		},
	},
	{
		name: "createAccessToken for another user", mutation: "createAccessToken", selection: "token accessToken { id name revoked user { id } }", rule: ruleOtherCreate,
		prep: func(t *testing.T, rc *roleCtx) { _, rc.tokenID = mintToken(t, rc.s, userRoot, "probe", nil) },
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"userId": gid("User", wUserTok), "name": "theirs"}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, payload map[string]any) {
			checkTokenCreated(t, rc, applied, payload, wUserTok)
		},
	},
	{
		name: "revokeAccessToken of one's own", mutation: "revokeAccessToken", selection: "accessToken { id revoked }", rule: ruleAnyUser,
		prep: func(t *testing.T, rc *roleCtx) {
			rc.secret, rc.tokenID = mintToken(t, rc.s, rc.actingUser(), "to revoke", nil)
		},
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"accessTokenId": gid("AccessToken", rc.tokenID)}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, payload map[string]any) {
			if applied && get(payload, "accessToken.revoked") != true {
				t.Errorf("payload: %v, want revoked true", payload)
			}
			if works, _ := wWorks(t, rc.s, rc.secret); works == applied {
				t.Errorf("the token still works: %v, want %v", works, !applied)
			}
		},
	},
	{
		name: "revokeAccessToken of another user's", mutation: "revokeAccessToken", selection: "accessToken { id revoked }", rule: ruleOtherRevoke,
		prep: func(t *testing.T, rc *roleCtx) { rc.secret, rc.tokenID = mintToken(t, rc.s, wUserTok, "theirs", nil) },
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"accessTokenId": gid("AccessToken", rc.tokenID)}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, _ map[string]any) {
			if works, _ := wWorks(t, rc.s, rc.secret); works == applied {
				t.Errorf("the token still works: %v, want %v", works, !applied)
			}
		},
	},
	{
		name: "createProject", mutation: "createProject", selection: "project { id fullPath currentUserAccessLevel }", rule: ruleAnyUser,
		input: func(rc *roleCtx) map[string]any {
			return map[string]any{"name": "Proj " + rc.c.name, "path": "proj-" + rc.c.name}
		},
		check: func(t *testing.T, rc *roleCtx, applied bool, payload map[string]any) {
			d := wAdmin(t, rc.s, `query($s: String!) { projects(search: $s) { count nodes { fullPath } } }`, map[string]any{"s": "Proj " + rc.c.name})
			want := map[bool]int64{true: 1, false: 0}[applied]
			if got := asInt64(get(d, "projects.count")); got != want {
				t.Errorf("projects named %q: %d, want %d", "Proj "+rc.c.name, got, want)
			}
			if applied {
				path := wUsernames[rc.c.user] + "/proj-" + rc.c.name
				if get(payload, "project.fullPath") != path || get(payload, "project.currentUserAccessLevel") != "OWNER" {
					t.Errorf("payload %v, want fullPath %s and currentUserAccessLevel OWNER", payload, path)
				}
				if got := wAccessLevel(t, rc.s, rc.token, path); got != "OWNER" {
					t.Errorf("creator's access level: got %q, want OWNER", got)
				}
			}
		},
	},
}

// checkTokenCreated: an applied createAccessToken returned a working
// secret for user; a refused one created no token (token ids are handed
// out in order, so the next one after the probe minted in prep must not
// exist).
func checkTokenCreated(t *testing.T, rc *roleCtx, applied bool, payload map[string]any, user int64) {
	t.Helper()
	if applied {
		secret, _ := get(payload, "token").(string)
		if secret == "" || get(payload, "accessToken.revoked") != false || get(payload, "accessToken.user.id") != gid("User", user) {
			t.Errorf("payload %v, want a secret and an unrevoked token of user %d", payload, user)
		}
		if works, username := wWorks(t, rc.s, secret); !works || username == "" {
			t.Errorf("the new token does not authenticate")
		}
		return
	}
	if n := wNode(t, rc.s, gid("AccessToken", rc.tokenID+1), "id"); n != nil {
		t.Errorf("a refused createAccessToken left token %d behind", rc.tokenID+1)
	}
}

func TestE2ERolesMutationTable(t *testing.T) {
	doc := rolesDoc()
	for _, row := range roleRows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, doc)
			tokens := map[int64]string{}
			for _, c := range wCallers {
				if c.user != 0 {
					tokens[c.user] = s.tokenFor(t, c.user)
				}
			}
			for i, c := range wCallers {
				want := c.expect(row.rule)
				t.Run(fmt.Sprintf("%s: %s", c.name, want), func(t *testing.T) {
					rc := &roleCtx{s: s, c: c, i: i, token: tokens[c.user], project: "roles/p-" + c.name, base: (i + 1) * 100}
					if row.prep != nil {
						row.prep(t, rc)
					}
					r := wMutate(t, s, rc.token, row.mutation, row.selection, row.input(rc))
					var payload map[string]any
					if want == "ok" {
						expectNoError(t, r)
						payload, _ = r.Data[row.mutation].(map[string]any)
						if payload == nil {
							t.Fatalf("no payload: %s", r.raw)
						}
					} else {
						wRefused(t, r, row.mutation, want, "")
						if len(r.Errors) != 1 {
							t.Errorf("want exactly one error, got %s", r.raw)
						}
					}
					row.check(t, rc, want == "ok", payload)
				})
			}
		})
	}
}

// TestE2ERolesProtectedEnvironments: on a protected environment only
// users matching a deploy access level deploy or change it (SPEC 6.1).
// The fixture's production allows MAINTAINER and requires approvals.
func TestE2ERolesProtectedEnvironments(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	s := startServer(t, fixtureDoc(12))
	dev, maint := s.tokenFor(t, userDeveloper), s.tokenFor(t, userMaintainer)
	prod := gid("Environment", 1)

	t.Run("developer cannot deploy to production", func(t *testing.T) {
		before := wDeploymentCount(t, s, project)
		r := wMutate(t, s, dev, "createDeployment", "deployment { id }", map[string]any{
			"projectId": project, "environment": "production", "sha": wSHA(1), "ref": "main", "tag": false, "status": "RUNNING"})
		wRefused(t, r, "createDeployment", "FORBIDDEN", "")
		if got := wDeploymentCount(t, s, project); got != before {
			t.Errorf("deployments: %d, want %d", got, before)
		}
	})
	var blockedID int64
	t.Run("maintainer deploys to production, held BLOCKED", func(t *testing.T) {
		p := wMustMutate(t, s, maint, "createDeployment", "deployment { id status environment { name } user { username } }", map[string]any{
			"projectId": project, "environment": "production", "sha": wSHA(2), "ref": "main", "tag": false, "status": "SUCCESS"})
		if get(p, "deployment.status") != "BLOCKED" || get(p, "deployment.environment.name") != "production" || get(p, "deployment.user.username") != "maint" {
			t.Errorf("got %v, want a BLOCKED deployment by maint on production", p)
		}
		blockedID = gidNumber(t, get(p, "deployment.id"), "Deployment")
	})
	t.Run("developer cannot update, stop or cancel on production", func(t *testing.T) {
		r := wMutate(t, s, dev, "updateEnvironment", "environment { id }", map[string]any{"environmentId": prod, "externalUrl": "https://dev.example.com"})
		wRefused(t, r, "updateEnvironment", "FORBIDDEN", "")
		r = wMutate(t, s, dev, "stopEnvironment", "environment { id }", map[string]any{"environmentId": prod})
		wRefused(t, r, "stopEnvironment", "FORBIDDEN", "")
		e := wEnvironment(t, s, 1)
		if e["state"] != "AVAILABLE" || e["externalUrl"] != nil {
			t.Errorf("production changed by refused calls: %v", e)
		}
		if blockedID != 0 {
			r = wMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", blockedID), "status": "CANCELED"})
			wRefused(t, r, "updateDeployment", "FORBIDDEN", "")
			if got := wDeployment(t, s, blockedID)["status"]; got != "BLOCKED" {
				t.Errorf("status after a refused cancel: %v, want BLOCKED", got)
			}
		}
	})
	t.Run("maintainer updates production and cancels the blocked deployment", func(t *testing.T) {
		p := wMustMutate(t, s, maint, "updateEnvironment", "environment { externalUrl }", map[string]any{"environmentId": prod, "externalUrl": "https://prod.example.com"})
		if get(p, "environment.externalUrl") != "https://prod.example.com" {
			t.Errorf("got %v", p)
		}
		if blockedID != 0 {
			p = wMustMutate(t, s, maint, "updateDeployment", "deployment { status finishedAt }", map[string]any{"deploymentId": gid("Deployment", blockedID), "status": "CANCELED"})
			if get(p, "deployment.status") != "CANCELED" || get(p, "deployment.finishedAt") == nil {
				t.Errorf("got %v, want CANCELED with finishedAt", p)
			}
		}
	})
	t.Run("maintainer stops production", func(t *testing.T) {
		p := wMustMutate(t, s, maint, "stopEnvironment", "environment { state }", map[string]any{"environmentId": prod})
		if get(p, "environment.state") != "STOPPED" {
			t.Errorf("got %v", p)
		}
	})
}

func TestE2ERolesStopStaleNeverStopsProtected(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(12))
	maint := s.tokenFor(t, userMaintainer)
	// Both production (protected) and staging were last touched in 2024.
	p := wMustMutate(t, s, maint, "stopStaleEnvironments", "message environments { name state }", map[string]any{
		"projectId": "acme/app", "before": wNowMinus(14 * 24 * time.Hour)})
	if got := pluck(list(p, "environments"), "name"); !equalJSON(got, []any{"staging"}) {
		t.Errorf("stopped: %v, want [staging]", got)
	}
	if got := wEnvironment(t, s, 1)["state"]; got != "AVAILABLE" {
		t.Errorf("protected production: %v, want AVAILABLE", got)
	}
	if got := wEnvironment(t, s, 2)["state"]; got != "STOPPED" {
		t.Errorf("staging: %v, want STOPPED", got)
	}
}

// TestE2ERolesReviewAppsProtected: a protected review app that the caller
// may not delete is reported in unprocessableEntries, and then nothing is
// scheduled (SPEC 6.2).
func TestE2ERolesReviewAppsProtected(t *testing.T) {
	t.Parallel()
	doc := fixtureDoc(3)
	p := docProjects(doc)[0]
	p["environments"] = append(slices.Clone(fixtureEnvs), wEnvRec(4, "review/locked", "stopped", at(-10), at(-5)))
	p["protected_environments"] = append(p["protected_environments"].([]map[string]any), map[string]any{
		"name": "review/locked", "deploy_access_levels": []map[string]any{{"access_level": 40}}})
	s := startServer(t, doc)
	dev, maint := s.tokenFor(t, userDeveloper), s.tokenFor(t, userMaintainer)
	const sel = "dryRun message scheduledEntries { name } unprocessableEntries { name }"

	for _, dry := range []bool{true, false} {
		out := wMustMutate(t, s, dev, "deleteStoppedReviewApps", sel, map[string]any{"projectId": "acme/app", "dryRun": dry})
		if got := pluck(list(out, "unprocessableEntries"), "name"); !equalJSON(got, []any{"review/locked"}) {
			t.Errorf("dryRun %v: unprocessableEntries %v, want [review/locked]", dry, got)
		}
		if got := list(out, "scheduledEntries"); len(got) != 0 {
			t.Errorf("dryRun %v: scheduledEntries %v, want none when some are unprocessable", dry, got)
		}
		if m, _ := out["message"].(string); m == "" {
			t.Errorf("dryRun %v: want a message saying why nothing was scheduled", dry)
		}
	}
	for _, id := range []int64{3, 4} {
		if got := wEnvironment(t, s, id)["autoDeleteAt"]; got != nil {
			t.Errorf("environment %d scheduled (%v) although the run had unprocessable entries", id, got)
		}
	}
	// Deleting the protected, stopped review app directly needs deploy
	// access too.
	r := wMutate(t, s, dev, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": gid("Environment", 4)})
	wRefused(t, r, "deleteEnvironment", "FORBIDDEN", "")
	if wEnvironment(t, s, 4) == nil {
		t.Fatalf("review/locked deleted by a refused call")
	}
	// A maintainer may delete both.
	out := wMustMutate(t, s, maint, "deleteStoppedReviewApps", sel, map[string]any{"projectId": "acme/app", "dryRun": false})
	if got := pluck(list(out, "scheduledEntries"), "name"); !equalJSON(got, []any{"review/locked", "review/fix-foo"}) && !equalJSON(got, []any{"review/fix-foo", "review/locked"}) {
		t.Errorf("maintainer: scheduledEntries %v, want both review apps", got)
	}
	for _, id := range []int64{3, 4} {
		wNear(t, fmt.Sprintf("environment %d autoDeleteAt", id), wEnvironment(t, s, id)["autoDeleteAt"], time.Now().Add(7*24*time.Hour), time.Minute)
	}
}

// TestE2ERolesProjectMemberLevels: add/removeProjectMember never grant
// more than the caller's own level (SPEC 6.1).
func TestE2ERolesProjectMemberLevels(t *testing.T) {
	t.Parallel()
	doc := map[string]any{
		"users": wUsers(
			map[string]any{"id": 300, "username": "u300", "name": "U 300", "state": "active"},
			map[string]any{"id": 301, "username": "u301", "name": "U 301", "state": "active"},
			map[string]any{"id": 302, "username": "u302", "name": "U 302", "state": "active"},
		),
		"projects": []map[string]any{wProject(1, "acme/members")},
	}
	s := startServer(t, doc)
	const project = "acme/members"
	maint, owner, dev := s.tokenFor(t, userMaintainer), s.tokenFor(t, userOwner), s.tokenFor(t, userDeveloper)
	tok300, tok301 := s.tokenFor(t, 300), s.tokenFor(t, 301)
	add := func(token string, user int64, level string) gqlResponse {
		return wMutate(t, s, token, "addProjectMember", "project { id }", map[string]any{"projectId": project, "userId": gid("User", user), "accessLevel": level})
	}

	t.Run("maintainer cannot grant OWNER", func(t *testing.T) {
		wRefused(t, add(maint, 300, "OWNER"), "addProjectMember", "FORBIDDEN", "")
		if got := wAccessLevel(t, s, tok300, project); got != "" {
			t.Errorf("access level after a refused grant: %q", got)
		}
	})
	t.Run("maintainer grants up to MAINTAINER", func(t *testing.T) {
		expectNoError(t, add(maint, 300, "MAINTAINER"))
		if got := wAccessLevel(t, s, tok300, project); got != "MAINTAINER" {
			t.Errorf("access level: %q, want MAINTAINER", got)
		}
	})
	t.Run("maintainer changes a role within their level", func(t *testing.T) {
		expectNoError(t, add(maint, 300, "REPORTER"))
		if got := wAccessLevel(t, s, tok300, project); got != "REPORTER" {
			t.Errorf("access level: %q, want REPORTER", got)
		}
	})
	t.Run("developer cannot add members at all", func(t *testing.T) {
		wRefused(t, add(dev, 301, "GUEST"), "addProjectMember", "FORBIDDEN", "")
	})
	t.Run("owner grants OWNER", func(t *testing.T) {
		expectNoError(t, add(owner, 301, "OWNER"))
		if got := wAccessLevel(t, s, tok301, project); got != "OWNER" {
			t.Errorf("access level: %q, want OWNER", got)
		}
	})
	// Demoting or removing an owner would take away more than the
	// maintainer has; a demanding reading of "never granting more than
	// their own level" refuses both.
	t.Run("maintainer cannot demote or remove an owner", func(t *testing.T) {
		wRefused(t, add(maint, 301, "GUEST"), "addProjectMember", "FORBIDDEN", "")
		r := wMutate(t, s, maint, "removeProjectMember", "project { id }", map[string]any{"projectId": project, "userId": gid("User", 301)})
		wRefused(t, r, "removeProjectMember", "FORBIDDEN", "")
		if got := wAccessLevel(t, s, tok301, project); got != "OWNER" {
			t.Errorf("access level: %q, want OWNER", got)
		}
	})
	t.Run("maintainer removes a reporter, who no longer sees the private project", func(t *testing.T) {
		p := wMustMutate(t, s, maint, "removeProjectMember", "project { id }", map[string]any{"projectId": project, "userId": gid("User", 300)})
		if get(p, "project.id") != gid("Project", 1) {
			t.Errorf("payload %v", p)
		}
		if got := wAccessLevel(t, s, tok300, project); got != "" {
			t.Errorf("access level after removal: %q, want none", got)
		}
		r := s.query(t, tok300, `{ project(id: "acme/members") { id } }`, nil)
		expectError(t, r, "NOT_FOUND", "")
	})
	t.Run("an unknown user is NOT_FOUND", func(t *testing.T) {
		r := add(owner, 999, "DEVELOPER")
		wRefused(t, r, "addProjectMember", "NOT_FOUND", "")
	})
}

// TestE2ERolesAnonymousFirst: any mutation called anonymously is
// UNAUTHENTICATED before any other check (SPEC 6.1), even with arguments
// that are invalid or name nothing.
func TestE2ERolesAnonymousFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(3))
	for _, c := range []struct {
		mutation string
		input    map[string]any
	}{
		{"createDeployment", map[string]any{"projectId": "acme/nope", "environment": "/bad", "sha": "xyz", "ref": "", "tag": false, "status": "BLOCKED"}},
		{"createDeployment", map[string]any{"projectId": "acme/app", "environment": "production", "sha": wSHA(1), "ref": "main", "tag": false, "status": "SUCCESS"}},
		{"updateDeployment", map[string]any{"deploymentId": "gid://deploygraph/User/1", "status": "BLOCKED"}},
		{"deleteDeployment", map[string]any{"deploymentId": "99999"}},
		{"createEnvironment", map[string]any{"projectId": "acme/app", "name": "/bad"}},
		{"updateEnvironment", map[string]any{"environmentId": "1", "externalUrl": "javascript:alert(1)"}},
		{"stopEnvironment", map[string]any{"environmentId": "3"}},
		{"deleteEnvironment", map[string]any{"environmentId": "1"}},
		{"stopStaleEnvironments", map[string]any{"projectId": "acme/app", "before": wNowMinus(time.Hour)}},
		{"deleteStoppedReviewApps", map[string]any{"projectId": "acme/nope", "limit": 0}},
		{"createMergeRequest", map[string]any{"projectId": "acme/app", "title": "", "sourceBranch": "a", "targetBranch": "a"}},
		{"mergeMergeRequest", map[string]any{"mergeRequestId": "99999", "mergeCommitSha": "nope"}},
		{"linkMergeRequests", map[string]any{"deploymentId": "1", "mergeRequestIds": []string{}}},
		{"unlinkMergeRequests", map[string]any{"deploymentId": "1", "mergeRequestIds": []string{"gid://deploygraph/Job/1"}}},
		{"createUser", map[string]any{"username": "", "name": ""}},
		{"updateUser", map[string]any{"userId": "99999", "state": "BLOCKED"}},
		{"createAccessToken", map[string]any{"userId": "99999", "name": ""}},
		{"revokeAccessToken", map[string]any{"accessTokenId": "nope"}},
		{"createGroup", map[string]any{"name": "", "path": "bad path"}},
		{"addGroupMember", map[string]any{"groupId": "99999", "userId": "99999"}},
		{"createProject", map[string]any{"name": "x", "path": "bad path", "namespace": "nope"}},
		{"addProjectMember", map[string]any{"projectId": "acme/nope", "userId": "99999", "accessLevel": "OWNER"}},
		{"removeProjectMember", map[string]any{"projectId": "acme/app", "userId": "99999"}},
	} {
		t.Run(c.mutation, func(t *testing.T) {
			r := wMutate(t, s, "", c.mutation, "__typename", c.input)
			wRefused(t, r, c.mutation, "UNAUTHENTICATED", "")
			if got := r.codes(); len(got) != 1 {
				t.Errorf("codes %v, want only UNAUTHENTICATED", got)
			}
		})
	}
	if got := wDeploymentCount(t, s, "acme/app"); got != 3 {
		t.Errorf("deployments: %d, want 3", got)
	}
}

// TestE2ERolesNonMemberLearnsNothing: a project the caller cannot read is
// NOT_FOUND everywhere (SPEC 6.1, 4: never reveal existence). A non-member
// who sends an otherwise invalid mutation naming a private project must
// get the answer a project that does not exist gets, not a validation
// error that proves the project exists.
func TestE2ERolesNonMemberLearnsNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(12))
	outsider := s.tokenFor(t, userOutsider)
	type probe struct {
		mutation string
		input    func(ref string) map[string]any
	}
	for _, c := range []probe{
		{"createDeployment", func(ref string) map[string]any { return depInput(ref, "staging", "not-a-sha", "main", "SUCCESS") }},
		{"createDeployment", func(ref string) map[string]any { return depInput(ref, "staging", wSHA(1), "has space", "SUCCESS") }},
		{"createDeployment", func(ref string) map[string]any { return depInput(ref, "staging", wSHA(1), "main", "BLOCKED") }},
		{"createDeployment", func(ref string) map[string]any { return depInput(ref, "/bad", wSHA(1), "main", "SUCCESS") }},
		{"createEnvironment", func(ref string) map[string]any { return map[string]any{"projectId": ref, "name": "/bad"} }},
		{"createEnvironment", func(ref string) map[string]any {
			return map[string]any{"projectId": ref, "name": "ok", "externalUrl": "javascript:alert(1)"}
		}},
		{"stopStaleEnvironments", func(ref string) map[string]any {
			return map[string]any{"projectId": ref, "before": wNowMinus(time.Hour)}
		}},
		{"deleteStoppedReviewApps", func(ref string) map[string]any { return map[string]any{"projectId": ref, "limit": 0} }},
		{"createMergeRequest", func(ref string) map[string]any {
			return map[string]any{"projectId": ref, "title": "", "sourceBranch": "a", "targetBranch": "a"}
		}},
		{"addProjectMember", func(ref string) map[string]any {
			return map[string]any{"projectId": ref, "userId": "99999", "accessLevel": "OWNER"}
		}},
		{"removeProjectMember", func(ref string) map[string]any { return map[string]any{"projectId": ref, "userId": "99999"} }},
	} {
		for _, refs := range [][2]string{{"acme/app", "acme/nope"}, {"1", "999"}, {gid("Project", 1), gid("Project", 999)}} {
			in := c.input(refs[0])
			t.Run(fmt.Sprintf("%s on %s", c.mutation, refs[0]), func(t *testing.T) {
				t.Logf("input %v", in)
				private := wMutate(t, s, outsider, c.mutation, "__typename", in)
				missing := wMutate(t, s, outsider, c.mutation, "__typename", c.input(refs[1]))
				wRefused(t, private, c.mutation, "NOT_FOUND", "")
				if !slices.Equal(private.codes(), missing.codes()) {
					t.Errorf("private project answers %v, a missing one %v: the difference reveals the project", private.codes(), missing.codes())
				}
			})
		}
	}
	// Object ids in the private project.
	for _, c := range []struct {
		mutation string
		input    map[string]any
		missing  map[string]any
	}{
		{"mergeMergeRequest", map[string]any{"mergeRequestId": gid("MergeRequest", 2), "mergeCommitSha": "nope"}, map[string]any{"mergeRequestId": gid("MergeRequest", 99999), "mergeCommitSha": "nope"}},
		{"updateDeployment", map[string]any{"deploymentId": gid("Deployment", 5), "status": "RUNNING"}, map[string]any{"deploymentId": gid("Deployment", 99999), "status": "RUNNING"}},
		{"deleteDeployment", map[string]any{"deploymentId": gid("Deployment", 4)}, map[string]any{"deploymentId": gid("Deployment", 99999)}},
		{"updateEnvironment", map[string]any{"environmentId": gid("Environment", 2), "externalUrl": "javascript:x"}, map[string]any{"environmentId": gid("Environment", 99999), "externalUrl": "javascript:x"}},
		{"stopEnvironment", map[string]any{"environmentId": gid("Environment", 3)}, map[string]any{"environmentId": gid("Environment", 99999)}},
		{"deleteEnvironment", map[string]any{"environmentId": gid("Environment", 2)}, map[string]any{"environmentId": gid("Environment", 99999)}},
		{"linkMergeRequests", map[string]any{"deploymentId": gid("Deployment", 2), "mergeRequestIds": []string{gid("MergeRequest", 99999)}}, map[string]any{"deploymentId": gid("Deployment", 99999), "mergeRequestIds": []string{gid("MergeRequest", 99999)}}},
	} {
		t.Run(c.mutation+" on a private object", func(t *testing.T) {
			private := wMutate(t, s, outsider, c.mutation, "__typename", c.input)
			missing := wMutate(t, s, outsider, c.mutation, "__typename", c.missing)
			wRefused(t, private, c.mutation, "NOT_FOUND", "")
			if !slices.Equal(private.codes(), missing.codes()) || private.Errors[0].Message != missing.Errors[0].Message {
				t.Errorf("private object answers %s, a missing one %s", private.raw, missing.raw)
			}
		})
	}
}

// TestE2ERolesVisibleProjectsWithoutRole: a project the caller can see but
// has no role in is FORBIDDEN, not NOT_FOUND (SPEC 6.1): the public
// acme/site for anyone signed in, the internal acme/tools for any user.
func TestE2ERolesVisibleProjectsWithoutRole(t *testing.T) {
	t.Parallel()
	s := startServer(t, accessDoc())
	outsider := s.tokenFor(t, userOutsider)
	for _, project := range []string{"acme/site", "acme/tools"} {
		env, dep := gid("Environment", 50), gid("Deployment", 5000)
		if project == "acme/tools" {
			env, dep = gid("Environment", 60), gid("Deployment", 6000)
		}
		before := wDeploymentCount(t, s, project)
		for _, c := range []struct {
			mutation string
			input    map[string]any
		}{
			{"createEnvironment", map[string]any{"projectId": project, "name": "mine"}},
			{"updateEnvironment", map[string]any{"environmentId": env, "externalUrl": "https://x.example.com"}},
			{"stopEnvironment", map[string]any{"environmentId": env}},
			{"createDeployment", depInput(project, "production", wSHA(1), "main", "SUCCESS")},
			{"updateDeployment", map[string]any{"deploymentId": dep, "status": "FAILED"}},
			{"deleteDeployment", map[string]any{"deploymentId": dep}},
			{"stopStaleEnvironments", map[string]any{"projectId": project, "before": wNowMinus(30 * 24 * time.Hour)}},
			{"deleteStoppedReviewApps", map[string]any{"projectId": project}},
			{"createMergeRequest", map[string]any{"projectId": project, "title": "t", "sourceBranch": "a", "targetBranch": "main"}},
			{"addProjectMember", map[string]any{"projectId": project, "userId": gid("User", userOutsider), "accessLevel": "GUEST"}},
		} {
			t.Run(c.mutation+" on "+project, func(t *testing.T) {
				wRefused(t, wMutate(t, s, outsider, c.mutation, "__typename", c.input), c.mutation, "FORBIDDEN", "")
			})
		}
		if got := wDeploymentCount(t, s, project); got != before {
			t.Errorf("%s: deployments %d, want %d", project, got, before)
		}
		if e := wEnvByName(t, s, project, "production"); e["state"] != "AVAILABLE" || e["externalUrl"] != nil {
			t.Errorf("%s: production changed: %v", project, e)
		}
		if got := wAccessLevel(t, s, outsider, project); got != "" {
			t.Errorf("%s: outsider became %s", project, got)
		}
	}
}
