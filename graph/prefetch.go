package graph

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/store"
)

// prefetchDeployments loads what the query asks of every deployment of a
// page (its environment and protection, the rules' users and groups, its
// user, job, pipeline, approvals, last deployment, the caller's access…),
// each through its loader for the whole page at once: the items'
// own resolvers, which resolve their fields one after another, then find
// it in the loaders' caches instead of each waiting for its batch in turn.
// Only what the selected fields read is loaded. A failed load is left for
// the field's resolver to report where it belongs.
func prefetchDeployments(ctx context.Context, l *Loaders, page []*store.Deployment) {
	prefetchDeploymentFields(ctx, l, page, connectionNodeFields(ctx, "Deployment"))
}

// prefetchEnvironments does for a page of environments what
// prefetchDeployments does for deployments: their protections and last
// deployments, and what the query asks of those deployments.
func prefetchEnvironments(ctx context.Context, l *Loaders, page []*store.Environment) {
	if len(page) < 2 {
		return
	}
	fields := connectionNodeFields(ctx, "Environment")
	var round []func()
	if len(fields["protected"]) > 0 || len(fields["protection"]) > 0 {
		round = append(round, awaiting(l.Protections.LoadMany(ctx, environmentKeys(page))))
	}
	var last dataloader.ThunkMany[*store.Deployment]
	if asked := fields["lastDeployment"]; len(asked) > 0 {
		vars := graphql.GetOperationContext(ctx).Variables
		var keys []store.LastDeploymentKey
		for _, f := range asked {
			status, ok := deploymentStatusArg(f.ArgumentMap(vars)["status"])
			if !ok {
				continue
			}
			for _, e := range page {
				keys = append(keys, store.LastDeploymentKey{EnvironmentID: e.ID, Status: status})
			}
		}
		last = l.LastDeployments.LoadMany(ctx, keys)
		round = append(round, awaiting(last))
	}
	await(round)
	if last == nil {
		return
	}
	found, _ := last()
	deployments := make([]*store.Deployment, 0, len(found))
	for _, d := range found {
		if d != nil {
			deployments = append(deployments, d)
		}
	}
	prefetchDeploymentFields(ctx, l, deployments, subfields(ctx, fields["lastDeployment"], "Deployment"))
}

// deploymentStatusArg reads a DeploymentStatus argument as the query gave
// it (SUCCESS, …; its default applied), through the generated enum map
// (gqlgen.yml's enum_values), as the field's own arguments are read.
func deploymentStatusArg(v any) (store.DeploymentStatus, bool) {
	name, _ := v.(string)
	status, ok := unmarshalNDeploymentStatus2githubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatus[name]
	return status, ok
}

