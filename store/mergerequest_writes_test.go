package store_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

// developerCode is what a DEVELOPER+ write in project 1 answers each role.
func developerCode(r roleCase) store.Code {
	switch r.id {
	case 0:
		return store.EUnauthenticated
	case guestID, reporterID:
		return store.EForbidden
	case outsiderID:
		return store.ENotFound
	}
	return ""
}

// newMR is a valid merge request for project 1.
func newMR() store.NewMergeRequest {
	return store.NewMergeRequest{ProjectID: 1, Title: "Add search", SourceBranch: "search", TargetBranch: "main"}
}

// linkedMRs lists the ids of the merge requests a deployment shipped.
func linkedMRs(t *testing.T, s *store.Store, deploymentID int64) []int64 {
	t.Helper()
	pages, errs := s.ListMergeRequests(context.Background(), []store.MergeRequestQuery{{DeploymentID: deploymentID, Asc: true}})
	mustNoErrs(t, errs)
	var ids []int64
	for _, mr := range pages[0].Items {
		ids = append(ids, mr.ID)
	}
	slices.Sort(ids)
	return ids
}

// shippedBy lists the ids of the deployments of project 1 that shipped a
// merge request.
func shippedBy(t *testing.T, s *store.Store, mrID int64) []int64 {
	t.Helper()
	pages, errs := s.ListDeployments(context.Background(), []store.DeploymentQuery{{ProjectID: 1, MergeRequestID: mrID}})
	mustNoErrs(t, errs)
	var ids []int64
	for _, d := range pages[0].Items {
		ids = append(ids, d.ID)
	}
	return ids
}

