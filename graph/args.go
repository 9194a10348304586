package graph

import (
	"context"
	"time"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/store"
)

var deploymentOrders = map[model.DeploymentOrderBy]store.DeploymentOrder{
	model.DeploymentOrderByID:         store.OrderByID,
	model.DeploymentOrderByIid:        store.OrderByIID,
	model.DeploymentOrderByCreatedAt:  store.OrderByCreatedAt,
	model.DeploymentOrderByUpdatedAt:  store.OrderByUpdatedAt,
	model.DeploymentOrderByFinishedAt: store.OrderByFinishedAt,
	model.DeploymentOrderByRef:        store.OrderByRef,
}

var mergeRequestOrders = map[model.MergeRequestOrderBy]store.MergeRequestOrder{
	model.MergeRequestOrderByCreatedAt: store.MROrderByCreatedAt,
	model.MergeRequestOrderByUpdatedAt: store.MROrderByUpdatedAt,
	model.MergeRequestOrderByMergedAt:  store.MROrderByMergedAt,
	model.MergeRequestOrderByTitle:     store.MROrderByTitle,
}

func pageArgs(first *int, after *string, last *int, before *string) store.PageArgs {
	return store.PageArgs{First: first, After: after, Last: last, Before: before}
}

// deploymentQuery turns the DeploymentFilters arguments into a store query.
func deploymentQuery(orderBy *model.DeploymentOrderBy, sort *model.SortDirection,
	updatedAfter, updatedBefore, finishedAfter, finishedBefore *time.Time,
	status *store.DeploymentStatus, statuses []store.DeploymentStatus, ref, sha *string,
	first *int, after *string, last *int, before *string) *store.DeploymentQuery {
	q := &store.DeploymentQuery{
		OrderBy:      store.OrderByID,
		UpdatedAfter: updatedAfter, UpdatedBefore: updatedBefore,
		FinishedAfter: finishedAfter, FinishedBefore: finishedBefore,
		Status: status, Statuses: statuses, Ref: ref, SHA: sha,
		Page: pageArgs(first, after, last, before),
	}
	if orderBy != nil {
		q.OrderBy = deploymentOrders[*orderBy]
	}
	q.Desc = sort != nil && *sort == model.SortDirectionDesc
	return q
}

// mergeRequestQuery turns the MergeRequestFilters arguments into a store
// query.
func mergeRequestQuery(state *store.MergeRequestState, orderBy *model.MergeRequestOrderBy, sort *model.SortDirection,
	labels []string, search, authorUsername, sourceBranch, targetBranch *string,
	createdAfter, createdBefore, updatedAfter, updatedBefore *time.Time, draft *bool,
	first *int, after *string, last *int, before *string) *store.MergeRequestQuery {
	q := &store.MergeRequestQuery{
		State: state, OrderBy: store.MROrderByCreatedAt, Labels: labels, Search: search,
		AuthorUsername: authorUsername, SourceBranch: sourceBranch, TargetBranch: targetBranch,
		CreatedAfter: createdAfter, CreatedBefore: createdBefore,
		UpdatedAfter: updatedAfter, UpdatedBefore: updatedBefore, Draft: draft,
		Page: pageArgs(first, after, last, before),
	}
	if orderBy != nil {
		q.OrderBy = mergeRequestOrders[*orderBy]
	}
	q.Asc = sort != nil && *sort == model.SortDirectionAsc
	return q
}

// deploymentConnection pages through deployments; the count is read only if
// the client asks for it.
func deploymentConnection(ctx context.Context, q *store.DeploymentQuery) (*model.DeploymentConnection, error) {
	l := loadersFrom(ctx)
	page, err := load(ctx, &l.DeploymentPages, q)
	if err != nil {
		return nil, err
	}
	prefetchDeployments(ctx, l, page.Items)
	return model.NewDeploymentConnection(page, func(ctx context.Context) (int, error) {
		return load(ctx, &l.DeploymentCounts, q)
	}), nil
}

func mergeRequestConnection(ctx context.Context, q *store.MergeRequestQuery) (*model.MergeRequestConnection, error) {
	l := loadersFrom(ctx)
	page, err := load(ctx, &l.MergeRequestPages, q)
	if err != nil {
		return nil, err
	}
	return model.NewMergeRequestConnection(page, func(ctx context.Context) (int, error) {
		return load(ctx, &l.MergeRequestCounts, q)
	}), nil
}

// ruleSubject loads who a rule names and how GitLab describes it.
func ruleSubject(ctx context.Context, r store.Rule) (user *store.User, group *store.Group, level *store.AccessLevel, description string, err error) {
	l := loadersFrom(ctx)
	switch {
	case r.UserID != 0:
		if user, err = load(ctx, &l.Users, r.UserID); user != nil {
			description = user.Name
		}
	case r.GroupID != 0:
		if group, err = load(ctx, &l.Groups, r.GroupID); group != nil {
			description = group.Name
		}
	default:
		lv := r.AccessLevel
		level, description = &lv, store.RoleDescription(lv)
	}
	return user, group, level, description, err
}

// protectionOf loads the protection of a deployment's environment (nil when
// unprotected).
func protectionOf(ctx context.Context, d *store.Deployment) (*store.ProtectedEnvironment, error) {
	l := loadersFrom(ctx)
	env, err := load(ctx, &l.Environments, d.EnvironmentID)
	if err != nil || env == nil {
		return nil, err
	}
	return load(ctx, &l.Protections, env.Key())
}

func approvalRules(pe *store.ProtectedEnvironment) []store.ApprovalRule {
	if pe == nil {
		return nil
	}
	return pe.ApprovalRules
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// required turns a missing record behind a non-null field into an error.
func required[T any](v *T, err error) (*T, error) {
	if err == nil && v == nil {
		return nil, errNotFound("Record")
	}
	return v, err
}
