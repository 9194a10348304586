package store_test

// Tests of the environment mutations and sweeps (SPEC 6.1, 6.2). Helpers
// carry an "ew" prefix to keep them apart from the other test files of this
// package.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// ewT0 is the fixture clock's starting time.
var ewT0 = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func ewDays(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// Users of the fixture, named by their role in the private project.
const (
	ewAnonymous  int64 = 0
	ewRoot       int64 = 1 // admin, member of nothing
	ewOwner      int64 = 2
	ewMaintainer int64 = 3
	ewDeveloper  int64 = 4 // also a developer of the public project
	ewReporter   int64 = 5
	ewGuest      int64 = 6
	ewOutsider   int64 = 7 // member of nothing
	ewDeployer   int64 = 8 // developer named by review/guarded's deploy rule
)

// Projects of the fixture.
const (
	ewPrivate int64 = 1 // acme/app; protects production and canary (MAINTAINER+) and review/guarded (ewDeployer)
	ewPublic  int64 = 2 // acme/site
)

// ewEnv is an environment of the fixture document.
type ewEnv struct {
	ID          int64
	Project     int64 // ewPrivate when 0
	Name        string
	State       string    // "available" when ""
	Created     time.Time // 100 days before ewT0 when zero
	Updated     time.Time // Created when zero
	AutoStop    *time.Time
	AutoDelete  *time.Time
	ExternalURL string
}

// ewDeploy is a deployment of the fixture document.
type ewDeploy struct {
	ID, Env  int64
	Status   string    // "success" when ""
	Updated  time.Time // 90 days before ewT0 when zero
	Approved bool      // approved by the maintainer
	LinkedMR bool      // linked to merge request 1 of the private project
}

// ewStandardEnvs is the fixture most tests start from; the next
// environment created gets id 22.
var ewStandardEnvs = []ewEnv{
	{ID: 1, Name: "production"},
	{ID: 2, Name: "staging", ExternalURL: "https://staging.example.com", AutoStop: ptr(ewT0.Add(ewDays(1)))},
	{ID: 3, Name: "preprod", State: "stopping"},
	{ID: 4, Name: "review/fix-foo", State: "stopped"},
	{ID: 5, Name: "review/guarded", State: "stopped"},
	{ID: 6, Name: "docs", State: "stopped"},
	{ID: 20, Project: ewPublic, Name: "staging"},
	{ID: 21, Project: ewPublic, Name: "review/site", State: "stopped"},
}

var ewStandardDeploys = []ewDeploy{
	{ID: 41, Env: 4, Approved: true, LinkedMR: true},
	{ID: 42, Env: 4, Status: "failed"},
	{ID: 43, Env: 2, LinkedMR: true},
	{ID: 44, Env: 6},
	{ID: 45, Env: 20},
}

const ewNextID int64 = 22

func ewTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// ewDocument builds an import document (SPEC 7) with the fixture's users,
// projects and protections, and the given environments and deployments.
func ewDocument(envs []ewEnv, deploys []ewDeploy) map[string]any {
	var users []map[string]any
	for i, name := range []string{"root", "owner", "maintainer", "developer", "reporter", "guest", "outsider", "deployer"} {
		u := map[string]any{"id": i + 1, "username": name, "name": strings.ToUpper(name[:1]) + name[1:]}
		if name == "root" {
			u["admin"] = true
		}
		users = append(users, u)
	}
	member := func(id int64, level int) map[string]any { return map[string]any{"user_id": id, "access_level": level} }
	deployLevel := func(rule map[string]any) []map[string]any { return []map[string]any{rule} }
	private := map[string]any{
		"id": ewPrivate, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private",
		"created_at": ewTime(ewT0.Add(-ewDays(1000))),
		"members": []map[string]any{
			member(ewOwner, 50), member(ewMaintainer, 40), member(ewDeveloper, 30),
			member(ewReporter, 20), member(ewGuest, 10), member(ewDeployer, 30),
		},
		"protected_environments": []map[string]any{
			{"name": "production", "deploy_access_levels": deployLevel(map[string]any{"access_level": 40})},
			{"name": "canary", "deploy_access_levels": deployLevel(map[string]any{"access_level": 40})},
			{"name": "review/guarded", "deploy_access_levels": deployLevel(map[string]any{"user_id": ewDeployer})},
		},
		"merge_requests": []map[string]any{{
			"id": 1, "iid": 1, "title": "Fix foo", "state": "merged", "source_branch": "fix-foo", "target_branch": "main",
			"created_at": ewTime(ewT0.Add(-ewDays(200))), "merged_at": ewTime(ewT0.Add(-ewDays(199))),
		}},
	}
	public := map[string]any{
		"id": ewPublic, "name": "site", "path": "site", "path_with_namespace": "acme/site", "visibility": "public",
		"created_at": ewTime(ewT0.Add(-ewDays(1000))),
		"members":    []map[string]any{member(ewDeveloper, 30)},
	}
	projects := map[int64]map[string]any{ewPrivate: private, ewPublic: public}
	envProject := map[int64]int64{}
	for _, e := range envs {
		p := e.Project
		if p == 0 {
			p = ewPrivate
		}
		envProject[e.ID] = p
		created := e.Created
		if created.IsZero() {
			created = ewT0.Add(-ewDays(100))
		}
		updated := e.Updated
		if updated.IsZero() {
			updated = created
		}
		state := e.State
		if state == "" {
			state = "available"
		}
		doc := map[string]any{"id": e.ID, "name": e.Name, "state": state, "created_at": ewTime(created), "updated_at": ewTime(updated)}
		if e.ExternalURL != "" {
			doc["external_url"] = e.ExternalURL
		}
		if e.AutoStop != nil {
			doc["auto_stop_at"] = ewTime(*e.AutoStop)
		}
		if e.AutoDelete != nil {
			doc["auto_delete_at"] = ewTime(*e.AutoDelete)
		}
		projects[p]["environments"] = append(ewList(projects[p]["environments"]), doc)
	}
	for _, d := range deploys {
		p := projects[envProject[d.Env]]
		status, updated := d.Status, d.Updated
		if status == "" {
			status = "success"
		}
		if updated.IsZero() {
			updated = ewT0.Add(-ewDays(90))
		}
		doc := map[string]any{
			"id": d.ID, "iid": d.ID, "ref": "main", "sha": "99d03678b90d914dbb1b109132516d71a4a03ea8", "tag": false,
			"status": status, "created_at": ewTime(updated.Add(-time.Minute)), "updated_at": ewTime(updated),
			"user": map[string]any{"id": ewDeveloper}, "environment": map[string]any{"id": d.Env},
		}
		if status == "success" || status == "failed" {
			doc["finished_at"] = ewTime(updated)
		}
		if d.Approved {
			doc["approvals"] = []map[string]any{{"user": map[string]any{"id": ewMaintainer}, "status": "approved", "created_at": ewTime(updated)}}
		}
		p["deployments"] = append(ewList(p["deployments"]), doc)
		if d.LinkedMR {
			p["deployment_merge_requests"] = append(ewList(p["deployment_merge_requests"]), map[string]any{"deployment_id": d.ID, "merge_request_id": 1})
		}
	}
	return map[string]any{"users": users, "projects": []map[string]any{private, public}}
}

func ewList(v any) []map[string]any {
	l, _ := v.([]map[string]any)
	return l
}

// ewFixture is a store loaded with a fixture document, on a clock that only
// moves when a test moves it.
type ewFixture struct {
	s         *store.Store
	now       time.Time
	viewers   map[int64]store.Viewer
	deployIDs []int64
}

func newEWFixture(t *testing.T, envs []ewEnv, deploys []ewDeploy) *ewFixture {
	t.Helper()
	ctx := context.Background()
	f := &ewFixture{now: ewT0, viewers: map[int64]store.Viewer{ewAnonymous: {}}}
	dir := t.TempDir()
	s := openStore(t, func() time.Time { return f.now })
	f.s = s
	doc, err := json.Marshal(ewDocument(envs, deploys))
	if err != nil {
		t.Fatalf("encode fixture: %v", err)
	}
	path := filepath.Join(dir, "fixture.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatalf("write fixture: %v", err)
	}
	if _, err := s.ImportFile(ctx, path); err != nil {
		t.Fatalf("import fixture: %v", err)
	}
	ids := []int64{ewRoot, ewOwner, ewMaintainer, ewDeveloper, ewReporter, ewGuest, ewOutsider, ewDeployer}
	users, err := s.Users(ctx, ids)
	if err != nil {
		t.Fatalf("load users: %v", err)
	}
	for i, u := range users {
		if u == nil {
			t.Fatalf("user %d missing after import", ids[i])
		}
		f.viewers[ids[i]] = store.Viewer{User: u}
	}
	for _, d := range deploys {
		f.deployIDs = append(f.deployIDs, d.ID)
	}
	return f
}

func (f *ewFixture) as(userID int64) store.Viewer { return f.viewers[userID] }

func (f *ewFixture) advance(d time.Duration) { f.now = f.now.Add(d) }

func (f *ewFixture) env(id int64) *store.Environment {
	return must(f.s.Environments(context.Background(), []int64{id}))[0]
}

func (f *ewFixture) envByName(projectID int64, name string) *store.Environment {
	return must(f.s.EnvironmentsByName(context.Background(), []store.EnvironmentKey{{ProjectID: projectID, Name: name}}))[0]
}

func (f *ewFixture) deployment(id int64) *store.Deployment {
	return must(f.s.Deployments(context.Background(), []int64{id}))[0]
}

func (f *ewFixture) countDeployments(t *testing.T, q store.DeploymentQuery) int {
	t.Helper()
	counts, errs := f.s.CountDeployments(context.Background(), []store.DeploymentQuery{q})
	mustNoErrs(t, errs)
	return counts[0]
}

func (f *ewFixture) listDeploymentIDs(t *testing.T, q store.DeploymentQuery) []int64 {
	t.Helper()
	q.Page.First = ptr(store.MaxPageSize)
	pages, errs := f.s.ListDeployments(context.Background(), []store.DeploymentQuery{q})
	mustNoErrs(t, errs)
	ids := []int64{}
	for _, d := range pages[0].Items {
		ids = append(ids, d.ID)
	}
	return ids
}

func (f *ewFixture) projectEnvironments(t *testing.T, projectID int64) []*store.Environment {
	t.Helper()
	pages, errs := f.s.ListEnvironments(context.Background(), []store.EnvironmentQuery{
		{ProjectID: projectID, Page: store.PageArgs{First: ptr(store.MaxPageSize)}},
	})
	mustNoErrs(t, errs)
	return pages[0].Items
}

// snapshot renders everything an environment mutation can change, to
// prove that a failed one changed nothing.
func (f *ewFixture) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	state := map[string]any{
		"private":     f.projectEnvironments(t, ewPrivate),
		"public":      f.projectEnvironments(t, ewPublic),
		"deployments": must(f.s.Deployments(ctx, f.deployIDs)),
		"approvals":   must(f.s.Approvals(ctx, f.deployIDs)),
		"counts": []int{
			f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate}),
			f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPublic}),
		},
		"shipped": f.listDeploymentIDs(t, store.DeploymentQuery{ProjectID: ewPrivate, MergeRequestID: 1}),
	}
	data, err := json.Marshal(state)
	if err != nil {
		t.Fatalf("encode snapshot: %v", err)
	}
	return string(data)
}

