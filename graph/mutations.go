package graph

import (
	"context"

	"github.com/deploygraph/deploygraph/store"
)

// writer is the viewer of a mutation: anonymous callers are refused before
// anything else is looked at.
func writer(ctx context.Context) (store.Viewer, error) {
	v := ViewerFrom(ctx)
	if !v.Authenticated() {
		return v, store.Errorf(store.EUnauthenticated, "You must be signed in to do this")
	}
	return v, nil
}

// projectRef resolves a projectId argument (number, global ID or full path)
// to a project id; an unknown path is NOT_FOUND.
func (r *Resolver) projectRef(ctx context.Context, ref string) (int64, error) {
	id, _, err := resolveProjectRef(ctx, r.Store, ref)
	return id, err
}

// resolveProjectRef reads a project reference: a number, a global ID, or a
// full path, as the REST API's :id. A path is looked up, and its project
// returned too; one that names nothing is NOT_FOUND.
func resolveProjectRef(ctx context.Context, s *store.Store, ref string) (int64, *store.Project, error) {
	var p *store.Project
	id, err := refID(ctx, ref, typeProject, func(path string) (int64, error) {
		found, err := s.ProjectByPath(ctx, path)
		if found == nil || err != nil {
			return 0, err
		}
		p = found
		return p.ID, nil
	})
	if err == nil && id == 0 {
		err = errNotFound("Project")
	}
	return id, p, err
}

// parseIDs reads a list of references to objects of one type.
func parseIDs(refs []string, typ string) ([]int64, error) {
	ids := make([]int64, len(refs))
	for i, ref := range refs {
		id, err := parseID(ref, typ)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

func deref[T any](p *T, fallback T) T {
	if p == nil {
		return fallback
	}
	return *p
}

// nonNil gives a list field an empty list rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ruleInput reads a rule input: exactly one of a user, a group or an access
// level (the store checks the "exactly one").
func ruleInput(userID, groupID *string, level *store.AccessLevel) (store.Rule, error) {
	var r store.Rule
	var err error
	if userID != nil {
		if r.UserID, err = parseID(*userID, typeUser); err != nil {
			return r, err
		}
	}
	if groupID != nil {
		if r.GroupID, err = parseID(*groupID, typeGroup); err != nil {
			return r, err
		}
	}
	if level != nil {
		r.AccessLevel = *level
	}
	return r, nil
}