// prefetchDeploymentFields loads what fields read of each of deployments.
func prefetchDeploymentFields(ctx context.Context, l *Loaders, page []*store.Deployment, fields map[string][]graphql.CollectedField) {
	if len(page) < 2 {
		return
	}
	asked := func(name string) bool { return len(fields[name]) > 0 }
	var (
		protection = asked("pendingApprovalCount") || asked("approvalSummary") || asked("userPermissions")
		approvals  = asked("approvals") || asked("pendingApprovalCount") || asked("approvalSummary")
		access     = asked("approvalSummary") || asked("userPermissions")
		viewer     = ViewerFrom(ctx)
	)
	n := len(page)
	var (
		envs, users, jobs = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		projects, ids     = make([]int64, 0, n), make([]int64, 0, n)
		shas              = make([]string, 0, n)
		members           []store.MemberKey
		lastSuccess       = make([]store.LastDeploymentKey, 0, n)
	)
	for _, d := range page {
		envs, projects, ids, shas = append(envs, d.EnvironmentID), append(projects, d.ProjectID), append(ids, d.ID), append(shas, d.SHA)
		if d.UserID != 0 {
			users = append(users, d.UserID)
		}
		if d.DeployableID != 0 {
			jobs = append(jobs, d.DeployableID)
		}
		if d.Status == store.StatusSuccess {
			lastSuccess = append(lastSuccess, store.LastDeploymentKey{EnvironmentID: d.EnvironmentID, Status: store.StatusSuccess})
		}
	}
	// A page's deployments share a project or a few: one key each.
	slices.Sort(projects)
	projects = slices.Compact(projects)
	if viewer.Authenticated() {
		for _, id := range projects {
			members = append(members, store.MemberKey{ProjectID: id, UserID: viewer.UserID()})
		}
	}

	// Each round is asked for all together, then awaited: one batch per
	// loader, shared with the other items of an enclosing list.
	var (
		round       []func()
		envsOf      dataloader.ThunkMany[*store.Environment]
		jobsOf      dataloader.ThunkMany[*store.Job]
		approvalsOf dataloader.ThunkMany[[]store.Approval]
	)
	if asked("environment") || protection {
		envsOf = l.Environments.LoadMany(ctx, envs)
		round = append(round, awaiting(envsOf))
	}
	if asked("user") {
		round = append(round, awaiting(l.Users.LoadMany(ctx, users)))
	}
	if asked("project") || access {
		round = append(round, awaiting(l.Projects.LoadMany(ctx, projects)))
	}
	if access && viewer.Authenticated() {
		round = append(round, awaiting(l.MemberLevels.LoadMany(ctx, members)),
			awaiting(l.UserGroups.LoadMany(ctx, []int64{viewer.UserID()})))
	}
	if asked("commit") {
		round = append(round, awaiting(l.Commits.LoadMany(ctx, shas)))
	}
	if asked("isLastDeployment") {
		round = append(round, awaiting(l.LastDeployments.LoadMany(ctx, lastSuccess)))
	}
	if asked("deployable") {
		jobsOf = l.Jobs.LoadMany(ctx, jobs)
		round = append(round, awaiting(jobsOf))
	}
	if approvals {
		approvalsOf = l.Approvals.LoadMany(ctx, ids)
		round = append(round, awaiting(approvalsOf))
	}
	round = append(round, prefetchMergeRequests(ctx, l, page, fields["mergeRequests"])...)
	await(round)

	// The second round: what those objects lead to.
	round = round[:0]
	var protectionsOf dataloader.ThunkMany[*store.ProtectedEnvironment]
	if protection {
		found, _ := envsOf()
		protectionsOf = l.Protections.LoadMany(ctx, environmentKeys(found))
		round = append(round, awaiting(protectionsOf))
	}
	var pipelines, moreUsers []int64
	var commits []string
	if jobsOf != nil {
		job := subfields(ctx, fields["deployable"], "Job")
		found, _ := jobsOf()
		for _, j := range found {
			if j == nil {
				continue
			}
			if len(job["pipeline"]) > 0 && j.PipelineID != 0 {
				pipelines = append(pipelines, j.PipelineID)
			}
			if len(job["user"]) > 0 && j.UserID != 0 {
				moreUsers = append(moreUsers, j.UserID)
			}
			if len(job["commit"]) > 0 && j.CommitSHA != "" {
				commits = append(commits, j.CommitSHA)
			}
		}
	}
	if asked("approvals") && len(subfields(ctx, fields["approvals"], "DeploymentApproval")["user"]) > 0 {
		found, _ := approvalsOf()
		for _, as := range found {
			for _, a := range as {
				moreUsers = append(moreUsers, a.UserID)
			}
		}
	}
	if len(pipelines) > 0 {
		round = append(round, awaiting(l.Pipelines.LoadMany(ctx, pipelines)))
	}
	if len(moreUsers) > 0 {
		round = append(round, awaiting(l.Users.LoadMany(ctx, moreUsers)))
	}
	if len(commits) > 0 {
		round = append(round, awaiting(l.Commits.LoadMany(ctx, commits)))
	}
	await(round)

	// The third: who the approval rules of those protections name, for an
	// approval summary's rules.
	if protectionsOf == nil || len(subfields(ctx, fields["approvalSummary"], "ApprovalSummary")["rules"]) == 0 {
		return
	}
	var ruleUsers, ruleGroups []int64
	found, _ := protectionsOf()
	for _, pe := range found {
		if pe == nil {
			continue
		}
		for _, r := range pe.ApprovalRules {
			if r.UserID != 0 {
				ruleUsers = append(ruleUsers, r.UserID)
			}
			if r.GroupID != 0 {
				ruleGroups = append(ruleGroups, r.GroupID)
			}
		}
	}
	await([]func(){awaiting(l.Users.LoadMany(ctx, ruleUsers)), awaiting(l.Groups.LoadMany(ctx, ruleGroups))})
}

// prefetchMergeRequests loads, for each mergeRequests field asked of the
// page's deployments (each alias has its own arguments), every deployment's
// page of merge requests, and their counts if asked, in one batch each.
// The queries are kept (see Loaders.keepMergeRequests), so that each item's
// resolver asks its loader for the very key read here.
func prefetchMergeRequests(ctx context.Context, l *Loaders, page []*store.Deployment, fields []graphql.CollectedField) []func() {
	var waits []func()
	for _, f := range fields {
		args, err := fieldArgs(ctx, f, func() (map[string]any, error) {
			return argumentReader(ctx).field_Deployment_mergeRequests_args(ctx, f.ArgumentMap(graphql.GetOperationContext(ctx).Variables))
		})
		if err != nil {
			continue // each item's field reports it
		}
		asked, each := mergeRequestsAsked(args), make([]store.MergeRequestQuery, len(page))
		queries := make([]*store.MergeRequestQuery, len(page))
		for i, d := range page {
			each[i] = *asked
			each[i].ProjectID, each[i].DeploymentID = d.ProjectID, d.ID
			queries[i] = &each[i]
		}
		queries = l.keepMergeRequests(f.Field, queries)
		waits = append(waits, awaiting(l.MergeRequestPages.LoadMany(ctx, queries)))
		if len(subfields(ctx, []graphql.CollectedField{f}, "MergeRequestConnection")["count"]) > 0 {
			waits = append(waits, awaiting(l.MergeRequestCounts.LoadMany(ctx, queries)))
		}
	}
	return waits
}

