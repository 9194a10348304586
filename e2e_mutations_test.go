package main

// End-to-end tests of the mutations' rules (SPEC 4, 5 Mutation, 6.2, 6.3,
// 6.5): each rule with its exact message where the spec or the seeds give
// one, checked by re-reading over HTTP.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// msgEnvName is SPEC 6.2's message for a malformed environment name.
const msgEnvName = "Name can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"

const (
	msgStopFailed    = "Attempted to stop the environment but failed to change the status"
	msgInvalidDate   = "Invalid Date"
	msgStaleStopped  = "Successfully requested stop for all stale environments"
	msgRunning       = "Cannot destroy running deployment"
	msgDeployed      = "Deployment currently deployed to environment"
	msgCIDeployments = "Deployments created by CI jobs cannot be updated through the API"
)

const (
	wCreateEnvSel = "environment { " + wEnvFields + " project { fullPath } }"
	wDepSel       = "deployment { " + wDepFields + " pendingApprovalCount deployable { id } }"
)

func TestE2EMutationCreateEnvironment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	s := startServer(t, fixtureDoc(3))
	dev := s.tokenFor(t, userDeveloper)
	create := func(t *testing.T, input map[string]any) gqlResponse {
		t.Helper()
		if _, ok := input["projectId"]; !ok {
			input["projectId"] = project
		}
		return wMutate(t, s, dev, "createEnvironment", wCreateEnvSel, input)
	}
	mustCreate := func(t *testing.T, input map[string]any) map[string]any {
		t.Helper()
		r := create(t, input)
		if len(r.Errors) > 0 || get(r.Data, "createEnvironment.environment") == nil {
			t.Fatalf("createEnvironment(%v): %s", input, r.raw)
		}
		return get(r.Data, "createEnvironment.environment").(map[string]any)
	}

	t.Run("name format", func(t *testing.T) {
		before := wEnvironmentCount(t, s, project)
		for _, name := range []string{"/leading", "trailing/", "semi;colon", "tick`s", "new\nline", "back\\slash", "check✓", "/"} {
			wRefused(t, create(t, map[string]any{"name": name}), "createEnvironment", "BAD_USER_INPUT", msgEnvName)
		}
		wRefused(t, create(t, map[string]any{"name": ""}), "createEnvironment", "BAD_USER_INPUT", "")
		wRefused(t, create(t, map[string]any{"name": strings.Repeat("a", 256)}), "createEnvironment", "BAD_USER_INPUT", "")
		if got := wEnvironmentCount(t, s, project); got != before {
			t.Errorf("environments after refused creates: %d, want %d", got, before)
		}
		for _, name := range []string{strings.Repeat("a", 255), "${CI_ENV} name.with spaces_ok-1", "x", "review/fix-bar", "a/b/c"} {
			e := mustCreate(t, map[string]any{"name": name})
			if e["name"] != name {
				t.Errorf("name: got %v, want %q", e["name"], name)
			}
		}
	})

	t.Run("a taken name is CONFLICT; names are case-sensitive", func(t *testing.T) {
		before := wEnvironmentCount(t, s, project)
		wRefused(t, create(t, map[string]any{"name": "staging"}), "createEnvironment", "CONFLICT", "")
		mustCreate(t, map[string]any{"name": "twice"})
		wRefused(t, create(t, map[string]any{"name": "twice"}), "createEnvironment", "CONFLICT", "")
		if got := wEnvironmentCount(t, s, project); got != before+1 {
			t.Errorf("environments: %d, want %d", got, before+1)
		}
		e := mustCreate(t, map[string]any{"name": "Staging"})
		if e["slug"] == "staging" || e["slug"] != gitlabSlug("Staging") {
			t.Errorf("slug of Staging: got %v, want %s (unique in the project)", e["slug"], gitlabSlug("Staging"))
		}
	})

	t.Run("slug, tier, folder, state and times", func(t *testing.T) {
		for _, c := range []struct{ name, slug, tier, folder string }{
			{"review/1-foo", "review-1-foo-9tdj0u", "DEVELOPMENT", "review"},
			{"PRODUCTION", "production-vl4voz", "PRODUCTION", ""},
			{"Review App", "review-app-jgo9ec", "DEVELOPMENT", ""},
			{"preprod", "preprod", "STAGING", ""},
			{"internal", "internal", "TESTING", ""},
			{"live-eu", "live-eu", "PRODUCTION", ""},
			{"canary", "canary", "OTHER", ""},
			{"trunk", "trunk", "DEVELOPMENT", ""},
			{"qa", "qa", "TESTING", ""},
			{"demo", "demo", "STAGING", ""},
		} {
			start := time.Now()
			e := mustCreate(t, map[string]any{"name": c.name})
			if e["slug"] != c.slug || e["slug"] != gitlabSlug(c.name) {
				t.Errorf("%s: slug %v, want %s", c.name, e["slug"], c.slug)
			}
			if e["tier"] != c.tier || e["tier"] != guessTier(c.name) {
				t.Errorf("%s: tier %v, want %s", c.name, e["tier"], c.tier)
			}
			var folder any
			if c.folder != "" {
				folder = c.folder
			}
			if e["folder"] != folder {
				t.Errorf("%s: folder %v, want %v", c.name, e["folder"], folder)
			}
			if e["state"] != "AVAILABLE" || e["externalUrl"] != nil || e["autoStopAt"] != nil || e["autoDeleteAt"] != nil {
				t.Errorf("%s: got %v, want AVAILABLE without externalUrl, autoStopAt or autoDeleteAt", c.name, e)
			}
			wNear(t, c.name+" createdAt", e["createdAt"], start, time.Minute)
			wNear(t, c.name+" updatedAt", e["updatedAt"], start, time.Minute)
			if get(e, "project.fullPath") != project {
				t.Errorf("%s: project %v", c.name, e["project"])
			}
			// The payload is what a later read sees.
			if again := wEnvByName(t, s, project, c.name); again == nil || again["id"] != e["id"] || again["slug"] != e["slug"] || again["tier"] != e["tier"] {
				t.Errorf("%s: re-read %v, want %v", c.name, again, e)
			}
		}
		e := mustCreate(t, map[string]any{"name": "canary-2"})
		if e["logsApiPath"] != "/acme/app/-/logs/k8s.json?environment_name=canary-2" {
			t.Errorf("logsApiPath: %v", e["logsApiPath"])
		}
	})

	t.Run("a given tier wins over the guess", func(t *testing.T) {
		e := mustCreate(t, map[string]any{"name": "qa-explicit", "tier": "PRODUCTION"})
		if e["tier"] != "PRODUCTION" {
			t.Errorf("tier: %v, want PRODUCTION", e["tier"])
		}
	})

	t.Run("externalUrl", func(t *testing.T) {
		e := mustCreate(t, map[string]any{"name": "with-url", "externalUrl": "https://deploy.example.com/path?q=1"})
		if e["externalUrl"] != "https://deploy.example.com/path?q=1" {
			t.Errorf("externalUrl: %v", e["externalUrl"])
		}
		long := "https://example.com/" + strings.Repeat("a", 255-len("https://example.com/"))
		if e := mustCreate(t, map[string]any{"name": "url-255", "externalUrl": long}); e["externalUrl"] != long {
			t.Errorf("a 255-character URL: got %v", e["externalUrl"])
		}
		for i, blank := range []string{"", "   "} {
			e := mustCreate(t, map[string]any{"name": fmt.Sprintf("blank-url-%d", i), "externalUrl": blank})
			if e["externalUrl"] != nil {
				t.Errorf("blank externalUrl %q: got %v, want null", blank, e["externalUrl"])
			}
		}
		before := wEnvironmentCount(t, s, project)
		for i, bad := range []string{
			"javascript:alert(1)", "JavaScript:alert(document.cookie)", "javascript://example.com/%0Aalert(1)",
			"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
			"not a url", "/relative/path", "example.com", long + "a",
		} {
			name := fmt.Sprintf("bad-url-%d", i)
			wRefused(t, create(t, map[string]any{"name": name, "externalUrl": bad}), "createEnvironment", "BAD_USER_INPUT", "")
			if wEnvByName(t, s, project, name) != nil {
				t.Errorf("externalUrl %q refused but the environment exists", bad)
			}
		}
		if got := wEnvironmentCount(t, s, project); got != before {
			t.Errorf("environments after refused creates: %d, want %d", got, before)
		}
	})

	t.Run("autoStopAt", func(t *testing.T) {
		e := mustCreate(t, map[string]any{"name": "auto-stop", "autoStopAt": "2030-01-02T03:04:05.678+02:00"})
		if e["autoStopAt"] != "2030-01-02T01:04:05.678Z" {
			t.Errorf("autoStopAt: got %v, want 2030-01-02T01:04:05.678Z", e["autoStopAt"])
		}
		if got := wEnvByName(t, s, project, "auto-stop")["autoStopAt"]; got != "2030-01-02T01:04:05.678Z" {
			t.Errorf("autoStopAt re-read: %v", got)
		}
		wRefused(t, create(t, map[string]any{"name": "auto-stop-bad", "autoStopAt": "next tuesday"}), "createEnvironment", "BAD_USER_INPUT", "")
		if wEnvByName(t, s, project, "auto-stop-bad") != nil {
			t.Errorf("an unparseable autoStopAt still created the environment")
		}
	})

	t.Run("projectId as number and global ID; unknown project", func(t *testing.T) {
		for i, ref := range []string{"1", gid("Project", 1)} {
			e := mustCreate(t, map[string]any{"projectId": ref, "name": fmt.Sprintf("by-ref-%d", i)})
			if get(e, "project.fullPath") != project {
				t.Errorf("projectId %s: project %v", ref, e["project"])
			}
		}
		wRefused(t, create(t, map[string]any{"projectId": "acme/nope", "name": "x"}), "createEnvironment", "NOT_FOUND", "")
		wRefused(t, create(t, map[string]any{"projectId": "999", "name": "x"}), "createEnvironment", "NOT_FOUND", "")
	})
}

func TestE2EMutationUpdateEnvironment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	s := startServer(t, fixtureDoc(3))
	dev := s.tokenFor(t, userDeveloper)
	created := wMustMutate(t, s, dev, "createEnvironment", wCreateEnvSel, map[string]any{"projectId": project, "name": "upd-target"})
	id := get(created, "environment.id").(string)
	envID := gidNumber(t, id, "Environment")
	update := func(t *testing.T, input map[string]any) gqlResponse {
		t.Helper()
		input["environmentId"] = id
		return wMutate(t, s, dev, "updateEnvironment", "environment { "+wEnvFields+" }", input)
	}
	mustUpdate := func(t *testing.T, input map[string]any) map[string]any {
		t.Helper()
		r := update(t, input)
		if len(r.Errors) > 0 || get(r.Data, "updateEnvironment.environment") == nil {
			t.Fatalf("updateEnvironment(%v): %s", input, r.raw)
		}
		e := get(r.Data, "updateEnvironment.environment").(map[string]any)
		// The payload is what a later read sees.
		if again := wEnvironment(t, s, envID); !equalJSON(again, e) {
			t.Errorf("re-read %v, want the payload %v", again, e)
		}
		return e
	}
	check := func(t *testing.T, e map[string]any, url, tier, autoStop any) {
		t.Helper()
		if e["externalUrl"] != url || e["tier"] != tier || e["autoStopAt"] != autoStop {
			t.Errorf("got externalUrl %v tier %v autoStopAt %v, want %v %v %v", e["externalUrl"], e["tier"], e["autoStopAt"], url, tier, autoStop)
		}
		if e["name"] != "upd-target" || e["slug"] != "upd-target" {
			t.Errorf("name/slug changed: %v %v", e["name"], e["slug"])
		}
	}
	const stopAt = "2031-05-06T07:08:09.123Z"

	t.Run("set, and omitted fields stay", func(t *testing.T) {
		e := mustUpdate(t, map[string]any{"externalUrl": "https://a.example.com"})
		check(t, e, "https://a.example.com", "OTHER", nil)
		if !wTime(t, e["updatedAt"]).After(wTime(t, get(created, "environment.updatedAt"))) && e["updatedAt"] != get(created, "environment.updatedAt") {
			t.Errorf("updatedAt went backwards: %v", e["updatedAt"])
		}
		check(t, mustUpdate(t, map[string]any{"tier": "STAGING"}), "https://a.example.com", "STAGING", nil)
		check(t, mustUpdate(t, map[string]any{"autoStopAt": stopAt}), "https://a.example.com", "STAGING", stopAt)
		check(t, mustUpdate(t, map[string]any{}), "https://a.example.com", "STAGING", stopAt)
	})
	t.Run("externalUrl cleared with null, with \"\" and with blanks", func(t *testing.T) {
		check(t, mustUpdate(t, map[string]any{"externalUrl": nil}), nil, "STAGING", stopAt)
		check(t, mustUpdate(t, map[string]any{"externalUrl": "https://b.example.com"}), "https://b.example.com", "STAGING", stopAt)
		check(t, mustUpdate(t, map[string]any{"externalUrl": ""}), nil, "STAGING", stopAt)
		check(t, mustUpdate(t, map[string]any{"externalUrl": "https://c.example.com"}), "https://c.example.com", "STAGING", stopAt)
		check(t, mustUpdate(t, map[string]any{"externalUrl": "  "}), nil, "STAGING", stopAt)
	})
	t.Run("autoStopAt cleared with null", func(t *testing.T) {
		check(t, mustUpdate(t, map[string]any{"autoStopAt": nil}), nil, "STAGING", nil)
		check(t, mustUpdate(t, map[string]any{"autoStopAt": "2032-01-01T00:00:00+01:00", "tier": "PRODUCTION"}), nil, "PRODUCTION", "2031-12-31T23:00:00.000Z")
	})
	t.Run("an unsafe or invalid URL is refused and changes nothing", func(t *testing.T) {
		mustUpdate(t, map[string]any{"externalUrl": "https://keep.example.com"})
		before := wEnvironment(t, s, envID)
		for _, bad := range []string{"javascript:alert(1)", "data:text/html,hi", "vbscript:x", "nope", "https://x.example.com/" + strings.Repeat("b", 250)} {
			wRefused(t, update(t, map[string]any{"externalUrl": bad, "tier": "TESTING"}), "updateEnvironment", "BAD_USER_INPUT", "")
		}
		wRefused(t, update(t, map[string]any{"autoStopAt": "soon"}), "updateEnvironment", "BAD_USER_INPUT", "")
		if after := wEnvironment(t, s, envID); !equalJSON(after, before) {
			t.Errorf("refused updates changed the environment: %v, want %v", after, before)
		}
	})
	t.Run("the name cannot change: the input has no name", func(t *testing.T) {
		r := update(t, map[string]any{"name": "renamed"})
		expectError(t, r, "GRAPHQL_VALIDATION_FAILED", "")
		r = s.query(t, dev, `mutation { updateEnvironment(input: {environmentId: "`+id+`", name: "renamed"}) { environment { name } } }`, nil)
		expectError(t, r, "GRAPHQL_VALIDATION_FAILED", "")
		if got := wEnvironment(t, s, envID)["name"]; got != "upd-target" {
			t.Errorf("name: %v", got)
		}
	})
	t.Run("unknown environment is NOT_FOUND", func(t *testing.T) {
		r := wMutate(t, s, dev, "updateEnvironment", "environment { id }", map[string]any{"environmentId": gid("Environment", 9999), "tier": "OTHER"})
		wRefused(t, r, "updateEnvironment", "NOT_FOUND", "")
	})
}