// Ensure that developers open merge requests with the project's next iid,
// and that titles and branches are checked.
func TestCreateMergeRequest(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := developerCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.CreateMergeRequest(ctx, r.viewer(t, s), newMR()); return err })
					wantErrCode(t, err, want)
					return
				}
				mr, err := s.CreateMergeRequest(ctx, r.viewer(t, s), newMR())
				wantErrCode(t, err, "")
				if mr.AuthorID != r.id {
					t.Fatalf("got author %d, want %d", mr.AuthorID, r.id)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	with := func(change func(*store.NewMergeRequest)) store.NewMergeRequest {
		in := newMR()
		change(&in)
		return in
	}
	failures := []struct {
		name string
		in   store.NewMergeRequest
		code store.Code
		want string
	}{
		{"ErrProjectNotFound", with(func(in *store.NewMergeRequest) { in.ProjectID = 999 }), store.ENotFound, "Project not found"},
		{"ErrTitleBlank", with(func(in *store.NewMergeRequest) { in.Title = " \t" }), store.EInvalid, "Title can't be blank"},
		{"ErrTitleTooLong", with(func(in *store.NewMergeRequest) { in.Title = strings.Repeat("t", 256) }), store.EInvalid, "Title is too long (maximum is 255 characters)"},
		{"ErrSourceBranchBlank", with(func(in *store.NewMergeRequest) { in.SourceBranch = "" }), store.EInvalid, "Source branch can't be blank"},
		{"ErrSourceBranchWhitespace", with(func(in *store.NewMergeRequest) { in.SourceBranch = "my branch" }), store.EInvalid, "Source branch can't contain whitespace or control characters"},
		{"ErrTargetBranchBlank", with(func(in *store.NewMergeRequest) { in.TargetBranch = "" }), store.EInvalid, "Target branch can't be blank"},
		{"ErrTargetBranchTooLong", with(func(in *store.NewMergeRequest) { in.TargetBranch = strings.Repeat("b", 256) }), store.EInvalid, "Target branch is too long (maximum is 255 characters)"},
		{"ErrSameBranches", with(func(in *store.NewMergeRequest) { in.TargetBranch = "search" }), store.EInvalid, "Source branch must be different from the target branch"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.CreateMergeRequest(ctx, dev, tc.in); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("OpensWithNextIID", func(t *testing.T) {
		desc := "Find things"
		in := store.NewMergeRequest{
			ProjectID: 1, Title: "  Add search ", Description: &desc, SourceBranch: "search", TargetBranch: "main",
			Labels: []string{"backend", " ui ", "backend", "", "ui"}, Draft: true,
		}
		mr, err := s.CreateMergeRequest(ctx, dev, in)
		wantErrCode(t, err, "")
		want := store.MergeRequest{
			ID: 21, IID: 4, ProjectID: 1, Title: "Add search", Description: &desc, State: store.MROpened,
			SourceBranch: "search", TargetBranch: "main", AuthorID: devID, Labels: []string{"backend", "ui"},
			Draft: true, CreatedAt: fixtureNow, UpdatedAt: fixtureNow,
		}
		if !jsonEqual(*mr, want) {
			t.Fatalf("got %+v, want %+v", *mr, want)
		}
		if got := mergeRequestByIID(s, 1, 4); got == nil || !jsonEqual(*got, want) {
			t.Fatalf("got stored %+v, want %+v", got, want)
		}
	})

	t.Run("LabelsNeverNil", func(t *testing.T) {
		mr, err := s.CreateMergeRequest(ctx, dev, newMR())
		wantErrCode(t, err, "")
		if mr.Labels == nil || len(mr.Labels) != 0 {
			t.Fatalf("got labels %#v, want an empty list", mr.Labels)
		}
		if got := mergeRequestByIID(s, 1, mr.IID); got.Labels == nil {
			t.Fatalf("got stored labels %#v, want an empty list", got.Labels)
		}
	})

	t.Run("IIDsCountPerProject", func(t *testing.T) {
		mr, err := s.CreateMergeRequest(ctx, viewerOf(t, s, outsiderID), store.NewMergeRequest{ProjectID: 2, Title: "T", SourceBranch: "a", TargetBranch: "main"})
		wantErrCode(t, err, "")
		if got, want := mr.IID, int64(2); got != want {
			t.Fatalf("got iid %d, want %d", got, want)
		}
	})
}

// Ensure that merge requests created concurrently get gap-free, distinct
// iids.
func TestCreateMergeRequestIIDsGapFreeUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	const n = 20
	iids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			mr, err := s.CreateMergeRequest(ctx, dev, newMR())
			if err == nil {
				iids[i] = mr.IID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	mustNoErrs(t, errs)
	slices.Sort(iids)
	for i, iid := range iids {
		if want := int64(4 + i); iid != want {
			t.Fatalf("got iids %v, want 4..%d without gaps", iids, 3+n)
		}
	}
	counts, errs := s.CountMergeRequests(ctx, []store.MergeRequestQuery{{ProjectID: 1}})
	mustNoErrs(t, errs)
	if got, want := counts[0], 3+n; got != want {
		t.Fatalf("got %d merge requests, want %d", got, want)
	}
}

// Ensure that only open, non-draft merge requests merge, recording when and
// with which commit.
func TestMergeMergeRequest(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := developerCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.MergeMergeRequest(ctx, r.viewer(t, s), 7, nil); return err })
					wantErrCode(t, err, want)
					if want == store.ENotFound && err.Error() != "Merge request not found" {
						t.Fatalf("got %q, want %q", err, "Merge request not found")
					}
					return
				}
				_, err := s.MergeMergeRequest(ctx, r.viewer(t, s), 7, nil)
				wantErrCode(t, err, "")
			})
		}
	})

	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	failures := []struct {
		name string
		id   int64
		sha  *string
		code store.Code
		want string
	}{
		{"ErrMergeRequestNotFound", 999, nil, store.ENotFound, "Merge request not found"},
		{"ErrOtherProjectHidden", 20, nil, store.ENotFound, "Merge request not found"},
		{"ErrAlreadyMerged", 9, nil, store.EFailedPrecondition, "Only open merge requests can be merged"},
		{"ErrDraft", 8, nil, store.EFailedPrecondition, "Draft merge requests can't be merged"},
		{"ErrShortSHA", 7, ptr("99d03678"), store.EInvalid, "Merge commit sha must be a full commit SHA (40 or 64 hexadecimal characters)"},
		{"ErrBlankSHA", 7, ptr(""), store.EInvalid, "Merge commit sha must be a full commit SHA (40 or 64 hexadecimal characters)"},
		{"ErrNonHexSHA", 7, ptr(strings.Repeat("z", 40)), store.EInvalid, "Merge commit sha must be a full commit SHA (40 or 64 hexadecimal characters)"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.MergeMergeRequest(ctx, dev, tc.id, tc.sha); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("MergesWithCommit", func(t *testing.T) {
		sha := "A91957A858320C0E17F3A0ECA7CFACBFF50EA29A"
		mr, err := s.MergeMergeRequest(ctx, dev, 7, &sha)
		wantErrCode(t, err, "")
		if mr.State != store.MRMerged || mr.MergedAt == nil || !mr.MergedAt.Equal(fixtureNow) || !mr.UpdatedAt.Equal(fixtureNow) {
			t.Fatalf("got %+v, want merged now", mr)
		}
		if got, want := *mr.MergeCommitSHA, strings.ToLower(sha); got != want {
			t.Fatalf("got merge commit %q, want %q", got, want)
		}
		if got := mergeRequestByIID(s, 1, 1); !jsonEqual(*got, *mr) {
			t.Fatalf("got stored %+v, want %+v", got, mr)
		}
		merged := store.MRMerged
		pages, errs := s.ListMergeRequests(ctx, []store.MergeRequestQuery{{ProjectID: 1, State: &merged}})
		mustNoErrs(t, errs)
		if got := len(pages[0].Items); got != 2 {
			t.Fatalf("got %d merged merge requests, want 2", got)
		}
		_, err = s.MergeMergeRequest(ctx, dev, 7, nil)
		wantErrMessage(t, err, store.EFailedPrecondition, "Only open merge requests can be merged")
	})

	t.Run("MergesWithoutCommit", func(t *testing.T) {
		mr, err := s.CreateMergeRequest(ctx, dev, newMR())
		wantErrCode(t, err, "")
		mr, err = s.MergeMergeRequest(ctx, dev, mr.ID, nil)
		wantErrCode(t, err, "")
		if mr.State != store.MRMerged || mr.MergeCommitSHA != nil {
			t.Fatalf("got %+v, want merged without a merge commit", mr)
		}
	})
}

// Ensure that links added by hand read back from both sides, are
// idempotent, and stay within the deployment's project.
func TestLinkMergeRequests(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := developerCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.LinkMergeRequests(ctx, r.viewer(t, s), 41, []int64{7}); return err })
					wantErrCode(t, err, want)
					if want == store.ENotFound && err.Error() != "Deployment not found" {
						t.Fatalf("got %q, want %q", err, "Deployment not found")
					}
					return
				}
				d, err := s.LinkMergeRequests(ctx, r.viewer(t, s), 41, []int64{7})
				wantErrCode(t, err, "")
				if d.ID != 41 {
					t.Fatalf("got deployment %d, want 41", d.ID)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	failures := []struct {
		name       string
		deployment int64
		mrs        []int64
		code       store.Code
		want       string
	}{
		{"ErrDeploymentNotFound", 999, []int64{7}, store.ENotFound, "Deployment not found"},
		{"ErrDeploymentOfHiddenProject", 50, []int64{20}, store.ENotFound, "Deployment not found"},
		{"ErrNoMergeRequests", 41, nil, store.EInvalid, "Merge request ids can't be empty"},
		{"ErrMergeRequestNotFound", 41, []int64{7, 999}, store.EInvalid, "Merge request 999 is not a merge request of the deployment's project"},
		{"ErrMergeRequestOfOtherProject", 41, []int64{7, 20}, store.EInvalid, "Merge request 20 is not a merge request of the deployment's project"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.LinkMergeRequests(ctx, dev, tc.deployment, tc.mrs); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}
	t.Run("ErrTooManyDistinctMergeRequests", func(t *testing.T) {
		ids := make([]int64, 101)
		for i := range ids {
			ids[i] = int64(1000 + i)
		}
		err := unchanged(t, s, func() error { _, err := s.LinkMergeRequests(ctx, dev, 41, ids); return err })
		wantErrMessage(t, err, store.EInvalid, "At most 100 merge requests can be linked or unlinked at once")
	})

	t.Run("LinksBothWays", func(t *testing.T) {
		d, err := s.LinkMergeRequests(ctx, dev, 42, []int64{8, 7, 7})
		wantErrCode(t, err, "")
		if d.ID != 42 || d.ProjectID != 1 {
			t.Fatalf("got %+v, want deployment 42", d)
		}
		if got, want := linkedMRs(t, s, 42), []int64{7, 8}; !slices.Equal(got, want) {
			t.Fatalf("got merge requests %v, want %v", got, want)
		}
		if got, want := shippedBy(t, s, 7), []int64{42}; !slices.Equal(got, want) {
			t.Fatalf("got deployments %v, want %v", got, want)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		before := writesState(t, s)
		_, err := s.LinkMergeRequests(ctx, dev, 42, []int64{7, 8})
		wantErrCode(t, err, "")
		if after := writesState(t, s); after != before {
			t.Fatalf("linking again changed the store:\n got %s\nwant %s", after, before)
		}
		_, err = s.LinkMergeRequests(ctx, dev, 41, []int64{7, 9})
		wantErrCode(t, err, "")
		if got, want := linkedMRs(t, s, 41), []int64{7, 9}; !slices.Equal(got, want) {
			t.Fatalf("got merge requests %v, want %v", got, want)
		}
		if got, want := shippedBy(t, s, 7), []int64{41, 42}; !slices.Equal(got, want) {
			t.Fatalf("got deployments %v, want %v", got, want)
		}
	})
}

// Ensure that unlinking removes both sides of a link and ignores pairs that
// are not linked.
func TestUnlinkMergeRequests(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := developerCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.UnlinkMergeRequests(ctx, r.viewer(t, s), 41, []int64{9}); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.UnlinkMergeRequests(ctx, r.viewer(t, s), 41, []int64{9})
				wantErrCode(t, err, "")
				if got := linkedMRs(t, s, 41); len(got) != 0 {
					t.Fatalf("got merge requests %v, want none", got)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	t.Run("ErrMergeRequestOfOtherProject", func(t *testing.T) {
		err := unchanged(t, s, func() error { _, err := s.UnlinkMergeRequests(ctx, dev, 41, []int64{9, 20}); return err })
		wantErrMessage(t, err, store.EInvalid, "Merge request 20 is not a merge request of the deployment's project")
	})
	t.Run("ErrDeploymentNotFound", func(t *testing.T) {
		err := unchanged(t, s, func() error { _, err := s.UnlinkMergeRequests(ctx, dev, 999, []int64{9}); return err })
		wantErrMessage(t, err, store.ENotFound, "Deployment not found")
	})
	t.Run("IgnoresPairsNotLinked", func(t *testing.T) {
		before := writesState(t, s)
		_, err := s.UnlinkMergeRequests(ctx, dev, 42, []int64{7, 9})
		wantErrCode(t, err, "")
		if after := writesState(t, s); after != before {
			t.Fatalf("unlinking nothing changed the store:\n got %s\nwant %s", after, before)
		}
	})
	t.Run("RemovesBothSides", func(t *testing.T) {
		_, err := s.LinkMergeRequests(ctx, dev, 42, []int64{9, 7})
		wantErrCode(t, err, "")
		d, err := s.UnlinkMergeRequests(ctx, dev, 41, []int64{9, 7})
		wantErrCode(t, err, "")
		if d.ID != 41 {
			t.Fatalf("got deployment %d, want 41", d.ID)
		}
		if got := linkedMRs(t, s, 41); len(got) != 0 {
			t.Fatalf("got merge requests %v of deployment 41, want none", got)
		}
		if got, want := shippedBy(t, s, 9), []int64{42}; !slices.Equal(got, want) {
			t.Fatalf("got deployments %v, want %v", got, want)
		}
		if got, want := linkedMRs(t, s, 42), []int64{7, 9}; !slices.Equal(got, want) {
			t.Fatalf("got merge requests %v of deployment 42, want %v", got, want)
		}
	})
}
