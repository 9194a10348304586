package graph

import (
	"context"

	"github.com/deploygraph/deploygraph/store"
)

// projectAccess loads a project and what the caller may do in it. A project
// the caller cannot see is NOT_FOUND, exactly like one that does not exist.
func projectAccess(ctx context.Context, projectID int64) (*store.Project, store.ProjectAccess, error) {
	l := loadersFrom(ctx)
	p, err := load(ctx, &l.Projects, projectID)
	if err != nil || p == nil {
		return visibleProject(ViewerFrom(ctx), p, store.NoAccess, err)
	}
	v := ViewerFrom(ctx)
	level := store.NoAccess
	if v.Authenticated() {
		level, err = load(ctx, &l.MemberLevels, store.MemberKey{ProjectID: p.ID, UserID: v.UserID()})
	}
	return visibleProject(v, p, level, err)
}

// visibleProject applies the visibility rule to a project read by any
// means (nil: there is none) and the caller's membership level in it.
func visibleProject(v store.Viewer, p *store.Project, level store.AccessLevel, err error) (*store.Project, store.ProjectAccess, error) {
	if err != nil {
		return nil, store.ProjectAccess{}, err
	}
	if p == nil {
		return nil, store.ProjectAccess{}, errNotFound("Project")
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
	if err == nil {
		err = mayReadContents(acc)
	}
	if err != nil {
		return nil, acc, err
	}
	return p, acc, nil
}

// mayReadContents refuses those who see a project but not its contents.
func mayReadContents(acc store.ProjectAccess) error {
	if !acc.CanRead() {
		return errForbidden()
	}
	return nil
}

// approver describes the caller for approval and deploy rules in a project.
func approver(ctx context.Context, acc store.ProjectAccess) (store.Approver, error) {
	v := ViewerFrom(ctx)
	if !v.Authenticated() {
		return store.Approver{}, nil
	}
	groups, err := load(ctx, &loadersFrom(ctx).UserGroups, v.UserID())
	return store.Approver{UserID: v.UserID(), Admin: v.Admin(), Level: acc.Level, GroupIDs: groups}, err
}
