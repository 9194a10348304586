package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// deployDoc is a project with a protected production (maintainers deploy,
// one approval from group 20), an unprotected staging, a stopped
// environment, a CI-created deployment and merged merge requests.
const deployDoc = `{
 "users": [
  {"id": 1, "username": "root", "name": "Root", "admin": true},
  {"id": 2, "username": "dev", "name": "Dev"},
  {"id": 3, "username": "rep", "name": "Rep"},
  {"id": 4, "username": "maint", "name": "Maint"},
  {"id": 5, "username": "outsider", "name": "Outsider"}
 ],
 "groups": [{"id": 20, "name": "approvers", "path": "approvers", "full_path": "approvers", "members": [{"user_id": 2}]}],
 "projects": [{
  "id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private", "created_at": "2024-01-01T00:00:00Z",
  "members": [{"user_id": 2, "access_level": 30}, {"user_id": 3, "access_level": 20}, {"user_id": 4, "access_level": 40}],
  "protected_environments": [{"name": "production", "deploy_access_levels": [{"access_level": 40}],
     "approval_rules": [{"group_id": 20, "required_approvals": 1}]}],
  "environments": [
   {"id": 1, "name": "production", "state": "available", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
   {"id": 2, "name": "staging", "state": "available", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
   {"id": 3, "name": "sleepy", "state": "stopped", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
  ],
  "deployments": [
   {"id": 100, "iid": 1, "ref": "main", "sha": "0000000000000000000000000000000000000001", "tag": false, "status": "running",
    "created_at": "2024-01-02T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z", "user": {"id": 2}, "environment": {"id": 2, "name": "staging"},
    "deployable": {"id": 500, "name": "deploy", "stage": "deploy", "status": "running", "ref": "main", "tag": false, "created_at": "2024-01-02T00:00:00Z"}}
  ],
  "merge_requests": [
   {"id": 10, "iid": 1, "title": "before", "state": "merged", "source_branch": "a", "target_branch": "main", "author": {"id": 2},
    "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "merged_at": "2024-01-03T00:00:00Z"},
   {"id": 11, "iid": 2, "title": "other branch", "state": "merged", "source_branch": "b", "target_branch": "release", "author": {"id": 2},
    "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "merged_at": "2024-01-03T00:00:00Z",
    "merge_commit_sha": "00000000000000000000000000000000000000aa"},
   {"id": 12, "iid": 3, "title": "open", "state": "opened", "source_branch": "c", "target_branch": "main", "author": {"id": 2},
    "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
  ]
 }]
}`

// openDeployStore opens a store holding deployDoc at 2024-02-01.
func openDeployStore(t *testing.T) (*store.Store, *clock, map[string]store.Viewer) {
	t.Helper()
	c := &clock{now: time.Date(2024, 2, 1, 12, 0, 0, 0, time.UTC)}
	s := openStore(t, c.Now)
	if _, err := s.Import(context.Background(), strings.NewReader(deployDoc)); err != nil {
		t.Fatal(err)
	}
	users, err := s.Users(context.Background(), []int64{1, 2, 3, 4, 5})
	if err != nil {
		t.Fatal(err)
	}
	viewers := map[string]store.Viewer{"anonymous": {}}
	for _, u := range users {
		viewers[u.Username] = store.Viewer{User: u}
	}
	return s, c, viewers
}

