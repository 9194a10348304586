package store_test

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

// snapshotView is what one reader sees of project 1's deployments.
type snapshotView struct {
	count int
	ids   []int64
	found bool // the deployment asked for by id
}

func viewDeployments(t *testing.T, ctx context.Context, s *store.Store, id int64) snapshotView {
	t.Helper()
	q := []store.DeploymentQuery{{ProjectID: 1, Page: store.PageArgs{First: ptr(100)}}}
	counts, errs := s.CountDeployments(ctx, q)
	mustNoErrs(t, errs)
	pages, errs := s.ListDeployments(ctx, q)
	mustNoErrs(t, errs)
	v := snapshotView{count: counts[0]}
	for _, d := range pages[0].Items {
		v.ids = append(v.ids, d.ID)
	}
	v.found = must(s.Deployments(ctx, []int64{id}))[0] != nil
	return v
}

// Ensure that the reads made through a snapshot answer from the state its
// first read saw, whatever commits after it, and that once it ends they
// read the store as it is.
func TestSnapshotReadsOneState(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	snap, end := s.WithSnapshot(ctx)
	first := viewDeployments(t, snap, s, 0)

	d, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(2), Ref: "main", Status: store.StatusRunning})
	if err != nil {
		t.Fatal(err)
	}
	first.found = false // d was not there
	if got := viewDeployments(t, snap, s, d.ID); !reflect.DeepEqual(got, first) {
		t.Errorf("through the snapshot after a commit: got %+v, want %+v as before it", got, first)
	}
	now := viewDeployments(t, ctx, s, d.ID)
	if now.count != first.count+1 || !now.found || !slices.Contains(now.ids, d.ID) {
		t.Errorf("without the snapshot: got %+v, want the new deployment %d counted and found", now, d.ID)
	}
	end()
	if got := viewDeployments(t, snap, s, d.ID); !reflect.DeepEqual(got, now) {
		t.Errorf("through the snapshot once ended: got %+v, want %+v", got, now)
	}
	end() // a second end is harmless
}

// Ensure that a snapshot's reads from many goroutines at once, while
// writes commit, each see its one state.
func TestSnapshotSharedByGoroutines(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	snap, end := s.WithSnapshot(ctx)
	defer end()
	want := viewDeployments(t, snap, s, 0)

	var wg sync.WaitGroup
	views := make([]snapshotView, 16)
	for i := range views {
		wg.Go(func() { views[i] = viewDeployments(t, snap, s, 0) })
	}
	for i := range 8 {
		wg.Go(func() {
			_, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(10 + i), Ref: "main", Status: store.StatusRunning})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, got := range views {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("reader %d: got %+v, want %+v", i, got, want)
		}
	}
	if got := countDeployments(t, s); got != want.count+8 {
		t.Errorf("after the writes: %d deployments, want %d", got, want.count+8)
	}
}

// Ensure that a project found by its path through a snapshot is the
// snapshot's, and is not kept as the answer for reads that come after
// it: there the project is as it is now.
func TestProjectByPathInSnapshot(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	snap, end := s.WithSnapshot(ctx)
	defer end()
	if _, err := s.Users(snap, []int64{1}); err != nil { // begins it
		t.Fatal(err)
	}
	public := store.Public
	if _, err := s.UpdateProject(ctx, as["root"], store.ProjectUpdate{ProjectID: 1, Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	if p := must(s.ProjectByPath(snap, "acme/app")); p.Visibility != store.Private {
		t.Errorf("through the snapshot: %s, want private as when it began", p.Visibility)
	}
	if p := must(s.ProjectByPath(ctx, "acme/app")); p.Visibility != store.Public {
		t.Errorf("without it, after: %s, want public", p.Visibility)
	}
}

// Ensure that a project found by its path through a snapshot with no
// write since it began is kept: the next request finds it without a read.
func TestProjectByPathKeptFromSnapshot(t *testing.T) {
	ctx := context.Background()
	s, _, _ := openDeployStore(t)
	snap, end := s.WithSnapshot(ctx)
	defer end()
	must(s.ProjectByPath(snap, "acme/app"))
	reads := s.Reads()
	if p := must(s.ProjectByPath(ctx, "acme/app")); p == nil || s.Reads() != reads {
		t.Errorf("after a read through the snapshot: %d more reads for %v, want the kept project", s.Reads()-reads, p)
	}
}
