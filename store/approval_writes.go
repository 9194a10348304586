package store

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

const (
	maxProtectionRules   = 20
	minRequiredApprovals = 1
	maxRequiredApprovals = 5
	maxApprovalComment   = 255

	msgNotProtected        = "This environment is not protected."
	msgSelfApproval        = "You cannot approve your own deployment."
	msgApprovalsUnset      = "Deployment approvals is not configured for this environment."
	msgNotWaiting          = "This deployment is not waiting for approvals."
	msgCannotApprove       = "You don't have permission to approve this deployment."
	msgAlreadyProtected    = "Environment is already protected"
	msgProtectionNotFound  = "Protected environment not found"
	msgRuleNamesOne        = "Each rule must name exactly one of a user, a group or an access level"
	msgRequiredApprovals   = "requiredApprovals must be between 1 and 5"
	msgApprovalCommentLong = "Comment is too long (maximum is 255 characters)"
)

// ProjectUpdate is updateProject's input; nil fields stay as they are.
type ProjectUpdate struct {
	ProjectID         int64
	Visibility        *Visibility
	AllowSelfApproval *bool
}

// NewApproval is approveDeployment's input. RepresentedAs picks, among the
// rules the caller matches, the one the approval counts for.
type NewApproval struct {
	DeploymentID  int64
	Status        ApprovalStatus
	Comment       *string
	RepresentedAs *string
}

// ProtectEnvironment protects an environment name of a project (SPEC 6.1):
// only deployAccessLevels may then deploy to it, and approvalRules must
// approve every new deployment. A name with no environment yet may be
// protected, so that the environment is protected from its first
// deployment. Changing a protection means unprotecting it first.
func (s *Store) ProtectEnvironment(ctx context.Context, v Viewer, projectID int64, name string, deployAccessLevels []Rule, approvalRules []ApprovalRule) (*ProtectedEnvironment, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	var pe *ProtectedEnvironment
	err := s.update(func(tx *bolt.Tx) error {
		if _, _, err := authorize(tx, v, projectID, Maintainer); err != nil {
			return err
		}
		if err := ValidateEnvironmentName(name); err != nil {
			return err
		}
		existing, err := protectionByName(tx, projectID, name)
		if err != nil {
			return fmt.Errorf("load protection: %w", err)
		}
		if existing != nil {
			return Errorf(EConflict, msgAlreadyProtected)
		}
		rec := &ProtectedEnvironment{
			ProjectID:          projectID,
			Name:               name,
			DeployAccessLevels: make([]Rule, 0, len(deployAccessLevels)),
			ApprovalRules:      make([]ApprovalRule, 0, len(approvalRules)),
		}
		if err := checkRules(tx, "deployAccessLevels", deployAccessLevels); err != nil {
			return err
		}
		rules := make([]Rule, len(approvalRules))
		for i, r := range approvalRules {
			rules[i] = r.Rule
		}
		if err := checkRules(tx, "approvalRules", rules); err != nil {
			return err
		}
		for _, r := range approvalRules {
			if r.RequiredApprovals < minRequiredApprovals || r.RequiredApprovals > maxRequiredApprovals {
				return invalid(msgRequiredApprovals)
			}
		}
		rec.DeployAccessLevels = append(rec.DeployAccessLevels, deployAccessLevels...)
		rec.ApprovalRules = append(rec.ApprovalRules, approvalRules...)
		if err := putProtectedEnvironment(tx, rec); err != nil {
			return fmt.Errorf("store protection: %w", err)
		}
		pe = rec
		return protectionChanged(tx, s.changesOf(tx), projectID, name)
	})
	if err != nil {
		return nil, internalContext(err, "protect environment %q of project %d", name, projectID)
	}
	return pe, nil
}

// protectionChanged records that the environment of that name, if there is
// one, reads differently now: its protection changed.
func protectionChanged(tx *bolt.Tx, ch *changes, projectID int64, name string) error {
	e, err := environmentByName(tx, projectID, name)
	if err != nil || e == nil {
		return err
	}
	ch.environment(EventUpdated, e)
	return nil
}

// checkRules refuses a rule list a protection could not enforce: a rule
// naming nothing or several things, an unknown user or group, a level that
// is not a role, the same rule twice, or more rules than anyone reviews.
func checkRules(tx *bolt.Tx, field string, rules []Rule) error {
	if len(rules) > maxProtectionRules {
		return invalid("%s may have at most %d rules", field, maxProtectionRules)
	}
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		named := 0
		for _, set := range []bool{r.UserID != 0, r.GroupID != 0, r.AccessLevel != NoAccess} {
			if set {
				named++
			}
		}
		if named != 1 {
			return invalid(msgRuleNamesOne)
		}
		switch {
		case r.UserID != 0:
			u, err := getByID[User](tx, bktUsers, r.UserID)
			if err != nil {
				return fmt.Errorf("load user %d: %w", r.UserID, err)
			}
			if u == nil {
				return invalid("User %d not found", r.UserID)
			}
		case r.GroupID != 0:
			g, err := getByID[Group](tx, bktGroups, r.GroupID)
			if err != nil {
				return fmt.Errorf("load group %d: %w", r.GroupID, err)
			}
			if g == nil {
				return invalid("Group %d not found", r.GroupID)
			}
		case !r.AccessLevel.Valid():
			return invalid("Access level %d is not a role (want 10, 20, 30, 40 or 50)", r.AccessLevel)
		}
		if seen[r.Key()] {
			return invalid("%s names %s twice", field, ruleLabel(r))
		}
		seen[r.Key()] = true
	}
	return nil
}

