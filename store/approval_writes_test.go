package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// apprDoc is a private project whose members cover every role, with a
// qa-group, an unprotected staging, a protected "norules" without approval
// rules, a "gated" environment needing two qa-group approvals and one from
// a maintainer, and a "tiers" environment with a DEVELOPER and a MAINTAINER
// rule.
const apprDoc = `{
 "users": [
  {"id": 1, "username": "root", "name": "Root", "admin": true},
  {"id": 2, "username": "dev", "name": "Dev"},
  {"id": 3, "username": "qa1", "name": "QA One"},
  {"id": 4, "username": "qa2", "name": "QA Two"},
  {"id": 5, "username": "maint", "name": "Maint"},
  {"id": 6, "username": "outsider", "name": "Outsider"},
  {"id": 7, "username": "guest", "name": "Guest"},
  {"id": 8, "username": "qamaint", "name": "QA Maint"},
  {"id": 9, "username": "rep", "name": "Rep"}
 ],
 "groups": [{"id": 20, "name": "qa-group", "path": "qa-group", "full_path": "qa-group",
   "members": [{"user_id": 3}, {"user_id": 4}, {"user_id": 8}]}],
 "projects": [{
  "id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private",
  "created_at": "2024-01-01T00:00:00Z", "allow_self_approval": false,
  "members": [{"user_id": 2, "access_level": 30}, {"user_id": 3, "access_level": 30}, {"user_id": 4, "access_level": 20},
   {"user_id": 5, "access_level": 40}, {"user_id": 7, "access_level": 10}, {"user_id": 8, "access_level": 40},
   {"user_id": 9, "access_level": 20}],
  "protected_environments": [
   {"name": "norules", "deploy_access_levels": [{"access_level": 30}], "approval_rules": []},
   {"name": "gated", "deploy_access_levels": [{"access_level": 30}],
    "approval_rules": [{"group_id": 20, "required_approvals": 2}, {"access_level": 40, "required_approvals": 1}]},
   {"name": "tiers", "deploy_access_levels": [{"access_level": 30}],
    "approval_rules": [{"access_level": 30, "required_approvals": 1}, {"access_level": 40, "required_approvals": 1}]}
  ],
  "environments": [
   {"id": 1, "name": "staging", "state": "available", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
  ]
 }]
}`

var apprStart = time.Date(2024, 2, 1, 12, 0, 0, 0, time.UTC)

// apprFixture is a store holding apprDoc, its clock and a viewer per
// username ("anonymous" for nobody).
type apprFixture struct {
	s     *store.Store
	clock *clock
	as    map[string]store.Viewer
	n     int // shas handed out so far
}

func apprOpen(t *testing.T) *apprFixture {
	t.Helper()
	c := &clock{now: apprStart}
	s := openStore(t, c.Now)
	mustImport(t, s, apprDoc)
	users, err := s.Users(context.Background(), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		t.Fatalf("load users: %v", err)
	}
	as := map[string]store.Viewer{"anonymous": {}}
	for _, u := range users {
		as[u.Username] = store.Viewer{User: u}
	}
	return &apprFixture{s: s, clock: c, as: as}
}

func (f *apprFixture) advance(d time.Duration) { f.clock.Set(f.clock.Now().Add(d)) }

// deploy records a new RUNNING deployment (a fresh sha each time) as user.
func (f *apprFixture) deploy(t *testing.T, user, env string) *store.Deployment {
	t.Helper()
	f.n++
	d, err := f.s.CreateDeployment(context.Background(), f.as[user], store.NewDeployment{
		ProjectID: 1, Environment: env, SHA: sha(f.n), Ref: "main", Status: store.StatusRunning,
	})
	if err != nil {
		t.Fatalf("%s deploys to %s: %v", user, env, err)
	}
	return d
}

func (f *apprFixture) approve(user string, d *store.Deployment, status store.ApprovalStatus, opts ...func(*store.NewApproval)) (*store.Approval, *store.Deployment, error) {
	in := store.NewApproval{DeploymentID: d.ID, Status: status}
	for _, o := range opts {
		o(&in)
	}
	return f.s.ApproveDeployment(context.Background(), f.as[user], in)
}

