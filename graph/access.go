package graph

import (
	"context"

	"github.com/deploygraph/deploygraph/store"
)

// projectAccess loads a project and what the caller may do in it. A project
// the caller cannot see is NOT_FOUND, exactly like one that does not exist.
func projectAccess(ctx context.Context, projectID int64) (*store.Project, store.ProjectAccess, error) {
	l := loadersFrom(ctx)
	p, err := load(ctx, l.Projects, projectID)
	if err != nil {
		return nil, store.ProjectAccess{}, err
	}
	if p == nil {
		return nil, store.ProjectAccess{}, errNotFound("Project")
	}
	v := ViewerFrom(ctx)
	level := store.NoAccess
	if v.Authenticated() {
		if level, err = load(ctx, l.MemberLevels, store.MemberKey{ProjectID: p.ID, UserID: v.UserID()}); err != nil {
			return nil, store.ProjectAccess{}, err
		}
	}
	acc := v.Access(p, level)
	if !acc.CanSee() {
		return nil, acc, errNotFound("Project")
	}
	return p, acc, nil
}

// readableProject is projectAccess for reading the project's contents:
// FORBIDDEN to those who see only the project itself.
func readableProject(ctx context.Context, projectID int64) (*store.Project, store.ProjectAccess, error) {
	p, acc, err := projectAccess(ctx, projectID)
	if err == nil && !acc.CanRead() {
		return nil, acc, errForbidden()
	}
	return p, acc, err
}

// approver describes the caller for approval and deploy rules in a project.
func approver(ctx context.Context, acc store.ProjectAccess) (store.Approver, error) {
	v := ViewerFrom(ctx)
	if !v.Authenticated() {
		return store.Approver{}, nil
	}
	groups, err := load(ctx, loadersFrom(ctx).UserGroups, v.UserID())
	return store.Approver{UserID: v.UserID(), Admin: v.Admin(), Level: acc.Level, GroupIDs: groups}, err
}