func ruleLabel(r Rule) string {
	switch {
	case r.UserID != 0:
		return fmt.Sprintf("user %d", r.UserID)
	case r.GroupID != 0:
		return fmt.Sprintf("group %d", r.GroupID)
	}
	return fmt.Sprintf("access level %d", r.AccessLevel)
}

// UnprotectEnvironment removes a protection and returns the name it
// protected. Approvals already given stay with their deployments: they are
// keyed by rule, so protecting the name again with the same rules counts
// them again.
func (s *Store) UnprotectEnvironment(ctx context.Context, v Viewer, projectID int64, name string) (string, error) {
	if err := requireUser(v); err != nil {
		return "", err
	}
	err := s.update(func(tx *bolt.Tx) error {
		if _, _, err := authorize(tx, v, projectID, Maintainer); err != nil {
			return err
		}
		pe, err := protectionByName(tx, projectID, name)
		if err != nil {
			return fmt.Errorf("load protection: %w", err)
		}
		if pe == nil {
			return Errorf(ENotFound, msgProtectionNotFound)
		}
		if err := tx.Bucket(bktProtected).Delete(join(u64(projectID), []byte(name))); err != nil {
			return err
		}
		return protectionChanged(tx, s.changesOf(tx), projectID, name)
	})
	if err != nil {
		return "", internalContext(err, "unprotect environment %q of project %d", name, projectID)
	}
	return name, nil
}

// UpdateProject changes a project's visibility or whether whoever triggers
// a deployment may also approve it.
func (s *Store) UpdateProject(ctx context.Context, v Viewer, in ProjectUpdate) (*Project, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	var p *Project
	err := s.update(func(tx *bolt.Tx) error {
		rec, _, err := authorize(tx, v, in.ProjectID, Maintainer)
		if err != nil {
			return err
		}
		changed := false
		if in.Visibility != nil {
			switch *in.Visibility {
			case Private, Internal, Public:
			default:
				return invalid("Visibility must be one of private, internal or public")
			}
			changed = changed || rec.Visibility != *in.Visibility
			rec.Visibility = *in.Visibility
		}
		if in.AllowSelfApproval != nil {
			changed = changed || rec.AllowSelfApproval != *in.AllowSelfApproval
			rec.AllowSelfApproval = *in.AllowSelfApproval
		}
		if changed {
			if err := putProject(tx, rec); err != nil {
				return fmt.Errorf("store project: %w", err)
			}
		}
		p = rec
		return nil
	})
	if err != nil {
		return nil, internalContext(err, "update project %d", in.ProjectID)
	}
	return p, nil
}

// ApproveDeployment records v's approval or rejection of a BLOCKED
// deployment under one of its environment's approval rules (SPEC 6.4). A
// rejection fails the deployment; the last required approval leaves it
// BLOCKED but free to run. Giving the same verdict again changes nothing;
// the other verdict replaces status and comment, and keeps createdAt (the
// time the user first answered, as GitLab keeps the record's created_at).
func (s *Store) ApproveDeployment(ctx context.Context, v Viewer, in NewApproval) (*Approval, *Deployment, error) {
	if err := requireUser(v); err != nil {
		return nil, nil, err
	}
	if in.Status != Approved && in.Status != Rejected {
		return nil, nil, invalid("Status must be one of approved or rejected")
	}
	if in.Comment != nil && utf8.RuneCountInString(*in.Comment) > maxApprovalComment {
		return nil, nil, invalid(msgApprovalCommentLong)
	}
	var (
		a *Approval
		d *Deployment
	)
	err := s.update(func(tx *bolt.Tx) error {
		now := s.Now()
		g, err := loadApprovalGate(tx, v, in)
		if err != nil {
			return err
		}
		rule, err := g.chooseRule(tx, in.RepresentedAs)
		if err != nil {
			return err
		}
		rec := &Approval{DeploymentID: g.d.ID, UserID: v.UserID(), RuleKey: rule.Key()}
		existing := g.approvalBy(rec.UserID, rec.RuleKey)
		switch {
		case existing != nil && existing.Status == in.Status:
			a, d = existing, g.d
			return nil
		case existing != nil:
			*rec = *existing
		default:
			rec.CreatedAt = now
			as, err := representedAs(tx, rule, in.RepresentedAs)
			if err != nil {
				return err
			}
			rec.RepresentedAs = &as
		}
		rec.Status, rec.Comment = in.Status, in.Comment
		if isBlank(rec.Comment) {
			rec.Comment = nil
		}
		if err := putApproval(tx, rec); err != nil {
			return fmt.Errorf("store approval: %w", err)
		}
		ch := s.changesOf(tx)
		if rec.Status == Rejected {
			g.d.Status, g.d.UpdatedAt = StatusFailed, now
			if err := saveDeployment(tx, ch, EventUpdated, g.env, g.d, now); err != nil {
				return fmt.Errorf("fail rejected deployment: %w", err)
			}
		} else {
			ch.deployment(EventUpdated, g.env, g.d) // its approvals changed
		}
		a, d = rec, g.d
		return nil
	})
	if err != nil {
		return nil, nil, internalContext(err, "approve deployment %d", in.DeploymentID)
	}
	return a, d, nil
}