func (f *apprFixture) mustApprove(t *testing.T, user string, d *store.Deployment, status store.ApprovalStatus, opts ...func(*store.NewApproval)) (*store.Approval, *store.Deployment) {
	t.Helper()
	a, got, err := f.approve(user, d, status, opts...)
	if err != nil {
		t.Fatalf("%s %s deployment %d: %v", user, status, d.ID, err)
	}
	return a, got
}

func apprAs(s string) func(*store.NewApproval) {
	return func(in *store.NewApproval) { in.RepresentedAs = &s }
}

func apprComment(s string) func(*store.NewApproval) {
	return func(in *store.NewApproval) { in.Comment = &s }
}

func (f *apprFixture) deployment(t *testing.T, id int64) *store.Deployment {
	t.Helper()
	d := must(f.s.Deployments(context.Background(), []int64{id}))[0]
	if d == nil {
		t.Fatalf("deployment %d is gone", id)
	}
	return d
}

func (f *apprFixture) approvals(id int64) []store.Approval {
	return must(f.s.Approvals(context.Background(), []int64{id}))[0]
}

func (f *apprFixture) protection(name string) *store.ProtectedEnvironment {
	return must(f.s.ProtectedEnvironments(context.Background(), []store.EnvironmentKey{{ProjectID: 1, Name: name}}))[0]
}

// summary is the deployment's approval state as the API computes it.
func (f *apprFixture) summary(t *testing.T, env string, id int64) (int, store.ApprovalSummary) {
	t.Helper()
	pe := f.protection(env)
	if pe == nil {
		t.Fatalf("%s is not protected", env)
	}
	approvals := f.approvals(id)
	return store.PendingApprovalCount(pe.ApprovalRules, approvals), store.Summarize(pe.ApprovalRules, approvals, nil)
}

func apprCheckErr(t *testing.T, err error, wantCode store.Code, wantMsg string) {
	t.Helper()
	var e *store.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want %s %q", err, wantCode, wantMsg)
	}
	if e.Code != wantCode || wantMsg != "" && e.Message != wantMsg {
		t.Errorf("got %s %q, want %s %q", e.Code, e.Message, wantCode, wantMsg)
	}
}

func apprRuleStates(sum store.ApprovalSummary) []string {
	var out []string
	for _, r := range sum.Rules {
		out = append(out, r.Key()+":"+string(r.Status))
	}
	return out
}

const (
	apprMsgNotProtected = "This environment is not protected."
	apprMsgSelf         = "You cannot approve your own deployment."
	apprMsgNoRules      = "Deployment approvals is not configured for this environment."
	apprMsgNotWaiting   = "This deployment is not waiting for approvals."
	apprMsgNoPermission = "You don't have permission to approve this deployment."
)

