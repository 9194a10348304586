package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// eventWait bounds how long a test waits for an event that must come; it
// is never reached when the store works.
const eventWait = 10 * time.Second

// nextEvents reads n events from sub, failing the test if they do not come.
func nextEvents(t *testing.T, sub *store.Subscription, n int) []store.Event {
	t.Helper()
	out := make([]store.Event, 0, n)
	timeout := time.After(eventWait)
	for len(out) < n {
		select {
		case batch, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, sub.Err())
			}
			out = append(out, batch...)
		case <-timeout:
			t.Fatalf("got %d of %d events: %+v", len(out), n, out)
		}
	}
	return out
}

func envEvent(kind store.EventKind, e *store.Environment) store.Event {
	return store.Event{Kind: kind, ProjectID: e.ProjectID, EnvironmentID: e.ID, Environment: e.Name}
}

func depEvent(kind store.EventKind, env *store.Environment, d *store.Deployment) store.Event {
	return store.Event{Kind: kind, ProjectID: d.ProjectID, EnvironmentID: env.ID, Environment: env.Name, DeploymentID: d.ID}
}

func diffEvents(t *testing.T, got, want []store.Event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got  %+v\n want %+v", got, want)
	}
}

// Ensure that every write a reader could see publishes its events, in the
// order the writes happened.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	s, c, v := openDeployStore(t)
	sub := s.Subscribe(1)
	defer sub.Close()
	root, dev := v["root"], v["dev"]
	staging := must(s.Environments(ctx, []int64{2}))[0]
	sleepy := must(s.Environments(ctx, []int64{3}))[0]

	t.Run("CreateEnvironment", func(t *testing.T) {
		e := must(s.CreateEnvironment(ctx, dev, store.NewEnvironment{ProjectID: 1, Name: "qa"}))
		diffEvents(t, nextEvents(t, sub, 1), []store.Event{envEvent(store.EventCreated, e)})
	})
	t.Run("CreateDeploymentInANewEnvironment", func(t *testing.T) {
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "review/new", SHA: sha(1), Ref: "main", Status: store.StatusRunning}))
		env := must(s.Environments(ctx, []int64{d.EnvironmentID}))[0]
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{envEvent(store.EventCreated, env), depEvent(store.EventCreated, env, d)})

		d = must(s.UpdateDeploymentStatus(ctx, dev, d.ID, store.StatusSuccess))
		diffEvents(t, nextEvents(t, sub, 1), []store.Event{depEvent(store.EventUpdated, env, d)})
	})
	t.Run("ARetriedDeploymentChangesNothing", func(t *testing.T) {
		in := store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(2), Ref: "main", Status: store.StatusRunning}
		d := must(s.CreateDeployment(ctx, dev, in))
		must(s.CreateDeployment(ctx, dev, in))
		d = must(s.UpdateDeploymentStatus(ctx, dev, d.ID, store.StatusFailed))
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{depEvent(store.EventCreated, staging, d), depEvent(store.EventUpdated, staging, d)})
	})
	t.Run("SuccessRestartsAStoppedEnvironment", func(t *testing.T) {
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "sleepy", SHA: sha(3), Ref: "main", Status: store.StatusSuccess}))
		got := nextEvents(t, sub, 2)
		env := must(s.Environments(ctx, []int64{sleepy.ID}))[0]
		if env.State != store.EnvAvailable {
			t.Fatalf("sleepy is %s, want available", env.State)
		}
		diffEvents(t, got, []store.Event{depEvent(store.EventCreated, env, d), envEvent(store.EventUpdated, env)})
	})
	t.Run("UpdateStopDeleteEnvironment", func(t *testing.T) {
		qa := must(s.EnvironmentsByName(ctx, []store.EnvironmentKey{{ProjectID: 1, Name: "qa"}}))[0]
		tier := store.TierStaging
		must(s.UpdateEnvironment(ctx, dev, store.EnvironmentUpdate{EnvironmentID: qa.ID, Tier: &tier}))
		must(s.UpdateEnvironment(ctx, dev, store.EnvironmentUpdate{EnvironmentID: qa.ID, Tier: &tier})) // no change, no event
		must(s.StopEnvironment(ctx, dev, qa.ID, false))
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "qa", SHA: sha(4), Ref: "main", Status: store.StatusFailed}))
		must(s.DeleteEnvironment(ctx, dev, qa.ID))
		diffEvents(t, nextEvents(t, sub, 5), []store.Event{
			envEvent(store.EventUpdated, qa), envEvent(store.EventStopped, qa),
			depEvent(store.EventCreated, qa, d), depEvent(store.EventDeleted, qa, d), envEvent(store.EventDeleted, qa),
		})
	})
	t.Run("DeleteDeployment", func(t *testing.T) {
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(5), Ref: "main", Status: store.StatusCanceled}))
		must(s.DeleteDeployment(ctx, v["maint"], d.ID))
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{depEvent(store.EventCreated, staging, d), depEvent(store.EventDeleted, staging, d)})
	})
	t.Run("Approvals", func(t *testing.T) {
		prod := must(s.Environments(ctx, []int64{1}))[0]
		d := must(s.CreateDeployment(ctx, root, store.NewDeployment{ProjectID: 1, Environment: "production", SHA: sha(6), Ref: "main", Status: store.StatusRunning}))
		must2(s.ApproveDeployment(ctx, dev, store.NewApproval{DeploymentID: d.ID, Status: store.Approved}))
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{depEvent(store.EventCreated, prod, d), depEvent(store.EventUpdated, prod, d)})
	})
	t.Run("Protection", func(t *testing.T) {
		must(s.ProtectEnvironment(ctx, root, 1, "staging", nil, nil))
		must(s.ProtectEnvironment(ctx, root, 1, "nothing-yet", nil, nil)) // no environment, no event
		must(s.UnprotectEnvironment(ctx, root, 1, "staging"))
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{envEvent(store.EventUpdated, staging), envEvent(store.EventUpdated, staging)})
	})
	t.Run("MergeRequestLinks", func(t *testing.T) {
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "staging", SHA: sha(7), Ref: "main", Status: store.StatusRunning}))
		must(s.LinkMergeRequests(ctx, dev, d.ID, []int64{12}))
		must(s.LinkMergeRequests(ctx, dev, d.ID, []int64{12})) // linked already
		diffEvents(t, nextEvents(t, sub, 2), []store.Event{depEvent(store.EventCreated, staging, d), depEvent(store.EventUpdated, staging, d)})
	})
	t.Run("SweepsAndReviewAppCleanup", func(t *testing.T) {
		soon := c.Now().Add(time.Hour)
		auto := must(s.CreateEnvironment(ctx, dev, store.NewEnvironment{ProjectID: 1, Name: "auto", AutoStopAt: &soon}))
		review := must(s.CreateEnvironment(ctx, dev, store.NewEnvironment{ProjectID: 1, Name: "review/old"}))
		d := must(s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "review/old", SHA: sha(8), Ref: "main", Status: store.StatusFailed}))
		must(s.StopEnvironment(ctx, dev, review.ID, false))
		before, dry := c.Now().Add(time.Minute), false
		if _, err := s.DeleteStoppedReviewApps(ctx, dev, 1, &before, nil, &dry); err != nil {
			t.Fatal(err)
		}
		c.Set(c.Now().Add(8 * 24 * time.Hour))
		if _, _, err := s.SweepEnvironments(ctx); err != nil {
			t.Fatal(err)
		}
		diffEvents(t, nextEvents(t, sub, 8), []store.Event{
			envEvent(store.EventCreated, auto), envEvent(store.EventCreated, review),
			depEvent(store.EventCreated, review, d), envEvent(store.EventStopped, review),
			envEvent(store.EventUpdated, review),
			envEvent(store.EventStopped, auto), depEvent(store.EventDeleted, review, d), envEvent(store.EventDeleted, review),
		})
	})
	t.Run("StopStaleEnvironments", func(t *testing.T) {
		_, stopped, err := s.StopStaleEnvironments(ctx, v["maint"], 1, c.Now().Add(-7*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(stopped) == 0 {
			t.Fatal("no stale environment stopped")
		}
		var want []store.Event
		for _, e := range stopped {
			want = append(want, envEvent(store.EventStopped, e))
		}
		diffEvents(t, nextEvents(t, sub, len(want)), want)
	})
	t.Run("OtherProjectsAreNotDelivered", func(t *testing.T) {
		p := must(s.CreateProject(ctx, root, store.NewProject{Name: "other", Path: "other"}))
		must(s.CreateEnvironment(ctx, root, store.NewEnvironment{ProjectID: p.ID, Name: "production"}))
		e := must(s.CreateEnvironment(ctx, root, store.NewEnvironment{ProjectID: 1, Name: "after-other"}))
		diffEvents(t, nextEvents(t, sub, 1), []store.Event{envEvent(store.EventCreated, e)})
	})
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// Ensure that a write that fails publishes nothing: the next event is the
// next successful write's.
func TestEventsNothingForFailedWrites(t *testing.T) {
	ctx := context.Background()
	s, _, v := openDeployStore(t)
	sub := s.Subscribe(1)
	defer sub.Close()
	dev := v["dev"]
	failures := map[string]error{}
	_, failures["ErrNameTaken"] = s.CreateEnvironment(ctx, dev, store.NewEnvironment{ProjectID: 1, Name: "staging"})
	_, failures["ErrBadSHA"] = s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "brand-new", SHA: "nope", Ref: "main", Status: store.StatusRunning})
	_, failures["ErrRunningDeploymentCannotBeDeleted"] = s.DeleteDeployment(ctx, v["maint"], 100)
	_, failures["ErrAvailableEnvironmentCannotBeDeleted"] = s.DeleteEnvironment(ctx, dev, 2)
	_, failures["ErrForbidden"] = s.StopEnvironment(ctx, v["rep"], 2, false)
	_, failures["ErrProtected"] = s.CreateDeployment(ctx, dev, store.NewDeployment{ProjectID: 1, Environment: "production", SHA: sha(1), Ref: "main", Status: store.StatusRunning})
	for name, err := range failures {
		if err == nil {
			t.Errorf("%s: the write succeeded", name)
		}
	}
	e := must(s.CreateEnvironment(ctx, dev, store.NewEnvironment{ProjectID: 1, Name: "after"}))
	diffEvents(t, nextEvents(t, sub, 1), []store.Event{envEvent(store.EventCreated, e)})
}