func TestE2EMutationStopEnvironment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	doc := fixtureDoc(3)
	docProjects(doc)[0]["environments"] = append(slices.Clone(fixtureEnvs), wEnvRec(4, "halting", "stopping", at(0), at(1)))
	s := startServer(t, doc)
	dev := s.tokenFor(t, userDeveloper)
	stop := func(t *testing.T, id string, force any) gqlResponse {
		t.Helper()
		in := map[string]any{"environmentId": id}
		if force != nil {
			in["force"] = force
		}
		return wMutate(t, s, dev, "stopEnvironment", "environment { id state autoStopAt updatedAt }", in)
	}

	t.Run("AVAILABLE → STOPPED clears autoStopAt", func(t *testing.T) {
		p := wMustMutate(t, s, dev, "createEnvironment", "environment { id autoStopAt }", map[string]any{"projectId": project, "name": "to-stop", "autoStopAt": "2035-01-01T00:00:00Z"})
		id := get(p, "environment.id").(string)
		if get(p, "environment.autoStopAt") == nil {
			t.Fatalf("autoStopAt not set: %v", p)
		}
		start := time.Now()
		r := stop(t, id, nil)
		expectNoError(t, r)
		if get(r.Data, "stopEnvironment.environment.state") != "STOPPED" || get(r.Data, "stopEnvironment.environment.autoStopAt") != nil {
			t.Errorf("got %s, want STOPPED without autoStopAt", r.raw)
		}
		e := wEnvironment(t, s, gidNumber(t, id, "Environment"))
		if e["state"] != "STOPPED" || e["autoStopAt"] != nil {
			t.Errorf("re-read: %v", e)
		}
		wNear(t, "updatedAt", e["updatedAt"], start, time.Minute)

		// Stopping a STOPPED environment, with or without force.
		for _, force := range []any{nil, false, true} {
			wRefused(t, stop(t, id, force), "stopEnvironment", "FAILED_PRECONDITION", msgStopFailed)
		}
		if got := wEnvironment(t, s, gidNumber(t, id, "Environment")); !equalJSON(got, e) {
			t.Errorf("a refused stop changed the environment: %v, want %v", got, e)
		}
	})
	t.Run("an imported STOPPED environment", func(t *testing.T) {
		wRefused(t, stop(t, gid("Environment", 3), nil), "stopEnvironment", "FAILED_PRECONDITION", msgStopFailed)
	})
	t.Run("STOPPING needs force", func(t *testing.T) {
		wRefused(t, stop(t, gid("Environment", 4), false), "stopEnvironment", "FAILED_PRECONDITION", msgStopFailed)
		if got := wEnvironment(t, s, 4)["state"]; got != "STOPPING" {
			t.Errorf("state after a refused stop: %v", got)
		}
		r := stop(t, gid("Environment", 4), true)
		expectNoError(t, r)
		if got := wEnvironment(t, s, 4)["state"]; got != "STOPPED" {
			t.Errorf("state after a forced stop: %v, want STOPPED", got)
		}
	})
	t.Run("environment id as a bare number", func(t *testing.T) {
		r := stop(t, "2", nil)
		expectNoError(t, r)
		if got := wEnvironment(t, s, 2)["state"]; got != "STOPPED" {
			t.Errorf("staging: %v", got)
		}
	})
}

func TestE2EMutationDeleteEnvironment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	s := startServer(t, fixtureDoc(12))
	dev := s.tokenFor(t, userDeveloper)
	del := func(t *testing.T, id string) gqlResponse {
		t.Helper()
		return wMutate(t, s, dev, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": id})
	}

	t.Run("only a STOPPED environment; a refused delete keeps its deployments", func(t *testing.T) {
		wRefused(t, del(t, gid("Environment", 2)), "deleteEnvironment", "FAILED_PRECONDITION", "")
		if got := wEnvDeploymentIDs(t, s, project, "staging"); !slices.Equal(got, []int64{2, 5, 8, 11}) {
			t.Errorf("staging's deployments: %v, want [2 5 8 11]", got)
		}
		if wEnvironment(t, s, 2) == nil {
			t.Errorf("staging is gone")
		}
	})
	t.Run("deletes its deployments and their links", func(t *testing.T) {
		before := wDeploymentCount(t, s, project)
		r := del(t, gid("Environment", 3)) // review/fix-foo: deployments 3, 6, 9, 12
		expectNoError(t, r)
		if got := get(r.Data, "deleteEnvironment.deletedEnvironmentId"); got != gid("Environment", 3) {
			t.Errorf("deletedEnvironmentId: %v", got)
		}
		if wEnvironment(t, s, 3) != nil || wEnvByName(t, s, project, "review/fix-foo") != nil {
			t.Errorf("environment 3 still exists")
		}
		for _, id := range []int64{3, 6, 9, 12} {
			if wDeployment(t, s, id) != nil {
				t.Errorf("deployment %d survived its environment", id)
			}
		}
		if got := wEnvDeploymentIDs(t, s, project, "review/fix-foo"); len(got) != 0 {
			t.Errorf("deployments listed for the deleted environment: %v", got)
		}
		if got := wDeploymentCount(t, s, project); got != before-4 {
			t.Errorf("deployments: %d, want %d", got, before-4)
		}
		// Merge requests 6 and 7 were shipped by deployment 3: they stay,
		// without the link.
		mr := wNode(t, s, gid("MergeRequest", 6), "... on MergeRequest { id deployments { count } }")
		if mr == nil || asInt64(get(mr, "deployments.count")) != 0 {
			t.Errorf("merge request 6: %v, want it kept with no deployments", mr)
		}
		// The name is free again, and a new environment starts empty.
		p := wMustMutate(t, s, dev, "createEnvironment", "environment { id deployments { count } }", map[string]any{"projectId": project, "name": "review/fix-foo"})
		if asInt64(get(p, "environment.deployments.count")) != 0 || get(p, "environment.id") == gid("Environment", 3) {
			t.Errorf("re-created review/fix-foo: %v", p)
		}
	})
	t.Run("an environment created, deployed to and stopped through the API", func(t *testing.T) {
		d := wMustMutate(t, s, dev, "createDeployment", "deployment { id environment { id } }", map[string]any{
			"projectId": project, "environment": "doomed", "sha": wSHA(1), "ref": "main", "tag": false, "status": "SUCCESS"})
		envID := get(d, "deployment.environment.id").(string)
		wRefused(t, del(t, envID), "deleteEnvironment", "FAILED_PRECONDITION", "")
		wMustMutate(t, s, dev, "stopEnvironment", "environment { id }", map[string]any{"environmentId": envID})
		expectNoError(t, del(t, envID))
		if wDeployment(t, s, gidNumber(t, get(d, "deployment.id"), "Deployment")) != nil {
			t.Errorf("the deployment survived its environment")
		}
		wRefused(t, del(t, envID), "deleteEnvironment", "NOT_FOUND", "")
	})
}

func TestE2EMutationStopStaleEnvironments(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	doc := fixtureDoc(12)
	p := docProjects(doc)[0]
	recent := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339Nano)
	p["environments"] = append(slices.Clone(fixtureEnvs),
		wEnvRec(4, "busy", "available", at(0), at(1)),       // an old environment with a recent deployment
		wEnvRec(5, "idle", "available", at(0), at(1)),       // nothing since 2024
		wEnvRec(6, "old-deploy", "available", at(0), at(1)), // only old deployments
	)
	busy := wDepRec(100, 100, 4, "busy", "success", 10)
	busy["created_at"], busy["updated_at"], busy["finished_at"] = recent, recent, recent
	p["deployments"] = append(p["deployments"].([]map[string]any), busy, wDepRec(101, 101, 6, "old-deploy", "success", 20))
	s := startServer(t, doc)
	maint := s.tokenFor(t, userMaintainer)
	stale := func(t *testing.T, before any) gqlResponse {
		t.Helper()
		return wMutate(t, s, maint, "stopStaleEnvironments", "message environments { id name state }", map[string]any{"projectId": project, "before": before})
	}
	states := func(t *testing.T) map[string]any {
		t.Helper()
		d := wAdmin(t, s, `{ project(id: "acme/app") { environments(first: 100) { nodes { name state } } } }`, nil)
		out := map[string]any{}
		for _, n := range list(d, "project.environments.nodes") {
			out[get(n, "name").(string)] = get(n, "state")
		}
		return out
	}
	initial := states(t)

	t.Run("before outside [10 years ago, 1 week ago] is Invalid Date", func(t *testing.T) {
		for _, before := range []string{
			wNowMinus(24 * time.Hour), wNowMinus(6 * 24 * time.Hour), wNowMinus(-24 * time.Hour),
			wNowMinus(11 * 365 * 24 * time.Hour), "1970-01-01T00:00:00Z",
		} {
			wRefused(t, stale(t, before), "stopStaleEnvironments", "BAD_USER_INPUT", msgInvalidDate)
		}
		if got := states(t); !equalJSON(got, initial) {
			t.Errorf("refused calls changed states: %v, want %v", got, initial)
		}
	})
	t.Run("2 weeks ago stops the stale, unprotected, AVAILABLE environments", func(t *testing.T) {
		r := stale(t, wNowMinus(14*24*time.Hour))
		expectNoError(t, r)
		if got := get(r.Data, "stopStaleEnvironments.message"); got != msgStaleStopped {
			t.Errorf("message: %v, want %q", got, msgStaleStopped)
		}
		names := pluck(list(r.Data, "stopStaleEnvironments.environments"), "name")
		slices.SortFunc(names, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		if !equalJSON(names, []any{"idle", "old-deploy", "staging"}) {
			t.Errorf("stopped: %v, want [idle old-deploy staging]", names)
		}
		for _, st := range pluck(list(r.Data, "stopStaleEnvironments.environments"), "state") {
			if st != "STOPPED" {
				t.Errorf("a returned environment is %v, want STOPPED", st)
			}
		}
		want := map[string]any{"production": "AVAILABLE", "staging": "STOPPED", "review/fix-foo": "STOPPED", "busy": "AVAILABLE", "idle": "STOPPED", "old-deploy": "STOPPED"}
		if got := states(t); !equalJSON(got, want) {
			t.Errorf("states: %v, want %v", got, want)
		}
	})
	t.Run("a second run stops nothing", func(t *testing.T) {
		r := stale(t, wNowMinus(30*24*time.Hour))
		expectNoError(t, r)
		if got := list(r.Data, "stopStaleEnvironments.environments"); len(got) != 0 || get(r.Data, "stopStaleEnvironments.message") != msgStaleStopped {
			t.Errorf("second run: %s", r.raw)
		}
	})
}