// ewCheckErr fails t unless err has code wantCode (none when "") and, when
// wantMsg is not "", exactly that message.
func ewCheckErr(t *testing.T, err error, wantCode store.Code, wantMsg string) {
	t.Helper()
	if wantCode == "" {
		if err != nil {
			t.Fatalf("error = %q (%s), want none", err, store.ErrorCode(err))
		}
		return
	}
	if err == nil {
		t.Fatalf("error = nil, want %s %q", wantCode, wantMsg)
	}
	if got := store.ErrorCode(err); got != wantCode {
		t.Fatalf("error code = %s (%q), want %s", got, err, wantCode)
	}
	var domain *store.Error
	if !errors.As(err, &domain) {
		t.Fatalf("error %q is not a *store.Error", err)
	}
	if wantMsg != "" && domain.Message != wantMsg {
		t.Fatalf("error message = %q, want %q", domain.Message, wantMsg)
	}
}

// checkUnchanged fails t when the store differs from the snapshot taken
// before a failed call.
func (f *ewFixture) checkUnchanged(t *testing.T, before string) {
	t.Helper()
	if got := f.snapshot(t); got != before {
		t.Fatalf("a failed call changed the store:\n got %s\nwant %s", got, before)
	}
}

func ewEnvIDs(envs []*store.Environment) []int64 {
	ids := []int64{}
	for _, e := range envs {
		ids = append(ids, e.ID)
	}
	return ids
}

func ewCheckStored(t *testing.T, f *ewFixture, e *store.Environment) {
	t.Helper()
	if got := f.env(e.ID); !reflect.DeepEqual(got, e) {
		t.Fatalf("stored environment = %+v, want the returned %+v", got, e)
	}
}

const (
	ewMsgProjectNotFound = "Project not found"
	ewMsgEnvNotFound     = "Environment not found"
	ewMsgNameTaken       = "Name has already been taken"
	ewMsgStopFailed      = "Attempted to stop the environment but failed to change the status"
	ewMsgNotStopped      = "Environment must be stopped before it can be deleted"
	ewMsgInvalidDate     = "Invalid Date"
	ewMsgStaleStopped    = "Successfully requested stop for all stale environments"
	ewMsgReviewLimit     = "limit must be between 1 and 1000"
	ewMsgReviewDenied    = "Failed to authorize deletions for some or all of the environments. Ask someone with more permissions to delete the environments."
	ewMsgReviewNone      = "No environments found for deletion"
	ewMsgTier            = "Tier must be one of production, staging, testing, development or other"
	ewMsgNameFormat      = "Name can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"
)

func ewMsgProtected(name string) string {
	return "You are not allowed to deploy to the protected environment " + name
}