// Ensure that a protected production gates a deployment until two qa-group
// members and a maintainer approve, and that a rejection fails the next.
func TestApproveDeploymentStory(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	pe, err := f.s.ProtectEnvironment(ctx, f.as["maint"], 1, "production",
		[]store.Rule{{AccessLevel: store.Developer}},
		[]store.ApprovalRule{{Rule: store.Rule{GroupID: 20}, RequiredApprovals: 2}, {Rule: store.Rule{AccessLevel: store.Maintainer}, RequiredApprovals: 1}})
	if err != nil {
		t.Fatalf("protect production: %v", err)
	}
	if got := f.protection("production"); got == nil || len(got.ApprovalRules) != 2 || len(pe.DeployAccessLevels) != 1 {
		t.Fatalf("stored protection %+v, want 1 deploy rule and 2 approval rules", got)
	}

	d := f.deploy(t, "dev", "production")
	if d.Status != store.StatusBlocked {
		t.Fatalf("status %s, want blocked", d.Status)
	}
	_, err = f.s.UpdateDeploymentStatus(ctx, f.as["dev"], d.ID, store.StatusRunning)
	apprCheckErr(t, err, store.EFailedPrecondition, "")
	_, _, err = f.approve("dev", d, store.Approved)
	apprCheckErr(t, err, store.EForbidden, apprMsgSelf)

	steps := []struct {
		user        string
		wantPending int
		wantStatus  store.SummaryStatus
		wantRules   []string
	}{
		{"qa1", 2, store.SummaryPendingApproval, []string{"g20:pending_approval", "a40:pending_approval"}},
		{"qa2", 1, store.SummaryPendingApproval, []string{"g20:approved", "a40:pending_approval"}},
		{"maint", 0, store.SummaryApproved, []string{"g20:approved", "a40:approved"}},
	}
	for _, step := range steps {
		f.advance(time.Minute)
		a, got := f.mustApprove(t, step.user, d, store.Approved, apprComment("lgtm"))
		if a.Status != store.Approved || a.UserID != f.as[step.user].UserID() || !a.CreatedAt.Equal(f.clock.Now()) {
			t.Errorf("%s: approval %+v, want approved by them now", step.user, a)
		}
		if got.Status != store.StatusBlocked {
			t.Errorf("%s: deployment %s, want still blocked", step.user, got.Status)
		}
		pending, sum := f.summary(t, "production", d.ID)
		if pending != step.wantPending || sum.Status != step.wantStatus {
			t.Errorf("after %s: pending %d, summary %s, want %d, %s", step.user, pending, sum.Status, step.wantPending, step.wantStatus)
		}
		if got, want := strings.Join(apprRuleStates(sum), " "), strings.Join(step.wantRules, " "); got != want {
			t.Errorf("after %s: rules %s, want %s", step.user, got, want)
		}
	}
	if got := f.deployment(t, d.ID).Status; got != store.StatusBlocked {
		t.Errorf("fully approved deployment %s, want still blocked until it runs", got)
	}

	if _, err := f.s.UpdateDeploymentStatus(ctx, f.as["dev"], d.ID, store.StatusRunning); err != nil {
		t.Fatalf("run approved deployment: %v", err)
	}
	done, err := f.s.UpdateDeploymentStatus(ctx, f.as["dev"], d.ID, store.StatusSuccess)
	if err != nil || done.Status != store.StatusSuccess {
		t.Fatalf("finish approved deployment: %v, %+v", err, done)
	}

	second := f.deploy(t, "dev", "production")
	f.advance(time.Hour)
	a, got := f.mustApprove(t, "qa1", second, store.Rejected, apprComment("breaks checkout"))
	if a.Status != store.Rejected || a.Comment == nil || *a.Comment != "breaks checkout" {
		t.Errorf("rejection %+v, want rejected with its comment", a)
	}
	if got.Status != store.StatusFailed || got.FinishedAt == nil || !got.FinishedAt.Equal(f.clock.Now()) || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("rejected deployment %s finished %v updated %v, want failed, both now (%v)", got.Status, got.FinishedAt, got.UpdatedAt, f.clock.Now())
	}
	if stored := f.deployment(t, second.ID); stored.Status != store.StatusFailed {
		t.Errorf("stored status %s, want failed", stored.Status)
	}
	if _, sum := f.summary(t, "production", second.ID); sum.Status != store.SummaryRejected {
		t.Errorf("summary %s, want rejected", sum.Status)
	}
	failed, errs := f.s.CountDeployments(ctx, []store.DeploymentQuery{{ProjectID: 1, Status: apprStatusPtr(store.StatusFailed)}})
	mustNoErrs(t, errs)
	if failed[0] != 1 {
		t.Errorf("failed deployments by index %d, want 1", failed[0])
	}
}

func apprStatusPtr(s store.DeploymentStatus) *store.DeploymentStatus { return &s }