// TestE2EMutationStopStaleBoundaries pins the server's clock to check the
// inclusive bounds of `before` exactly (SPEC 6.2: between 10 years ago and
// 1 week ago, inclusive), and the strict "updatedAt before `before`" and
// "no deployment updated at or after `before`" rules at their edges.
func TestE2EMutationStopStaleBoundaries(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	weekAgo := now.Add(-7 * 24 * time.Hour)
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	doc := fixtureDoc(3)
	p := docProjects(doc)[0]
	p["environments"] = append(slices.Clone(fixtureEnvs),
		wEnvRec(4, "edge-env", "available", at(0), ts(weekAgo)),                          // updated exactly at before: not stale
		wEnvRec(5, "edge-env-2", "available", at(0), ts(weekAgo.Add(-time.Millisecond))), // just before: stale
		wEnvRec(6, "edge-dep", "available", at(0), at(1)),                                // a deployment updated exactly at before
		wEnvRec(7, "edge-dep-2", "available", at(0), at(1)),                              // a deployment updated just before
	)
	d1, d2 := wDepRec(200, 200, 6, "edge-dep", "success", 10), wDepRec(201, 201, 7, "edge-dep-2", "success", 10)
	d1["updated_at"], d2["updated_at"] = ts(weekAgo), ts(weekAgo.Add(-time.Millisecond))
	p["deployments"] = append(p["deployments"].([]map[string]any), d1, d2)

	clock := &fakeClock{now: now}
	dir := t.TempDir()
	c := config{db: dir + "/deploygraph.db", adminToken: rootToken, introspection: true, importFile: writeDoc(t, dir, "doc.json", doc)}
	s, _ := openServer(t, c, store.Options{Clock: clock.Now})
	maint := s.tokenFor(t, userMaintainer)
	for _, tc := range []struct {
		name    string
		before  time.Time
		ok      bool
		stopped []any
	}{
		{"1 ms less than 1 week ago", weekAgo.Add(time.Millisecond), false, nil},
		{"exactly 1 week ago", weekAgo, true, []any{"edge-dep-2", "edge-env-2", "staging"}},
		{"exactly 10 years ago", now.AddDate(-10, 0, 0), true, []any{}},
		{"1 ms more than 10 years ago", now.AddDate(-10, 0, 0).Add(-time.Millisecond), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wMutate(t, s, maint, "stopStaleEnvironments", "message environments { name }", map[string]any{"projectId": "acme/app", "before": ts(tc.before)})
			if !tc.ok {
				wRefused(t, r, "stopStaleEnvironments", "BAD_USER_INPUT", msgInvalidDate)
				return
			}
			expectNoError(t, r)
			names := pluck(list(r.Data, "stopStaleEnvironments.environments"), "name")
			slices.SortFunc(names, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
			if !equalJSON(names, tc.stopped) {
				t.Errorf("stopped %v, want %v", names, tc.stopped)
			}
		})
	}
	for id, want := range map[int64]string{1: "AVAILABLE", 2: "STOPPED", 4: "AVAILABLE", 5: "STOPPED", 6: "AVAILABLE", 7: "STOPPED"} {
		if got := wEnvironment(t, s, id)["state"]; got != want {
			t.Errorf("environment %d: %v, want %s", id, got, want)
		}
	}
}

func TestE2EMutationDeleteStoppedReviewApps(t *testing.T) {
	t.Parallel()
	const project = "acme/rev"
	p := wProject(1, project)
	recent := wNowMinus(24 * time.Hour)
	scheduled := wEnvRec(8, "review/scheduled", "stopped", at(2), at(2))
	scheduled["auto_delete_at"] = time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339Nano)
	p["environments"] = []map[string]any{
		wEnvRec(1, "review/a", "stopped", at(0), at(0)),
		wEnvRec(2, "review/b", "stopped", at(10), at(10)),
		wEnvRec(3, "review/c", "available", at(5), at(5)),
		wEnvRec(4, "other/x", "stopped", at(1), at(1)),
		wEnvRec(5, "review", "stopped", at(1), at(1)),
		wEnvRec(6, "review/nested/deep", "stopped", at(20), at(20)),
		wEnvRec(7, "review/recent", "stopped", recent, recent),
		scheduled,
		wEnvRec(9, "reviews/x", "stopped", at(3), at(3)),
		wEnvRec(10, "review/stopping", "stopping", at(4), at(4)),
		wEnvRec(11, "review/d29", "stopped", wNowMinus(29*24*time.Hour), wNowMinus(29*24*time.Hour)),
		wEnvRec(12, "review/d31", "stopped", wNowMinus(31*24*time.Hour), wNowMinus(31*24*time.Hour)),
	}
	s := startServer(t, map[string]any{"users": wUsers(), "projects": []map[string]any{p}})
	dev := s.tokenFor(t, userDeveloper)
	const sel = "dryRun message scheduledEntries { id name autoDeleteAt } unprocessableEntries { id name }"
	run := func(t *testing.T, input map[string]any) gqlResponse {
		t.Helper()
		input["projectId"] = project
		return wMutate(t, s, dev, "deleteStoppedReviewApps", sel, input)
	}
	mustRun := func(t *testing.T, input map[string]any) map[string]any {
		t.Helper()
		r := run(t, input)
		if len(r.Errors) > 0 || r.Data["deleteStoppedReviewApps"] == nil {
			t.Fatalf("deleteStoppedReviewApps(%v): %s", input, r.raw)
		}
		out := r.Data["deleteStoppedReviewApps"].(map[string]any)
		if len(list(out, "unprocessableEntries")) != 0 {
			t.Errorf("unprocessableEntries: %v", out["unprocessableEntries"])
		}
		if m, _ := out["message"].(string); m == "" {
			t.Errorf("empty message")
		}
		return out
	}
	names := func(out map[string]any) []any { return pluck(list(out, "scheduledEntries"), "name") }
	unscheduled := func(t *testing.T, ids ...int64) {
		t.Helper()
		for _, id := range ids {
			if got := wEnvironment(t, s, id)["autoDeleteAt"]; got != nil {
				t.Errorf("environment %d: autoDeleteAt %v, want none", id, got)
			}
		}
	}

	t.Run("dryRun defaults to true and schedules nothing", func(t *testing.T) {
		out := mustRun(t, map[string]any{})
		if out["dryRun"] != true {
			t.Errorf("dryRun: %v, want true", out["dryRun"])
		}
		// Stopped, folder exactly "review", created before 30 days ago, not
		// yet scheduled; oldest first.
		if got := names(out); !equalJSON(got, []any{"review/a", "review/b", "review/nested/deep", "review/d31"}) {
			t.Errorf("candidates: %v, want [review/a review/b review/nested/deep review/d31]", got)
		}
		unscheduled(t, 1, 2, 6, 12)
	})
	t.Run("limit must be 1 to 1000", func(t *testing.T) {
		for _, limit := range []int{0, -1, 1001} {
			wRefused(t, run(t, map[string]any{"limit": limit, "dryRun": false}), "deleteStoppedReviewApps", "BAD_USER_INPUT", "")
		}
		unscheduled(t, 1, 2, 6)
		mustRun(t, map[string]any{"limit": 1000})
		if got := names(mustRun(t, map[string]any{"limit": 1})); !equalJSON(got, []any{"review/a"}) {
			t.Errorf("limit 1: %v, want [review/a]", got)
		}
		if got := names(mustRun(t, map[string]any{"limit": 2})); !equalJSON(got, []any{"review/a", "review/b"}) {
			t.Errorf("limit 2: %v, want [review/a review/b]", got)
		}
	})
	t.Run("before", func(t *testing.T) {
		if got := names(mustRun(t, map[string]any{"before": at(5)})); !equalJSON(got, []any{"review/a"}) {
			t.Errorf("before %s: %v, want [review/a]", at(5), got)
		}
		// Created before `before`, strictly: review/b was created at(10).
		if got := names(mustRun(t, map[string]any{"before": at(10)})); !equalJSON(got, []any{"review/a"}) {
			t.Errorf("before %s: %v, want [review/a]", at(10), got)
		}
		justAfter := fixtureBase.Add(10*time.Minute + time.Millisecond).Format(time.RFC3339Nano)
		if got := names(mustRun(t, map[string]any{"before": justAfter})); !equalJSON(got, []any{"review/a", "review/b"}) {
			t.Errorf("before %s: %v, want [review/a review/b]", justAfter, got)
		}
		if got := names(mustRun(t, map[string]any{"before": wNowMinus(-time.Minute)})); !equalJSON(got, []any{"review/a", "review/b", "review/nested/deep", "review/d31", "review/d29", "review/recent"}) {
			t.Errorf("before now: %v", got)
		}
		wRefused(t, run(t, map[string]any{"before": "yesterday"}), "deleteStoppedReviewApps", "BAD_USER_INPUT", "")
	})
	t.Run("a real run schedules deletion in 7 days", func(t *testing.T) {
		start := time.Now()
		out := mustRun(t, map[string]any{"dryRun": false, "limit": 2})
		if out["dryRun"] != false || !equalJSON(names(out), []any{"review/a", "review/b"}) {
			t.Errorf("got %v, want review/a and review/b scheduled", out)
		}
		for _, id := range []int64{1, 2} {
			e := wEnvironment(t, s, id)
			wNear(t, fmt.Sprintf("environment %d autoDeleteAt", id), e["autoDeleteAt"], start.Add(7*24*time.Hour), time.Minute)
			if e["state"] != "STOPPED" {
				t.Errorf("environment %d: %v, want still STOPPED until the sweep", id, e["state"])
			}
		}
		for _, e := range list(out, "scheduledEntries") {
			wNear(t, "scheduled entry autoDeleteAt", get(e, "autoDeleteAt"), start.Add(7*24*time.Hour), time.Minute)
		}
		unscheduled(t, 6, 12)
		// Scheduled ones are no longer candidates.
		if got := names(mustRun(t, map[string]any{})); !equalJSON(got, []any{"review/nested/deep", "review/d31"}) {
			t.Errorf("after scheduling: %v, want [review/nested/deep review/d31]", got)
		}
	})
	t.Run("no candidates: nothing scheduled, and a message says why", func(t *testing.T) {
		out := mustRun(t, map[string]any{"dryRun": false, "before": "2023-01-01T00:00:00Z"})
		if len(list(out, "scheduledEntries")) != 0 || out["dryRun"] != false {
			t.Errorf("got %v", out)
		}
	})
}

// depInput is a createDeployment input.
func depInput(project, env, sha, ref, status string) map[string]any {
	return map[string]any{"projectId": project, "environment": env, "sha": sha, "ref": ref, "tag": false, "status": status}
}