// approvalGate is what deciding an approval needs: the deployment, where it
// goes, the rules guarding it, and the caller as a rule sees them.
type approvalGate struct {
	d         *Deployment
	env       *Environment
	approvals []Approval
	matching  []ApprovalRule // the environment's rules the caller matches, in order
}

// loadApprovalGate loads the deployment and runs SPEC 6.4's checks 1 to 5
// in order; the first failure wins.
func loadApprovalGate(tx *bolt.Tx, v Viewer, in NewApproval) (*approvalGate, error) {
	d, err := getByID[Deployment](tx, bktDeployments, in.DeploymentID)
	if err != nil {
		return nil, fmt.Errorf("load deployment: %w", err)
	}
	if d == nil {
		return nil, notFound("Deployment")
	}
	p, acc, err := authorize(tx, v, d.ProjectID, NoAccess)
	if ErrorCode(err) == ENotFound {
		return nil, notFound("Deployment")
	}
	if err != nil {
		return nil, err
	}
	if !acc.CanRead() {
		return nil, Errorf(EForbidden, "You need at least the %s role in this project to do this", roleName(Reporter))
	}
	env, err := getByID[Environment](tx, bktEnvironments, d.EnvironmentID)
	if err != nil {
		return nil, fmt.Errorf("load environment %d: %w", d.EnvironmentID, err)
	}
	if env == nil {
		return nil, fmt.Errorf("deployment %d has no environment %d", d.ID, d.EnvironmentID)
	}
	pe, err := protectionByName(tx, d.ProjectID, env.Name)
	if err != nil {
		return nil, fmt.Errorf("load protection: %w", err)
	}
	if pe == nil {
		return nil, Errorf(EFailedPrecondition, msgNotProtected)
	}
	if d.UserID == v.UserID() && in.Status == Approved && !p.AllowSelfApproval {
		return nil, Errorf(EForbidden, msgSelfApproval)
	}
	if !pe.RequiresApproval() {
		return nil, Errorf(EFailedPrecondition, msgApprovalsUnset)
	}
	approvals, err := approvalsOf(tx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("load approvals: %w", err)
	}
	if d.Status != StatusBlocked || PendingApprovalCount(pe.ApprovalRules, approvals) == 0 {
		return nil, Errorf(EFailedPrecondition, msgNotWaiting)
	}
	g := &approvalGate{d: d, env: env, approvals: approvals}
	caller := approverOf(tx, v, acc)
	for _, r := range pe.ApprovalRules {
		if r.Matches(caller) {
			g.matching = append(g.matching, r)
		}
	}
	if len(g.matching) == 0 {
		return nil, Errorf(EForbidden, msgCannotApprove)
	}
	return g, nil
}

// chooseRule is SPEC 6.4's check 6 and rule choice (pickRule).
func (g *approvalGate) chooseRule(tx *bolt.Tx, representedAs *string) (ApprovalRule, error) {
	rule, descs, ok, err := pickRule(g.matching, strOf(representedAs), func(r Rule) (string, error) {
		return describeRule(tx, r)
	})
	if err != nil {
		return ApprovalRule{}, err
	}
	if !ok {
		return ApprovalRule{}, invalid("representedAs must be one of: %s", strings.Join(descs, ", "))
	}
	return rule, nil
}

// representedAs is what a new approval records it was given as: the
// caller's words, or the chosen rule's description when they gave none, so
// that every approval says which user, group or role it counts for.
func representedAs(tx *bolt.Tx, rule ApprovalRule, given *string) (string, error) {
	if !isBlank(given) {
		return strings.TrimSpace(*given), nil
	}
	return describeRule(tx, rule.Rule)
}

func (g *approvalGate) approvalBy(userID int64, ruleKey string) *Approval {
	for i := range g.approvals {
		if a := &g.approvals[i]; a.UserID == userID && a.RuleKey == ruleKey {
			return a
		}
	}
	return nil
}

// describeRule is GitLab's access_level_description of a rule: the user's
// name, the group's name, or the roles it admits.
func describeRule(tx *bolt.Tx, r Rule) (string, error) {
	switch {
	case r.UserID != 0:
		u, err := getByID[User](tx, bktUsers, r.UserID)
		if err != nil || u == nil {
			return "", err
		}
		return u.Name, nil
	case r.GroupID != 0:
		g, err := getByID[Group](tx, bktGroups, r.GroupID)
		if err != nil || g == nil {
			return "", err
		}
		return g.Name, nil
	}
	return RoleDescription(r.AccessLevel), nil
}