// Ensure that approveDeployment runs SPEC 6.4's checks in order, each with
// its code and message, and that a refused call stores nothing.
func TestApproveDeploymentChecks(t *testing.T) {
	t.Run("ErrEnvironmentNotProtected", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "staging")
		_, _, err := f.approve("maint", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotProtected)
	})
	t.Run("ErrNotProtectedComesBeforeSelfApproval", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "staging")
		_, _, err := f.approve("dev", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotProtected)
	})
	t.Run("ErrSelfApproval", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "qa1", "gated")
		_, _, err := f.approve("qa1", d, store.Approved)
		apprCheckErr(t, err, store.EForbidden, apprMsgSelf)
		if got := f.approvals(d.ID); len(got) != 0 {
			t.Errorf("approvals %+v, want none", got)
		}
	})
	t.Run("SelfRejectionIsAllowed", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "qa1", "gated")
		_, got := f.mustApprove(t, "qa1", d, store.Rejected)
		if got.Status != store.StatusFailed {
			t.Errorf("status %s, want failed", got.Status)
		}
	})
	t.Run("ErrSelfApprovalComesBeforeNoRules", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "norules")
		_, _, err := f.approve("dev", d, store.Approved)
		apprCheckErr(t, err, store.EForbidden, apprMsgSelf)
	})
	t.Run("ErrNoApprovalRules", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "norules")
		if d.Status != store.StatusRunning {
			t.Errorf("status %s, want running: no rules, no gate", d.Status)
		}
		_, _, err := f.approve("maint", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNoRules)
	})
	t.Run("ErrNotWaitingOnceApproved", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		for _, u := range []string{"qa1", "qa2", "maint"} {
			f.mustApprove(t, u, d, store.Approved)
		}
		_, _, err := f.approve("qamaint", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotWaiting)
		if got := len(f.approvals(d.ID)); got != 3 {
			t.Errorf("approvals %d, want 3", got)
		}
	})
	t.Run("ErrNotWaitingWhenNotBlocked", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		if _, err := f.s.UpdateDeploymentStatus(context.Background(), f.as["dev"], d.ID, store.StatusCanceled); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		_, _, err := f.approve("maint", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotWaiting)
	})
	t.Run("ErrNotWaitingAfterARejection", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		f.mustApprove(t, "qa1", d, store.Rejected)
		_, _, err := f.approve("maint", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotWaiting)
	})
	t.Run("ErrNotWaitingComesBeforeNoPermission", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		f.mustApprove(t, "qa1", d, store.Rejected)
		_, _, err := f.approve("rep", d, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotWaiting)
	})
	t.Run("ErrNoMatchingRule", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "qa1", "gated")
		for _, u := range []string{"rep", "dev"} {
			_, _, err := f.approve(u, d, store.Approved)
			apprCheckErr(t, err, store.EForbidden, apprMsgNoPermission)
		}
	})
	t.Run("ErrNoMatchingRuleComesBeforeRepresentedAs", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		_, _, err := f.approve("rep", d, store.Approved, apprAs("security"))
		apprCheckErr(t, err, store.EForbidden, apprMsgNoPermission)
	})
	t.Run("ErrRepresentedAsMatchesNoRule", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		_, _, err := f.approve("qamaint", d, store.Approved, apprAs("security"))
		apprCheckErr(t, err, store.EInvalid, "representedAs must be one of: qa-group, Maintainers")
		if got := f.approvals(d.ID); len(got) != 0 {
			t.Errorf("approvals %+v, want none", got)
		}
	})
	t.Run("AdminsMatchEveryRule", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		a, _ := f.mustApprove(t, "root", d, store.Approved, apprAs("Maintainers"))
		if a.RuleKey != "a40" {
			t.Errorf("rule %q, want a40", a.RuleKey)
		}
	})
}

// Ensure that who may call approveDeployment at all is decided before the
// approval checks: signed in, the deployment visible, the project readable.
func TestApproveDeploymentAccess(t *testing.T) {
	f := apprOpen(t)
	d := f.deploy(t, "dev", "gated")
	for _, tc := range []struct {
		name, user string
		id         int64
		status     store.ApprovalStatus
		wantCode   store.Code
		wantMsg    string
	}{
		{"ErrAnonymous", "anonymous", d.ID, store.Approved, store.EUnauthenticated, ""},
		{"ErrAnonymousBeforeInvalidInput", "anonymous", d.ID, "maybe", store.EUnauthenticated, ""},
		{"ErrUnknownDeployment", "maint", 999, store.Approved, store.ENotFound, "Deployment not found"},
		{"ErrOutsiderSeesNoDeployment", "outsider", d.ID, store.Approved, store.ENotFound, "Deployment not found"},
		{"ErrGuestCannotReadDeployments", "guest", d.ID, store.Approved, store.EForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.s.ApproveDeployment(context.Background(), f.as[tc.user], store.NewApproval{DeploymentID: tc.id, Status: tc.status})
			apprCheckErr(t, err, tc.wantCode, tc.wantMsg)
		})
	}
	if got := f.approvals(d.ID); len(got) != 0 {
		t.Errorf("approvals %+v, want none", got)
	}
}