func TestE2EMutationCreateDeployment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	doc := fixtureDoc(12)
	// A protected name that is not an environment yet.
	docProjects(doc)[0]["protected_environments"] = append(docProjects(doc)[0]["protected_environments"].([]map[string]any),
		map[string]any{"name": "never-protected", "deploy_access_levels": []map[string]any{{"access_level": 40}}})
	s := startServer(t, doc)
	dev, maint := s.tokenFor(t, userDeveloper), s.tokenFor(t, userMaintainer)
	create := func(t *testing.T, token string, in map[string]any) gqlResponse {
		t.Helper()
		return wMutate(t, s, token, "createDeployment", wDepSel, in)
	}
	mustCreate := func(t *testing.T, token string, in map[string]any) map[string]any {
		t.Helper()
		r := create(t, token, in)
		if len(r.Errors) > 0 || get(r.Data, "createDeployment.deployment") == nil {
			t.Fatalf("createDeployment(%v): %s", in, r.raw)
		}
		return get(r.Data, "createDeployment.deployment").(map[string]any)
	}
	refused := func(t *testing.T, token string, in map[string]any, code, msg string) {
		t.Helper()
		before := wDeploymentCount(t, s, project)
		wRefused(t, create(t, token, in), "createDeployment", code, msg)
		if got := wDeploymentCount(t, s, project); got != before {
			t.Errorf("deployments after a refused create: %d, want %d", got, before)
		}
		if name, _ := in["environment"].(string); strings.HasPrefix(name, "never-") {
			if wEnvByName(t, s, project, name) != nil {
				t.Errorf("a refused create made environment %q", name)
			}
		}
	}

	t.Run("finds or creates the environment; iid is next; user is the caller", func(t *testing.T) {
		start := time.Now()
		d := mustCreate(t, dev, depInput(project, "canary", wSHA(1), "main", "SUCCESS"))
		if asInt64(d["iid"]) != 13 || d["status"] != "SUCCESS" || get(d, "user.username") != "dev" || d["ref"] != "main" || d["sha"] != wSHA(1) || d["tag"] != false {
			t.Errorf("got %v, want iid 13, SUCCESS, by dev", d)
		}
		if d["deployable"] != nil {
			t.Errorf("deployable: %v, want null for an API deployment", d["deployable"])
		}
		wNear(t, "createdAt", d["createdAt"], start, time.Minute)
		wNear(t, "finishedAt", d["finishedAt"], start, time.Minute)
		e := wEnvByName(t, s, project, "canary")
		if e == nil || e["tier"] != "OTHER" || e["slug"] != "canary" || e["state"] != "AVAILABLE" || get(d, "environment.id") != e["id"] {
			t.Errorf("environment canary: %v", e)
		}
		if got := wDeploymentCount(t, s, project); got != 13 {
			t.Errorf("deployments: %d, want 13", got)
		}
		d = mustCreate(t, dev, depInput(project, "qa-eu", wSHA(2), "main", "CREATED"))
		if asInt64(d["iid"]) != 14 || d["status"] != "CREATED" || d["finishedAt"] != nil {
			t.Errorf("got %v, want iid 14, CREATED, no finishedAt", d)
		}
		if e := wEnvByName(t, s, project, "qa-eu"); e == nil || e["tier"] != "TESTING" {
			t.Errorf("environment qa-eu: %v, want tier TESTING", e)
		}
		// An existing environment is reused.
		envs := wEnvironmentCount(t, s, project)
		d = mustCreate(t, dev, depInput(project, "staging", wSHA(3), "develop", "RUNNING"))
		if get(d, "environment.id") != gid("Environment", 2) || asInt64(d["iid"]) != 15 || d["finishedAt"] != nil {
			t.Errorf("got %v, want iid 15 on staging", d)
		}
		if got := wEnvironmentCount(t, s, project); got != envs {
			t.Errorf("environments: %d, want %d", got, envs)
		}
	})
	t.Run("sha: 40 or 64 hex characters, stored lower case", func(t *testing.T) {
		long := strings.ToUpper(wSHA(4) + wSHA(5)[:24])
		d := mustCreate(t, dev, depInput(project, "sha-env", long, "main", "RUNNING"))
		if d["sha"] != strings.ToLower(long) {
			t.Errorf("sha: %v, want %s", d["sha"], strings.ToLower(long))
		}
		d = mustCreate(t, dev, depInput(project, "sha-env", strings.ToUpper(wSHA(6)), "main", "RUNNING"))
		if d["sha"] != wSHA(6) {
			t.Errorf("sha: %v, want %s", d["sha"], wSHA(6))
		}
		for i, bad := range []string{"", "abc123", wSHA(7)[:39], wSHA(7) + "a", wSHA(7)[:39] + "g", long[:63], long + "0", "zz" + wSHA(7)[2:]} {
			refused(t, dev, depInput(project, fmt.Sprintf("never-sha-%d", i), bad, "main", "RUNNING"), "BAD_USER_INPUT", "")
		}
	})
	t.Run("ref: non-empty, at most 255 characters, no whitespace", func(t *testing.T) {
		for i, bad := range []string{"", "has space", "tab\there", "new\nline", strings.Repeat("r", 256)} {
			refused(t, dev, depInput(project, fmt.Sprintf("never-ref-%d", i), wSHA(8), bad, "RUNNING"), "BAD_USER_INPUT", "")
		}
		d := mustCreate(t, dev, depInput(project, "ref-env", wSHA(8), strings.Repeat("r", 255), "RUNNING"))
		if d["ref"] != strings.Repeat("r", 255) {
			t.Errorf("ref not kept")
		}
		in := depInput(project, "ref-env", wSHA(9), "v1.2.3", "SUCCESS")
		in["tag"] = true
		if d := mustCreate(t, dev, in); d["tag"] != true || d["ref"] != "v1.2.3" {
			t.Errorf("tag deployment: %v", d)
		}
	})
	t.Run("status SKIPPED and BLOCKED are refused", func(t *testing.T) {
		for _, st := range []string{"SKIPPED", "BLOCKED"} {
			refused(t, dev, depInput(project, "never-status-"+strings.ToLower(st), wSHA(10), "main", st), "BAD_USER_INPUT", "")
		}
		refused(t, dev, depInput(project, "never-status-bogus", wSHA(10), "main", "DONE"), "GRAPHQL_VALIDATION_FAILED", "")
	})
	t.Run("environment name rules", func(t *testing.T) {
		refused(t, dev, depInput(project, "never-bad/", wSHA(11), "main", "RUNNING"), "BAD_USER_INPUT", msgEnvName)
		if wEnvByName(t, s, project, "never-bad/") != nil {
			t.Errorf("environment created from a bad name")
		}
		refused(t, dev, depInput(project, "", wSHA(11), "main", "RUNNING"), "BAD_USER_INPUT", "")
	})
	t.Run("a retry returns the same deployment", func(t *testing.T) {
		first := mustCreate(t, dev, depInput(project, "retry", wSHA(12), "main", "RUNNING"))
		count := wDeploymentCount(t, s, project)
		again := mustCreate(t, dev, depInput(project, "retry", wSHA(12), "main", "RUNNING"))
		if again["id"] != first["id"] || again["iid"] != first["iid"] {
			t.Errorf("retry: got %v/%v, want %v/%v", again["id"], again["iid"], first["id"], first["iid"])
		}
		if got := wDeploymentCount(t, s, project); got != count {
			t.Errorf("deployments after a retry: %d, want %d", got, count)
		}
		// Any difference in ref, tag, sha or status is a new deployment.
		for i, in := range []map[string]any{
			depInput(project, "retry", wSHA(12), "main", "SUCCESS"),
			depInput(project, "retry", wSHA(12), "other", "SUCCESS"),
			depInput(project, "retry", wSHA(13), "other", "SUCCESS"),
		} {
			d := mustCreate(t, dev, in)
			if d["id"] == first["id"] || asInt64(d["iid"]) != asInt64(first["iid"])+int64(i)+1 {
				t.Errorf("case %d: got %v, want a new deployment with the next iid", i, d)
			}
		}
		// Only the newest deployment counts: repeating the first one now
		// records it again.
		d := mustCreate(t, dev, depInput(project, "retry", wSHA(12), "main", "RUNNING"))
		if d["id"] == first["id"] {
			t.Errorf("a repeat of an older deployment returned it instead of recording a new one")
		}
		// The same deployment in another environment is not a retry.
		d = mustCreate(t, dev, depInput(project, "retry-2", wSHA(12), "main", "RUNNING"))
		if d["id"] == first["id"] {
			t.Errorf("a deployment to another environment was taken for a retry")
		}
	})
	t.Run("a protected name that is not an environment yet", func(t *testing.T) {
		refused(t, dev, depInput(project, "never-protected", wSHA(60), "main", "SUCCESS"), "FORBIDDEN", "")
		d := mustCreate(t, maint, depInput(project, "never-protected", wSHA(60), "main", "SUCCESS"))
		if d["status"] != "SUCCESS" { // protected without approval rules: not gated
			t.Errorf("status: %v, want SUCCESS", d["status"])
		}
	})
	t.Run("a protected environment with approval rules holds it BLOCKED", func(t *testing.T) {
		for i, st := range []string{"SUCCESS", "RUNNING", "CREATED", "FAILED"} {
			d := mustCreate(t, maint, depInput(project, "production", wSHA(20+i), "main", st))
			if d["status"] != "BLOCKED" || d["finishedAt"] != nil || asInt64(d["pendingApprovalCount"]) != 2 || get(d, "user.username") != "maint" {
				t.Errorf("asked %s: got %v, want BLOCKED, unfinished, 2 approvals pending", st, d)
			}
		}
		// The last SUCCESS on production is unchanged.
		if d := wDeployment(t, s, 1); d["isLastDeployment"] != true {
			t.Errorf("deployment 1 is no longer production's last deployment")
		}
	})
	t.Run("SUCCESS in a STOPPED environment makes it AVAILABLE", func(t *testing.T) {
		if e := wEnvironment(t, s, 3); e["state"] != "STOPPED" {
			t.Fatalf("set-up: review/fix-foo is %v", e["state"])
		}
		mustCreate(t, dev, depInput(project, "review/fix-foo", wSHA(30), "main", "FAILED"))
		if got := wEnvironment(t, s, 3)["state"]; got != "STOPPED" {
			t.Errorf("after a FAILED deployment: %v, want STOPPED", got)
		}
		mustCreate(t, dev, depInput(project, "review/fix-foo", wSHA(31), "main", "SUCCESS"))
		if got := wEnvironment(t, s, 3)["state"]; got != "AVAILABLE" {
			t.Errorf("after a SUCCESS deployment: %v, want AVAILABLE", got)
		}
	})
	t.Run("projectId forms and unknown projects", func(t *testing.T) {
		for i, ref := range []string{"1", gid("Project", 1)} {
			d := mustCreate(t, dev, depInput(ref, "ref-form", wSHA(40+i), "main", "RUNNING"))
			if d == nil {
				t.Errorf("projectId %s refused", ref)
			}
		}
		refused(t, dev, depInput("acme/nope", "never-x", wSHA(50), "main", "RUNNING"), "NOT_FOUND", "")
	})
}

// transitionDoc has, in project acme/flow, one deployment per (from, to)
// pair, each in its own environment, with every status as `from`; plus a
// CI-created deployment, deployments in stopped and stopping environments
// and an environment whose last deployment will move.
var wStatuses = []string{"CREATED", "RUNNING", "SUCCESS", "FAILED", "CANCELED", "SKIPPED", "BLOCKED"}
var wTargets = []string{"RUNNING", "SUCCESS", "FAILED", "CANCELED"}

func transitionID(from, to int) int { return 100 + from*10 + to }

func transitionDoc() map[string]any {
	p := wProject(1, "acme/flow")
	var envs, deps []map[string]any
	for fi, from := range wStatuses {
		for ti, to := range wTargets {
			id := transitionID(fi, ti)
			name := strings.ToLower("t-" + from + "-" + to)
			envs = append(envs, wEnvRec(id, name, "available", at(0), at(1)))
			deps = append(deps, wDepRec(id, id, id, name, strings.ToLower(from), 10))
		}
	}
	envs = append(envs,
		wEnvRec(900, "ci-env", "available", at(0), at(1)),
		wEnvRec(950, "halted", "stopped", at(0), at(1)),
		wEnvRec(951, "halting", "stopping", at(0), at(1)),
		wEnvRec(952, "dormant", "stopped", at(0), at(1)),
		wEnvRec(960, "lastenv", "available", at(0), at(1)),
	)
	ci := wDepRec(900, 900, 900, "ci-env", "running", 10)
	ci["deployable"] = map[string]any{
		"id": 9000, "name": "deploy", "stage": "deploy", "status": "running", "ref": "main", "tag": false, "created_at": at(10),
		"commit":   map[string]any{"id": sha(900), "message": "CI"},
		"pipeline": map[string]any{"id": 9100, "sha": sha(900), "ref": "main", "status": "running"},
	}
	deps = append(deps, ci,
		wDepRec(950, 950, 950, "halted", "running", 20),
		wDepRec(951, 951, 951, "halting", "running", 20),
		wDepRec(952, 952, 952, "dormant", "running", 20),
		wDepRec(960, 960, 960, "lastenv", "success", 100),
		wDepRec(961, 961, 960, "lastenv", "running", 110),
	)
	p["environments"], p["deployments"] = envs, deps
	return map[string]any{"users": wUsers(), "projects": []map[string]any{p}}
}

// allowedTransition is SPEC 6.3's machine, written independently.
func allowedTransition(from, to string) bool {
	if to == "RUNNING" {
		return from == "CREATED" || from == "BLOCKED"
	}
	return from != to
}