func TestCreateEnvironment(t *testing.T) {
	cest := time.FixedZone("CEST", 2*60*60)
	tests := []struct {
		name     string
		who      int64
		in       store.NewEnvironment
		wantCode store.Code
		wantMsg  string
		check    func(t *testing.T, e *store.Environment)
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the project is looked up", who: ewAnonymous,
			in: store.NewEnvironment{ProjectID: 99, Name: "qa"}, wantCode: store.EUnauthenticated},
		{name: "guest is forbidden", who: ewGuest,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}, wantCode: store.EForbidden},
		{name: "non-member cannot see a private project", who: ewOutsider,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider,
			in: store.NewEnvironment{ProjectID: ewPublic, Name: "qa"}, wantCode: store.EForbidden},
		{name: "missing project is not found", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: 99, Name: "qa"}, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "developer creates an environment", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "review/app-1"},
			check: func(t *testing.T, e *store.Environment) {
				if e.Tier != store.TierDevelopment || e.ExternalURL != nil || e.AutoStopAt != nil || e.AutoDeleteAt != nil {
					t.Errorf("tier, url, autoStopAt, autoDeleteAt = %s, %v, %v, %v, want development and nothing set",
						e.Tier, e.ExternalURL, e.AutoStopAt, e.AutoDeleteAt)
				}
			}},
		{name: "maintainer creates an environment", who: ewMaintainer,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}},
		{name: "owner creates an environment", who: ewOwner,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}},
		{name: "admin creates an environment without being a member", who: ewRoot,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"}},
		{name: "tier is guessed from the name", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "live-eu"},
			check: func(t *testing.T, e *store.Environment) {
				if got, want := e.Tier, store.TierProduction; got != want {
					t.Errorf("tier = %s, want %s", got, want)
				}
			}},
		{name: "given tier wins over the guess", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "review/x", Tier: ptr(store.TierProduction)},
			check: func(t *testing.T, e *store.Environment) {
				if got, want := e.Tier, store.TierProduction; got != want {
					t.Errorf("tier = %s, want %s", got, want)
				}
			}},
		{name: "unknown tier is invalid", who: ewDeveloper,
			in:       store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", Tier: ptr(store.EnvironmentTier("ultra"))},
			wantCode: store.EInvalid, wantMsg: ewMsgTier},
		{name: "blank name is invalid", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: ""}, wantCode: store.EInvalid, wantMsg: "Name can't be blank"},
		{name: "too long name is invalid", who: ewDeveloper,
			in:       store.NewEnvironment{ProjectID: ewPrivate, Name: strings.Repeat("a", 256)},
			wantCode: store.EInvalid, wantMsg: "Name is too long (maximum is 255 characters)"},
		{name: "name ending with a slash is invalid", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "review/"}, wantCode: store.EInvalid, wantMsg: ewMsgNameFormat},
		{name: "name with forbidden characters is invalid", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa!"}, wantCode: store.EInvalid, wantMsg: ewMsgNameFormat},
		{name: "taken name is a conflict", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "staging"}, wantCode: store.EConflict, wantMsg: ewMsgNameTaken},
		{name: "taken name of a stopped environment is a conflict", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "docs"}, wantCode: store.EConflict, wantMsg: ewMsgNameTaken},
		{name: "names are case-sensitive", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "Staging"}},
		{name: "name taken in another project is free", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPublic, Name: "docs"}},
		{name: "external url is kept trimmed", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", ExternalURL: ptr("  https://qa.example.com/app  ")},
			check: func(t *testing.T, e *store.Environment) {
				if e.ExternalURL == nil || *e.ExternalURL != "https://qa.example.com/app" {
					t.Errorf("external url = %v, want https://qa.example.com/app", e.ExternalURL)
				}
			}},
		{name: "blank external url means none", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", ExternalURL: ptr("   ")},
			check: func(t *testing.T, e *store.Environment) {
				if e.ExternalURL != nil {
					t.Errorf("external url = %q, want none", *e.ExternalURL)
				}
			}},
		{name: "relative external url is invalid", who: ewDeveloper,
			in:       store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", ExternalURL: ptr("/qa")},
			wantCode: store.EInvalid, wantMsg: "External url must be a valid absolute URL"},
		{name: "unsafe external url is invalid", who: ewDeveloper,
			in:       store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", ExternalURL: ptr("javascript:alert(1)")},
			wantCode: store.EInvalid, wantMsg: "External url has an unsafe scheme"},
		{name: "autoStopAt is kept in UTC to the microsecond", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "qa", AutoStopAt: ptr(time.Date(2024, 7, 1, 14, 0, 0, 123456789, cest))},
			check: func(t *testing.T, e *store.Environment) {
				want := time.Date(2024, 7, 1, 12, 0, 0, 123456000, time.UTC)
				if e.AutoStopAt == nil || !e.AutoStopAt.Equal(want) || e.AutoStopAt.Location() != time.UTC {
					t.Errorf("autoStopAt = %v, want %v", e.AutoStopAt, want)
				}
			}},
		{name: "protected name needs deploy access", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "canary"}, wantCode: store.EForbidden, wantMsg: ewMsgProtected("canary")},
		{name: "maintainer may create a protected name", who: ewMaintainer,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "canary"}},
		{name: "deploy access is checked before the name is taken", who: ewDeveloper,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "production"}, wantCode: store.EForbidden, wantMsg: ewMsgProtected("production")},
		{name: "maintainer creating a taken protected name gets a conflict", who: ewMaintainer,
			in: store.NewEnvironment{ProjectID: ewPrivate, Name: "production"}, wantCode: store.EConflict, wantMsg: ewMsgNameTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
			f.advance(time.Hour)
			before := f.snapshot(t)
			e, err := f.s.CreateEnvironment(context.Background(), f.as(tt.who), tt.in)
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			if tt.wantCode != "" {
				f.checkUnchanged(t, before)
				return
			}
			want := store.Environment{
				ID: ewNextID, ProjectID: tt.in.ProjectID, Name: tt.in.Name, Slug: store.Slugify(tt.in.Name),
				State: store.EnvAvailable, CreatedAt: f.now, UpdatedAt: f.now,
			}
			got := store.Environment{
				ID: e.ID, ProjectID: e.ProjectID, Name: e.Name, Slug: e.Slug, State: e.State, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("created = %+v, want %+v", got, want)
			}
			ewCheckStored(t, f, e)
			if byName := f.envByName(tt.in.ProjectID, tt.in.Name); byName == nil || byName.ID != e.ID {
				t.Errorf("environment by name %q = %+v, want id %d", tt.in.Name, byName, e.ID)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestCreateEnvironmentFailureKeepsTheNextID(t *testing.T) {
	f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
	ctx := context.Background()
	_, err := f.s.CreateEnvironment(ctx, f.as(ewDeveloper), store.NewEnvironment{ProjectID: ewPrivate, Name: "staging"})
	ewCheckErr(t, err, store.EConflict, ewMsgNameTaken)
	e, err := f.s.CreateEnvironment(ctx, f.as(ewDeveloper), store.NewEnvironment{ProjectID: ewPrivate, Name: "qa"})
	ewCheckErr(t, err, "", "")
	if got, want := e.ID, ewNextID; got != want {
		t.Errorf("id after a failed create = %d, want %d", got, want)
	}
}

func TestCreateEnvironmentSlugCollision(t *testing.T) {
	f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
	ctx := context.Background()
	first, err := f.s.CreateEnvironment(ctx, f.as(ewDeveloper), store.NewEnvironment{ProjectID: ewPrivate, Name: "review/1-foo"})
	ewCheckErr(t, err, "", "")
	if got, want := first.Slug, "review-1-foo-9tdj0u"; got != want {
		t.Fatalf("slug of review/1-foo = %q, want %q", got, want)
	}
	// The name equals the slug above, so Slugify gives that slug again.
	second, err := f.s.CreateEnvironment(ctx, f.as(ewDeveloper), store.NewEnvironment{ProjectID: ewPrivate, Name: "review-1-foo-9tdj0u"})
	ewCheckErr(t, err, "", "")
	slugRE := regexp.MustCompile(`^review-1-foo-9tdj-[a-z0-9]{6}$`)
	if !slugRE.MatchString(second.Slug) || !store.ValidSlug(second.Slug) || len(second.Slug) > 24 {
		t.Errorf("slug of the colliding name = %q, want a valid slug matching %s", second.Slug, slugRE)
	}
	if second.Slug == first.Slug {
		t.Errorf("both environments have slug %q, want distinct slugs", first.Slug)
	}
	ewCheckStored(t, f, second)
}

func TestUpdateEnvironment(t *testing.T) {
	newURL := "https://new.example.com"
	at := time.Date(2024, 7, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*60*60))
	tests := []struct {
		name      string
		who       int64
		in        store.EnvironmentUpdate
		wantCode  store.Code
		wantMsg   string
		unchanged bool // a success that changes nothing keeps updatedAt
		check     func(t *testing.T, e *store.Environment)
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: &newURL}, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the environment is looked up", who: ewAnonymous,
			in: store.EnvironmentUpdate{EnvironmentID: 999, ExternalURL: &newURL}, wantCode: store.EUnauthenticated},
		{name: "missing environment is not found", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 999, ExternalURL: &newURL}, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "environment of an invisible project is not found", who: ewOutsider,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: &newURL}, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider,
			in: store.EnvironmentUpdate{EnvironmentID: 20, ExternalURL: &newURL}, wantCode: store.EForbidden},
		{name: "guest is forbidden", who: ewGuest,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: &newURL}, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: &newURL}, wantCode: store.EForbidden},
		{name: "developer sets the external url", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: &newURL},
			check: func(t *testing.T, e *store.Environment) {
				if e.ExternalURL == nil || *e.ExternalURL != newURL {
					t.Errorf("external url = %v, want %s", e.ExternalURL, newURL)
				}
			}},
		{name: "blank external url clears it", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: ptr("  ")},
			check: func(t *testing.T, e *store.Environment) {
				if e.ExternalURL != nil {
					t.Errorf("external url = %q, want none", *e.ExternalURL)
				}
			}},
		{name: "empty external url clears it", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: ptr("")},
			check: func(t *testing.T, e *store.Environment) {
				if e.ExternalURL != nil {
					t.Errorf("external url = %q, want none", *e.ExternalURL)
				}
			}},
		{name: "invalid external url is refused", who: ewDeveloper,
			in:       store.EnvironmentUpdate{EnvironmentID: 2, ExternalURL: ptr("staging.example.com")},
			wantCode: store.EInvalid, wantMsg: "External url must be a valid absolute URL"},
		{name: "tier changes", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, Tier: ptr(store.TierTesting)},
			check: func(t *testing.T, e *store.Environment) {
				if got, want := e.Tier, store.TierTesting; got != want {
					t.Errorf("tier = %s, want %s", got, want)
				}
			}},
		{name: "unknown tier is refused", who: ewDeveloper,
			in:       store.EnvironmentUpdate{EnvironmentID: 2, Tier: ptr(store.EnvironmentTier("ultra"))},
			wantCode: store.EInvalid, wantMsg: ewMsgTier},
		{name: "autoStopAt is set in UTC to the microsecond", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, AutoStopAt: &at},
			check: func(t *testing.T, e *store.Environment) {
				want := time.Date(2024, 7, 1, 12, 0, 0, 123456000, time.UTC)
				if e.AutoStopAt == nil || !e.AutoStopAt.Equal(want) || e.AutoStopAt.Location() != time.UTC {
					t.Errorf("autoStopAt = %v, want %v", e.AutoStopAt, want)
				}
			}},
		{name: "autoStopAt is cleared", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2, ClearAutoStopAt: true},
			check: func(t *testing.T, e *store.Environment) {
				if e.AutoStopAt != nil {
					t.Errorf("autoStopAt = %v, want none", e.AutoStopAt)
				}
			}},
		{name: "autoStopAt set and cleared together is refused", who: ewDeveloper,
			in:       store.EnvironmentUpdate{EnvironmentID: 2, AutoStopAt: &at, ClearAutoStopAt: true},
			wantCode: store.EInvalid, wantMsg: "autoStopAt cannot be both set and cleared"},
		{name: "nothing to change keeps updatedAt", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 2}, unchanged: true},
		{name: "the same values keep updatedAt", who: ewDeveloper,
			in:        store.EnvironmentUpdate{EnvironmentID: 2, Tier: ptr(store.TierStaging), ExternalURL: ptr("https://staging.example.com")},
			unchanged: true},
		{name: "stopped environment can be updated", who: ewDeveloper,
			in: store.EnvironmentUpdate{EnvironmentID: 6, ExternalURL: &newURL}},
		{name: "protected environment needs deploy access", who: ewDeveloper,
			in:       store.EnvironmentUpdate{EnvironmentID: 1, ExternalURL: &newURL},
			wantCode: store.EForbidden, wantMsg: ewMsgProtected("production")},
		{name: "maintainer updates a protected environment", who: ewMaintainer,
			in: store.EnvironmentUpdate{EnvironmentID: 1, ExternalURL: &newURL}},
		{name: "admin updates a protected environment", who: ewRoot,
			in: store.EnvironmentUpdate{EnvironmentID: 1, ExternalURL: &newURL}},
		{name: "user named by the deploy rule updates the protected environment", who: ewDeployer,
			in: store.EnvironmentUpdate{EnvironmentID: 5, ExternalURL: &newURL}},
		{name: "other developers may not update that protected environment", who: ewDeveloper,
			in:       store.EnvironmentUpdate{EnvironmentID: 5, ExternalURL: &newURL},
			wantCode: store.EForbidden, wantMsg: ewMsgProtected("review/guarded")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
			f.advance(time.Hour)
			before := f.snapshot(t)
			old := f.env(tt.in.EnvironmentID)
			e, err := f.s.UpdateEnvironment(context.Background(), f.as(tt.who), tt.in)
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			if tt.wantCode != "" {
				f.checkUnchanged(t, before)
				return
			}
			ewCheckStored(t, f, e)
			if e.Name != old.Name || e.Slug != old.Slug || e.State != old.State || !e.CreatedAt.Equal(old.CreatedAt) {
				t.Errorf("name, slug, state, createdAt = %q %q %s %v, want them unchanged: %q %q %s %v",
					e.Name, e.Slug, e.State, e.CreatedAt, old.Name, old.Slug, old.State, old.CreatedAt)
			}
			wantUpdated := f.now
			if tt.unchanged {
				wantUpdated = old.UpdatedAt
				if got := f.snapshot(t); got != before {
					t.Errorf("an update without changes changed the store:\n got %s\nwant %s", got, before)
				}
			}
			if !e.UpdatedAt.Equal(wantUpdated) {
				t.Errorf("updatedAt = %v, want %v", e.UpdatedAt, wantUpdated)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestStopEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		who      int64
		envID    int64
		force    bool
		wantCode store.Code
		wantMsg  string
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous, envID: 2, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the environment is looked up", who: ewAnonymous, envID: 999, wantCode: store.EUnauthenticated},
		{name: "missing environment is not found", who: ewDeveloper, envID: 999, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "environment of an invisible project is not found", who: ewOutsider, envID: 2, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider, envID: 20, wantCode: store.EForbidden},
		{name: "guest is forbidden", who: ewGuest, envID: 2, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter, envID: 2, wantCode: store.EForbidden},
		{name: "available environment stops", who: ewDeveloper, envID: 2},
		{name: "available environment stops with force too", who: ewDeveloper, envID: 2, force: true},
		{name: "stopping environment needs force", who: ewDeveloper, envID: 3, wantCode: store.EFailedPrecondition, wantMsg: ewMsgStopFailed},
		{name: "force stops a stopping environment", who: ewDeveloper, envID: 3, force: true},
		{name: "stopped environment cannot stop again", who: ewDeveloper, envID: 6, wantCode: store.EFailedPrecondition, wantMsg: ewMsgStopFailed},
		{name: "stopped environment cannot stop again with force", who: ewDeveloper, envID: 6, force: true, wantCode: store.EFailedPrecondition, wantMsg: ewMsgStopFailed},
		{name: "protected environment needs deploy access", who: ewDeveloper, envID: 1, wantCode: store.EForbidden, wantMsg: ewMsgProtected("production")},
		{name: "maintainer stops a protected environment", who: ewMaintainer, envID: 1},
		{name: "admin stops a protected environment", who: ewRoot, envID: 1},
		{name: "developer of the public project stops its environment", who: ewDeveloper, envID: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
			f.advance(time.Hour)
			before := f.snapshot(t)
			old := f.env(tt.envID)
			e, err := f.s.StopEnvironment(context.Background(), f.as(tt.who), tt.envID, tt.force)
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			if tt.wantCode != "" {
				f.checkUnchanged(t, before)
				return
			}
			ewCheckStored(t, f, e)
			if e.State != store.EnvStopped || e.AutoStopAt != nil || !e.UpdatedAt.Equal(f.now) {
				t.Errorf("state, autoStopAt, updatedAt = %s, %v, %v, want stopped, none, %v", e.State, e.AutoStopAt, e.UpdatedAt, f.now)
			}
			if e.Name != old.Name || e.Slug != old.Slug || !reflect.DeepEqual(e.ExternalURL, old.ExternalURL) || e.Tier != old.Tier {
				t.Errorf("stopped = %+v, want only state, autoStopAt and updatedAt changed from %+v", e, old)
			}
		})
	}
}

func TestDeleteEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		who      int64
		envID    int64
		wantCode store.Code
		wantMsg  string
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous, envID: 6, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the environment is looked up", who: ewAnonymous, envID: 999, wantCode: store.EUnauthenticated},
		{name: "missing environment is not found", who: ewDeveloper, envID: 999, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "environment of an invisible project is not found", who: ewOutsider, envID: 6, wantCode: store.ENotFound, wantMsg: ewMsgEnvNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider, envID: 21, wantCode: store.EForbidden},
		{name: "guest is forbidden", who: ewGuest, envID: 6, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter, envID: 6, wantCode: store.EForbidden},
		{name: "available environment must be stopped first", who: ewDeveloper, envID: 2, wantCode: store.EFailedPrecondition, wantMsg: ewMsgNotStopped},
		{name: "stopping environment must be stopped first", who: ewDeveloper, envID: 3, wantCode: store.EFailedPrecondition, wantMsg: ewMsgNotStopped},
		{name: "protected environment needs deploy access", who: ewDeveloper, envID: 5, wantCode: store.EForbidden, wantMsg: ewMsgProtected("review/guarded")},
		{name: "user named by the deploy rule deletes the protected environment", who: ewDeployer, envID: 5},
		{name: "developer deletes a stopped environment", who: ewDeveloper, envID: 6},
		{name: "maintainer deletes a stopped environment", who: ewMaintainer, envID: 6},
		{name: "admin deletes a stopped environment", who: ewRoot, envID: 6},
		{name: "developer deletes a stopped environment of the public project", who: ewDeveloper, envID: 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
			before := f.snapshot(t)
			old := f.env(tt.envID)
			e, err := f.s.DeleteEnvironment(context.Background(), f.as(tt.who), tt.envID)
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			if tt.wantCode != "" {
				f.checkUnchanged(t, before)
				return
			}
			if !reflect.DeepEqual(e, old) {
				t.Errorf("deleted = %+v, want the environment as it was: %+v", e, old)
			}
			if got := f.env(tt.envID); got != nil {
				t.Errorf("environment %d after delete = %+v, want none", tt.envID, got)
			}
			if got := f.envByName(old.ProjectID, old.Name); got != nil {
				t.Errorf("environment by name %q after delete = %+v, want none", old.Name, got)
			}
			if ids := ewEnvIDs(f.projectEnvironments(t, old.ProjectID)); slices.Contains(ids, tt.envID) {
				t.Errorf("project environments after delete = %v, want no %d", ids, tt.envID)
			}
		})
	}
}