// Ensure that approveDeployment validates its input before anything else.
func TestApproveDeploymentInput(t *testing.T) {
	f := apprOpen(t)
	d := f.deploy(t, "dev", "gated")
	t.Run("ErrStatus", func(t *testing.T) {
		_, _, err := f.approve("maint", d, "maybe")
		apprCheckErr(t, err, store.EInvalid, "")
	})
	t.Run("ErrStatusComesBeforeNotFound", func(t *testing.T) {
		_, _, err := f.s.ApproveDeployment(context.Background(), f.as["maint"], store.NewApproval{DeploymentID: 999, Status: "maybe"})
		apprCheckErr(t, err, store.EInvalid, "")
	})
	t.Run("ErrCommentTooLong", func(t *testing.T) {
		_, _, err := f.approve("maint", d, store.Approved, apprComment(strings.Repeat("é", 256)))
		apprCheckErr(t, err, store.EInvalid, "Comment is too long (maximum is 255 characters)")
		if got := f.approvals(d.ID); len(got) != 0 {
			t.Errorf("approvals %+v, want none", got)
		}
	})
	t.Run("CommentOf255Characters", func(t *testing.T) {
		comment := strings.Repeat("é", 255)
		a, _ := f.mustApprove(t, "maint", d, store.Approved, apprComment(comment))
		if a.Comment == nil || *a.Comment != comment {
			t.Errorf("comment %v, want the 255 characters given", a.Comment)
		}
	})
}

// Ensure that representedAs picks the rule an approval counts for among the
// rules the caller matches.
func TestApproveDeploymentRepresentedAs(t *testing.T) {
	for _, tc := range []struct {
		name, env, user string
		representedAs   *string
		wantRule        string
		wantAs          string
	}{
		{"FirstMatchingRuleWhenNotGiven", "gated", "qamaint", nil, "g20", "qa-group"},
		{"ChoosesTheRoleRule", "gated", "qamaint", ptr("Maintainers"), "a40", "Maintainers"},
		{"MatchesCaseInsensitively", "gated", "qamaint", ptr("maintainers"), "a40", "maintainers"},
		{"MatchesASubstring", "gated", "qamaint", ptr("QA"), "g20", "QA"},
		{"BlankMeansNotGiven", "gated", "qamaint", ptr("  "), "g20", "qa-group"},
		{"ExactDescriptionBeatsAnEarlierContainingOne", "tiers", "maint", ptr("Maintainers"), "a40", "Maintainers"},
		{"ContainingDescriptionInRuleOrder", "tiers", "maint", ptr("Developers"), "a30", "Developers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apprOpen(t)
			d := f.deploy(t, "dev", tc.env)
			a, _ := f.mustApprove(t, tc.user, d, store.Approved, func(in *store.NewApproval) { in.RepresentedAs = tc.representedAs })
			if a.RuleKey != tc.wantRule || a.RepresentedAs == nil || *a.RepresentedAs != tc.wantAs {
				t.Errorf("rule %q as %v, want %q as %q", a.RuleKey, a.RepresentedAs, tc.wantRule, tc.wantAs)
			}
			stored := f.approvals(d.ID)
			if len(stored) != 1 || stored[0].RuleKey != tc.wantRule {
				t.Errorf("stored %+v, want one approval under %s", stored, tc.wantRule)
			}
		})
	}
	t.Run("OneApprovalPerRule", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		f.mustApprove(t, "qamaint", d, store.Approved, apprAs("qa-group"))
		f.mustApprove(t, "qamaint", d, store.Approved, apprAs("Maintainers"))
		if pending, _ := f.summary(t, "gated", d.ID); pending != 1 {
			t.Errorf("pending %d, want 1 (one qa-group approval still missing)", pending)
		}
		if got := len(f.approvals(d.ID)); got != 2 {
			t.Errorf("approvals %d, want 2", got)
		}
	})
}

