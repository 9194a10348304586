package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

const goodDocument = "testdata/import/good.json"

// mustOpenStore opens an empty store on the real clock.
func mustOpenStore(t *testing.T) *store.Store {
	t.Helper()
	return openStore(t, nil)
}

func mustImportFile(t *testing.T, s *store.Store, path string) store.ImportStats {
	t.Helper()
	st, err := s.ImportFile(context.Background(), path)
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return st
}

func mustImport(t *testing.T, s *store.Store, doc string) store.ImportStats {
	t.Helper()
	st, err := s.Import(context.Background(), strings.NewReader(doc))
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return st
}

func deploymentByIID(s *store.Store, projectID, iid int64) *store.Deployment {
	return must(s.DeploymentsByIID(context.Background(), []store.IIDKey{{ProjectID: projectID, IID: iid}}))[0]
}

func mergeRequestByIID(s *store.Store, projectID, iid int64) *store.MergeRequest {
	return must(s.MergeRequestsByIID(context.Background(), []store.IIDKey{{ProjectID: projectID, IID: iid}}))[0]
}

func utc(s string) time.Time {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return tm.UTC()
}

// importedState reads back, through the store's read API, everything the
// fixtures can have written, as one comparable string.
func importedState(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	ids := []int64{1, 2, 3, 7, 9, 20, 36, 37, 41, 42, 43, 44, 49, 50, 100, 134, 135, 136, 300, 657, 664, 700}
	state := map[string]any{
		"users":        must(s.Users(ctx, ids)),
		"groups":       must(s.Groups(ctx, ids)),
		"projects":     must(s.Projects(ctx, ids)),
		"environments": must(s.Environments(ctx, ids)),
		"deployments":  must(s.Deployments(ctx, ids)),
		"jobs":         must(s.Jobs(ctx, ids)),
		"pipelines":    must(s.Pipelines(ctx, ids)),
		"mrs":          must(s.MergeRequests(ctx, ids)),
		"approvals":    must(s.Approvals(ctx, ids)),
		"commits": must(s.Commits(ctx, []string{
			"99d03678b90d914dbb1b109132516d71a4a03ea8", "a91957a858320c0e17f3a0eca7cfacbff50ea29a",
		})),
		"groupIDs":  must(s.UserGroupIDs(ctx, ids)),
		"protected": must(s.ProjectProtectedEnvironments(ctx, []int64{1, 2})),
	}
	var members []store.MemberKey
	for _, p := range []int64{1, 2} {
		for _, u := range ids {
			members = append(members, store.MemberKey{ProjectID: p, UserID: u})
		}
	}
	state["members"] = must(s.MemberLevels(ctx, members))
	var queries []store.DeploymentQuery
	for _, p := range []int64{1, 2} {
		queries = append(queries, store.DeploymentQuery{ProjectID: p}, store.DeploymentQuery{ProjectID: p, OrderBy: store.OrderByFinishedAt, Desc: true})
		for _, mr := range []int64{7, 8} {
			queries = append(queries, store.DeploymentQuery{ProjectID: p, MergeRequestID: mr})
		}
	}
	pages, errs := s.ListDeployments(ctx, queries)
	mustNoErrs(t, errs)
	counts, errs := s.CountDeployments(ctx, queries)
	mustNoErrs(t, errs)
	state["deploymentPages"], state["deploymentCounts"] = pages, counts
	var mrQueries []store.MergeRequestQuery
	for _, d := range ids {
		mrQueries = append(mrQueries, store.MergeRequestQuery{DeploymentID: d})
	}
	mrPages, errs := s.ListMergeRequests(ctx, mrQueries)
	mustNoErrs(t, errs)
	state["mrPages"] = mrPages
	data, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Ensure that a document in GitLab's shapes, with forward references and a
// project id after its arrays, imports and reads back as written.
func TestImportGoodDocument(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	st := mustImportFile(t, s, goodDocument)

	want := store.ImportStats{
		Users: 5, Groups: 3, Projects: 2, Members: 4, ProtectedEnvironments: 1, Environments: 5,
		Deployments: 5, Jobs: 3, Pipelines: 2, Commits: 2, Approvals: 5, MergeRequests: 2, Links: 3,
	}
	if st != want {
		t.Errorf("stats: got %+v, want %+v", st, want)
	}
	if !strings.Contains(st.String(), "5 deployments") {
		t.Errorf("String(): got %q, want it to mention 5 deployments", st.String())
	}

	t.Run("Users", func(t *testing.T) {
		users := must(s.Users(ctx, []int64{1, 7, 300}))
		root, dev, nested := users[0], users[1], users[2]
		if root == nil || root.Username != "root" || !root.Admin || root.Name != "Administrator" {
			t.Errorf("root: got %+v, want the top-level record, admin", root)
		}
		if dev == nil || dev.State != store.UserBlocked || !dev.CreatedAt.Equal(utc("2018-01-01T08:00:00Z")) {
			t.Errorf("user 7: got %+v, want blocked, created 08:00 UTC", dev)
		}
		if nested == nil || nested.Username != "nested-only" || nested.State != store.UserActive || nested.Admin {
			t.Errorf("user 300: got %+v, want the nested copy stored", nested)
		}
		u := must(s.UserByUsername(ctx, "Nested-Only"))
		if u == nil || u.ID != 300 {
			t.Errorf("UserByUsername(Nested-Only): got %+v, want user 300", u)
		}
	})

	t.Run("GroupsAndMembers", func(t *testing.T) {
		g := must(s.GroupByPath(ctx, "Security-Group/Reviewers"))
		if g == nil || g.ID != 136 || g.ParentID != 135 || g.Path != "reviewers" {
			t.Errorf("group reviewers: got %+v, want id 136 under 135", g)
		}
		if top := must(s.GroupByPath(ctx, "qa-group")); top == nil || top.ParentID != 0 {
			t.Errorf("group qa-group: got %+v, want a top-level group", top)
		}
		groups := must(s.UserGroupIDs(ctx, []int64{49, 7}))
		if got, want := groups[0], []int64{134, 135}; !slices.Equal(got, want) {
			t.Errorf("groups of user 49: got %v, want %v", got, want)
		}
		levels := must(s.MemberLevels(ctx, []store.MemberKey{{ProjectID: 1, UserID: 100}, {ProjectID: 1, UserID: 1}, {ProjectID: 2, UserID: 100}}))
		if want := []store.AccessLevel{store.Developer, store.Owner, store.NoAccess}; !slices.Equal(levels, want) {
			t.Errorf("member levels: got %v, want %v", levels, want)
		}
	})

	t.Run("Projects", func(t *testing.T) {
		p := must(s.ProjectByPath(ctx, "ROOT/project"))
		if p == nil || p.ID != 1 || p.FullPath != "root/project" || p.Visibility != store.Private || p.Name != "project" {
			t.Errorf("root/project: got %+v, want project 1", p)
		}
		p2 := must(s.Projects(ctx, []int64{2}))[0]
		if p2 == nil || p2.Path != "website" || p2.Visibility != store.Public {
			t.Errorf("project 2: got %+v, want path website (from the full path), public", p2)
		}
		pes := must(s.ProtectedEnvironments(ctx, []store.EnvironmentKey{{ProjectID: 1, Name: "production"}}))
		if pes[0] == nil || len(pes[0].ApprovalRules) != 3 || pes[0].ApprovalRules[1].RequiredApprovals != 2 ||
			!slices.Equal(pes[0].DeployAccessLevels, []store.Rule{{AccessLevel: store.Maintainer}}) {
			t.Errorf("protected production: got %+v, want the three rules", pes[0])
		}
	})

	t.Run("Environments", func(t *testing.T) {
		envs := must(s.Environments(ctx, []int64{9, 1, 2, 3, 20}))
		want := []struct {
			slug  string
			tier  store.EnvironmentTier
			state store.EnvironmentState
		}{
			{"production", store.TierProduction, store.EnvAvailable},
			{"review-fix-foo-dfjre3", store.TierDevelopment, store.EnvAvailable},
			{store.Slugify("Staging Env"), store.TierStaging, store.EnvStopped},
			{"preprod", store.TierStaging, store.EnvStopping},
			{"production", store.TierProduction, store.EnvAvailable},
		}
		for i, e := range envs {
			if e == nil || e.Slug != want[i].slug || e.Tier != want[i].tier || e.State != want[i].state {
				t.Errorf("environment %d: got %+v, want slug %q tier %q state %q", i, e, want[i].slug, want[i].tier, want[i].state)
			}
		}
		if envs[3].ExternalURL != nil || !envs[3].UpdatedAt.Equal(envs[3].CreatedAt) {
			t.Errorf("preprod: got url %v updated %v, want no url and updatedAt = createdAt", envs[3].ExternalURL, envs[3].UpdatedAt)
		}
		if envs[1].AutoStopAt == nil || !envs[1].AutoStopAt.Equal(utc("2019-06-03T18:55:13.252Z")) {
			t.Errorf("review/fix-foo autoStopAt: got %v", envs[1].AutoStopAt)
		}
		byName := must(s.EnvironmentsByName(ctx, []store.EnvironmentKey{{ProjectID: 1, Name: "production"}, {ProjectID: 2, Name: "production"}}))
		if byName[0] == nil || byName[0].ID != 9 || byName[1] == nil || byName[1].ID != 20 {
			t.Errorf("EnvironmentsByName: got %+v, want 9 and 20", byName)
		}
	})

	t.Run("Deployments", func(t *testing.T) {
		ds := must(s.Deployments(ctx, []int64{41, 42, 43, 44, 50}))
		d41, d42, d43, d44, d50 := ds[0], ds[1], ds[2], ds[3], ds[4]
		if d41 == nil || d41.SHA != "99d03678b90d914dbb1b109132516d71a4a03ea8" || d41.DeployableID != 657 ||
			d41.UserID != 1 || d41.EnvironmentID != 9 || d41.ProjectID != 1 || d41.Status != store.StatusSuccess {
			t.Errorf("deployment 41: got %+v", d41)
		}
		if d42 == nil || !d42.CreatedAt.Equal(utc("2016-08-11T11:32:35.444Z")) || d42.CreatedAt.Location() != time.UTC ||
			!d42.UpdatedAt.Equal(d42.CreatedAt) || d42.Status != store.StatusCreated {
			t.Errorf("deployment 42: got %+v, want created 11:32:35.444 UTC, updated = created, still CREATED", d42)
		}
		if d43 == nil || d43.UserID != 300 || d43.DeployableID != 0 || d43.FinishedAt != nil || d43.EnvironmentID != 1 {
			t.Errorf("deployment 43: got %+v", d43)
		}
		if d44 == nil || d44.UserID != 0 || d44.DeployableID != 657 || !d44.Tag {
			t.Errorf("deployment 44: got %+v, want no user, job 657, a tag", d44)
		}
		if d50 == nil || d50.ProjectID != 2 || d50.IID != 1 || d50.DeployableID != 700 {
			t.Errorf("deployment 50: got %+v", d50)
		}
		if d := deploymentByIID(s, 1, 3); d == nil || d.ID != 43 {
			t.Errorf("DeploymentByIID(1, 3): got %+v, want 43", d)
		}
		if d := deploymentByIID(s, 2, 1); d == nil || d.ID != 50 {
			t.Errorf("DeploymentByIID(2, 1): got %+v, want 50", d)
		}
	})

	t.Run("DeploymentLists", func(t *testing.T) {
		prod := "production"
		success := store.StatusSuccess
		qs := []store.DeploymentQuery{
			{ProjectID: 1},
			{ProjectID: 1, EnvironmentName: &prod},
			{ProjectID: 1, Status: &success},
			{ProjectID: 2},
			{ProjectID: 1, OrderBy: store.OrderByIID, Desc: true},
		}
		counts, errs := s.CountDeployments(ctx, qs)
		mustNoErrs(t, errs)
		if want := []int{4, 2, 1, 1, 4}; !slices.Equal(counts, want) {
			t.Errorf("CountDeployments: got %v, want %v", counts, want)
		}
		pages, errs := s.ListDeployments(ctx, qs)
		mustNoErrs(t, errs)
		var got []int64
		for _, d := range pages[4].Items {
			got = append(got, d.ID)
		}
		if want := []int64{44, 43, 42, 41}; !slices.Equal(got, want) {
			t.Errorf("ListDeployments by iid desc: got %v, want %v", got, want)
		}
		last := must(s.LastDeployments(ctx, []store.LastDeploymentKey{{EnvironmentID: 9, Status: store.StatusSuccess}, {EnvironmentID: 20, Status: store.StatusSuccess}}))
		if last[0] == nil || last[0].ID != 41 || last[1] == nil || last[1].ID != 50 {
			t.Errorf("LastDeployments: got %+v, want 41 and 50", last)
		}
		// A batch's lookups share one cursor of the index: each answers as
		// it does alone, whatever came before it.
		var keys []store.LastDeploymentKey
		for _, env := range []int64{20, 9, 999, 20, 9} {
			for _, st := range []store.DeploymentStatus{store.StatusSuccess, store.StatusFailed, store.StatusRunning, store.StatusCreated} {
				keys = append(keys, store.LastDeploymentKey{EnvironmentID: env, Status: st})
			}
		}
		batch := must(s.LastDeployments(ctx, keys))
		for i, k := range keys {
			alone := must(s.LastDeployments(ctx, []store.LastDeploymentKey{k}))[0]
			if (batch[i] == nil) != (alone == nil) || batch[i] != nil && batch[i].ID != alone.ID {
				t.Errorf("LastDeployments %+v: in a batch %+v, alone %+v", k, batch[i], alone)
			}
		}
	})

	t.Run("JobsPipelinesCommits", func(t *testing.T) {
		jobs := must(s.Jobs(ctx, []int64{657, 664, 700}))
		j657, j664, j700 := jobs[0], jobs[1], jobs[2]
		if j657 == nil || j657.CommitSHA != "99d03678b90d914dbb1b109132516d71a4a03ea8" || j657.PipelineID != 36 ||
			j657.UserID != 1 || j657.ProjectID != 1 || len(j657.Artifacts) != 1 || j657.Artifacts[0].Size != 1305 {
			t.Errorf("job 657: got %+v", j657)
		}
		if j664 == nil || j664.Coverage == nil || *j664.Coverage != 87.5 || j664.PipelineID != 37 || j664.UserID != 1 {
			t.Errorf("job 664: got %+v", j664)
		}
		if j700 == nil || j700.ProjectID != 2 || j700.PipelineID != 37 || j700.CommitSHA != "a91957a858320c0e17f3a0eca7cfacbff50ea29a" {
			t.Errorf("job 700: got %+v, want references to pipeline 37 and the commit", j700)
		}
		pipes := must(s.Pipelines(ctx, []int64{36, 37}))
		if pipes[0] == nil || pipes[0].ProjectID != 1 || pipes[0].Status != "success" || pipes[1] == nil || pipes[1].ID != 37 {
			t.Errorf("pipelines: got %+v", pipes)
		}
		commits := must(s.Commits(ctx, []string{"99D03678B90D914DBB1B109132516D71A4A03EA8", "a91957a858320c0e17f3a0eca7cfacbff50ea29a"}))
		c1, c2 := commits[0], commits[1]
		if c1 == nil || c1.Title != "Merge branch 'new-title' into 'main'\r" || !slices.Equal(c1.ParentIDs, []string{"e9a4449c95c64358840902508fc827f1a2eab7df"}) ||
			c1.CreatedAt == nil || !c1.CreatedAt.Equal(utc("2016-08-11T07:36:01Z")) {
			t.Errorf("commit 99d03678: got %+v", c1)
		}
		if c2 == nil || c2.Title != "Merge branch 'rename-readme' into 'main'\r" || c2.ShortID != "a91957a8" {
			t.Errorf("commit a91957a8: got %+v, want the title from the message's first line and an 8-character short id", c2)
		}
	})

	t.Run("ApprovalsCountForTheRightRule", func(t *testing.T) {
		approvals := must(s.Approvals(ctx, []int64{41, 42}))
		got := map[int64]string{}
		for _, a := range approvals[0] {
			got[a.UserID] = a.RuleKey
		}
		want := map[int64]string{
			100: "g135", // the only rule matching a member of security-group
			49:  "g135", // matches both groups, represented as "security"
			1:   "g134", // an admin matches every rule: the first one
			7:   "a40",  // a maintainer, represented as "Maintainers"
			300: "",     // matches no rule
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rule keys: got %v, want %v", got, want)
		}
		for _, a := range approvals[0] {
			if a.UserID == 7 && (a.Status != store.Rejected || a.Comment == nil || *a.Comment != "Not yet") {
				t.Errorf("approval by 7: got %+v, want a rejection with its comment", a)
			}
		}
		if len(approvals[1]) != 0 {
			t.Errorf("approvals of 42: got %v, want none", approvals[1])
		}
	})

	t.Run("MergeRequestsAndLinks", func(t *testing.T) {
		mrs := must(s.MergeRequests(ctx, []int64{7, 8}))
		if mrs[0] == nil || mrs[0].State != store.MRMerged || mrs[0].AuthorID != 100 || mrs[0].MergeCommitSHA == nil ||
			!slices.Equal(mrs[0].Labels, []string{"docs", "backend"}) {
			t.Errorf("merge request 7: got %+v", mrs[0])
		}
		if mrs[1] == nil || !mrs[1].Draft || mrs[1].AuthorID != 1 || !mrs[1].UpdatedAt.Equal(mrs[1].CreatedAt) {
			t.Errorf("merge request 8: got %+v", mrs[1])
		}
		if mr := mergeRequestByIID(s, 1, 2); mr == nil || mr.ID != 8 {
			t.Errorf("MergeRequestByIID(1, 2): got %+v, want 8", mr)
		}
		if root := must(s.Users(ctx, []int64{1}))[0]; root.Name != "Administrator" {
			t.Errorf("root's name: got %q, want the top-level record's, not the author copy's", root.Name)
		}
		pages, errs := s.ListMergeRequests(ctx, []store.MergeRequestQuery{{DeploymentID: 41}, {DeploymentID: 42}, {DeploymentID: 43}})
		mustNoErrs(t, errs)
		if got := []int{len(pages[0].Items), len(pages[1].Items), len(pages[2].Items)}; !slices.Equal(got, []int{2, 1, 0}) {
			t.Errorf("merge requests per deployment: got %v, want [2 1 0]", got)
		}
		ds, errs := s.ListDeployments(ctx, []store.DeploymentQuery{{ProjectID: 1, MergeRequestID: 7}})
		mustNoErrs(t, errs)
		if got := len(ds[0].Items); got != 2 {
			t.Errorf("deployments of merge request 7: got %d, want 2", got)
		}
	})
}

// Ensure that importing the same document again changes nothing.
func TestImportTwiceChangesNothing(t *testing.T) {
	s := mustOpenStore(t)
	first := mustImportFile(t, s, goodDocument)
	before := importedState(t, s)
	second := mustImportFile(t, s, goodDocument)
	if after := importedState(t, s); after != before {
		t.Errorf("state after the second import differs:\ngot  %s\nwant %s", after, before)
	}
	if first != second {
		t.Errorf("stats: got %+v, want %+v", second, first)
	}
	counts, errs := s.CountDeployments(context.Background(), []store.DeploymentQuery{{ProjectID: 1}, {ProjectID: 2}, {ProjectID: 1, EnvironmentID: 9}})
	mustNoErrs(t, errs)
	if want := []int{4, 1, 2}; !slices.Equal(counts, want) {
		t.Errorf("CountDeployments: got %v, want %v", counts, want)
	}
}

// Ensure that a record whose id is already stored is replaced, indexes
// included.
func TestImportUpsertsByID(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustImportFile(t, s, goodDocument)
	mustImport(t, s, `{
	  "users": [{"id": 7, "username": "dev-renamed", "name": "Dev User"}],
	  "projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
	    "environments": [
	      {"id": 1, "name": "review/fix-bar", "state": "stopped", "created_at": "2019-05-25T18:55:13.252Z"},
	      {"id": 2, "name": "preprod", "state": "available", "created_at": "2019-05-25T18:55:13.252Z"},
	      {"id": 3, "name": "Staging Env", "state": "available", "created_at": "2019-05-25T18:55:13.252Z"}
	    ],
	    "deployments": [
	      {"id": 43, "iid": 30, "ref": "fix-bar", "sha": "416d8ea11849050d3d1f5104cf8cf51053e790ab", "status": "success",
	       "created_at": "2019-03-25T18:55:13.252Z", "finished_at": "2019-03-25T19:00:00Z",
	       "user": {"id": 1, "username": "root", "name": "Administrator"}, "environment": {"id": 1, "name": "review/fix-bar"}}
	    ]}]
	}`)

	t.Run("RenamedEnvironmentIsFoundByItsNewNameOnly", func(t *testing.T) {
		envs := must(s.EnvironmentsByName(ctx, []store.EnvironmentKey{{ProjectID: 1, Name: "review/fix-bar"}, {ProjectID: 1, Name: "review/fix-foo"}}))
		if envs[0] == nil || envs[0].ID != 1 || envs[0].Slug != store.Slugify("review/fix-bar") || envs[0].State != store.EnvStopped {
			t.Errorf("review/fix-bar: got %+v, want environment 1 with a generated slug", envs[0])
		}
		if envs[1] != nil {
			t.Errorf("review/fix-foo: got %+v, want nothing", envs[1])
		}
	})
	t.Run("SwappedNamesKeepBothIndexEntries", func(t *testing.T) {
		envs := must(s.EnvironmentsByName(ctx, []store.EnvironmentKey{{ProjectID: 1, Name: "preprod"}, {ProjectID: 1, Name: "Staging Env"}}))
		if envs[0] == nil || envs[0].ID != 2 || envs[1] == nil || envs[1].ID != 3 {
			t.Errorf("swapped names: got %+v, want environments 2 and 3", envs)
		}
	})
	t.Run("ChangedIIDMovesTheIIDIndex", func(t *testing.T) {
		if d := deploymentByIID(s, 1, 3); d != nil {
			t.Errorf("DeploymentByIID(1, 3): got %+v, want nothing", d)
		}
		d := deploymentByIID(s, 1, 30)
		if d == nil || d.ID != 43 || d.Status != store.StatusSuccess || d.UserID != 1 {
			t.Errorf("DeploymentByIID(1, 30): got %+v, want deployment 43, now a success by root", d)
		}
		success := store.StatusSuccess
		counts, errs := s.CountDeployments(ctx, []store.DeploymentQuery{{ProjectID: 1}, {ProjectID: 1, Status: &success}, {ProjectID: 1, EnvironmentID: 1}})
		mustNoErrs(t, errs)
		if want := []int{4, 2, 1}; !slices.Equal(counts, want) {
			t.Errorf("CountDeployments: got %v, want %v", counts, want)
		}
	})
	t.Run("RenamedUserIsFoundByItsNewUsernameOnly", func(t *testing.T) {
		if u := must(s.UserByUsername(ctx, "dev-user")); u != nil {
			t.Errorf("dev-user: got %+v, want nothing", u)
		}
		if u := must(s.UserByUsername(ctx, "dev-renamed")); u == nil || u.ID != 7 || u.State != store.UserActive {
			t.Errorf("dev-renamed: got %+v, want user 7, active by default", u)
		}
	})
	t.Run("NestedCopyKeepsTheAdminFlag", func(t *testing.T) {
		if root := must(s.Users(ctx, []int64{1}))[0]; root == nil || !root.Admin {
			t.Errorf("root: got %+v, want still an admin", root)
		}
	})
	t.Run("MissingCreatedAtKeepsTheStoredOne", func(t *testing.T) {
		p := must(s.Projects(ctx, []int64{1}))[0]
		if want := utc("2015-12-21T13:20:00Z"); p == nil || !p.CreatedAt.Equal(want) {
			t.Errorf("project 1 createdAt: got %v, want %v", p.CreatedAt, want)
		}
	})
}

// Ensure that slugs are kept when well-formed and unique, generated when
// missing and refused otherwise, and that missing tiers are guessed.
func TestImportSlugsAndTiers(t *testing.T) {
	env := func(id int, name, extra string) string {
		return fmt.Sprintf(`{"id": %d, "name": %q, "state": "available"%s}`, id, name, extra)
	}
	doc := func(envs ...string) string {
		return `{"projects": [{"id": 1, "name": "p", "path_with_namespace": "a/p", "environments": [` + strings.Join(envs, ",") + `]}]}`
	}
	tests := []struct {
		name     string
		doc      string
		wantSlug string
		wantTier store.EnvironmentTier
		wantErr  string
	}{
		{"SlugKept", doc(env(1, "Review App", `, "slug": "my-review"`)), "my-review", store.TierDevelopment, ""},
		{"SlugGenerated", doc(env(1, "Review App", "")), "review-app-jgo9ec", store.TierDevelopment, ""},
		{"TierGivenWins", doc(env(1, "review", `, "tier": "other"`)), "review", store.TierOther, ""},
		{"TierGuessedPreprod", doc(env(1, "preprod", "")), "preprod", store.TierStaging, ""},
		{"TierGuessedInternal", doc(env(1, "internal", "")), "internal", store.TierTesting, ""},
		{"SlugMalformedRefused", doc(env(1, "review", `, "slug": "Review_App"`)), "", "", "projects[0].environments[0].slug: "},
		{"SlugTooLongRefused", doc(env(1, "review", `, "slug": "abcdefghijklmnopqrstuvwxyz"`)), "", "", "projects[0].environments[0].slug: "},
		{"SlugTakenRefused", doc(env(1, "one", `, "slug": "same"`), env(2, "two", `, "slug": "same"`)), "", "", "projects[0].environments[1].slug: "},
		{"SlugTakenByGeneratedRefused", doc(env(1, "production", ""), env(2, "prod", `, "slug": "production"`)), "", "", "projects[0].environments[1].slug: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			_, err := s.Import(context.Background(), strings.NewReader(tt.doc))
			if tt.wantErr != "" {
				checkImportError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			e := must(s.Environments(context.Background(), []int64{1}))[0]
			if e == nil || e.Slug != tt.wantSlug || e.Tier != tt.wantTier {
				t.Errorf("environment: got %+v, want slug %q tier %q", e, tt.wantSlug, tt.wantTier)
			}
		})
	}
}

func checkImportError(t *testing.T, err error, wantPrefix string) {
	t.Helper()
	var e *store.Error
	if !errors.As(err, &e) {
		t.Fatalf("error: got %v, want a *store.Error starting with %q", err, wantPrefix)
	}
	if e.Code != store.EInvalid {
		t.Errorf("code: got %q, want %q (%s)", e.Code, store.EInvalid, e.Message)
	}
	if !strings.HasPrefix(e.Message, wantPrefix) {
		t.Errorf("message: got %q, want it to start with %q", e.Message, wantPrefix)
	}
}

// validationBase is a valid document the validation cases break one rule
// of at a time.
const validationBase = `{
 "users": [{"id": 1, "username": "root", "name": "Administrator"}, {"id": 2, "username": "dev", "name": "Dev"}],
 "groups": [{"id": 1, "name": "qa", "path": "qa", "full_path": "qa", "members": [{"user_id": 2}]}],
 "projects": [{"id": 1, "name": "p", "path": "p", "path_with_namespace": "root/p",
   "members": [{"user_id": 2, "access_level": 30}],
   "protected_environments": [{"name": "production", "deploy_access_levels": [{"access_level": 40}],
     "approval_rules": [{"group_id": 1, "required_approvals": 1}]}],
   "environments": [{"id": 1, "name": "production", "state": "available", "created_at": "2020-01-01T00:00:00Z"}],
   "deployments": [{"id": 1, "iid": 1, "ref": "main", "sha": "99d03678b90d914dbb1b109132516d71a4a03ea8", "status": "success",
     "created_at": "2020-01-01T00:00:00Z", "user": {"id": 1}, "environment": {"id": 1, "name": "production"},
     "approvals": [{"user": {"id": 2}, "status": "approved"}]}],
   "merge_requests": [{"id": 1, "iid": 1, "title": "t", "state": "merged", "source_branch": "a", "target_branch": "main"}],
   "deployment_merge_requests": [{"deployment_id": 1, "merge_request_id": 1}]},
  {"id": 2, "name": "q", "path_with_namespace": "root/q",
   "environments": [{"id": 2, "name": "production", "state": "available"}],
   "merge_requests": [{"id": 2, "iid": 1, "title": "t", "state": "opened", "source_branch": "b", "target_branch": "main"}]}]
}`

// Ensure that the base document of the validation cases is itself valid.
func TestImportValidationBaseIsValid(t *testing.T) {
	s := mustOpenStore(t)
	st := mustImport(t, s, validationBase)
	if st.Deployments != 1 || st.Approvals != 1 || st.Links != 1 {
		t.Errorf("stats: got %+v", st)
	}
	a := must(s.Approvals(context.Background(), []int64{1}))[0]
	if len(a) != 1 || a[0].RuleKey != "g1" {
		t.Errorf("approvals: got %+v, want one under rule g1", a)
	}
}

// replaceOnce edits the validation base, replacing each old text with the
// new one after it, and fails loudly when an old text is not there.
func replaceOnce(oldNew ...string) string {
	doc := validationBase
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(doc, oldNew[i]) {
			panic("validation base has no " + oldNew[i])
		}
		doc = strings.Replace(doc, oldNew[i], oldNew[i+1], 1)
	}
	return doc
}