func TestDeleteEnvironmentRemovesItsDeployments(t *testing.T) {
	f := newEWFixture(t, ewStandardEnvs, ewStandardDeploys)
	ctx := context.Background()
	privateBefore := f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate})
	old := f.env(4)

	if _, err := f.s.DeleteEnvironment(ctx, f.as(ewDeveloper), 4); err != nil {
		t.Fatalf("delete environment 4: %v", err)
	}

	for _, id := range []int64{41, 42} {
		if d := f.deployment(id); d != nil {
			t.Errorf("deployment %d after its environment was deleted = %+v, want none", id, d)
		}
	}
	if got := must(f.s.Approvals(ctx, []int64{41}))[0]; len(got) != 0 {
		t.Errorf("approvals of deployment 41 = %+v, want none", got)
	}
	if got, want := f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate}), privateBefore-2; got != want {
		t.Errorf("project deployments count = %d, want %d", got, want)
	}
	if got := f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate, EnvironmentID: 4}); got != 0 {
		t.Errorf("deployments count of the deleted environment = %d, want 0", got)
	}
	if got, want := f.listDeploymentIDs(t, store.DeploymentQuery{ProjectID: ewPrivate}), []int64{43, 44}; !slices.Equal(got, want) {
		t.Errorf("project deployments = %v, want %v", got, want)
	}
	if got, want := f.listDeploymentIDs(t, store.DeploymentQuery{ProjectID: ewPrivate, MergeRequestID: 1}), []int64{43}; !slices.Equal(got, want) {
		t.Errorf("deployments that shipped merge request 1 = %v, want %v", got, want)
	}
	if d := must(f.s.DeploymentsByIID(ctx, []store.IIDKey{{ProjectID: ewPrivate, IID: 41}}))[0]; d != nil {
		t.Errorf("deployment by iid 41 = %+v, want none", d)
	}

	again, err := f.s.CreateEnvironment(ctx, f.as(ewDeveloper), store.NewEnvironment{ProjectID: ewPrivate, Name: old.Name})
	if err != nil {
		t.Fatalf("create %q again: %v", old.Name, err)
	}
	if again.ID == old.ID || again.Slug != store.Slugify(old.Name) {
		t.Errorf("recreated id, slug = %d, %q, want a new id and slug %q", again.ID, again.Slug, store.Slugify(old.Name))
	}
	if got := f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate, EnvironmentID: again.ID}); got != 0 {
		t.Errorf("deployments of the recreated environment = %d, want 0", got)
	}
}

// ewStaleEnvs are the stopStaleEnvironments fixture; ewStaleBefore is the
// cutoff the selection test uses.
var (
	ewStaleBefore = ewT0.Add(-ewDays(30))
	ewStaleEnvs   = []ewEnv{
		{ID: 1, Name: "production", Updated: ewT0.Add(-ewDays(60))},
		{ID: 2, Name: "old", Updated: ewT0.Add(-ewDays(60))},
		{ID: 3, Name: "deployed-recently", Updated: ewT0.Add(-ewDays(60))},
		{ID: 4, Name: "deployed-long-ago", Updated: ewT0.Add(-ewDays(60))},
		{ID: 5, Name: "updated-recently", Updated: ewT0.Add(-ewDays(10))},
		{ID: 6, Name: "stopping", State: "stopping", Updated: ewT0.Add(-ewDays(60))},
		{ID: 7, Name: "updated-at-cutoff", Updated: ewStaleBefore},
		{ID: 8, Name: "deployed-at-cutoff", Updated: ewT0.Add(-ewDays(60))},
		{ID: 9, Name: "auto-stopping", Updated: ewT0.Add(-ewDays(60)), AutoStop: ptr(ewT0.Add(ewDays(1)))},
		{ID: 10, Name: "stopped", State: "stopped", Updated: ewT0.Add(-ewDays(60))},
		{ID: 11, Name: "updated-just-before-cutoff", Updated: ewStaleBefore.Add(-time.Microsecond)},
		{ID: 20, Project: ewPublic, Name: "old", Updated: ewT0.Add(-ewDays(60))},
	}
	ewStaleDeploys = []ewDeploy{
		{ID: 31, Env: 3, Updated: ewT0.Add(-ewDays(10))},
		{ID: 32, Env: 3, Updated: ewT0.Add(-ewDays(50))},
		{ID: 41, Env: 4, Updated: ewT0.Add(-ewDays(45))},
		{ID: 81, Env: 8, Updated: ewStaleBefore, Status: "failed"},
	}
)

