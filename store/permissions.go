package store

// AllowsDeploy reports whether a user may create, update or delete
// deployments on, or update, stop or delete, an environment under this
// protection: users matching a deploy access level, or MAINTAINER+ when the
// protection names none (reporters and up, when a rule names them). Without
// protection, every DEVELOPER+ may.
func (pe *ProtectedEnvironment) AllowsDeploy(acc ProjectAccess, a Approver) bool {
	switch {
	case pe == nil:
		return acc.AtLeast(Developer)
	case acc.Admin:
		return true
	case len(pe.DeployAccessLevels) == 0:
		return acc.AtLeast(Maintainer)
	case acc.Level < Reporter:
		// A deploy rule admits the project's members, never outsiders.
		return false
	}
	for _, r := range pe.DeployAccessLevels {
		if r.Matches(a) {
			return true
		}
	}
	return false
}

// RequiresApproval reports whether deployments under this protection wait
// for approvals.
func (pe *ProtectedEnvironment) RequiresApproval() bool {
	return pe != nil && len(pe.ApprovalRules) > 0
}

// DeploymentPermissions is what one caller may do with one deployment.
type DeploymentPermissions struct {
	Update, Destroy, Approve bool
}

// PermissionsFor decides what the caller (acc, a) may do with deployment d
// of project p, whose environment has protection pe (nil if none).
func PermissionsFor(acc ProjectAccess, a Approver, p *Project, d *Deployment, pe *ProtectedEnvironment) DeploymentPermissions {
	deployer := pe.AllowsDeploy(acc, a)
	perms := DeploymentPermissions{
		Update:  deployer && d.DeployableID == 0,
		Destroy: deployer && acc.AtLeast(Maintainer),
	}
	if pe.RequiresApproval() && d.Status == StatusBlocked && (d.UserID != a.UserID || p.AllowSelfApproval) {
		for _, r := range pe.ApprovalRules {
			if r.Matches(a) {
				perms.Approve = true
				break
			}
		}
	}
	return perms
}