// Ensure that every validation rule refuses the whole document with the
// JSON path of the problem, and that nothing of it is stored.
func TestImportValidation(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		// JSON shape
		{"ErrSyntax", `{"users": [{"id": 1, "username": "root",}]}`, "users[0]: invalid JSON"},
		{"ErrTruncated", `{"users": [{"id": 1, "username": "root", "name": "R"}, {"id"`, "users[1]: unexpected end"},
		{"ErrNotAnObject", `[]`, "$: expected a JSON object"},
		{"ErrTrailingData", validationBase + `{}`, "$: unexpected data after the document"},
		{"ErrUsersNotAnArray", `{"users": {}}`, "users: expected an array"},
		{"ErrProjectNotAnObject", `{"projects": [1]}`, "projects[0]: expected an object"},
		{"ErrWrongType", replaceOnce(`"iid": 1, "ref"`, `"iid": "one", "ref"`), "projects[0].deployments[0].iid: expected an integer"},
		{"ErrWrongTypeInList", replaceOnce(`"approvals": [{"user": {"id": 2}`, `"approvals": [{"user": {"id": "2"}`), "projects[0].deployments[0].approvals[0].user.id: expected an integer"},
		// required fields
		{"ErrUserIDMissing", replaceOnce(`{"id": 2, "username": "dev"`, `{"username": "dev"`), "users[1].id: must be a positive integer"},
		{"ErrUsernameBlank", replaceOnce(`"username": "dev"`, `"username": " "`), "users[1].username: is required"},
		{"ErrUserNameMissing", replaceOnce(`, "name": "Dev"`, ``), "users[1].name: is required"},
		{"ErrGroupNameMissing", replaceOnce(`"name": "qa", `, ``), "groups[0].name: is required"},
		{"ErrGroupPathMissing", replaceOnce(`"path": "qa", "full_path": "qa", `, ``), "groups[0].full_path: is required"},
		{"ErrProjectIDMissing", replaceOnce(`{"id": 2, "name": "q"`, `{"name": "q"`), "projects[1].id: must be a positive integer"},
		{"ErrProjectNameMissing", replaceOnce(`"name": "q", `, ``), "projects[1].name: is required"},
		{"ErrProjectPathMissing", replaceOnce(`, "path_with_namespace": "root/q"`, ``), "projects[1].path_with_namespace: is required"},
		{"ErrProjectPathOneSegment", replaceOnce(`"root/q"`, `"q"`), "projects[1].path_with_namespace: "},
		{"ErrProjectPathEmptySegment", replaceOnce(`"root/q"`, `"root//q"`), "projects[1].path_with_namespace: "},
		{"ErrEnvironmentNameMissing", replaceOnce(`{"id": 2, "name": "production", `, `{"id": 2, `), "projects[1].environments[0].name: Name can't be blank"},
		{"ErrEnvironmentStateMissing", replaceOnce(`{"id": 2, "name": "production", "state": "available"}`, `{"id": 2, "name": "production"}`), "projects[1].environments[0].state: is required"},
		{"ErrDeploymentIIDMissing", replaceOnce(`"iid": 1, "ref"`, `"ref"`), "projects[0].deployments[0].iid: must be a positive integer"},
		{"ErrDeploymentRefMissing", replaceOnce(`"ref": "main", `, ``), "projects[0].deployments[0].ref: Ref can't be blank"},
		{"ErrDeploymentStatusMissing", replaceOnce(`"status": "success",`, ``), "projects[0].deployments[0].status: is required"},
		{"ErrDeploymentEnvironmentMissing", replaceOnce(`, "environment": {"id": 1, "name": "production"}`, ``), "projects[0].deployments[0].environment: is required"},
		{"ErrMergeRequestTitleMissing", replaceOnce(`"title": "t", "state": "merged"`, `"state": "merged"`), "projects[0].merge_requests[0].title: is required"},
		{"ErrMergeRequestStateMissing", replaceOnce(`"state": "merged", `, ``), "projects[0].merge_requests[0].state: is required"},
		{"ErrMergeRequestBranchMissing", replaceOnce(`"source_branch": "a", `, ``), "projects[0].merge_requests[0].source_branch: Ref can't be blank"},
		{"ErrMergeRequestIIDMissing", replaceOnce(`{"id": 2, "iid": 1,`, `{"id": 2,`), "projects[1].merge_requests[0].iid: must be a positive integer"},
		{"ErrApprovalUserMissing", replaceOnce(`{"user": {"id": 2}, "status": "approved"}`, `{"status": "approved"}`), "projects[0].deployments[0].approvals[0].user: is required"},
		// enum values
		{"ErrUserState", replaceOnce(`"name": "Dev"`, `"name": "Dev", "state": "gone"`), `users[1].state: unknown user state "gone"`},
		{"ErrVisibility", replaceOnce(`"name": "q",`, `"name": "q", "visibility": "secret",`), `projects[1].visibility: unknown visibility "secret"`},
		{"ErrEnvironmentState", replaceOnce(`"state": "available", "created_at"`, `"state": "up", "created_at"`), `projects[0].environments[0].state: unknown environment state "up"`},
		{"ErrEnvironmentTier", replaceOnce(`"state": "available", "created_at"`, `"state": "available", "tier": "prod", "created_at"`), `projects[0].environments[0].tier: unknown environment tier "prod"`},
		{"ErrDeploymentStatus", replaceOnce(`"status": "success"`, `"status": "done"`), `projects[0].deployments[0].status: unknown deployment status "done"`},
		{"ErrApprovalStatus", replaceOnce(`"status": "approved"`, `"status": "ok"`), `projects[0].deployments[0].approvals[0].status: unknown approval status "ok"`},
		{"ErrMergeRequestState", replaceOnce(`"state": "merged"`, `"state": "done"`), `projects[0].merge_requests[0].state: unknown merge request state "done"`},
		{"ErrMemberAccessLevel", replaceOnce(`"access_level": 30`, `"access_level": 35`), "projects[0].members[0].access_level: unknown access level 35"},
		{"ErrRuleAccessLevel", replaceOnce(`[{"access_level": 40}]`, `[{"access_level": 45}]`), "projects[0].protected_environments[0].deploy_access_levels[0].access_level: unknown access level 45"},
		{"ErrJobStatus", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 1}, "deployable": {"id": 5, "name": "deploy", "status": "bogus"}, "environment"`), `projects[0].deployments[0].deployable.status: unknown job status "bogus"`},
		// name formats
		{"ErrEnvironmentName", replaceOnce(`{"id": 2, "name": "production"`, `{"id": 2, "name": "/production"`), "projects[1].environments[0].name: Name can contain only"},
		{"ErrExternalURL", replaceOnce(`"state": "available", "created_at"`, `"state": "available", "external_url": "javascript:alert(1)", "created_at"`), "projects[0].environments[0].external_url: "},
		{"ErrRef", replaceOnce(`"ref": "main"`, `"ref": "ma in"`), "projects[0].deployments[0].ref: Ref can't contain whitespace"},
		{"ErrSHA", replaceOnce(`"sha": "99d03678b90d914dbb1b109132516d71a4a03ea8"`, `"sha": "99d03678"`), "projects[0].deployments[0].sha: Sha must be a full commit SHA"},
		{"ErrMergeCommitSHA", replaceOnce(`"source_branch": "a",`, `"source_branch": "a", "merge_commit_sha": "xyz",`), "projects[0].merge_requests[0].merge_commit_sha: Sha must be"},
		{"ErrCommitID", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 1}, "deployable": {"id": 5, "name": "deploy", "commit": {"id": "nope", "message": "m"}}, "environment"`), "projects[0].deployments[0].deployable.commit.id: Sha must be"},
		{"ErrProtectedEnvironmentName", replaceOnce(`{"name": "production", "deploy`, `{"name": "prod/", "deploy`), "projects[0].protected_environments[0].name: Name can contain only"},
		// rules
		{"ErrRequiredApprovalsTooMany", replaceOnce(`"required_approvals": 1`, `"required_approvals": 6`), "projects[0].protected_environments[0].approval_rules[0].required_approvals: must be between 1 and 5"},
		{"ErrRequiredApprovalsMissing", replaceOnce(`, "required_approvals": 1`, ``), "projects[0].protected_environments[0].approval_rules[0].required_approvals: must be between 1 and 5"},
		{"ErrRuleNamesTwo", replaceOnce(`{"group_id": 1, "required_approvals": 1}`, `{"group_id": 1, "user_id": 1, "required_approvals": 1}`), "projects[0].protected_environments[0].approval_rules[0]: must have exactly one of"},
		{"ErrRuleNamesNone", replaceOnce(`[{"access_level": 40}]`, `[{}]`), "projects[0].protected_environments[0].deploy_access_levels[0]: must have exactly one of"},
		{"ErrProtectedTwice", replaceOnce(`"protected_environments": [`, `"protected_environments": [{"name": "production"}, `), "projects[0].protected_environments[1].name: "},
		// times
		{"ErrTime", replaceOnce(`"created_at": "2020-01-01T00:00:00Z", "user"`, `"created_at": "yesterday", "user"`), `projects[0].deployments[0].created_at: unparseable time "yesterday"`},
		{"ErrUserTime", replaceOnce(`"name": "Dev"`, `"name": "Dev", "created_at": "2020-13-01T00:00:00Z"`), "users[1].created_at: unparseable time"},
		// uniqueness in the document
		{"ErrDuplicateUserID", replaceOnce(`{"id": 2, "username": "dev"`, `{"id": 1, "username": "dev"`), "users[1].id: duplicate user id 1"},
		{"ErrDuplicateUsername", replaceOnce(`"username": "dev"`, `"username": "ROOT"`), `users[1].username: username "ROOT" is already taken`},
		{"ErrDuplicateGroupPath", replaceOnce(`"members": [{"user_id": 2}]}]`, `"members": [{"user_id": 2}]}, {"id": 2, "name": "qa2", "full_path": "QA"}]`), "groups[1].full_path: "},
		{"ErrDuplicateProjectID", replaceOnce(`{"id": 2, "name": "q"`, `{"id": 1, "name": "q"`), "projects[1].id: duplicate project id 1"},
		{"ErrDuplicateProjectPath", replaceOnce(`"root/q"`, `"Root/P"`), "projects[1].path_with_namespace: "},
		{"ErrDuplicateEnvironmentID", replaceOnce(`{"id": 2, "name": "production"`, `{"id": 1, "name": "production"`), "projects[1].environments[0].id: duplicate environment id 1"},
		{"ErrDuplicateEnvironmentName", replaceOnce(`"environments": [{"id": 2, "name": "production", "state": "available"}]`, `"environments": [{"id": 2, "name": "production", "state": "available"}, {"id": 3, "name": "production", "state": "available"}]`), "projects[1].environments[1].name: "},
		{"ErrDuplicateDeploymentIID", replaceOnce(`"deployments": [{"id": 1, "iid": 1,`, `"deployments": [{"id": 5, "iid": 1, "ref": "x", "sha": "99d03678b90d914dbb1b109132516d71a4a03ea8", "status": "failed", "environment": {"id": 1}}, {"id": 1, "iid": 1,`), "projects[0].deployments[1].iid: iid 1 is already taken"},
		{"ErrDuplicateMergeRequestID", replaceOnce(`{"id": 2, "iid": 1, "title"`, `{"id": 1, "iid": 1, "title"`), "projects[1].merge_requests[0].id: duplicate merge request id 1"},
		{"ErrDuplicateMergeRequestIID", replaceOnce(`"merge_requests": [{"id": 2, "iid": 1, "title": "t", "state": "opened", "source_branch": "b", "target_branch": "main"}]`, `"merge_requests": [{"id": 2, "iid": 1, "title": "t", "state": "opened", "source_branch": "b", "target_branch": "main"}, {"id": 3, "iid": 1, "title": "u", "state": "opened", "source_branch": "c", "target_branch": "main"}]`), "projects[1].merge_requests[1].iid: iid 1 is already taken"},
		// references
		{"ErrGroupMemberUnknown", replaceOnce(`"members": [{"user_id": 2}]`, `"members": [{"user_id": 99}]`), "groups[0].members[0].user_id: user 99 not found"},
		{"ErrProjectMemberUnknown", replaceOnce(`{"user_id": 2, "access_level": 30}`, `{"user_id": 99, "access_level": 30}`), "projects[0].members[0].user_id: user 99 not found"},
		{"ErrRuleGroupUnknown", replaceOnce(`{"group_id": 1, "required_approvals": 1}`, `{"group_id": 9, "required_approvals": 1}`), "projects[0].protected_environments[0].approval_rules[0].group_id: group 9 not found"},
		{"ErrRuleUserUnknown", replaceOnce(`[{"access_level": 40}]`, `[{"user_id": 9}]`), "projects[0].protected_environments[0].deploy_access_levels[0].user_id: user 9 not found"},
		{"ErrDeploymentUserUnknown", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 99}, "environment"`), "projects[0].deployments[0].user.id: user 99 not found"},
		{"ErrApprovalUserUnknown", replaceOnce(`"approvals": [{"user": {"id": 2}`, `"approvals": [{"user": {"id": 98}`), "projects[0].deployments[0].approvals[0].user.id: user 98 not found"},
		{"ErrEnvironmentUnknown", replaceOnce(`"environment": {"id": 1, "name": "production"}`, `"environment": {"id": 7}`), "projects[0].deployments[0].environment.id: environment 7 not found"},
		{"ErrEnvironmentOfAnotherProject", replaceOnce(`"environment": {"id": 1, "name": "production"}`, `"environment": {"id": 2}`), "projects[0].deployments[0].environment.id: environment 2 belongs to another project"},
		{"ErrEnvironmentNameMismatch", replaceOnce(`"environment": {"id": 1, "name": "production"}`, `"environment": {"id": 1, "name": "staging"}`), `projects[0].deployments[0].environment.id: environment 1 is named "production", not "staging"`},
		{"ErrJobUnknown", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 1}, "deployable": {"id": 5}, "environment"`), "projects[0].deployments[0].deployable.id: job 5 not found"},
		{"ErrCommitUnknown", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 1}, "deployable": {"id": 5, "name": "d", "commit": {"id": "a91957a858320c0e17f3a0eca7cfacbff50ea29a"}}, "environment"`), "projects[0].deployments[0].deployable.commit.id: commit a91957a858320c0e17f3a0eca7cfacbff50ea29a not found"},
		{"ErrPipelineUnknown", replaceOnce(`"user": {"id": 1}, "environment"`, `"user": {"id": 1}, "deployable": {"id": 5, "name": "d", "pipeline": {"id": 8}}, "environment"`), "projects[0].deployments[0].deployable.pipeline.id: pipeline 8 not found"},
		{"ErrMergeRequestAuthorUnknown", replaceOnce(`"title": "t", "state": "opened"`, `"title": "t", "author": {"id": 77}, "state": "opened"`), "projects[1].merge_requests[0].author.id: user 77 not found"},
		{"ErrLinkDeploymentUnknown", replaceOnce(`{"deployment_id": 1, `, `{"deployment_id": 5, `), "projects[0].deployment_merge_requests[0].deployment_id: deployment 5 not found"},
		{"ErrLinkMergeRequestOfAnotherProject", replaceOnce(`"merge_request_id": 1}`, `"merge_request_id": 2}`), "projects[0].deployment_merge_requests[0].merge_request_id: merge request 2 belongs to another project"},
		{"ErrLinkMissingID", replaceOnce(`{"deployment_id": 1, `, `{`), "projects[0].deployment_merge_requests[0].deployment_id: must be a positive integer"},
		// order
		{"ErrFirstProblemInDocumentOrderWins", replaceOnce(
			`"user": {"id": 1}, "environment"`, `"user": {"id": 99}, "environment"`,
			`{"user_id": 2, "access_level": 30}`, `{"user_id": 98, "access_level": 30}`),
			"projects[0].members[0].user_id: user 98 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			ctx := context.Background()
			st, err := s.Import(ctx, strings.NewReader(tt.doc))
			checkImportError(t, err, tt.want)
			if st != (store.ImportStats{}) {
				t.Errorf("stats: got %+v, want none", st)
			}
			if users := must(s.Users(ctx, []int64{1, 2})); users[0] != nil || users[1] != nil {
				t.Errorf("users: got %+v, want none stored", users)
			}
			if groups := must(s.Groups(ctx, []int64{1})); groups[0] != nil {
				t.Errorf("groups: got %+v, want none stored", groups)
			}
			if projects := must(s.Projects(ctx, []int64{1, 2})); projects[0] != nil || projects[1] != nil {
				t.Errorf("projects: got %+v, want none stored", projects)
			}
			if envs := must(s.Environments(ctx, []int64{1, 2})); envs[0] != nil || envs[1] != nil {
				t.Errorf("environments: got %+v, want none stored", envs)
			}
			if ds := must(s.Deployments(ctx, []int64{1})); ds[0] != nil {
				t.Errorf("deployments: got %+v, want none stored", ds)
			}
		})
	}
}

// Ensure that uniqueness and references are also checked against the
// store, and that a refused document leaves the store as it was.
func TestImportValidationAgainstTheStore(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"ErrUsernameTakenInStore", `{"users": [{"id": 500, "username": "Root", "name": "R"}]}`, `users[0].username: username "root" is already taken`},
		{"ErrNestedUsernameTakenInStore", `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
		  "merge_requests": [{"id": 90, "iid": 90, "title": "t", "state": "opened", "source_branch": "a", "target_branch": "main",
		    "author": {"id": 501, "username": "dev-user"}}]}]}`, "projects[0].merge_requests[0].author.username: "},
		{"ErrGroupPathTakenInStore", `{"groups": [{"id": 500, "name": "x", "full_path": "qa-group"}]}`, "groups[0].full_path: "},
		{"ErrProjectPathTakenInStore", `{"projects": [{"id": 500, "name": "x", "path_with_namespace": "qa-group/website"}]}`, "projects[0].path_with_namespace: "},
		{"ErrEnvironmentNameTakenInStore", `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
		  "environments": [{"id": 500, "name": "production", "state": "available"}]}]}`, `projects[0].environments[0].name: name "production" is already taken`},
		{"ErrEnvironmentSlugTakenInStore", `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
		  "environments": [{"id": 500, "name": "other", "slug": "review-fix-foo-dfjre3", "state": "available"}]}]}`, "projects[0].environments[0].slug: "},
		{"ErrDeploymentIIDTakenInStore", `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
		  "deployments": [{"id": 500, "iid": 2, "ref": "main", "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a", "status": "success", "environment": {"id": 9}}]}]}`,
			"projects[0].deployments[0].iid: iid 2 is already taken"},
		{"ErrMergeRequestIIDTakenInStore", `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
		  "merge_requests": [{"id": 500, "iid": 1, "title": "t", "state": "opened", "source_branch": "a", "target_branch": "main"}]}]}`,
			"projects[0].merge_requests[0].iid: iid 1 is already taken"},
		{"ErrEnvironmentMovesProject", `{"projects": [{"id": 2, "name": "website", "path_with_namespace": "qa-group/website",
		  "environments": [{"id": 9, "name": "production-2", "state": "available"}]}]}`, "projects[0].environments[0].id: environment 9 belongs to another project"},
		{"ErrStoredEnvironmentOfAnotherProject", `{"projects": [{"id": 2, "name": "website", "path_with_namespace": "qa-group/website",
		  "deployments": [{"id": 500, "iid": 9, "ref": "main", "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a", "status": "success", "environment": {"id": 9}}]}]}`,
			"projects[0].deployments[0].environment.id: environment 9 belongs to another project"},
		{"ErrLinkToStoredDeploymentOfAnotherProject", `{"projects": [{"id": 2, "name": "website", "path_with_namespace": "qa-group/website",
		  "deployment_merge_requests": [{"deployment_id": 41, "merge_request_id": 7}]}]}`,
			"projects[0].deployment_merge_requests[0].deployment_id: deployment 41 belongs to another project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			mustImportFile(t, s, goodDocument)
			before := importedState(t, s)
			_, err := s.Import(context.Background(), strings.NewReader(tt.doc))
			checkImportError(t, err, tt.want)
			if after := importedState(t, s); after != before {
				t.Errorf("state changed by a refused import:\ngot  %s\nwant %s", after, before)
			}
			if u := must(s.Users(context.Background(), []int64{500, 501})); u[0] != nil || u[1] != nil {
				t.Errorf("users 500, 501: got %+v, want none", u)
			}
		})
	}
}

// Ensure that references resolve in the store: a document may add to
// records imported earlier.
func TestImportReferencesStoredRecords(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustImportFile(t, s, goodDocument)
	mustImport(t, s, `{"projects": [{"id": 1, "name": "project", "path_with_namespace": "root/project",
	  "deployments": [{"id": 45, "iid": 5, "ref": "main", "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a", "status": "blocked",
	    "user": {"id": 7}, "environment": {"id": 9}, "deployable": {"id": 664},
	    "approvals": [{"user": {"id": 100}, "status": "approved", "created_at": "2022-01-01T00:00:00Z"}]}],
	  "deployment_merge_requests": [{"deployment_id": 45, "merge_request_id": 8}]}]}`)
	d := deploymentByIID(s, 1, 5)
	if d == nil || d.ID != 45 || d.Status != store.StatusBlocked || d.DeployableID != 664 || d.UserID != 7 {
		t.Errorf("deployment 45: got %+v", d)
	}
	a := must(s.Approvals(ctx, []int64{45}))[0]
	if len(a) != 1 || a[0].RuleKey != "g135" {
		t.Errorf("approvals of 45: got %+v, want one under g135 (the stored protection and membership)", a)
	}
}

// Ensure that the demo document imports, and only into a store without
// projects.
func TestImportDemo(t *testing.T) {
	ctx := context.Background()
	t.Run("ImportsIntoAnEmptyStore", func(t *testing.T) {
		s := mustOpenStore(t)
		st, imported, err := s.ImportDemo(ctx)
		if err != nil || !imported {
			t.Fatalf("ImportDemo: got %v, %v, want imported", imported, err)
		}
		if st.Projects == 0 || st.Deployments < 24 {
			t.Errorf("stats: got %+v, want projects and dozens of deployments", st)
		}
		p := must(s.ProjectByPath(ctx, "root/project"))
		if p == nil {
			t.Fatal("root/project: got nothing")
		}
		envs := must(s.Environments(ctx, []int64{9, 1}))
		if envs[0] == nil || envs[0].Name != "production" || envs[1] == nil || envs[1].Name != "review/fix-foo" {
			t.Errorf("environments 9 and 1: got %+v", envs)
		}
		ds := must(s.Deployments(ctx, []int64{41, 42}))
		if ds[0] == nil || ds[0].DeployableID != 657 || ds[1] == nil || ds[1].DeployableID != 664 {
			t.Errorf("deployments 41 and 42: got %+v", ds)
		}
		for _, username := range []string{"root", "security-user-1", "project_6_bot"} {
			if u := must(s.UserByUsername(ctx, username)); u == nil {
				t.Errorf("user %s: got nothing", username)
			}
		}
		for _, path := range []string{"qa-group", "security-group"} {
			if g := must(s.GroupByPath(ctx, path)); g == nil {
				t.Errorf("group %s: got nothing", path)
			}
		}
	})
	t.Run("SkipsAStoreWithProjects", func(t *testing.T) {
		s := mustOpenStore(t)
		mustImport(t, s, `{"projects": [{"id": 77, "name": "mine", "path_with_namespace": "me/mine"}]}`)
		st, imported, err := s.ImportDemo(ctx)
		if err != nil || imported || st != (store.ImportStats{}) {
			t.Fatalf("ImportDemo: got %+v, %v, %v, want skipped", st, imported, err)
		}
		if p := must(s.ProjectByPath(ctx, "root/project")); p != nil {
			t.Errorf("root/project: got %+v, want nothing", p)
		}
	})
	t.Run("ImportsAgainUnchanged", func(t *testing.T) {
		s := mustOpenStore(t)
		first, err := s.Import(ctx, strings.NewReader(string(store.DemoData)))
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.Import(ctx, strings.NewReader(string(store.DemoData)))
		if err != nil || second != first {
			t.Errorf("second import: got %+v, %v, want %+v", second, err, first)
		}
	})
}

// writeLargeDocument streams a document of n deployments spread over a few
// environments, each with its own job, pipeline and commit.
func writeLargeDocument(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprint(w, `{"users": [{"id": 1, "username": "root", "name": "Administrator", "admin": true}],`)
	fmt.Fprint(w, `"projects": [{"environments": [`)
	for e := 1; e <= 5; e++ {
		if e > 1 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"id": %d, "name": "env-%d", "state": "available", "created_at": "2020-01-01T00:00:00Z"}`, e, e)
	}
	fmt.Fprint(w, `], "deployments": [`)
	statuses := []string{"success", "failed", "running", "canceled"}
	for i := 1; i <= n; i++ {
		if i > 1 {
			fmt.Fprint(w, ",\n")
		}
		sha := fmt.Sprintf("%040x", i)
		created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		fmt.Fprintf(w, `{"id": %d, "iid": %d, "ref": "main", "sha": %q, "tag": false, "status": %q, "created_at": %q,`+
			` "user": {"id": 1}, "environment": {"id": %d},`+
			` "deployable": {"id": %d, "name": "deploy", "stage": "deploy", "status": "success", "created_at": %q,`+
			` "commit": {"id": %q, "message": "commit %d\nbody"}, "pipeline": {"id": %d, "sha": %q, "status": "success"}}}`,
			i, i, sha, statuses[i%len(statuses)], created, i%5+1, i, created, sha, i, i, sha)
	}
	fmt.Fprint(w, `], "name": "big", "path_with_namespace": "root/big", "id": 1}]}`)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Ensure that a large document imports through several transactions with
// its counts right.
func TestImportLargeDocument(t *testing.T) {
	const n = 20000
	path := filepath.Join(t.TempDir(), "large.json")
	writeLargeDocument(t, path, n)
	s := mustOpenStore(t)
	ctx := context.Background()
	st := mustImportFile(t, s, path)
	if st.Deployments != n || st.Jobs != n || st.Pipelines != n || st.Commits != n || st.Environments != 5 {
		t.Errorf("stats: got %+v, want %d deployments, jobs, pipelines and commits", st, n)
	}
	success := store.StatusSuccess
	counts, errs := s.CountDeployments(ctx, []store.DeploymentQuery{{ProjectID: 1}, {ProjectID: 1, Status: &success}, {ProjectID: 1, EnvironmentID: 1}})
	mustNoErrs(t, errs)
	if want := []int{n, n / 4, n / 5}; !slices.Equal(counts, want) {
		t.Errorf("CountDeployments: got %v, want %v", counts, want)
	}
	if d := deploymentByIID(s, 1, n); d == nil || d.ID != n {
		t.Errorf("DeploymentByIID(1, %d): got %+v", n, d)
	}
	c := must(s.Commits(ctx, []string{fmt.Sprintf("%040x", n)}))[0]
	if c == nil || c.Title != fmt.Sprintf("commit %d", n) {
		t.Errorf("commit of the last deployment: got %+v", c)
	}
}

// Ensure that a successful deployment without a finish time is never its
// environment's last successful one, however new.
func TestLastSuccessNeedsAFinishTime(t *testing.T) {
	ctx := context.Background()
	s, _ := openWritesStore(t)
	doc := `{"projects": [{"id": 1, "name": "App", "path": "app", "path_with_namespace": "platform/app", "visibility": "private",
  "created_at": "2024-01-01T00:00:00Z",
  "environments": [{"id": 9, "name": "production", "state": "available", "created_at": "2024-01-01T00:00:00Z"}],
  "deployments": [{"id": 43, "iid": 3, "ref": "main", "sha": "99d03678b90d914dbb1b109132516d71a4a03ea8", "status": "success",
    "created_at": "2024-01-04T00:00:00Z", "user": {"id": 4}, "environment": {"id": 9}}]}]}`
	if _, err := s.Import(ctx, strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	if d := must(s.Deployments(ctx, []int64{43}))[0]; d == nil || d.Status != store.StatusSuccess || d.FinishedAt != nil {
		t.Fatalf("deployment 43: %+v, want a success without a finish time", d)
	}
	last := must(s.LastDeployments(ctx, []store.LastDeploymentKey{{EnvironmentID: 9, Status: store.StatusSuccess}}))[0]
	if last == nil || last.ID != 41 {
		t.Fatalf("last success: %+v, want deployment 41, the newest with a finish time", last)
	}
}