func TestE2EMutationUpdateDeploymentStatusMachine(t *testing.T) {
	t.Parallel()
	s := startServer(t, transitionDoc())
	dev := s.tokenFor(t, userDeveloper)
	for fi, from := range wStatuses {
		for ti, to := range wTargets {
			id := int64(transitionID(fi, ti))
			ok := allowedTransition(from, to)
			t.Run(fmt.Sprintf("%s to %s: %v", from, to, ok), func(t *testing.T) {
				before := wDeployment(t, s, id)
				if before["status"] != from {
					t.Fatalf("set-up: deployment %d is %v, want %s", id, before["status"], from)
				}
				start := time.Now()
				r := wMutate(t, s, dev, "updateDeployment", "deployment { "+wDepFields+" }", map[string]any{"deploymentId": gid("Deployment", id), "status": to})
				after := wDeployment(t, s, id)
				if !ok {
					wRefused(t, r, "updateDeployment", "FAILED_PRECONDITION", "")
					for _, e := range r.Errors {
						m := strings.ToUpper(e.Message)
						if !strings.Contains(m, from) || !strings.Contains(m, to) {
							t.Errorf("message %q does not name both %s and %s", e.Message, from, to)
						}
					}
					if !equalJSON(after, before) {
						t.Errorf("a refused transition changed the deployment: %v, want %v", after, before)
					}
					return
				}
				expectNoError(t, r)
				if get(r.Data, "updateDeployment.deployment.status") != to || after["status"] != to {
					t.Errorf("status: payload %v, re-read %v, want %s", get(r.Data, "updateDeployment.deployment.status"), after["status"], to)
				}
				if to == "RUNNING" {
					if after["finishedAt"] != before["finishedAt"] {
						t.Errorf("finishedAt changed on RUNNING: %v → %v", before["finishedAt"], after["finishedAt"])
					}
				} else {
					// Set to now, again if it was set before.
					wNear(t, "finishedAt", after["finishedAt"], start, time.Minute)
				}
				wNear(t, "updatedAt", after["updatedAt"], start, time.Minute)
				if after["iid"] != before["iid"] || after["sha"] != before["sha"] || after["ref"] != before["ref"] || get(after, "user.username") != get(before, "user.username") {
					t.Errorf("other fields changed: %v → %v", before, after)
				}
			})
		}
	}
	t.Run("statuses outside RUNNING, SUCCESS, FAILED, CANCELED are BAD_USER_INPUT", func(t *testing.T) {
		id := int64(transitionID(0, 1)) // CREATED; the SUCCESS case above moved it, so read first
		before := wDeployment(t, s, id)
		for _, st := range []string{"CREATED", "SKIPPED", "BLOCKED"} {
			r := wMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", id), "status": st})
			wRefused(t, r, "updateDeployment", "BAD_USER_INPUT", "")
		}
		if after := wDeployment(t, s, id); !equalJSON(after, before) {
			t.Errorf("changed: %v → %v", before, after)
		}
	})
	t.Run("a CI-created deployment is FORBIDDEN", func(t *testing.T) {
		for _, st := range wTargets {
			r := wMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 900), "status": st})
			wRefused(t, r, "updateDeployment", "FORBIDDEN", msgCIDeployments)
		}
		if got := wDeployment(t, s, 900)["status"]; got != "RUNNING" {
			t.Errorf("status: %v, want RUNNING", got)
		}
	})
	t.Run("SUCCESS in a STOPPED or STOPPING environment makes it AVAILABLE", func(t *testing.T) {
		for _, id := range []int64{950, 951} {
			wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", id), "status": "SUCCESS"})
			if got := wEnvironment(t, s, id)["state"]; got != "AVAILABLE" {
				t.Errorf("environment %d: %v, want AVAILABLE", id, got)
			}
		}
		// Only SUCCESS restarts an environment: a failed deployment does not
		// bring a stopped one back (the spec names SUCCESS alone).
		wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 952), "status": "FAILED"})
		if got := wEnvironment(t, s, 952)["state"]; got != "STOPPED" {
			t.Errorf("dormant after a FAILED deployment: %v, want STOPPED", got)
		}
	})
	t.Run("lastDeployment and isLastDeployment move", func(t *testing.T) {
		last := func(t *testing.T) (string, any) {
			t.Helper()
			d := wAdmin(t, s, `{ project(id: "acme/flow") { environment(name: "lastenv") { lastDeployment { id } failed: lastDeployment(status: FAILED) { id } } } }`, nil)
			id, _ := get(d, "project.environment.lastDeployment.id").(string)
			return id, get(d, "project.environment.failed.id")
		}
		isLast := func(t *testing.T, id int64) any { return wDeployment(t, s, id)["isLastDeployment"] }
		if id, _ := last(t); id != gid("Deployment", 960) || isLast(t, 960) != true || isLast(t, 961) != false {
			t.Fatalf("set-up: lastDeployment %v", id)
		}
		wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 961), "status": "SUCCESS"})
		if id, _ := last(t); id != gid("Deployment", 961) || isLast(t, 961) != true || isLast(t, 960) != false {
			t.Errorf("after 961 SUCCESS: lastDeployment %v, isLast 960 %v 961 %v", id, isLast(t, 960), isLast(t, 961))
		}
		wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 961), "status": "FAILED"})
		id, failed := last(t)
		if id != gid("Deployment", 960) || isLast(t, 960) != true || isLast(t, 961) != false {
			t.Errorf("after 961 FAILED: lastDeployment %v, want 960 back", id)
		}
		if failed != gid("Deployment", 961) {
			t.Errorf("lastDeployment(status: FAILED): %v, want 961", failed)
		}
		// 960 again SUCCESS later than anything: still last, finishedAt renewed.
		wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 961), "status": "SUCCESS"})
		if id, _ := last(t); id != gid("Deployment", 961) {
			t.Errorf("after 961 SUCCESS again: lastDeployment %v, want 961", id)
		}
	})
}

// TestE2EMutationUpdateDeploymentApprovalGate: a BLOCKED deployment waiting
// for approvals may not run or succeed; it may be canceled at any time; once
// nothing is pending it may run (SPEC 6.3). Production requires one
// approval from the approvers group and one from a maintainer.
func TestE2EMutationUpdateDeploymentApprovalGate(t *testing.T) {
	t.Parallel()
	doc := fixtureDoc(3)
	p := docProjects(doc)[0]
	approval := func(user int) map[string]any {
		return map[string]any{"user": map[string]any{"id": user}, "status": "approved", "created_at": at(200)}
	}
	full := wDepRec(300, 300, 1, "production", "blocked", 100)
	full["approvals"] = []map[string]any{approval(userDeveloper), approval(userMaintainer)}
	half := wDepRec(301, 301, 1, "production", "blocked", 110)
	half["approvals"] = []map[string]any{approval(userDeveloper)}
	full2 := wDepRec(302, 302, 1, "production", "blocked", 120)
	full2["approvals"] = []map[string]any{approval(userDeveloper), approval(userMaintainer)}
	p["deployments"] = append(p["deployments"].([]map[string]any), full, half, full2)
	s := startServer(t, doc)
	maint := s.tokenFor(t, userMaintainer)
	update := func(t *testing.T, id int64, status string) gqlResponse {
		t.Helper()
		return wMutate(t, s, maint, "updateDeployment", "deployment { status finishedAt pendingApprovalCount }", map[string]any{"deploymentId": gid("Deployment", id), "status": status})
	}

	t.Run("a new deployment waiting for approvals", func(t *testing.T) {
		d := wMustMutate(t, s, maint, "createDeployment", "deployment { id status pendingApprovalCount }", depInput("acme/app", "production", wSHA(1), "main", "RUNNING"))
		id := gidNumber(t, get(d, "deployment.id"), "Deployment")
		if get(d, "deployment.status") != "BLOCKED" || asInt64(get(d, "deployment.pendingApprovalCount")) != 2 {
			t.Errorf("got %v, want BLOCKED with 2 pending", d)
		}
		before := wDeployment(t, s, id)
		for _, st := range []string{"RUNNING", "SUCCESS"} {
			wRefused(t, update(t, id, st), "updateDeployment", "FAILED_PRECONDITION", "")
		}
		if after := wDeployment(t, s, id); !equalJSON(after, before) {
			t.Errorf("refused updates changed the deployment: %v → %v", before, after)
		}
		r := update(t, id, "CANCELED")
		expectNoError(t, r)
		if get(r.Data, "updateDeployment.deployment.status") != "CANCELED" || get(r.Data, "updateDeployment.deployment.finishedAt") == nil {
			t.Errorf("cancel: %s", r.raw)
		}
	})
	t.Run("one approval of two still pending", func(t *testing.T) {
		for _, st := range []string{"RUNNING", "SUCCESS"} {
			wRefused(t, update(t, 301, st), "updateDeployment", "FAILED_PRECONDITION", "")
		}
		if got := wDeployment(t, s, 301)["status"]; got != "BLOCKED" {
			t.Errorf("status: %v", got)
		}
		r := update(t, 301, "FAILED")
		expectNoError(t, r)
	})
	t.Run("fully approved: free to run, or to succeed directly", func(t *testing.T) {
		r := update(t, 300, "RUNNING")
		expectNoError(t, r)
		if got := wDeployment(t, s, 300)["status"]; got != "RUNNING" {
			t.Errorf("status: %v, want RUNNING", got)
		}
		r = update(t, 302, "SUCCESS")
		expectNoError(t, r)
		if d := wDeployment(t, s, 302); d["status"] != "SUCCESS" || d["isLastDeployment"] != true {
			t.Errorf("deployment 302: %v, want SUCCESS and production's last deployment", d)
		}
	})
}

func TestE2EMutationDeleteDeployment(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	doc := fixtureDoc(12)
	p := docProjects(doc)[0]
	// "ordering": the higher id finished earlier; "ties": same finish time.
	p["environments"] = append(slices.Clone(fixtureEnvs), wEnvRec(4, "ordering", "available", at(0), at(1)), wEnvRec(5, "ties", "available", at(0), at(1)))
	d500, d501 := wDepRec(500, 500, 4, "ordering", "success", 300), wDepRec(501, 501, 4, "ordering", "success", 240)
	d502, d503 := wDepRec(502, 502, 5, "ties", "success", 300), wDepRec(503, 503, 5, "ties", "success", 300)
	p["deployments"] = append(p["deployments"].([]map[string]any), d500, d501, d502, d503)
	s := startServer(t, doc)
	maint, dev := s.tokenFor(t, userMaintainer), s.tokenFor(t, userDeveloper)
	del := func(t *testing.T, id int64) gqlResponse {
		t.Helper()
		return wMutate(t, s, maint, "deleteDeployment", "deletedDeploymentId", map[string]any{"deploymentId": gid("Deployment", id)})
	}

	t.Run("RUNNING: Cannot destroy running deployment", func(t *testing.T) {
		wRefused(t, del(t, 4), "deleteDeployment", "FAILED_PRECONDITION", msgRunning)
		if d := wDeployment(t, s, 4); d == nil || d["status"] != "RUNNING" {
			t.Errorf("deployment 4: %v", d)
		}
	})
	t.Run("the environment's last deployment: Deployment currently deployed to environment", func(t *testing.T) {
		for _, id := range []int64{1, 11} { // production's and staging's
			wRefused(t, del(t, id), "deleteDeployment", "FAILED_PRECONDITION", msgDeployed)
			if d := wDeployment(t, s, id); d == nil || d["isLastDeployment"] != true {
				t.Errorf("deployment %d: %v", id, d)
			}
		}
	})
	t.Run("an older SUCCESS is deleted with its links", func(t *testing.T) {
		before := wDeploymentCount(t, s, project)
		r := del(t, 8)
		expectNoError(t, r)
		if got := get(r.Data, "deleteDeployment.deletedDeploymentId"); got != gid("Deployment", 8) {
			t.Errorf("deletedDeploymentId: %v", got)
		}
		if wDeployment(t, s, 8) != nil {
			t.Errorf("deployment 8 still exists")
		}
		if got := wDeploymentCount(t, s, project); got != before-1 {
			t.Errorf("deployments: %d, want %d", got, before-1)
		}
		if got := wEnvDeploymentIDs(t, s, project, "staging"); !slices.Equal(got, []int64{2, 5, 11}) {
			t.Errorf("staging: %v, want [2 5 11]", got)
		}
		for _, mr := range []int64{16, 17} { // shipped by deployment 8 only
			n := wNode(t, s, gid("MergeRequest", mr), "... on MergeRequest { id deployments { count } }")
			if n == nil || asInt64(get(n, "deployments.count")) != 0 {
				t.Errorf("merge request %d: %v, want kept without deployments", mr, n)
			}
		}
		if d := wDeployment(t, s, 11); d["isLastDeployment"] != true {
			t.Errorf("staging's last deployment changed")
		}
	})
	t.Run("the last deployment is the latest finished SUCCESS, ties by higher id", func(t *testing.T) {
		wRefused(t, del(t, 500), "deleteDeployment", "FAILED_PRECONDITION", msgDeployed)
		expectNoError(t, del(t, 501))
		wRefused(t, del(t, 503), "deleteDeployment", "FAILED_PRECONDITION", msgDeployed)
		expectNoError(t, del(t, 502))
		if wDeployment(t, s, 500) == nil || wDeployment(t, s, 503) == nil || wDeployment(t, s, 501) != nil || wDeployment(t, s, 502) != nil {
			t.Errorf("wrong deployments deleted")
		}
	})
	t.Run("a BLOCKED deployment with approvals is deleted", func(t *testing.T) {
		expectNoError(t, del(t, 10))
		if wDeployment(t, s, 10) != nil {
			t.Errorf("deployment 10 still exists")
		}
	})
	t.Run("deployments recorded through the API", func(t *testing.T) {
		first := wMustMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "tmp", wSHA(1), "main", "SUCCESS"))
		second := wMustMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "tmp", wSHA(2), "main", "SUCCESS"))
		firstID, secondID := gidNumber(t, get(first, "deployment.id"), "Deployment"), gidNumber(t, get(second, "deployment.id"), "Deployment")
		wRefused(t, del(t, secondID), "deleteDeployment", "FAILED_PRECONDITION", msgDeployed)
		expectNoError(t, del(t, firstID))
		if wDeployment(t, s, firstID) != nil || wDeployment(t, s, secondID) == nil {
			t.Errorf("wrong deployment deleted")
		}
		wRefused(t, del(t, firstID), "deleteDeployment", "NOT_FOUND", "")
	})
	t.Run("an iid is never handed out again after a delete", func(t *testing.T) {
		failed := wMustMutate(t, s, dev, "createDeployment", "deployment { id iid }", depInput(project, "tmp", wSHA(3), "main", "FAILED"))
		expectNoError(t, del(t, gidNumber(t, get(failed, "deployment.id"), "Deployment")))
		next := wMustMutate(t, s, dev, "createDeployment", "deployment { id iid }", depInput(project, "tmp", wSHA(4), "main", "FAILED"))
		if got, deleted := asInt64(get(next, "deployment.iid")), asInt64(get(failed, "deployment.iid")); got != deleted+1 {
			t.Errorf("iid after deleting iid %d: %d, want %d", deleted, got, deleted+1)
		}
		if get(next, "deployment.id") == get(failed, "deployment.id") {
			t.Errorf("a deleted deployment's id was reused")
		}
	})
}

// mrProjectsDoc: acme/ship (private, no merge requests yet) and acme/other
// with one merge request (id 700, iid 1).
func mrProjectsDoc() map[string]any {
	ship := wProject(1, "acme/ship")
	other := wProject(2, "acme/other")
	other["merge_requests"] = []map[string]any{{
		"id": 700, "iid": 1, "title": "Elsewhere", "state": "merged", "source_branch": "x", "target_branch": "main",
		"author": map[string]any{"id": userDeveloper}, "created_at": at(1), "updated_at": at(2), "merged_at": at(2),
	}}
	return map[string]any{"users": wUsers(), "projects": []map[string]any{ship, other}}
}

const wMRSel = "mergeRequest { id iid title description state sourceBranch targetBranch labels draft author { username } createdAt updatedAt mergedAt mergeCommitSha project { fullPath } }"