// Ensure that concurrent writes, which share commits, publish in commit
// order: deployments get their ids in commit order, so their CREATED
// events come in increasing id order, each once.
func TestEventsCommitOrder(t *testing.T) {
	ctx := context.Background()
	s, _, v := openDeployStore(t)
	sub := s.Subscribe(1)
	defer sub.Close()
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := s.CreateDeployment(ctx, v["dev"], store.NewDeployment{
					ProjectID: 1, Environment: "staging", SHA: sha(1000*w + i), Ref: "main", Status: store.StatusRunning,
				})
				errs <- err
			}
		})
	}
	got := nextEvents(t, sub, writers*each)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].DeploymentID <= got[i-1].DeploymentID {
			t.Fatalf("event %d is deployment %d after deployment %d: not in commit order", i, got[i].DeploymentID, got[i-1].DeploymentID)
		}
	}
}

// openSmallBufferStore opens an empty store whose subscribers buffer 4
// transactions, with an admin viewer and a project "app" of its own: the
// tests of full subscriber buffers fill them in a few writes. The store is
// closed when the test ends.
func openSmallBufferStore(t *testing.T) (*store.Store, store.Viewer, *store.Project) {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "deploygraph.db"), store.Options{NoSync: true, EventBuffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	root := store.Viewer{User: &store.User{ID: 1, Username: "root", State: store.UserActive, Admin: true}}
	p := must(s.CreateProject(context.Background(), root, store.NewProject{Name: "app", Path: "app"}))
	return s, root, p
}