// Ensure that giving the same verdict twice changes nothing, and that the
// other verdict replaces the first.
func TestApproveDeploymentAgain(t *testing.T) {
	t.Run("SameStatusChangesNothing", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		first, _ := f.mustApprove(t, "qa1", d, store.Approved, apprComment("lgtm"))
		f.advance(time.Hour)
		again, got := f.mustApprove(t, "qa1", d, store.Approved, apprComment("still lgtm"))
		if again.Comment == nil || *again.Comment != "lgtm" || !again.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("second approval %+v, want the first unchanged (%+v)", again, first)
		}
		if got.Status != store.StatusBlocked || !got.UpdatedAt.Equal(d.UpdatedAt) {
			t.Errorf("deployment %s updated %v, want blocked and untouched", got.Status, got.UpdatedAt)
		}
		stored := f.approvals(d.ID)
		if len(stored) != 1 || *stored[0].Comment != "lgtm" {
			t.Errorf("stored %+v, want the one first approval", stored)
		}
	})
	t.Run("RejectionReplacesApproval", func(t *testing.T) {
		f := apprOpen(t)
		d := f.deploy(t, "dev", "gated")
		first, _ := f.mustApprove(t, "qa1", d, store.Approved, apprComment("lgtm"))
		f.advance(time.Hour)
		a, got := f.mustApprove(t, "qa1", d, store.Rejected, apprComment("found a bug"))
		if a.Status != store.Rejected || a.Comment == nil || *a.Comment != "found a bug" {
			t.Errorf("replaced approval %+v, want rejected with the new comment", a)
		}
		if !a.CreatedAt.Equal(first.CreatedAt) || a.RuleKey != first.RuleKey {
			t.Errorf("createdAt %v rule %q, want kept: %v %q", a.CreatedAt, a.RuleKey, first.CreatedAt, first.RuleKey)
		}
		stored := f.approvals(d.ID)
		if len(stored) != 1 || stored[0].Status != store.Rejected {
			t.Errorf("stored %+v, want one rejection", stored)
		}
		if got.Status != store.StatusFailed || got.FinishedAt == nil || !got.FinishedAt.Equal(f.clock.Now()) {
			t.Errorf("deployment %s finished %v, want failed now", got.Status, got.FinishedAt)
		}
	})
}

// Ensure that allowSelfApproval, set with updateProject, lets whoever
// triggered a deployment approve it.
func TestUpdateProjectAllowSelfApproval(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	d := f.deploy(t, "qa1", "gated")
	_, _, err := f.approve("qa1", d, store.Approved)
	apprCheckErr(t, err, store.EForbidden, apprMsgSelf)
	yes := true
	p, err := f.s.UpdateProject(ctx, f.as["maint"], store.ProjectUpdate{ProjectID: 1, AllowSelfApproval: &yes})
	if err != nil {
		t.Fatalf("allow self approval: %v", err)
	}
	if !p.AllowSelfApproval || p.Visibility != store.Private {
		t.Errorf("project %+v, want self approval allowed and still private", p)
	}
	a, _ := f.mustApprove(t, "qa1", d, store.Approved)
	if a.UserID != 3 {
		t.Errorf("approval by %d, want 3", a.UserID)
	}
}

// Ensure that updateProject needs a maintainer, validates visibility and
// keeps what it is not given.
func TestUpdateProject(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	public, secret := store.Public, store.Visibility("secret")
	for _, tc := range []struct {
		name, user string
		in         store.ProjectUpdate
		wantCode   store.Code
	}{
		{"ErrAnonymous", "anonymous", store.ProjectUpdate{ProjectID: 1, Visibility: &public}, store.EUnauthenticated},
		{"ErrOutsider", "outsider", store.ProjectUpdate{ProjectID: 1, Visibility: &public}, store.ENotFound},
		{"ErrDeveloper", "dev", store.ProjectUpdate{ProjectID: 1, Visibility: &public}, store.EForbidden},
		{"ErrUnknownProject", "root", store.ProjectUpdate{ProjectID: 99, Visibility: &public}, store.ENotFound},
		{"ErrVisibility", "maint", store.ProjectUpdate{ProjectID: 1, Visibility: &secret}, store.EInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.UpdateProject(ctx, f.as[tc.user], tc.in)
			apprCheckErr(t, err, tc.wantCode, "")
			if p := must(f.s.Projects(ctx, []int64{1}))[0]; p.Visibility != store.Private {
				t.Errorf("visibility %s, want private", p.Visibility)
			}
		})
	}
	t.Run("VisibilityOpensTheProject", func(t *testing.T) {
		p, err := f.s.UpdateProject(ctx, f.as["maint"], store.ProjectUpdate{ProjectID: 1, Visibility: &public})
		if err != nil {
			t.Fatalf("make public: %v", err)
		}
		if p.Visibility != store.Public || p.AllowSelfApproval || p.FullPath != "acme/app" {
			t.Errorf("project %+v, want public with everything else kept", p)
		}
		byPath := must(f.s.ProjectByPath(ctx, "acme/app"))
		if byPath == nil || byPath.Visibility != store.Public {
			t.Errorf("project by path %+v, want public", byPath)
		}
	})
	t.Run("NothingGivenChangesNothing", func(t *testing.T) {
		p, err := f.s.UpdateProject(ctx, f.as["root"], store.ProjectUpdate{ProjectID: 1})
		if err != nil || p.Visibility != store.Public {
			t.Errorf("got %+v, %v, want the project unchanged", p, err)
		}
	})
}