func countDeployments(t *testing.T, s *store.Store) int {
	t.Helper()
	counts, errs := s.CountDeployments(context.Background(), []store.DeploymentQuery{{ProjectID: 1}})
	mustNoErrs(t, errs)
	return counts[0]
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

// Ensure that the status machine allows exactly SPEC 6.3's transitions.
func TestCanTransition(t *testing.T) {
	all := store.AllDeploymentStatuses
	allowed := map[store.DeploymentStatus][]store.DeploymentStatus{
		store.StatusRunning:  {store.StatusCreated, store.StatusBlocked},
		store.StatusSuccess:  {store.StatusCreated, store.StatusRunning, store.StatusFailed, store.StatusCanceled, store.StatusSkipped, store.StatusBlocked},
		store.StatusFailed:   {store.StatusCreated, store.StatusRunning, store.StatusSuccess, store.StatusCanceled, store.StatusSkipped, store.StatusBlocked},
		store.StatusCanceled: {store.StatusCreated, store.StatusRunning, store.StatusSuccess, store.StatusFailed, store.StatusSkipped, store.StatusBlocked},
	}
	for _, from := range all {
		for _, to := range all {
			want := slices.Contains(allowed[to], from)
			if got := store.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestCreateDeployment(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	valid := store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(1), Ref: "main", Status: store.StatusRunning}

	refusals := []struct {
		name   string
		viewer string
		edit   func(*store.NewDeployment)
		code   store.Code
	}{
		{"ErrAnonymous", "anonymous", nil, store.EUnauthenticated},
		{"ErrReporter", "rep", nil, store.EForbidden},
		{"ErrNonMemberOfPrivateProject", "outsider", nil, store.ENotFound},
		{"ErrUnknownProject", "root", func(in *store.NewDeployment) { in.ProjectID = 99 }, store.ENotFound},
		{"ErrStatusSkipped", "dev", func(in *store.NewDeployment) { in.Status = store.StatusSkipped }, store.EInvalid},
		{"ErrStatusBlocked", "dev", func(in *store.NewDeployment) { in.Status = store.StatusBlocked }, store.EInvalid},
		{"ErrShortSHA", "dev", func(in *store.NewDeployment) { in.SHA = "abc123" }, store.EInvalid},
		{"ErrBlankRef", "dev", func(in *store.NewDeployment) { in.Ref = "" }, store.EInvalid},
		{"ErrRefWithSpace", "dev", func(in *store.NewDeployment) { in.Ref = "a b" }, store.EInvalid},
		{"ErrBadEnvironmentName", "dev", func(in *store.NewDeployment) { in.Environment = "/x" }, store.EInvalid},
		{"ErrDeveloperOnProtectedEnvironment", "dev", func(in *store.NewDeployment) { in.Environment = "production" }, store.EForbidden},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			in := valid
			if tc.edit != nil {
				tc.edit(&in)
			}
			before := countDeployments(t, s)
			_, err := s.CreateDeployment(ctx, as[tc.viewer], in)
			if got := store.ErrorCode(err); got != tc.code {
				t.Fatalf("error %v: code %s, want %s", err, got, tc.code)
			}
			if after := countDeployments(t, s); after != before {
				t.Errorf("a refused create changed the count from %d to %d", before, after)
			}
		})
	}

	t.Run("RecordsWithNextIIDAndCaller", func(t *testing.T) {
		d, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: strings.ToUpper(sha(2)), Ref: "main", Status: store.StatusSuccess})
		if err != nil {
			t.Fatal(err)
		}
		if d.IID != 2 || d.UserID != 2 || d.SHA != sha(2) || d.Status != store.StatusSuccess || d.FinishedAt == nil {
			t.Errorf("got %+v, want iid 2, user 2, lower-case sha, SUCCESS with finishedAt", d)
		}
	})
	t.Run("CreatedIsAllowedAndUnfinished", func(t *testing.T) {
		d, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(3), Ref: "main", Status: store.StatusCreated})
		if err != nil || d.Status != store.StatusCreated || d.FinishedAt != nil {
			t.Fatalf("got %+v, %v; want CREATED without finishedAt", d, err)
		}
	})
	t.Run("CreatesMissingEnvironmentWithGuessedTier", func(t *testing.T) {
		d, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "review/fix-bar", SHA: sha(4), Ref: "fix-bar", Status: store.StatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		env := must(s.Environments(ctx, []int64{d.EnvironmentID}))[0]
		if env == nil || env.Name != "review/fix-bar" || env.Tier != store.TierDevelopment || env.State != store.EnvAvailable {
			t.Errorf("environment %+v, want review/fix-bar, development, available", env)
		}
	})
	t.Run("RetryReturnsTheSameDeployment", func(t *testing.T) {
		in := store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(5), Ref: "main", Status: store.StatusRunning}
		first := must(s.CreateDeployment(ctx, as["dev"], in))
		again := must(s.CreateDeployment(ctx, as["dev"], in))
		if again.ID != first.ID {
			t.Errorf("retry created deployment %d, want the same %d", again.ID, first.ID)
		}
		in.Status = store.StatusSuccess
		if other := must(s.CreateDeployment(ctx, as["dev"], in)); other.ID == first.ID {
			t.Errorf("another status returned the same deployment")
		}
	})
	t.Run("ApprovalEnvironmentHoldsItBlocked", func(t *testing.T) {
		d, err := s.CreateDeployment(ctx, as["maint"], store.NewDeployment{ProjectID: 1, Environment: "production", SHA: sha(6), Ref: "main", Status: store.StatusSuccess})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.StatusBlocked || d.FinishedAt != nil {
			t.Errorf("status %s finishedAt %v, want BLOCKED and unfinished", d.Status, d.FinishedAt)
		}
		_, err = s.UpdateDeploymentStatus(ctx, as["maint"], d.ID, store.StatusRunning)
		if store.ErrorCode(err) != store.EFailedPrecondition {
			t.Errorf("running a blocked deployment with pending approvals: %v, want FAILED_PRECONDITION", err)
		}
		if c, err := s.UpdateDeploymentStatus(ctx, as["maint"], d.ID, store.StatusCanceled); err != nil || c.Status != store.StatusCanceled || c.FinishedAt == nil {
			t.Errorf("canceling a blocked deployment: %+v, %v", c, err)
		}
	})
}