func TestE2EMutationMergeRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, mrProjectsDoc())
	dev := s.tokenFor(t, userDeveloper)
	createMR := func(t *testing.T, project, title, source, target string, extra map[string]any) map[string]any {
		t.Helper()
		in := map[string]any{"projectId": project, "title": title, "sourceBranch": source, "targetBranch": target}
		for k, v := range extra {
			in[k] = v
		}
		return wMustMutate(t, s, dev, "createMergeRequest", wMRSel, in)["mergeRequest"].(map[string]any)
	}

	t.Run("createMergeRequest: iid sequence and fields", func(t *testing.T) {
		start := time.Now()
		m := createMR(t, "acme/ship", "First", "feature-1", "main", map[string]any{"description": "Does things", "labels": []string{"backend", "ui"}})
		if asInt64(m["iid"]) != 1 || m["state"] != "OPENED" || m["title"] != "First" || m["description"] != "Does things" ||
			m["sourceBranch"] != "feature-1" || m["targetBranch"] != "main" || !equalJSON(m["labels"], []string{"backend", "ui"}) ||
			m["draft"] != false || get(m, "author.username") != "dev" || m["mergedAt"] != nil || m["mergeCommitSha"] != nil ||
			get(m, "project.fullPath") != "acme/ship" {
			t.Errorf("got %v", m)
		}
		wNear(t, "createdAt", m["createdAt"], start, time.Minute)
		for i := 2; i <= 3; i++ {
			m := createMR(t, "acme/ship", fmt.Sprintf("MR %d", i), fmt.Sprintf("feature-%d", i), "main", map[string]any{"draft": i == 3})
			if asInt64(m["iid"]) != int64(i) || m["draft"] != (i == 3) {
				t.Errorf("MR %d: %v", i, m)
			}
		}
		// iids count per project: acme/other already has !1.
		if m := createMR(t, "acme/other", "Other 2", "y", "main", nil); asInt64(m["iid"]) != 2 {
			t.Errorf("acme/other: iid %v, want 2", m["iid"])
		}
		d := wAdmin(t, s, `{ project(id: "acme/ship") { mergeRequests { count } mergeRequest(iid: 2) { title } } }`, nil)
		if asInt64(get(d, "project.mergeRequests.count")) != 3 || get(d, "project.mergeRequest.title") != "MR 2" {
			t.Errorf("re-read: %v", d)
		}
	})
	t.Run("mergeMergeRequest sets MERGED, mergedAt and mergeCommitSha", func(t *testing.T) {
		start := time.Now()
		p := wMustMutate(t, s, dev, "mergeMergeRequest", wMRSel, map[string]any{"mergeRequestId": mrGID(t, s, "acme/ship", 1), "mergeCommitSha": wSHA(1)})
		m := p["mergeRequest"].(map[string]any)
		if m["state"] != "MERGED" || m["mergeCommitSha"] != wSHA(1) {
			t.Errorf("got %v", m)
		}
		wNear(t, "mergedAt", m["mergedAt"], start, time.Minute)
		again := wNode(t, s, m["id"].(string), "... on MergeRequest { state mergedAt mergeCommitSha }")
		if again["state"] != "MERGED" || again["mergedAt"] != m["mergedAt"] || again["mergeCommitSha"] != wSHA(1) {
			t.Errorf("re-read: %v", again)
		}
		// Without a merge commit.
		p = wMustMutate(t, s, dev, "mergeMergeRequest", wMRSel, map[string]any{"mergeRequestId": mrGID(t, s, "acme/ship", 2)})
		if get(p, "mergeRequest.state") != "MERGED" || get(p, "mergeRequest.mergeCommitSha") != nil || get(p, "mergeRequest.mergedAt") == nil {
			t.Errorf("got %v", p)
		}
		// Merging a merged one again is refused and changes nothing.
		r := wMutate(t, s, dev, "mergeMergeRequest", "mergeRequest { id }", map[string]any{"mergeRequestId": m["id"], "mergeCommitSha": wSHA(2)})
		wRefused(t, r, "mergeMergeRequest", "FAILED_PRECONDITION", "")
		if after := wNode(t, s, m["id"].(string), "... on MergeRequest { state mergedAt mergeCommitSha }"); !equalJSON(after, again) {
			t.Errorf("a refused merge changed %v → %v", again, after)
		}
	})
	t.Run("unknown merge request is NOT_FOUND", func(t *testing.T) {
		r := wMutate(t, s, dev, "mergeMergeRequest", "mergeRequest { id }", map[string]any{"mergeRequestId": gid("MergeRequest", 99999)})
		wRefused(t, r, "mergeMergeRequest", "NOT_FOUND", "")
	})
}

// mrGID looks a merge request's global ID up by iid.
func mrGID(t testing.TB, s *testServer, project string, iid int) string {
	t.Helper()
	d := wAdmin(t, s, `query($p: ID!, $i: Int!) { project(id: $p) { mergeRequest(iid: $i) { id } } }`, map[string]any{"p": project, "i": iid})
	id, _ := get(d, "project.mergeRequest.id").(string)
	if id == "" {
		t.Fatalf("no merge request !%d in %s", iid, project)
	}
	return id
}

// TestE2EMutationAutomaticLinks: SPEC 6.5's automatic links when a
// deployment reaches SUCCESS.
func TestE2EMutationAutomaticLinks(t *testing.T) {
	t.Parallel()
	const project = "acme/ship"
	s := startServer(t, mrProjectsDoc())
	dev := s.tokenFor(t, userDeveloper)
	iid := 0
	newMR := func(t *testing.T, target string, merge bool, mergeSHA string) int64 {
		t.Helper()
		iid++
		m := wMustMutate(t, s, dev, "createMergeRequest", "mergeRequest { id iid }", map[string]any{
			"projectId": project, "title": fmt.Sprintf("MR %d", iid), "sourceBranch": fmt.Sprintf("topic-%d", iid), "targetBranch": target})
		if merge {
			in := map[string]any{"mergeRequestId": get(m, "mergeRequest.id")}
			if mergeSHA != "" {
				in["mergeCommitSha"] = mergeSHA
			}
			wMustMutate(t, s, dev, "mergeMergeRequest", "mergeRequest { id }", in)
		}
		return asInt64(get(m, "mergeRequest.iid"))
	}
	deploy := func(t *testing.T, env, sha, ref, status string) int64 {
		t.Helper()
		d := wMustMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, env, sha, ref, status))
		return gidNumber(t, get(d, "deployment.id"), "Deployment")
	}
	linked := func(t *testing.T, id int64) []int64 { t.Helper(); return wMRIIDs(t, wDeployment(t, s, id)) }
	expectLinks := func(t *testing.T, what string, id int64, want ...int64) {
		t.Helper()
		if want == nil {
			want = []int64{}
		}
		if got := linked(t, id); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: merge requests %v, want %v", what, got, want)
		}
	}

	mr1 := newMR(t, "main", true, "")     // merged into main
	mr2 := newMR(t, "develop", true, "")  // merged into another branch
	mrOpen := newMR(t, "main", false, "") // open
	d1 := deploy(t, "prod", wSHA(1), "main", "SUCCESS")
	expectLinks(t, "first SUCCESS on prod", d1, mr1)

	mr4 := newMR(t, "main", true, "")
	d2 := deploy(t, "prod", wSHA(2), "main", "RUNNING")
	expectLinks(t, "a RUNNING deployment", d2)
	wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", d2), "status": "SUCCESS"})
	expectLinks(t, "second SUCCESS on prod (merged since the first)", d2, mr4)
	expectLinks(t, "the first deployment keeps only what it shipped", d1, mr1)

	// The mergeCommitSha rule: merged into another branch, but this is its
	// merge commit.
	mr5 := newMR(t, "release", true, wSHA(3))
	d3 := deploy(t, "prod", wSHA(3), "main", "SUCCESS")
	expectLinks(t, "deploying a merge commit", d3, mr5)

	// A FAILED deployment ships nothing, and does not move the window.
	mr6 := newMR(t, "main", true, "")
	dFailed := deploy(t, "prod", wSHA(4), "main", "FAILED")
	expectLinks(t, "a FAILED deployment", dFailed)
	d4 := deploy(t, "prod", wSHA(5), "main", "SUCCESS")
	expectLinks(t, "SUCCESS after a FAILED one", d4, mr6)

	// Folder environments get no automatic links.
	dReview := deploy(t, "review/app", wSHA(6), "main", "SUCCESS")
	expectLinks(t, "a review app", dReview)

	// Each environment has its own window: the first SUCCESS on staging
	// ships everything merged into main so far.
	dStaging := deploy(t, "staging", wSHA(7), "main", "SUCCESS")
	expectLinks(t, "first SUCCESS on staging", dStaging, mr1, mr4, mr6)
	// And a ref with nothing merged into it ships nothing.
	dDevelop := deploy(t, "dev-env", wSHA(8), "feature", "SUCCESS")
	expectLinks(t, "a ref nobody merged into", dDevelop)

	// MergeRequest.deployments answers "where did this ship?".
	d := wAdmin(t, s, `query($p: ID!, $i: Int!) { project(id: $p) { mergeRequest(iid: $i) { deployments { nodes { id } } } } }`, map[string]any{"p": project, "i": mr1})
	got := gidNumbers(t, pluck(list(d, "project.mergeRequest.deployments.nodes"), "id"), "Deployment")
	slices.Sort(got)
	if want := []int64{d1, dStaging}; !slices.Equal(got, want) {
		t.Errorf("MR !%d shipped in %v, want %v", mr1, got, want)
	}
	_ = mr2
	_ = mrOpen
}

// TestE2EMutationAutomaticLinksWindow checks the window of SPEC 6.5 at its
// edges with imported history: staging's previous SUCCESS (deployment 11)
// finished at(115); merge requests merged exactly then are not linked,
// those merged a millisecond later are, and a merge commit deployed is
// linked whatever its target branch and merge time.
func TestE2EMutationAutomaticLinksWindow(t *testing.T) {
	t.Parallel()
	doc := fixtureDoc(12)
	p := docProjects(doc)[0]
	mr := func(id int, target string, merged time.Time, mergeSHA string) map[string]any {
		m := map[string]any{
			"id": id, "iid": id, "title": fmt.Sprintf("Edge %d", id), "state": "merged",
			"source_branch": fmt.Sprintf("edge-%d", id), "target_branch": target,
			"author": map[string]any{"id": userDeveloper}, "created_at": at(1), "updated_at": at(1),
			"merged_at": merged.Format(time.RFC3339Nano),
		}
		if mergeSHA != "" {
			m["merge_commit_sha"] = mergeSHA
		}
		return m
	}
	prevFinish := fixtureBase.Add(115 * time.Minute)
	p["merge_requests"] = append(p["merge_requests"].([]map[string]any),
		mr(100, "main", prevFinish, ""),                              // merged exactly when the previous one finished
		mr(101, "main", prevFinish.Add(time.Millisecond), ""),        // just after
		mr(102, "release", fixtureBase.Add(5*time.Minute), wSHA(77)), // its merge commit is deployed
		mr(103, "develop", prevFinish.Add(time.Minute), ""),          // another branch
	)
	s := startServer(t, doc)
	dev := s.tokenFor(t, userDeveloper)
	if d := wDeployment(t, s, 11); d["isLastDeployment"] != true || d["finishedAt"] != fmtTime(prevFinish) {
		t.Fatalf("set-up: deployment 11 is %v", d)
	}
	d := wMustMutate(t, s, dev, "createDeployment", "deployment { id mergeRequests(first: 100) { nodes { iid } } }", depInput("acme/app", "staging", wSHA(77), "main", "SUCCESS"))
	// Fixture merge requests into main: !24 and !25 merged at(117), at(118);
	// every other one before at(115).
	if got := wMRIIDs(t, d["deployment"].(map[string]any)); !slices.Equal(got, []int64{24, 25, 101, 102}) {
		t.Errorf("linked: %v, want [24 25 101 102]", got)
	}
}