// mergeRequestsAsked is the query of Deployment.mergeRequests, for no
// deployment yet, from the field's arguments as the generated code reads
// them and hands them to the resolver.
func mergeRequestsAsked(args map[string]any) *store.MergeRequestQuery {
	return mergeRequestQuery(arg[*store.MergeRequestState](args, "state"), arg[*model.MergeRequestOrderBy](args, "orderBy"),
		arg[*model.SortDirection](args, "sort"), arg[[]string](args, "labels"), arg[*string](args, "search"),
		arg[*string](args, "authorUsername"), arg[*string](args, "sourceBranch"), arg[*string](args, "targetBranch"),
		arg[*time.Time](args, "createdAfter"), arg[*time.Time](args, "createdBefore"),
		arg[*time.Time](args, "updatedAfter"), arg[*time.Time](args, "updatedBefore"), arg[*bool](args, "draft"),
		arg[*int](args, "first"), arg[*string](args, "after"), arg[*int](args, "last"), arg[*string](args, "before"))
}

// arg is a field's argument of type T, or T's zero value if it is absent
// or of another type: then the query made from it differs from the
// resolver's, which loads its own (see Loaders.keptMergeRequests).
func arg[T any](args map[string]any, name string) T {
	v, _ := args[name].(T)
	return v
}

// argumentReader reads field arguments as the generated code does, with the
// unmarshalers of their types, which need the operation and no resolver;
// the field contexts' Child functions make field contexts with it.
func argumentReader(ctx context.Context) *executionContext {
	return newExecutionContext(graphql.GetOperationContext(ctx), &executableSchema{}, nil)
}

// environmentKeys are the keys of envs, leaving out the missing ones.
func environmentKeys(envs []*store.Environment) []store.EnvironmentKey {
	keys := make([]store.EnvironmentKey, 0, len(envs))
	for _, e := range envs {
		if e != nil {
			keys = append(keys, e.Key())
		}
	}
	return keys
}

func await(round []func()) {
	for _, wait := range round {
		wait()
	}
}

// awaiting waits for a prefetch, whose results the loader keeps.
func awaiting[V any](t dataloader.ThunkMany[V]) func() {
	return func() { t() }
}

// connectionNodeFields are the fields the query selects of the nodes of
// the connection being resolved, by name, through both `nodes` and
// `edges { node }`, with fragments and @skip/@include applied.
// IMPORTANT: read the map only (see subfields).
func connectionNodeFields(ctx context.Context, nodeType string) map[string][]graphql.CollectedField {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return nil
	}
	connection := subfields(ctx, []graphql.CollectedField{fc.Field}, nodeType+"Connection")
	nodes := subfields(ctx, connection["nodes"], nodeType)
	viaEdges := subfields(ctx, subfields(ctx, connection["edges"], nodeType+"Edge")["node"], nodeType)
	if len(viaEdges) == 0 {
		return nodes
	}
	both := make(map[string][]graphql.CollectedField, len(nodes)+len(viaEdges))
	maps.Copy(both, nodes)
	for name, fields := range viaEdges {
		both[name] = slices.Concat(both[name], fields)
	}
	return both
}

// subfields are the fields selected under every one of fields, as an object
// of type typeName, by name. They depend on the query's variables only
// through directives: those of a document's selections without any are
// kept with the document, for the next operation on it (as
// collectedFields keeps an object's fields). IMPORTANT: read the map only.
func subfields(ctx context.Context, fields []graphql.CollectedField, typeName string) map[string][]graphql.CollectedField {
	if len(fields) == 0 {
		return nil
	}
	opCtx := graphql.GetOperationContext(ctx)
	key := subfieldsKey{n: len(fields), typeName: typeName}
	var document *fieldsMemo
	if opCtx.Doc != nil && len(fields) <= len(key.fields) {
		for i, f := range fields {
			key.fields[i] = f.Field
		}
		document = fieldsOfDocument(opCtx.Doc)
		if out, ok := document.subfields.get(key); ok {
			return out
		}
	}
	out := map[string][]graphql.CollectedField{}
	directives := false
	for _, f := range fields {
		var sel ast.SelectionSet = f.Selections
		directives = directives || document != nil && hasDirectives(opCtx.Doc, sel, nil)
		for _, sub := range graphql.CollectFields(opCtx, sel, []string{typeName}) {
			out[sub.Name] = append(out[sub.Name], sub)
		}
	}
	if document != nil && !directives {
		document.subfields.add(1, func(m map[subfieldsKey]map[string][]graphql.CollectedField) { m[key] = out })
	}
	return out
}

// subfieldsKey names the fields subfields is asked of (up to two: one
// name selected twice, merged) and the type.
type subfieldsKey struct {
	fields   [2]*ast.Field
	n        int
	typeName string
}