func TestStopStaleEnvironmentsSelection(t *testing.T) {
	f := newEWFixture(t, ewStaleEnvs, ewStaleDeploys)
	f.advance(time.Minute)
	old := f.projectEnvironments(t, ewPrivate)
	publicBefore := f.projectEnvironments(t, ewPublic)

	msg, stopped, err := f.s.StopStaleEnvironments(context.Background(), f.as(ewMaintainer), ewPrivate, ewStaleBefore)
	ewCheckErr(t, err, "", "")
	if msg != ewMsgStaleStopped {
		t.Errorf("message = %q, want %q", msg, ewMsgStaleStopped)
	}
	// 7 was updated exactly at the cutoff and 8 deployed to exactly at it:
	// neither is stale.
	wantStopped := []int64{2, 4, 9, 11}
	if got := ewEnvIDs(stopped); !slices.Equal(got, wantStopped) {
		t.Fatalf("stopped = %v, want %v", got, wantStopped)
	}
	for _, e := range stopped {
		ewCheckStored(t, f, e)
		if e.State != store.EnvStopped || e.AutoStopAt != nil || !e.UpdatedAt.Equal(f.now) {
			t.Errorf("environment %d: state, autoStopAt, updatedAt = %s, %v, %v, want stopped, none, %v",
				e.ID, e.State, e.AutoStopAt, e.UpdatedAt, f.now)
		}
	}
	for _, e := range old {
		if slices.Contains(wantStopped, e.ID) {
			continue
		}
		if got := f.env(e.ID); !reflect.DeepEqual(got, e) {
			t.Errorf("environment %d (%s) = %+v, want it untouched: %+v", e.ID, e.Name, got, e)
		}
	}
	if got := f.projectEnvironments(t, ewPublic); !reflect.DeepEqual(got, publicBefore) {
		t.Errorf("the other project's environments changed: got %+v, want %+v", got, publicBefore)
	}
}

func TestStopStaleEnvironmentsJustAfterTheCutoff(t *testing.T) {
	f := newEWFixture(t, ewStaleEnvs, ewStaleDeploys)
	_, stopped, err := f.s.StopStaleEnvironments(context.Background(), f.as(ewMaintainer), ewPrivate, ewStaleBefore.Add(time.Microsecond))
	ewCheckErr(t, err, "", "")
	if got, want := ewEnvIDs(stopped), []int64{2, 4, 7, 8, 9, 11}; !slices.Equal(got, want) {
		t.Errorf("stopped = %v, want %v", got, want)
	}
}

func TestStopStaleEnvironmentsDateWindow(t *testing.T) {
	tests := []struct {
		name     string
		before   time.Time
		wantCode store.Code
	}{
		{name: "exactly one week ago is allowed", before: ewT0.Add(-ewDays(7))},
		{name: "less than one week ago is invalid", before: ewT0.Add(-ewDays(7) + time.Second), wantCode: store.EInvalid},
		{name: "exactly ten years ago is allowed", before: ewT0.AddDate(-10, 0, 0)},
		{name: "more than ten years ago is invalid", before: ewT0.AddDate(-10, 0, 0).Add(-time.Second), wantCode: store.EInvalid},
		{name: "the future is invalid", before: ewT0.Add(time.Hour), wantCode: store.EInvalid},
		{name: "now is invalid", before: ewT0, wantCode: store.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStaleEnvs, ewStaleDeploys)
			before := f.snapshot(t)
			msg, _, err := f.s.StopStaleEnvironments(context.Background(), f.as(ewMaintainer), ewPrivate, tt.before)
			if tt.wantCode != "" {
				ewCheckErr(t, err, tt.wantCode, ewMsgInvalidDate)
				f.checkUnchanged(t, before)
				return
			}
			ewCheckErr(t, err, "", "")
			if msg != ewMsgStaleStopped {
				t.Errorf("message = %q, want %q", msg, ewMsgStaleStopped)
			}
		})
	}
}

func TestStopStaleEnvironmentsAccess(t *testing.T) {
	tests := []struct {
		name      string
		who       int64
		projectID int64
		before    time.Time
		wantCode  store.Code
		wantMsg   string
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous, projectID: ewPrivate, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the date is checked", who: ewAnonymous, projectID: ewPrivate,
			before: ewT0, wantCode: store.EUnauthenticated},
		{name: "non-member cannot see a private project", who: ewOutsider, projectID: ewPrivate, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "missing project is not found", who: ewMaintainer, projectID: 99, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider, projectID: ewPublic, wantCode: store.EForbidden},
		{name: "guest is forbidden", who: ewGuest, projectID: ewPrivate, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter, projectID: ewPrivate, wantCode: store.EForbidden},
		{name: "developer is forbidden", who: ewDeveloper, projectID: ewPrivate, wantCode: store.EForbidden},
		{name: "developer is forbidden in the public project too", who: ewDeveloper, projectID: ewPublic, wantCode: store.EForbidden},
		{name: "maintainer stops stale environments", who: ewMaintainer, projectID: ewPrivate},
		{name: "owner stops stale environments", who: ewOwner, projectID: ewPrivate},
		{name: "admin stops stale environments", who: ewRoot, projectID: ewPrivate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewStaleEnvs, ewStaleDeploys)
			before := f.snapshot(t)
			cutoff := tt.before
			if cutoff.IsZero() {
				cutoff = ewStaleBefore
			}
			_, stopped, err := f.s.StopStaleEnvironments(context.Background(), f.as(tt.who), tt.projectID, cutoff)
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			if tt.wantCode != "" {
				f.checkUnchanged(t, before)
				return
			}
			if len(stopped) == 0 {
				t.Errorf("stopped nothing, want the stale environments stopped")
			}
		})
	}
}

// ewReviewEnvs are the deleteStoppedReviewApps fixture. By default (30 days
// ago) the candidates, oldest first, are 2, 3 (same age, by id), 11 and 1.
var ewReviewEnvs = []ewEnv{
	{ID: 1, Name: "review/a", State: "stopped", Created: ewT0.Add(-ewDays(40))},
	{ID: 2, Name: "review/b", State: "stopped", Created: ewT0.Add(-ewDays(50))},
	{ID: 3, Name: "review/c", State: "stopped", Created: ewT0.Add(-ewDays(50))},
	{ID: 4, Name: "review/new", State: "stopped", Created: ewT0.Add(-ewDays(10))},
	{ID: 5, Name: "review/running", Created: ewT0.Add(-ewDays(60))},
	{ID: 6, Name: "reviewer/x", State: "stopped", Created: ewT0.Add(-ewDays(60))},
	{ID: 7, Name: "review", State: "stopped", Created: ewT0.Add(-ewDays(60))},
	{ID: 8, Name: "Review/upper", State: "stopped", Created: ewT0.Add(-ewDays(60))},
	{ID: 9, Name: "review/scheduled", State: "stopped", Created: ewT0.Add(-ewDays(60)), AutoDelete: ptr(ewT0.Add(ewDays(2)))},
	{ID: 10, Name: "x/review/y", State: "stopped", Created: ewT0.Add(-ewDays(60))},
	{ID: 11, Name: "review/nested/deep", State: "stopped", Created: ewT0.Add(-ewDays(45))},
	{ID: 12, Name: "review/stopping", State: "stopping", Created: ewT0.Add(-ewDays(60))},
	{ID: 20, Project: ewPublic, Name: "review/other", State: "stopped", Created: ewT0.Add(-ewDays(60))},
}

var ewReviewDeploys = []ewDeploy{{ID: 21, Env: 2, LinkedMR: true}}