func TestE2EMutationLinkUnlink(t *testing.T) {
	t.Parallel()
	const project = "acme/ship"
	s := startServer(t, mrProjectsDoc())
	dev := s.tokenFor(t, userDeveloper)
	var mrs []string
	for i := 1; i <= 3; i++ {
		m := wMustMutate(t, s, dev, "createMergeRequest", "mergeRequest { id }", map[string]any{
			"projectId": project, "title": fmt.Sprintf("MR %d", i), "sourceBranch": fmt.Sprintf("t-%d", i), "targetBranch": "main"})
		mrs = append(mrs, get(m, "mergeRequest.id").(string))
	}
	dep := wMustMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "review/x", wSHA(1), "main", "SUCCESS"))
	depID := get(dep, "deployment.id").(string)
	depN := gidNumber(t, depID, "Deployment")
	link := func(t *testing.T, name string, ids ...string) gqlResponse {
		t.Helper()
		return wMutate(t, s, dev, name, "deployment { id mergeRequests { count nodes { iid } } }", map[string]any{"deploymentId": depID, "mergeRequestIds": ids})
	}
	current := func(t *testing.T) []int64 { t.Helper(); return wMRIIDs(t, wDeployment(t, s, depN)) }

	t.Run("link by hand, idempotently", func(t *testing.T) {
		r := link(t, "linkMergeRequests", mrs[0], mrs[1])
		expectNoError(t, r)
		if got := asInt64(get(r.Data, "linkMergeRequests.deployment.mergeRequests.count")); got != 2 {
			t.Errorf("payload count %d, want 2", got)
		}
		expectNoError(t, link(t, "linkMergeRequests", mrs[1]))
		// A bare number works too.
		expectNoError(t, link(t, "linkMergeRequests", fmt.Sprint(gidNumber(t, mrs[0], "MergeRequest"))))
		if got := current(t); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("linked: %v, want [1 2]", got)
		}
		n := wNode(t, s, mrs[0], "... on MergeRequest { deployments { nodes { id } } }")
		if got := pluck(list(n, "deployments.nodes"), "id"); !equalJSON(got, []any{depID}) {
			t.Errorf("MR 1 deployments: %v", got)
		}
	})
	t.Run("another project's merge request is refused, and nothing is linked", func(t *testing.T) {
		for _, ids := range [][]string{{gid("MergeRequest", 700)}, {mrs[2], gid("MergeRequest", 700)}} {
			r := link(t, "linkMergeRequests", ids...)
			if len(r.Errors) == 0 || !(slices.Contains(r.codes(), "BAD_USER_INPUT") || slices.Contains(r.codes(), "NOT_FOUND")) {
				t.Errorf("link %v: got %s, want BAD_USER_INPUT or NOT_FOUND", ids, r.raw)
			}
			if r.Data != nil && r.Data["linkMergeRequests"] != nil {
				t.Errorf("refused link returned a payload: %s", r.raw)
			}
		}
		if got := current(t); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("linked: %v, want [1 2]", got)
		}
		n := wNode(t, s, gid("MergeRequest", 700), "... on MergeRequest { deployments { count } }")
		if asInt64(get(n, "deployments.count")) != 0 {
			t.Errorf("MR 700 got linked: %v", n)
		}
		r := link(t, "unlinkMergeRequests", mrs[0], gid("MergeRequest", 700))
		if len(r.Errors) == 0 {
			t.Errorf("unlink with another project's merge request succeeded: %s", r.raw)
		}
		if got := current(t); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("after a refused unlink: %v, want [1 2]", got)
		}
	})
	t.Run("unlink, idempotently", func(t *testing.T) {
		expectNoError(t, link(t, "unlinkMergeRequests", mrs[0]))
		if got := current(t); !slices.Equal(got, []int64{2}) {
			t.Errorf("after unlink: %v, want [2]", got)
		}
		expectNoError(t, link(t, "unlinkMergeRequests", mrs[0], mrs[2]))
		if got := current(t); !slices.Equal(got, []int64{2}) {
			t.Errorf("after unlinking what is not linked: %v, want [2]", got)
		}
		if n := wNode(t, s, mrs[0], "... on MergeRequest { id state }"); n == nil {
			t.Errorf("unlinking deleted the merge request")
		}
	})
	t.Run("an automatic link can be removed by hand", func(t *testing.T) {
		m := wMustMutate(t, s, dev, "createMergeRequest", "mergeRequest { id }", map[string]any{"projectId": project, "title": "Auto", "sourceBranch": "auto", "targetBranch": "main"})
		mid := get(m, "mergeRequest.id").(string)
		wMustMutate(t, s, dev, "mergeMergeRequest", "mergeRequest { id }", map[string]any{"mergeRequestId": mid})
		d := wMustMutate(t, s, dev, "createDeployment", "deployment { id mergeRequests { nodes { id } } }", depInput(project, "prod", wSHA(2), "main", "SUCCESS"))
		if got := pluck(list(d, "deployment.mergeRequests.nodes"), "id"); !equalJSON(got, []any{mid}) {
			t.Fatalf("automatic link: %v, want [%s]", got, mid)
		}
		r := wMutate(t, s, dev, "unlinkMergeRequests", "deployment { mergeRequests { count } }", map[string]any{"deploymentId": get(d, "deployment.id"), "mergeRequestIds": []string{mid}})
		expectNoError(t, r)
		if got := asInt64(get(r.Data, "unlinkMergeRequests.deployment.mergeRequests.count")); got != 0 {
			t.Errorf("after unlinking: %d links", got)
		}
	})
}

func TestE2EMutationAdministration(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(3))
	dev, rep := s.tokenFor(t, userDeveloper), s.tokenFor(t, userReporter)
	const tokenSel = "token accessToken { id name createdAt expiresAt revoked user { username } }"

	var newbieID, newbieToken string
	t.Run("createUser, then a token for them that works in a new request", func(t *testing.T) {
		p := wMustMutate(t, s, rootToken, "createUser", "user { id username name state }", map[string]any{"username": "newbie", "name": "New Bie"})
		if get(p, "user.username") != "newbie" || get(p, "user.name") != "New Bie" || get(p, "user.state") != "ACTIVE" {
			t.Errorf("got %v", p)
		}
		newbieID = get(p, "user.id").(string)
		d := wAdmin(t, s, `{ user(username: "newbie") { id } }`, nil)
		if get(d, "user.id") != newbieID {
			t.Errorf("user(username:) %v", d)
		}
		// Usernames are unique case-insensitively, as in GitLab.
		for _, taken := range []string{"newbie", "dev", "NewBie"} {
			r := wMutate(t, s, rootToken, "createUser", "user { id }", map[string]any{"username": taken, "name": "Dup"})
			wRefused(t, r, "createUser", "CONFLICT", "")
		}
		tp := wMustMutate(t, s, rootToken, "createAccessToken", tokenSel, map[string]any{"userId": newbieID, "name": "ci"})
		newbieToken, _ = tp["token"].(string)
		if newbieToken == "" || get(tp, "accessToken.user.username") != "newbie" || get(tp, "accessToken.revoked") != false || get(tp, "accessToken.name") != "ci" {
			t.Fatalf("got %v", tp)
		}
		if works, who := wWorks(t, s, newbieToken); !works || who != "newbie" {
			t.Errorf("the new token: works %v as %q", works, who)
		}
	})
	t.Run("a user mints and revokes their own tokens", func(t *testing.T) {
		if newbieToken == "" {
			t.Skip("no token for newbie")
		}
		tp := wMustMutate(t, s, newbieToken, "createAccessToken", tokenSel, map[string]any{"userId": newbieID, "name": "second"})
		second := tp["token"].(string)
		if works, who := wWorks(t, s, second); !works || who != "newbie" {
			t.Fatalf("second token: works %v as %q", works, who)
		}
		r := wMutate(t, s, newbieToken, "createAccessToken", tokenSel, map[string]any{"userId": gid("User", userDeveloper), "name": "steal"})
		wRefused(t, r, "createAccessToken", "FORBIDDEN", "")
		rp := wMustMutate(t, s, newbieToken, "revokeAccessToken", "accessToken { id revoked }", map[string]any{"accessTokenId": get(tp, "accessToken.id")})
		if get(rp, "accessToken.revoked") != true {
			t.Errorf("revoke payload: %v", rp)
		}
		r = s.query(t, second, `{ currentUser { username } }`, nil)
		expectError(t, r, "UNAUTHENTICATED", "")
		r = s.query(t, second, `{ project(id: "acme/site") { name } }`, nil) // even for public data
		expectError(t, r, "UNAUTHENTICATED", "")
		if works, _ := wWorks(t, s, newbieToken); !works {
			t.Errorf("revoking one token revoked another")
		}
	})
	t.Run("expiresAt", func(t *testing.T) {
		exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)
		tp := wMustMutate(t, s, dev, "createAccessToken", tokenSel, map[string]any{"userId": gid("User", userDeveloper), "name": "exp", "expiresAt": exp.Format(time.RFC3339Nano)})
		if get(tp, "accessToken.expiresAt") != fmtTime(exp) {
			t.Errorf("expiresAt: %v, want %s", get(tp, "accessToken.expiresAt"), fmtTime(exp))
		}
		// An expiry in the past would mint a dead token: refused (the spec
		// is silent; a demanding user expects BAD_USER_INPUT).
		r := wMutate(t, s, dev, "createAccessToken", tokenSel, map[string]any{"userId": gid("User", userDeveloper), "name": "dead", "expiresAt": wNowMinus(time.Hour)})
		wRefused(t, r, "createAccessToken", "BAD_USER_INPUT", "")
	})
	t.Run("updateUser: name, and BLOCKED or DEACTIVATED users cannot authenticate", func(t *testing.T) {
		p := wMustMutate(t, s, rootToken, "updateUser", "user { name state }", map[string]any{"userId": gid("User", userGuest), "name": "Renamed Guest"})
		if get(p, "user.name") != "Renamed Guest" || get(p, "user.state") != "ACTIVE" {
			t.Errorf("got %v", p)
		}
		for _, c := range []struct {
			user  int64
			state string
		}{{userGuest, "BLOCKED"}, {userOutsider, "DEACTIVATED"}} {
			tok := s.tokenFor(t, c.user)
			if works, _ := wWorks(t, s, tok); !works {
				t.Fatalf("user %d's token does not work before", c.user)
			}
			p := wMustMutate(t, s, rootToken, "updateUser", "user { state }", map[string]any{"userId": gid("User", c.user), "state": c.state})
			if get(p, "user.state") != c.state {
				t.Errorf("state: %v, want %s", get(p, "user.state"), c.state)
			}
			r := s.query(t, tok, `{ currentUser { username } }`, nil)
			expectError(t, r, "UNAUTHENTICATED", "")
			r = wMutate(t, s, tok, "createProject", "project { id }", map[string]any{"name": "Sneaky", "path": "sneaky"})
			wRefused(t, r, "createProject", "UNAUTHENTICATED", "")
		}
	})
	t.Run("admin flag: createUser admin, updateUser promotes and demotes", func(t *testing.T) {
		p := wMustMutate(t, s, rootToken, "createUser", "user { id }", map[string]any{"username": "boss", "name": "Boss", "admin": true})
		boss := s.tokenFor(t, gidNumber(t, get(p, "user.id"), "User"))
		wMustMutate(t, s, boss, "createUser", "user { id }", map[string]any{"username": "made-by-boss", "name": "M"})
		p = wMustMutate(t, s, rootToken, "createUser", "user { id }", map[string]any{"username": "climber", "name": "Climber"})
		climberID := get(p, "user.id").(string)
		climber := s.tokenFor(t, gidNumber(t, climberID, "User"))
		wRefused(t, wMutate(t, s, climber, "createGroup", "group { id }", map[string]any{"name": "C", "path": "climbers"}), "createGroup", "FORBIDDEN", "")
		wMustMutate(t, s, rootToken, "updateUser", "user { id }", map[string]any{"userId": climberID, "admin": true})
		wMustMutate(t, s, climber, "createGroup", "group { id }", map[string]any{"name": "C", "path": "climbers"})
		wMustMutate(t, s, rootToken, "updateUser", "user { id }", map[string]any{"userId": climberID, "admin": false})
		wRefused(t, wMutate(t, s, climber, "createGroup", "group { id }", map[string]any{"name": "C2", "path": "climbers2"}), "createGroup", "FORBIDDEN", "")
	})
	t.Run("a token is visible to its owner and admins only", func(t *testing.T) {
		tp := wMustMutate(t, s, dev, "createAccessToken", tokenSel, map[string]any{"userId": gid("User", userDeveloper), "name": "peek"})
		id := get(tp, "accessToken.id").(string)
		for _, c := range []struct {
			token string
			see   bool
		}{{dev, true}, {rootToken, true}, {rep, false}} {
			r := s.query(t, c.token, `query($id: ID!) { node(id: $id) { ... on AccessToken { name revoked } } }`, map[string]any{"id": id})
			if c.see && (len(r.Errors) > 0 || get(r.Data, "node.name") != "peek") {
				t.Errorf("owner/admin cannot see the token: %s", r.raw)
			}
			if !c.see {
				expectError(t, r, "NOT_FOUND", "")
			}
		}
		r := wMutate(t, s, rep, "revokeAccessToken", "accessToken { id }", map[string]any{"accessTokenId": id})
		wRefused(t, r, "revokeAccessToken", "NOT_FOUND", "")
		if works, _ := wWorks(t, s, get(tp, "token").(string)); !works {
			t.Errorf("another user's refused revoke revoked the token")
		}
	})
	t.Run("createGroup and addGroupMember; createProject in a group namespace", func(t *testing.T) {
		p := wMustMutate(t, s, rootToken, "createGroup", "group { id name path fullPath }", map[string]any{"name": "Platform", "path": "platform"})
		if get(p, "group.fullPath") != "platform" || get(p, "group.name") != "Platform" || get(p, "group.path") != "platform" {
			t.Errorf("got %v", p)
		}
		groupID := get(p, "group.id")
		if d := wAdmin(t, s, `{ group(id: "platform") { id } }`, nil); get(d, "group.id") != groupID {
			t.Errorf("group(id: path): %v", d)
		}
		r := wMutate(t, s, rootToken, "createGroup", "group { id }", map[string]any{"name": "Platform 2", "path": "platform"})
		wRefused(t, r, "createGroup", "CONFLICT", "")

		// Not a member yet.
		r = wMutate(t, s, dev, "createProject", "project { id }", map[string]any{"name": "Svc", "path": "svc", "namespace": "platform"})
		wRefused(t, r, "createProject", "FORBIDDEN", "")
		wMustMutate(t, s, rootToken, "addGroupMember", "group { id }", map[string]any{"groupId": groupID, "userId": gid("User", userDeveloper)})
		pp := wMustMutate(t, s, dev, "createProject", "project { id fullPath name path visibility allowSelfApproval currentUserAccessLevel }", map[string]any{"name": "Svc", "path": "svc", "namespace": "platform"})
		want := map[string]any{"fullPath": "platform/svc", "name": "Svc", "path": "svc", "visibility": "PRIVATE", "allowSelfApproval": false, "currentUserAccessLevel": "OWNER"}
		for k, v := range want {
			if get(pp, "project."+k) != v {
				t.Errorf("project.%s: %v, want %v", k, get(pp, "project."+k), v)
			}
		}
		r = wMutate(t, s, rep, "createProject", "project { id }", map[string]any{"name": "Svc2", "path": "svc2", "namespace": "platform"})
		wRefused(t, r, "createProject", "FORBIDDEN", "")
		// An admin may use any group.
		wMustMutate(t, s, rootToken, "createProject", "project { id }", map[string]any{"name": "Admin svc", "path": "admin-svc", "namespace": "platform"})
	})
	t.Run("createProject under the caller's username; the creator is OWNER; taken path is CONFLICT", func(t *testing.T) {
		pp := wMustMutate(t, s, rep, "createProject", "project { id fullPath visibility currentUserAccessLevel }", map[string]any{"name": "Mine", "path": "mine", "visibility": "PUBLIC", "allowSelfApproval": true})
		if get(pp, "project.fullPath") != "rep/mine" || get(pp, "project.currentUserAccessLevel") != "OWNER" || get(pp, "project.visibility") != "PUBLIC" {
			t.Errorf("got %v", pp)
		}
		if got := wAccessLevel(t, s, rep, "rep/mine"); got != "OWNER" {
			t.Errorf("re-read access level: %q", got)
		}
		if d := s.mustQuery(t, "", `{ project(id: "rep/mine") { fullPath allowSelfApproval } }`, nil); get(d, "project.allowSelfApproval") != true {
			t.Errorf("anonymous read of the public project: %v", d)
		}
		// Paths are unique case-insensitively, as in GitLab.
		for _, path := range []string{"mine", "MINE"} {
			r := wMutate(t, s, rep, "createProject", "project { id }", map[string]any{"name": "Other name", "path": path})
			wRefused(t, r, "createProject", "CONFLICT", "")
		}
		// The owner works in it: a reporter elsewhere, OWNER here.
		d := wMustMutate(t, s, rep, "createDeployment", "deployment { iid }", depInput("rep/mine", "production", wSHA(1), "main", "SUCCESS"))
		if asInt64(get(d, "deployment.iid")) != 1 {
			t.Errorf("first deployment of a new project: %v", d)
		}
	})
	t.Run("addProjectMember and removeProjectMember", func(t *testing.T) {
		wMustMutate(t, s, rep, "addProjectMember", "project { id }", map[string]any{"projectId": "rep/mine", "userId": gid("User", userDeveloper), "accessLevel": "MAINTAINER"})
		if got := wAccessLevel(t, s, dev, "rep/mine"); got != "MAINTAINER" {
			t.Errorf("dev in rep/mine: %q, want MAINTAINER", got)
		}
		wMustMutate(t, s, rep, "removeProjectMember", "project { id }", map[string]any{"projectId": "rep/mine", "userId": gid("User", userDeveloper)})
		if got := wAccessLevel(t, s, dev, "rep/mine"); got != "" {
			t.Errorf("dev in rep/mine after removal: %q, want none", got)
		}
	})
}