// Ensure that concurrent creates in one project get iids 1..n exactly once.
func TestCreateDeploymentIIDsAreGapFreeUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	const n = 30
	var wg sync.WaitGroup
	iids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: fmt.Sprintf("env-%d", i%4), SHA: sha(1000 + i), Ref: "main", Status: store.StatusRunning})
			if err == nil {
				iids[i] = d.IID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(iids)
	for i, iid := range iids {
		if want := int64(i + 2); iid != want { // iid 1 was imported
			t.Fatalf("iids %v, want 2..%d each once", iids, n+1)
		}
	}
}

// Group commit's counts hold exactly the writes that committed, whichever
// way concurrent writes were grouped and whichever of them were refused, and
// a refused write leaves nothing behind.
func TestCommitStatsCountWhatCommitted(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	before, deployments := s.CommitStats(), countDeployments(t, s)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			in := store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(2000 + i), Ref: "main", Status: store.StatusRunning}
			if i%4 == 0 {
				in.SHA = "not-a-sha" // refused by the checks, inside the shared transaction
			}
			_, errs[i] = s.CreateDeployment(ctx, as["dev"], in)
		})
	}
	wg.Wait()
	var committed uint64
	for i, err := range errs {
		switch {
		case i%4 == 0 && err == nil:
			t.Fatalf("write %d with a bad sha succeeded", i)
		case i%4 != 0 && err != nil:
			t.Fatalf("write %d: %v", i, err)
		case err == nil:
			committed++
		}
	}
	if got := countDeployments(t, s) - deployments; got != int(committed) {
		t.Errorf("%d deployments more after %d successful creates", got, committed)
	}
	after := s.CommitStats()
	if got := after.GroupedWrites - before.GroupedWrites; got != committed {
		t.Errorf("grouped writes: %d more, want %d (the writes that committed)", got, committed)
	}
	if got := after.GroupCommits - before.GroupCommits; got < 1 || got > committed {
		t.Errorf("group commits: %d more for %d writes", got, committed)
	}
	if after.PageWrites <= before.PageWrites || after.SyncTime <= before.SyncTime || after.SpillTime < before.SpillTime {
		t.Errorf("page writes and times did not grow: before %+v, after %+v", before, after)
	}
}

func TestUpdateDeploymentStatus(t *testing.T) {
	ctx := context.Background()
	s, c, as := openDeployStore(t)
	create := func(status store.DeploymentStatus, n int) *store.Deployment {
		t.Helper()
		return must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(n), Ref: "main", Status: status}))
	}
	t.Run("ErrCIDeployment", func(t *testing.T) {
		_, err := s.UpdateDeploymentStatus(ctx, as["dev"], 100, store.StatusSuccess)
		if store.ErrorCode(err) != store.EForbidden || err.Error() != "Deployments created by CI jobs cannot be updated through the API" {
			t.Errorf("got %v, want FORBIDDEN with the seed's message", err)
		}
	})
	t.Run("ErrStatusOutsideTheAPI", func(t *testing.T) {
		d := create(store.StatusCreated, 10)
		for _, st := range []store.DeploymentStatus{store.StatusCreated, store.StatusBlocked, store.StatusSkipped} {
			if _, err := s.UpdateDeploymentStatus(ctx, as["dev"], d.ID, st); store.ErrorCode(err) != store.EInvalid {
				t.Errorf("to %s: %v, want BAD_USER_INPUT", st, err)
			}
		}
	})
	t.Run("ErrRefusedTransitionNamesBothStatuses", func(t *testing.T) {
		d := create(store.StatusSuccess, 11)
		_, err := s.UpdateDeploymentStatus(ctx, as["dev"], d.ID, store.StatusRunning)
		if store.ErrorCode(err) != store.EFailedPrecondition || !strings.Contains(err.Error(), "SUCCESS") || !strings.Contains(err.Error(), "RUNNING") {
			t.Errorf("got %v, want FAILED_PRECONDITION naming success and running", err)
		}
	})
	t.Run("ErrReporter", func(t *testing.T) {
		d := create(store.StatusRunning, 12)
		if _, err := s.UpdateDeploymentStatus(ctx, as["rep"], d.ID, store.StatusSuccess); store.ErrorCode(err) != store.EForbidden {
			t.Errorf("got %v, want FORBIDDEN", err)
		}
		if _, err := s.UpdateDeploymentStatus(ctx, as["outsider"], d.ID, store.StatusSuccess); store.ErrorCode(err) != store.ENotFound {
			t.Errorf("outsider: got %v, want NOT_FOUND", err)
		}
	})
	t.Run("FinishingSetsFinishedAtAgain", func(t *testing.T) {
		d := create(store.StatusRunning, 13)
		c.Set(c.Now().Add(time.Minute))
		failed := must(s.UpdateDeploymentStatus(ctx, as["dev"], d.ID, store.StatusFailed))
		c.Set(c.Now().Add(time.Minute))
		succeeded := must(s.UpdateDeploymentStatus(ctx, as["dev"], d.ID, store.StatusSuccess))
		if failed.FinishedAt == nil || succeeded.FinishedAt == nil || !succeeded.FinishedAt.After(*failed.FinishedAt) {
			t.Errorf("finishedAt %v then %v, want set and moved on", failed.FinishedAt, succeeded.FinishedAt)
		}
		last := must(s.LastDeployments(ctx, []store.LastDeploymentKey{{EnvironmentID: 2, Status: store.StatusSuccess}}))[0]
		if last == nil || last.ID != d.ID {
			t.Errorf("lastDeployment %+v, want %d", last, d.ID)
		}
	})
	t.Run("SuccessRestartsAStoppedEnvironment", func(t *testing.T) {
		d := must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "sleepy", SHA: sha(14), Ref: "main", Status: store.StatusRunning}))
		if env := must(s.Environments(ctx, []int64{3}))[0]; env.State != store.EnvStopped {
			t.Fatalf("state %s before success, want stopped", env.State)
		}
		must(s.UpdateDeploymentStatus(ctx, as["dev"], d.ID, store.StatusSuccess))
		if env := must(s.Environments(ctx, []int64{3}))[0]; env.State != store.EnvAvailable {
			t.Errorf("state %s after success, want available", env.State)
		}
	})
}