// Ensure that protectEnvironment refuses rules it could not enforce and
// callers below MAINTAINER, and stores nothing when it refuses.
func TestProtectEnvironmentValidation(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	role := func(l store.AccessLevel) store.Rule { return store.Rule{AccessLevel: l} }
	approval := func(r store.Rule, n int) store.ApprovalRule { return store.ApprovalRule{Rule: r, RequiredApprovals: n} }
	many := make([]store.Rule, 21)
	for i := range many {
		many[i] = store.Rule{UserID: int64(i%9 + 1)}
	}
	const msgOne = "Each rule must name exactly one of a user, a group or an access level"
	for _, tc := range []struct {
		name, user, env string
		deploy          []store.Rule
		approvals       []store.ApprovalRule
		wantCode        store.Code
		wantMsg         string
	}{
		{"ErrAnonymous", "anonymous", "prod", nil, nil, store.EUnauthenticated, ""},
		{"ErrOutsider", "outsider", "prod", nil, nil, store.ENotFound, ""},
		{"ErrGuest", "guest", "prod", nil, nil, store.EForbidden, ""},
		{"ErrDeveloper", "dev", "prod", nil, nil, store.EForbidden, ""},
		{"ErrName", "maint", "/prod", nil, nil, store.EInvalid, ""},
		{"ErrAlreadyProtected", "maint", "gated", nil, nil, store.EConflict, "Environment is already protected"},
		{"ErrRuleNamesNothing", "maint", "prod", []store.Rule{{}}, nil, store.EInvalid, msgOne},
		{"ErrRuleNamesTwo", "maint", "prod", nil, []store.ApprovalRule{approval(store.Rule{UserID: 2, GroupID: 20}, 1)}, store.EInvalid, msgOne},
		{"ErrUnknownUser", "maint", "prod", []store.Rule{{UserID: 12}}, nil, store.EInvalid, "User 12 not found"},
		{"ErrUnknownGroup", "maint", "prod", nil, []store.ApprovalRule{approval(store.Rule{GroupID: 21}, 1)}, store.EInvalid, "Group 21 not found"},
		{"ErrAccessLevelNotARole", "maint", "prod", []store.Rule{role(35)}, nil, store.EInvalid, ""},
		{"ErrNoApprovalsRequired", "maint", "prod", nil, []store.ApprovalRule{approval(role(store.Maintainer), 0)}, store.EInvalid, "requiredApprovals must be between 1 and 5"},
		{"ErrSixApprovalsRequired", "maint", "prod", nil, []store.ApprovalRule{approval(role(store.Maintainer), 6)}, store.EInvalid, "requiredApprovals must be between 1 and 5"},
		{"ErrDuplicateRule", "maint", "prod", []store.Rule{role(store.Developer), {GroupID: 20}, role(store.Developer)}, nil, store.EInvalid, "deployAccessLevels names access level 30 twice"},
		{"ErrDuplicateApprovalRule", "maint", "prod", nil, []store.ApprovalRule{approval(store.Rule{GroupID: 20}, 1), approval(store.Rule{GroupID: 20}, 2)}, store.EInvalid, "approvalRules names group 20 twice"},
		{"ErrTooManyRules", "maint", "prod", many, nil, store.EInvalid, "deployAccessLevels may have at most 20 rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.ProtectEnvironment(ctx, f.as[tc.user], 1, tc.env, tc.deploy, tc.approvals)
			apprCheckErr(t, err, tc.wantCode, tc.wantMsg)
			if pe := f.protection("prod"); pe != nil {
				t.Errorf("prod protected as %+v, want unprotected", pe)
			}
		})
	}
	if pe := f.protection("gated"); pe == nil || len(pe.ApprovalRules) != 2 {
		t.Errorf("gated protection %+v, want the imported one unchanged", pe)
	}
}