func TestDeleteStoppedReviewApps(t *testing.T) {
	tests := []struct {
		name          string
		who           int64
		envs          []ewEnv // ewReviewEnvs when nil
		before        *time.Time
		limit         *int
		dryRun        *bool
		wantScheduled []int64
		wantUnproc    []int64
		wantDryRun    bool
		wantMsg       string
	}{
		{name: "dry run is the default and reports the oldest candidates", who: ewDeveloper,
			wantScheduled: []int64{2, 3, 11, 1}, wantDryRun: true, wantMsg: "4 environments would be scheduled for deletion"},
		{name: "explicit dry run schedules nothing", who: ewDeveloper, dryRun: ptr(true),
			wantScheduled: []int64{2, 3, 11, 1}, wantDryRun: true, wantMsg: "4 environments would be scheduled for deletion"},
		{name: "limit keeps the oldest", who: ewDeveloper, limit: ptr(2),
			wantScheduled: []int64{2, 3}, wantDryRun: true, wantMsg: "2 environments would be scheduled for deletion"},
		{name: "limit of one", who: ewDeveloper, limit: ptr(1),
			wantScheduled: []int64{2}, wantDryRun: true, wantMsg: "1 environment would be scheduled for deletion"},
		{name: "limit of a thousand is allowed", who: ewDeveloper, limit: ptr(1000),
			wantScheduled: []int64{2, 3, 11, 1}, wantDryRun: true, wantMsg: "4 environments would be scheduled for deletion"},
		{name: "later before takes younger review apps", who: ewDeveloper, before: ptr(ewT0.Add(-ewDays(5))),
			wantScheduled: []int64{2, 3, 11, 1, 4}, wantDryRun: true, wantMsg: "5 environments would be scheduled for deletion"},
		{name: "before is exclusive", who: ewDeveloper, before: ptr(ewT0.Add(-ewDays(45))),
			wantScheduled: []int64{2, 3}, wantDryRun: true, wantMsg: "2 environments would be scheduled for deletion"},
		{name: "no candidates schedules nothing", who: ewDeveloper, before: ptr(ewT0.Add(-ewDays(100))), dryRun: ptr(false),
			wantMsg: ewMsgReviewNone},
		{name: "real run schedules the candidates", who: ewDeveloper, dryRun: ptr(false),
			wantScheduled: []int64{2, 3, 11, 1}, wantMsg: "4 environments scheduled for deletion"},
		{name: "maintainer schedules the candidates", who: ewMaintainer, dryRun: ptr(false),
			wantScheduled: []int64{2, 3, 11, 1}, wantMsg: "4 environments scheduled for deletion"},
		{name: "admin schedules the candidates", who: ewRoot, dryRun: ptr(false), limit: ptr(1),
			wantScheduled: []int64{2}, wantMsg: "1 environment scheduled for deletion"},
		{name: "protected candidate is unprocessable and nothing is scheduled", who: ewDeveloper, dryRun: ptr(false),
			envs:       append(slices.Clone(ewReviewEnvs), ewEnv{ID: 13, Name: "review/guarded", State: "stopped", Created: ewT0.Add(-ewDays(55))}),
			wantUnproc: []int64{13}, wantMsg: ewMsgReviewDenied},
		{name: "protected candidate is unprocessable in a dry run too", who: ewDeveloper,
			envs:       append(slices.Clone(ewReviewEnvs), ewEnv{ID: 13, Name: "review/guarded", State: "stopped", Created: ewT0.Add(-ewDays(55))}),
			wantUnproc: []int64{13}, wantDryRun: true, wantMsg: ewMsgReviewDenied},
		{name: "protected candidate beyond the limit does not count", who: ewDeveloper, dryRun: ptr(false), limit: ptr(2),
			envs:          append(slices.Clone(ewReviewEnvs), ewEnv{ID: 13, Name: "review/guarded", State: "stopped", Created: ewT0.Add(-ewDays(41))}),
			wantScheduled: []int64{2, 3}, wantMsg: "2 environments scheduled for deletion"},
		{name: "user named by the deploy rule schedules the protected review app", who: ewDeployer, dryRun: ptr(false),
			envs:          append(slices.Clone(ewReviewEnvs), ewEnv{ID: 13, Name: "review/guarded", State: "stopped", Created: ewT0.Add(-ewDays(55))}),
			wantScheduled: []int64{13, 2, 3, 11, 1}, wantMsg: "5 environments scheduled for deletion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs := tt.envs
			if envs == nil {
				envs = ewReviewEnvs
			}
			f := newEWFixture(t, envs, ewReviewDeploys)
			f.advance(time.Minute)
			before := f.snapshot(t)
			old := f.projectEnvironments(t, ewPrivate)
			got, err := f.s.DeleteStoppedReviewApps(context.Background(), f.as(tt.who), ewPrivate, tt.before, tt.limit, tt.dryRun)
			ewCheckErr(t, err, "", "")
			if ids := ewEnvIDs(got.Scheduled); !slices.Equal(ids, ewOrEmpty(tt.wantScheduled)) {
				t.Errorf("scheduled = %v, want %v", ids, tt.wantScheduled)
			}
			if ids := ewEnvIDs(got.Unprocessable); !slices.Equal(ids, ewOrEmpty(tt.wantUnproc)) {
				t.Errorf("unprocessable = %v, want %v", ids, tt.wantUnproc)
			}
			if got.DryRun != tt.wantDryRun || got.Message != tt.wantMsg {
				t.Errorf("dryRun, message = %v, %q, want %v, %q", got.DryRun, got.Message, tt.wantDryRun, tt.wantMsg)
			}
			if tt.wantDryRun || len(tt.wantScheduled) == 0 {
				if after := f.snapshot(t); after != before {
					t.Errorf("a call that schedules nothing changed the store:\n got %s\nwant %s", after, before)
				}
				return
			}
			deleteAt := f.now.Add(ewDays(7))
			for _, e := range got.Scheduled {
				ewCheckStored(t, f, e)
				if e.AutoDeleteAt == nil || !e.AutoDeleteAt.Equal(deleteAt) || !e.UpdatedAt.Equal(f.now) || e.State != store.EnvStopped {
					t.Errorf("environment %d: autoDeleteAt, updatedAt, state = %v, %v, %s, want %v, %v, stopped",
						e.ID, e.AutoDeleteAt, e.UpdatedAt, e.State, deleteAt, f.now)
				}
			}
			for _, e := range old {
				if !slices.Contains(tt.wantScheduled, e.ID) {
					if got := f.env(e.ID); !reflect.DeepEqual(got, e) {
						t.Errorf("environment %d (%s) = %+v, want it untouched: %+v", e.ID, e.Name, got, e)
					}
				}
			}
		})
	}
}

func ewOrEmpty(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

func TestDeleteStoppedReviewAppsSchedulesOnce(t *testing.T) {
	f := newEWFixture(t, ewReviewEnvs, ewReviewDeploys)
	ctx := context.Background()
	first, err := f.s.DeleteStoppedReviewApps(ctx, f.as(ewDeveloper), ewPrivate, nil, nil, ptr(false))
	ewCheckErr(t, err, "", "")
	if len(first.Scheduled) == 0 {
		t.Fatalf("first run scheduled nothing, want the candidates")
	}
	second, err := f.s.DeleteStoppedReviewApps(ctx, f.as(ewDeveloper), ewPrivate, nil, nil, ptr(false))
	ewCheckErr(t, err, "", "")
	if len(second.Scheduled) != 0 || second.Message != ewMsgReviewNone {
		t.Errorf("second run scheduled %v with %q, want nothing and %q", ewEnvIDs(second.Scheduled), second.Message, ewMsgReviewNone)
	}
}

func TestDeleteStoppedReviewAppsRefusals(t *testing.T) {
	tests := []struct {
		name      string
		who       int64
		projectID int64
		limit     *int
		wantCode  store.Code
		wantMsg   string
	}{
		{name: "anonymous caller is unauthenticated", who: ewAnonymous, projectID: ewPrivate, wantCode: store.EUnauthenticated},
		{name: "anonymous caller is unauthenticated before the limit is checked", who: ewAnonymous, projectID: ewPrivate,
			limit: ptr(0), wantCode: store.EUnauthenticated},
		{name: "non-member cannot see a private project", who: ewOutsider, projectID: ewPrivate, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "missing project is not found", who: ewDeveloper, projectID: 99, wantCode: store.ENotFound, wantMsg: ewMsgProjectNotFound},
		{name: "non-member of a public project is forbidden", who: ewOutsider, projectID: ewPublic, wantCode: store.EForbidden},
		{name: "guest is forbidden", who: ewGuest, projectID: ewPrivate, wantCode: store.EForbidden},
		{name: "reporter is forbidden", who: ewReporter, projectID: ewPrivate, wantCode: store.EForbidden},
		{name: "limit of zero is invalid", who: ewDeveloper, projectID: ewPrivate, limit: ptr(0), wantCode: store.EInvalid, wantMsg: ewMsgReviewLimit},
		{name: "negative limit is invalid", who: ewDeveloper, projectID: ewPrivate, limit: ptr(-1), wantCode: store.EInvalid, wantMsg: ewMsgReviewLimit},
		{name: "limit above a thousand is invalid", who: ewDeveloper, projectID: ewPrivate, limit: ptr(1001), wantCode: store.EInvalid, wantMsg: ewMsgReviewLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEWFixture(t, ewReviewEnvs, ewReviewDeploys)
			before := f.snapshot(t)
			_, err := f.s.DeleteStoppedReviewApps(context.Background(), f.as(tt.who), tt.projectID, nil, tt.limit, ptr(false))
			ewCheckErr(t, err, tt.wantCode, tt.wantMsg)
			f.checkUnchanged(t, before)
		})
	}
}

