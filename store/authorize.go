package store

import (
	bolt "go.etcd.io/bbolt"
)

// System is the viewer for writes the server makes on its own behalf
// (bootstrap, background sweeps, test set-up): an administrator.
var System = Viewer{User: &User{Username: "system", Name: "System", State: UserActive, Admin: true}}

// requireUser refuses anonymous callers; every write needs a user, and this
// check comes before any other.
func requireUser(v Viewer) error {
	if !v.Authenticated() {
		return Errorf(EUnauthenticated, "You must be signed in to do this")
	}
	return nil
}

// requireAdmin allows only administrators.
func requireAdmin(v Viewer) error {
	if err := requireUser(v); err != nil {
		return err
	}
	if !v.Admin() {
		return Errorf(EForbidden, "Only administrators may do this")
	}
	return nil
}

// authorize loads a project for a write by v that needs role `need`: a
// project v cannot see is not found, one v sees without the role is
// forbidden.
func authorize(tx *bolt.Tx, v Viewer, projectID int64, need AccessLevel) (*Project, ProjectAccess, error) {
	if err := requireUser(v); err != nil {
		return nil, ProjectAccess{}, err
	}
	p, err := getByID[Project](tx, bktProjects, projectID)
	if err != nil {
		return nil, ProjectAccess{}, err
	}
	if p == nil {
		return nil, ProjectAccess{}, notFound("Project")
	}
	acc := v.Access(p, memberLevel(tx, p.ID, v.UserID()))
	if !acc.CanSee() {
		return nil, acc, notFound("Project")
	}
	if !acc.AtLeast(need) {
		return nil, acc, Errorf(EForbidden, "You need at least the %s role in this project to do this", roleName(need))
	}
	return p, acc, nil
}

func roleName(l AccessLevel) string {
	switch l {
	case Guest:
		return "Guest"
	case Reporter:
		return "Reporter"
	case Developer:
		return "Developer"
	case Maintainer:
		return "Maintainer"
	case Owner:
		return "Owner"
	}
	return "Member"
}

// approverOf describes v for rule matching inside a transaction.
func approverOf(tx *bolt.Tx, v Viewer, acc ProjectAccess) Approver {
	if !v.Authenticated() {
		return Approver{}
	}
	return Approver{UserID: v.UserID(), Admin: v.Admin(), Level: acc.Level, GroupIDs: userGroupIDs(tx, v.UserID())}
}

// protectionByName loads the protection of an environment name, or nil.
func protectionByName(tx *bolt.Tx, projectID int64, name string) (*ProtectedEnvironment, error) {
	var pe ProtectedEnvironment
	ok, err := getJSON(tx, bktProtected, join(u64(projectID), []byte(name)), &pe)
	if !ok || err != nil {
		return nil, err
	}
	return &pe, nil
}

// requireDeployAccess checks the protected-environment rule (SPEC 6.1) for
// deploying to, or changing, the environment named name.
func requireDeployAccess(tx *bolt.Tx, v Viewer, acc ProjectAccess, projectID int64, name string) (*ProtectedEnvironment, error) {
	pe, err := protectionByName(tx, projectID, name)
	if err != nil {
		return nil, err
	}
	if !pe.AllowsDeploy(acc, approverOf(tx, v, acc)) {
		return pe, Errorf(EForbidden, "You are not allowed to deploy to the protected environment %s", name)
	}
	return pe, nil
}