// Ensure that protecting a name with no environment yet gates the
// environment's first deployment, and that an admin needs no membership.
func TestProtectEnvironmentBeforeTheEnvironmentExists(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	pe, err := f.s.ProtectEnvironment(ctx, f.as["root"], 1, "future", nil,
		[]store.ApprovalRule{{Rule: store.Rule{UserID: 5}, RequiredApprovals: 1}})
	if err != nil {
		t.Fatalf("protect future: %v", err)
	}
	if pe.DeployAccessLevels == nil || len(pe.DeployAccessLevels) != 0 || pe.ProjectID != 1 || pe.Name != "future" {
		t.Errorf("protection %+v, want future of project 1 with an empty deploy list", pe)
	}
	if _, err := f.s.CreateDeployment(ctx, f.as["dev"], store.NewDeployment{ProjectID: 1, Environment: "future", SHA: sha(1), Ref: "main", Status: store.StatusRunning}); store.ErrorCode(err) != store.EForbidden {
		t.Errorf("developer deploys without deploy access levels: %v, want FORBIDDEN (maintainers only)", err)
	}
	d := f.deploy(t, "maint", "future")
	if d.Status != store.StatusBlocked {
		t.Errorf("status %s, want blocked", d.Status)
	}
	a, _ := f.mustApprove(t, "root", d, store.Approved)
	if a.RepresentedAs == nil || *a.RepresentedAs != "Maint" {
		t.Errorf("represented as %v, want the rule user's name", a.RepresentedAs)
	}
}

// Ensure that unprotectEnvironment needs a maintainer and that, once it
// succeeds, deployments to the name are no longer held for approval.
func TestProtectEnvironmentThenUnprotect(t *testing.T) {
	ctx := context.Background()
	f := apprOpen(t)
	for _, tc := range []struct {
		name, user, env string
		wantCode        store.Code
		wantMsg         string
	}{
		{"ErrAnonymous", "anonymous", "gated", store.EUnauthenticated, ""},
		{"ErrOutsider", "outsider", "gated", store.ENotFound, ""},
		{"ErrDeveloper", "dev", "gated", store.EForbidden, ""},
		{"ErrNotProtected", "maint", "staging", store.ENotFound, "Protected environment not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.UnprotectEnvironment(ctx, f.as[tc.user], 1, tc.env)
			apprCheckErr(t, err, tc.wantCode, tc.wantMsg)
			if f.protection("gated") == nil {
				t.Error("gated unprotected, want still protected")
			}
		})
	}
	t.Run("DeploymentsAreNoLongerBlocked", func(t *testing.T) {
		blocked := f.deploy(t, "dev", "gated")
		name, err := f.s.UnprotectEnvironment(ctx, f.as["maint"], 1, "gated")
		if err != nil || name != "gated" {
			t.Fatalf("unprotect: %q, %v, want gated", name, err)
		}
		if pe := f.protection("gated"); pe != nil {
			t.Errorf("protection %+v, want none", pe)
		}
		if d := f.deploy(t, "dev", "gated"); d.Status != store.StatusRunning {
			t.Errorf("status %s, want running as asked", d.Status)
		}
		_, _, err = f.approve("maint", blocked, store.Approved)
		apprCheckErr(t, err, store.EFailedPrecondition, apprMsgNotProtected)
		_, err = f.s.UnprotectEnvironment(ctx, f.as["maint"], 1, "gated")
		apprCheckErr(t, err, store.ENotFound, "Protected environment not found")
	})
}