// ewSweepEnvs are the sweep fixture, relative to ewT0.
var (
	ewSweepEnvs = []ewEnv{
		{ID: 1, Name: "auto-past", AutoStop: ptr(ewT0.Add(-time.Minute))},
		{ID: 2, Name: "auto-now", AutoStop: ptr(ewT0)},
		{ID: 3, Name: "auto-future", AutoStop: ptr(ewT0.Add(time.Minute))},
		{ID: 4, Name: "stopping-auto", State: "stopping", AutoStop: ptr(ewT0.Add(-time.Minute))},
		{ID: 5, Name: "review/due", State: "stopped", AutoDelete: ptr(ewT0.Add(-time.Minute))},
		{ID: 6, Name: "review/later", State: "stopped", AutoDelete: ptr(ewT0.Add(time.Hour))},
		{ID: 7, Name: "review/restarted", AutoDelete: ptr(ewT0.Add(-time.Minute))},
		{ID: 8, Name: "keep"},
	}
	ewSweepDeploys = []ewDeploy{
		{ID: 51, Env: 5, Approved: true, LinkedMR: true},
		{ID: 52, Env: 5, Status: "canceled"},
		{ID: 81, Env: 8, LinkedMR: true},
	}
)

func TestSweepEnvironments(t *testing.T) {
	f := newEWFixture(t, ewSweepEnvs, ewSweepDeploys)
	ctx := context.Background()
	old := f.projectEnvironments(t, ewPrivate)

	stopped, deleted, err := f.s.SweepEnvironments(ctx)
	ewCheckErr(t, err, "", "")
	if stopped != 2 || deleted != 1 {
		t.Errorf("stopped, deleted = %d, %d, want 2, 1", stopped, deleted)
	}
	for _, id := range []int64{1, 2} {
		e := f.env(id)
		if e.State != store.EnvStopped || e.AutoStopAt != nil || !e.UpdatedAt.Equal(f.now) {
			t.Errorf("environment %d: state, autoStopAt, updatedAt = %s, %v, %v, want stopped, none, %v", id, e.State, e.AutoStopAt, e.UpdatedAt, f.now)
		}
	}
	for _, e := range old {
		if slices.Contains([]int64{1, 2, 5}, e.ID) {
			continue
		}
		if got := f.env(e.ID); !reflect.DeepEqual(got, e) {
			t.Errorf("environment %d (%s) = %+v, want it untouched: %+v", e.ID, e.Name, got, e)
		}
	}
	if e := f.env(5); e != nil {
		t.Errorf("environment 5 past its autoDeleteAt = %+v, want it deleted", e)
	}
	for _, id := range []int64{51, 52} {
		if d := f.deployment(id); d != nil {
			t.Errorf("deployment %d of the deleted environment = %+v, want none", id, d)
		}
	}
	if got := must(f.s.Approvals(ctx, []int64{51}))[0]; len(got) != 0 {
		t.Errorf("approvals of deployment 51 = %+v, want none", got)
	}
	if got, want := f.listDeploymentIDs(t, store.DeploymentQuery{ProjectID: ewPrivate}), []int64{81}; !slices.Equal(got, want) {
		t.Errorf("project deployments = %v, want %v", got, want)
	}
	if got, want := f.countDeployments(t, store.DeploymentQuery{ProjectID: ewPrivate}), 1; got != want {
		t.Errorf("project deployments count = %d, want %d", got, want)
	}
	if got, want := f.listDeploymentIDs(t, store.DeploymentQuery{ProjectID: ewPrivate, MergeRequestID: 1}), []int64{81}; !slices.Equal(got, want) {
		t.Errorf("deployments that shipped merge request 1 = %v, want %v", got, want)
	}

	t.Run("sweeping again changes nothing", func(t *testing.T) {
		before := f.snapshot(t)
		stopped, deleted, err := f.s.SweepEnvironments(ctx)
		ewCheckErr(t, err, "", "")
		if stopped != 0 || deleted != 0 {
			t.Errorf("stopped, deleted = %d, %d, want 0, 0", stopped, deleted)
		}
		f.checkUnchanged(t, before)
	})

	t.Run("later sweeps take what has come due", func(t *testing.T) {
		f.advance(time.Hour)
		stopped, deleted, err := f.s.SweepEnvironments(ctx)
		ewCheckErr(t, err, "", "")
		if stopped != 1 || deleted != 1 {
			t.Errorf("stopped, deleted = %d, %d, want 1, 1", stopped, deleted)
		}
		if e := f.env(3); e.State != store.EnvStopped {
			t.Errorf("environment 3 state = %s, want stopped", e.State)
		}
		if e := f.env(6); e != nil {
			t.Errorf("environment 6 = %+v, want it deleted", e)
		}
	})
}

func TestSweepDeletesScheduledReviewAppsAfterAWeek(t *testing.T) {
	f := newEWFixture(t, ewReviewEnvs, ewReviewDeploys)
	ctx := context.Background()
	res, err := f.s.DeleteStoppedReviewApps(ctx, f.as(ewDeveloper), ewPrivate, nil, nil, ptr(false))
	ewCheckErr(t, err, "", "")
	scheduled := ewEnvIDs(res.Scheduled)

	// review/scheduled (9) was already due two days after ewT0.
	f.advance(ewDays(7) - time.Second)
	if _, deleted, err := f.s.SweepEnvironments(ctx); err != nil || deleted != 1 {
		t.Fatalf("sweep a second early: deleted %d (%v), want 1", deleted, err)
	}
	for _, id := range scheduled {
		if e := f.env(id); e == nil {
			t.Fatalf("environment %d deleted a second before its autoDeleteAt", id)
		}
	}
	f.advance(time.Second)
	_, deleted, err := f.s.SweepEnvironments(ctx)
	ewCheckErr(t, err, "", "")
	if got, want := deleted, len(scheduled); got != want {
		t.Errorf("deleted = %d, want %d", got, want)
	}
	for _, id := range append(scheduled, 9) {
		if e := f.env(id); e != nil {
			t.Errorf("environment %d = %+v, want it deleted", id, e)
		}
	}
	if d := f.deployment(21); d != nil {
		t.Errorf("deployment 21 of a deleted review app = %+v, want none", d)
	}
	if ids := ewEnvIDs(f.projectEnvironments(t, ewPrivate)); !slices.Equal(ids, []int64{4, 5, 6, 7, 8, 10, 12}) {
		t.Errorf("environments left = %v, want [4 5 6 7 8 10 12]", ids)
	}
}