// TestE2EMutationConcurrentCreateDeployments: 30 concurrent creates in one
// fresh project get the iids 1..30, each once (SPEC 6.3); at the same time
// 10 creates in another project get that project's own 1..10, and 10
// identical concurrent requests (a retried CI script) record one
// deployment.
func TestE2EMutationConcurrentCreateDeployments(t *testing.T) {
	t.Parallel()
	const n, m, dup = 30, 10, 10
	const project, other, retried = "acme/busy", "acme/calm", "acme/retry"
	s := startServer(t, map[string]any{"users": wUsers(), "projects": []map[string]any{wProject(1, project), wProject(2, other), wProject(3, retried)}})
	dev := s.tokenFor(t, userDeveloper)
	const q = `mutation($input: CreateDeploymentInput!) { createDeployment(input: $input) { deployment { id iid sha } } }`
	type result struct {
		iid int64
		id  string
		sha any
		err string
	}
	var inputs []map[string]any
	for i := 0; i < n; i++ {
		inputs = append(inputs, depInput(project, []string{"prod", "staging", "prod"}[i%3], wSHA(i), "main", "SUCCESS"))
	}
	for i := 0; i < m; i++ {
		inputs = append(inputs, depInput(other, "prod", wSHA(1000+i), "main", "RUNNING"))
	}
	for i := 0; i < dup; i++ {
		inputs = append(inputs, depInput(retried, "prod", wSHA(2000), "main", "SUCCESS"))
	}
	results := make([]result, len(inputs))
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range inputs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-startGate
			data, errs, err := wPost(s.url, dev, q, map[string]any{"input": inputs[i]})
			switch {
			case err != nil:
				results[i].err = err.Error()
			case len(errs) > 0:
				results[i].err = errs[0].Message
			default:
				results[i].id, _ = get(data, "createDeployment.deployment.id").(string)
				results[i].sha = get(data, "createDeployment.deployment.sha")
				if v := get(data, "createDeployment.deployment.iid"); v != nil {
					results[i].iid = asInt64(v)
				}
			}
		}(i)
	}
	close(startGate)
	wg.Wait()
	for i, r := range results {
		if r.err != "" {
			t.Fatalf("request %d (%v): %s", i, inputs[i], r.err)
		}
		if r.sha != inputs[i]["sha"] {
			t.Errorf("request %d: sha %v, want %v", i, r.sha, inputs[i]["sha"])
		}
	}

	check := func(t *testing.T, project string, results []result, count int) {
		t.Helper()
		seen := map[int64]int{}
		bySHA := map[any]int64{}
		for _, r := range results {
			seen[r.iid]++
			bySHA[r.sha] = r.iid
		}
		for iid := int64(1); iid <= int64(count); iid++ {
			if seen[iid] != 1 {
				t.Errorf("%s: iid %d answered %d times, want once", project, iid, seen[iid])
			}
		}
		d := wAdmin(t, s, `query($p: ID!) { project(id: $p) { deployments(first: 100, orderBy: IID) { count nodes { iid sha } } } }`, map[string]any{"p": project})
		if got := asInt64(get(d, "project.deployments.count")); got != int64(count) {
			t.Errorf("%s: count %d, want %d", project, got, count)
		}
		nodes := list(d, "project.deployments.nodes")
		for i, node := range nodes {
			iid := asInt64(get(node, "iid"))
			if iid != int64(i+1) {
				t.Errorf("%s: position %d: iid %d, want %d (gap-free, each once)", project, i, iid, i+1)
			}
			if want, ok := bySHA[get(node, "sha")]; ok && want != iid {
				t.Errorf("%s: sha %v listed with iid %d, answered %d", project, get(node, "sha"), iid, want)
			}
		}
	}
	t.Run("30 in one project", func(t *testing.T) { check(t, project, results[:n], n) })
	t.Run("10 in another project at the same time", func(t *testing.T) { check(t, other, results[n:n+m], m) })
	t.Run("10 identical requests record one deployment", func(t *testing.T) {
		for _, r := range results[n+m:] {
			if r.id != results[n+m].id || r.iid != 1 {
				t.Errorf("answered %s (iid %d), want every request to get %s (iid 1)", r.id, r.iid, results[n+m].id)
			}
		}
		if got := wDeploymentCount(t, s, retried); got != 1 {
			t.Errorf("deployments: %d, want 1", got)
		}
	})
	t.Run("the next create continues the sequence", func(t *testing.T) {
		p := wMustMutate(t, s, dev, "createDeployment", "deployment { iid }", depInput(project, "prod", wSHA(99), "main", "RUNNING"))
		if got := asInt64(get(p, "deployment.iid")); got != n+1 {
			t.Errorf("next iid: %d, want %d", got, n+1)
		}
	})
}

// TestE2EMutationFailedMutationChangesNothing spot-checks SPEC 4's "A failed
// mutation changes nothing".
func TestE2EMutationFailedMutationChangesNothing(t *testing.T) {
	t.Parallel()
	const project = "acme/app"
	s := startServer(t, fixtureDoc(12))
	dev, rep, maint := s.tokenFor(t, userDeveloper), s.tokenFor(t, userReporter), s.tokenFor(t, userMaintainer)
	snapshot := func(t *testing.T) map[string]any {
		t.Helper()
		return wAdmin(t, s, `{ project(id: "acme/app") {
			environments(first: 100) { count nodes { id name state externalUrl tier autoStopAt autoDeleteAt updatedAt } }
			deployments(first: 30) { count nodes { id iid status finishedAt updatedAt mergeRequests(first: 30) { nodes { id } } } }
			mergeRequests(first: 100) { count nodes { id state mergedAt } } } }`, nil)
	}
	initial := snapshot(t)
	same := func(t *testing.T, what string) {
		t.Helper()
		if got := snapshot(t); !equalJSON(got, initial) {
			t.Errorf("%s changed the project", what)
		}
	}

	t.Run("refused createDeployment: no deployment, no environment", func(t *testing.T) {
		wRefused(t, wMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "brand-new", "xyz", "main", "SUCCESS")), "createDeployment", "BAD_USER_INPUT", "")
		wRefused(t, wMutate(t, s, rep, "createDeployment", "deployment { id }", depInput(project, "brand-new", wSHA(1), "main", "SUCCESS")), "createDeployment", "FORBIDDEN", "")
		wRefused(t, wMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "brand-new", wSHA(1), "main", "BLOCKED")), "createDeployment", "BAD_USER_INPUT", "")
		wRefused(t, wMutate(t, s, dev, "createDeployment", "deployment { id }", depInput(project, "production", wSHA(1), "main", "SUCCESS")), "createDeployment", "FORBIDDEN", "")
		if wEnvByName(t, s, project, "brand-new") != nil {
			t.Errorf("environment brand-new was created")
		}
		same(t, "refused createDeployment")
	})
	t.Run("refused deleteEnvironment keeps the deployments", func(t *testing.T) {
		wRefused(t, wMutate(t, s, dev, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": gid("Environment", 2)}), "deleteEnvironment", "FAILED_PRECONDITION", "")
		wRefused(t, wMutate(t, s, rep, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": gid("Environment", 3)}), "deleteEnvironment", "FORBIDDEN", "")
		if got := wEnvDeploymentIDs(t, s, project, "review/fix-foo"); !slices.Equal(got, []int64{3, 6, 9, 12}) {
			t.Errorf("review/fix-foo: %v", got)
		}
		same(t, "refused deleteEnvironment")
	})
	t.Run("refused deleteDeployment, updateDeployment, stop, stale, review apps, create, link", func(t *testing.T) {
		wRefused(t, wMutate(t, s, maint, "deleteDeployment", "deletedDeploymentId", map[string]any{"deploymentId": gid("Deployment", 4)}), "deleteDeployment", "FAILED_PRECONDITION", msgRunning)
		wRefused(t, wMutate(t, s, maint, "deleteDeployment", "deletedDeploymentId", map[string]any{"deploymentId": gid("Deployment", 11)}), "deleteDeployment", "FAILED_PRECONDITION", msgDeployed)
		wRefused(t, wMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 2), "status": "FAILED"}), "updateDeployment", "FORBIDDEN", msgCIDeployments)
		wRefused(t, wMutate(t, s, dev, "stopEnvironment", "environment { id }", map[string]any{"environmentId": gid("Environment", 3)}), "stopEnvironment", "FAILED_PRECONDITION", msgStopFailed)
		wRefused(t, wMutate(t, s, maint, "stopStaleEnvironments", "message", map[string]any{"projectId": project, "before": wNowMinus(time.Hour)}), "stopStaleEnvironments", "BAD_USER_INPUT", msgInvalidDate)
		wRefused(t, wMutate(t, s, dev, "deleteStoppedReviewApps", "message", map[string]any{"projectId": project, "limit": 0, "dryRun": false}), "deleteStoppedReviewApps", "BAD_USER_INPUT", "")
		wRefused(t, wMutate(t, s, dev, "createEnvironment", "environment { id }", map[string]any{"projectId": project, "name": "staging", "externalUrl": "https://x.example.com"}), "createEnvironment", "CONFLICT", "")
		wRefused(t, wMutate(t, s, dev, "updateEnvironment", "environment { id }", map[string]any{"environmentId": gid("Environment", 2), "externalUrl": "javascript:alert(1)", "tier": "TESTING"}), "updateEnvironment", "BAD_USER_INPUT", "")
		r := wMutate(t, s, dev, "linkMergeRequests", "deployment { id }", map[string]any{"deploymentId": gid("Deployment", 2), "mergeRequestIds": []string{gid("MergeRequest", 25), gid("MergeRequest", 99999)}})
		if len(r.Errors) == 0 {
			t.Errorf("linking a merge request that does not exist succeeded: %s", r.raw)
		}
		same(t, "refused mutations")
	})
}
