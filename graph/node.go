package graph

import (
	"context"
	"strings"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/store"
)

// node resolves a global ID, applying the same visibility as every other
// path to the object: unknown and invisible are both NOT_FOUND.
func node(ctx context.Context, id string) (model.Node, error) {
	typ, n, err := parseGlobalID(id)
	if err != nil {
		return nil, err
	}
	l := loadersFrom(ctx)
	switch typ {
	case typeProject:
		p, _, err := projectAccess(ctx, n)
		return nilIfErr(p, err)
	case typeEnvironment:
		return inProject(ctx, typ, l.Environments.Load(ctx, n), func(e *store.Environment) int64 { return e.ProjectID })
	case typeDeployment:
		return inProject(ctx, typ, l.Deployments.Load(ctx, n), func(d *store.Deployment) int64 { return d.ProjectID })
	case typeJob:
		return inProject(ctx, typ, l.Jobs.Load(ctx, n), func(j *store.Job) int64 { return j.ProjectID })
	case typePipeline:
		return inProject(ctx, typ, l.Pipelines.Load(ctx, n), func(p *store.Pipeline) int64 { return p.ProjectID })
	case typeMergeRequest:
		return inProject(ctx, typ, l.MergeRequests.Load(ctx, n), func(mr *store.MergeRequest) int64 { return mr.ProjectID })
	case typeUser:
		u, err := load(ctx, &l.Users, n)
		return found(typ, u, err)
	case typeGroup:
		g, err := load(ctx, &l.Groups, n)
		return found(typ, g, err)
	case typeAccessToken:
		t, err := load(ctx, &l.AccessTokens, n)
		if v := ViewerFrom(ctx); t != nil && !v.Admin() && t.UserID != v.UserID() {
			t = nil // another user's token does not exist for the caller
		}
		return found(typ, t, err)
	}
	return nil, errNotFound(typ)
}

// inProject returns a project's record once the caller may read the
// project's contents.
func inProject[T any](ctx context.Context, typ string, thunk func() (*T, error), projectOf func(*T) int64) (model.Node, error) {
	v, err := thunk()
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errNotFound(typ)
	}
	if _, _, err := readableProject(ctx, projectOf(v)); err != nil {
		if store.ErrorCode(err) == store.ENotFound {
			err = errNotFound(typ) // the same words as for an id that does not exist
		}
		return nil, err
	}
	return v, nil
}

func found[T any](typ string, v *T, err error) (model.Node, error) {
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errNotFound(typ)
	}
	return v, nil
}

func nilIfErr[T any](v *T, err error) (model.Node, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// projectByRef resolves a project reference: a number, a global ID, or a
// full path, as the REST API's :id.
func projectByRef(ctx context.Context, s *store.Store, ref string) (*store.Project, store.ProjectAccess, error) {
	id, p, err := resolveProjectRef(ctx, s, ref)
	if err != nil {
		return nil, store.ProjectAccess{}, err
	}
	v := ViewerFrom(ctx)
	p, level, err := readProjectAccess(ctx, s, v, id, p)
	if err == nil && p != nil {
		// The nested fields find both cached.
		l := loadersFrom(ctx)
		l.Projects.Prime(id, p)
		if v.Authenticated() {
			l.MemberLevels.Prime(store.MemberKey{ProjectID: id, UserID: v.UserID()}, level)
		}
	}
	return visibleProject(v, p, level, err)
}

// readProjectAccess reads a project (unless p is it already) and the
// viewer's membership level in it straight from the store. Root fields and
// a subscription's per-event check use it: they have no siblings to share
// a batch with, so waiting for some would only add latency.
func readProjectAccess(ctx context.Context, s *store.Store, v store.Viewer, id int64, p *store.Project) (*store.Project, store.AccessLevel, error) {
	if p == nil {
		found, err := s.Projects(ctx, []int64{id})
		if err != nil || found[0] == nil {
			return nil, store.NoAccess, err
		}
		p = found[0]
	}
	if !v.Authenticated() {
		return p, store.NoAccess, nil
	}
	levels, err := s.MemberLevels(ctx, []store.MemberKey{{ProjectID: id, UserID: v.UserID()}})
	if err != nil {
		return nil, store.NoAccess, err
	}
	return p, levels[0], nil
}

// refID reads a reference that may also be a path; 0 when the path names
// nothing.
func refID(ctx context.Context, ref, typ string, byPath func(string) (int64, error)) (int64, error) {
	ref = strings.TrimSpace(ref)
	if isNumber(ref) || strings.HasPrefix(ref, "gid://") {
		return parseID(ref, typ)
	}
	if ref == "" {
		return 0, errInvalid("A %s reference cannot be blank", strings.ToLower(typ))
	}
	return byPath(strings.Trim(ref, "/"))
}