func TestDeleteDeployment(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	create := func(status store.DeploymentStatus, n int) *store.Deployment {
		t.Helper()
		return must(s.CreateDeployment(ctx, as["maint"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(n), Ref: "main", Status: status}))
	}
	older, last, running := create(store.StatusSuccess, 1), create(store.StatusSuccess, 2), create(store.StatusRunning, 3)
	cases := []struct {
		name   string
		viewer string
		id     int64
		code   store.Code
		msg    string
	}{
		{"ErrDeveloper", "dev", older.ID, store.EForbidden, ""},
		{"ErrRunning", "maint", running.ID, store.EFailedPrecondition, "Cannot destroy running deployment"},
		{"ErrLastDeployment", "maint", last.ID, store.EFailedPrecondition, "Deployment currently deployed to environment"},
		{"ErrUnknown", "maint", 9999, store.ENotFound, ""},
		{"DeletesAnOlderOne", "maint", older.ID, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.DeleteDeployment(ctx, as[tc.viewer], tc.id)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := must(s.Deployments(ctx, []int64{tc.id}))[0]; got != nil {
					t.Errorf("deployment %d still there", tc.id)
				}
				return
			}
			if store.ErrorCode(err) != tc.code || tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("got %v (%s), want %s %q", err, store.ErrorCode(err), tc.code, tc.msg)
			}
		})
	}
}

// Ensure that a SUCCESS outside a folder links the merge requests merged
// into its ref since the previous success, and those whose merge commit it
// deployed.
func TestSuccessLinksShippedMergeRequests(t *testing.T) {
	ctx := context.Background()
	s, c, as := openDeployStore(t)
	linked := func(d *store.Deployment) []int64 {
		t.Helper()
		page, errs := s.ListMergeRequests(ctx, []store.MergeRequestQuery{{ProjectID: 1, DeploymentID: d.ID, Asc: true}})
		mustNoErrs(t, errs)
		var ids []int64
		for _, mr := range page[0].Items {
			ids = append(ids, mr.ID)
		}
		slices.Sort(ids)
		return ids
	}
	first := must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(1), Ref: "main", Status: store.StatusSuccess}))
	if got := linked(first); !slices.Equal(got, []int64{10}) {
		t.Errorf("first success linked %v, want [10] (merged into main before it)", got)
	}
	c.Set(c.Now().Add(time.Hour))
	second := must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(2), Ref: "main", Status: store.StatusSuccess}))
	if got := linked(second); len(got) != 0 {
		t.Errorf("second success linked %v, want none (nothing merged since the first)", got)
	}
	bySHA := must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: "00000000000000000000000000000000000000aa", Ref: "main", Status: store.StatusSuccess}))
	if got := linked(bySHA); !slices.Equal(got, []int64{11}) {
		t.Errorf("success of a merge commit linked %v, want [11]", got)
	}
	inFolder := must(s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "review/x", SHA: "00000000000000000000000000000000000000aa", Ref: "main", Status: store.StatusSuccess}))
	if got := linked(inFolder); len(got) != 0 {
		t.Errorf("success in a folder linked %v, want none", got)
	}
}