// Ensure that a subscriber that does not keep up is dropped without
// holding up writers or the other subscribers.
func TestEventsSlowSubscriber(t *testing.T) {
	ctx := context.Background()
	s, root, p := openSmallBufferStore(t)

	slow, reader := s.Subscribe(p.ID), s.Subscribe(p.ID)
	defer reader.Close()
	var last int64
	for i := range 50 {
		d, err := s.CreateDeployment(ctx, root, store.NewDeployment{ProjectID: p.ID, Environment: "production", SHA: sha(i), Ref: "main", Status: store.StatusCreated})
		if err != nil {
			t.Fatal(err)
		}
		// The reader keeps up; the slow subscriber never reads. The first
		// write also creates the environment.
		n := 1
		if i == 0 {
			n = 2
		}
		got := nextEvents(t, reader, n)
		if e := got[len(got)-1]; e.DeploymentID != d.ID || e.DeploymentID <= last {
			t.Fatalf("reader got %+v, want deployment %d's CREATED", e, d.ID)
		}
		last = d.ID
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	if err := slow.Err(); !errors.Is(err, store.ErrSubscriberTooSlow) {
		t.Errorf("slow subscriber ended with %v, want ErrSubscriberTooSlow", err)
	}
	if n := s.Subscribers(); n != 1 {
		t.Errorf("subscribers: got %d, want 1", n)
	}
}

// Ensure that one write with more events than a subscriber's buffer does
// not drop a subscriber that keeps up: the buffer counts transactions.
func TestEventsLargeWriteKeepsReaders(t *testing.T) {
	ctx := context.Background()
	s, root, p := openSmallBufferStore(t)
	const deployments = 10
	var env *store.Environment
	for i := range deployments {
		d := must(s.CreateDeployment(ctx, root, store.NewDeployment{ProjectID: p.ID, Environment: "review/big", SHA: sha(i), Ref: "main", Status: store.StatusSuccess}))
		env = must(s.Environments(ctx, []int64{d.EnvironmentID}))[0]
	}
	must(s.StopEnvironment(ctx, root, env.ID, false))

	reader := s.Subscribe(p.ID)
	defer reader.Close()
	must(s.DeleteEnvironment(ctx, root, env.ID))
	got := nextEvents(t, reader, deployments+1)
	if len(got) != deployments+1 || got[deployments].Kind != store.EventDeleted || got[deployments].IsDeployment() {
		t.Fatalf("got %d events ending with %+v, want %d deployments' and the environment's DELETED", len(got), got[len(got)-1], deployments)
	}
	select {
	case <-reader.Done():
		t.Fatalf("the reader was dropped: %v", reader.Err())
	default:
	}
}

// Ensure that closing the store ends every subscription.
func TestEventsStoreClosed(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "deploygraph.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Err(); !errors.Is(err, store.ErrStoreClosed) {
		t.Errorf("got %v, want ErrStoreClosed", err)
	}
	if _, ok := <-sub.Events(); ok {
		t.Error("events still open")
	}
}
