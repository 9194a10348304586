package graph

//go:generate go run ./generate

import (
	"sync/atomic"

	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

// Resolver answers GraphQL fields from the store. Resolvers stay thin: they
// parse arguments, check access, and load through the request's dataloaders.
type Resolver struct {
	Store *store.Store
	// Metrics, when set, count active subscriptions and dataloader batches.
	Metrics *observe.Metrics

	// streams counts the subscriptions still delivering (see Drain).
	streams atomic.Int64
}

// loaders are fresh dataloaders for one request or one event.
func (r *Resolver) loaders() *Loaders { return NewLoaders(r.Store, r.Metrics.ObserveBatch) }

// resolverRoot is the ResolverRoot the handler runs: it hands out the same
// resolver of each type every time, where the getters gqlgen writes (on
// Resolver, in schema.resolvers.go) make one anew on each call, and a page
// of 50 deployments calls them some 250 times.
type resolverRoot struct {
	accessRule          accessRuleResolver
	accessToken         accessTokenResolver
	approvalRule        approvalRuleResolver
	approvalRuleSummary approvalRuleSummaryResolver
	deployment          deploymentResolver
	deploymentApproval  deploymentApprovalResolver
	deploymentEvent     deploymentEventResolver
	environment         environmentResolver
	environmentEvent    environmentEventResolver
	job                 jobResolver
	mergeRequest        mergeRequestResolver
	mutation            mutationResolver
	pipeline            pipelineResolver
	project             projectResolver
	query               queryResolver
	subscription        subscriptionResolver
}

func newResolverRoot(r *Resolver) *resolverRoot {
	return &resolverRoot{
		accessRule: accessRuleResolver{r}, accessToken: accessTokenResolver{r},
		approvalRule: approvalRuleResolver{r}, approvalRuleSummary: approvalRuleSummaryResolver{r},
		deployment: deploymentResolver{r}, deploymentApproval: deploymentApprovalResolver{r},
		deploymentEvent: deploymentEventResolver{r}, environment: environmentResolver{r},
		environmentEvent: environmentEventResolver{r}, job: jobResolver{r},
		mergeRequest: mergeRequestResolver{r}, mutation: mutationResolver{r},
		pipeline: pipelineResolver{r}, project: projectResolver{r},
		query: queryResolver{r}, subscription: subscriptionResolver{r},
	}
}

func (rr *resolverRoot) AccessRule() AccessRuleResolver     { return &rr.accessRule }
func (rr *resolverRoot) AccessToken() AccessTokenResolver   { return &rr.accessToken }
func (rr *resolverRoot) ApprovalRule() ApprovalRuleResolver { return &rr.approvalRule }
func (rr *resolverRoot) ApprovalRuleSummary() ApprovalRuleSummaryResolver {
	return &rr.approvalRuleSummary
}
func (rr *resolverRoot) Deployment() DeploymentResolver { return &rr.deployment }
func (rr *resolverRoot) DeploymentApproval() DeploymentApprovalResolver {
	return &rr.deploymentApproval
}
func (rr *resolverRoot) DeploymentEvent() DeploymentEventResolver   { return &rr.deploymentEvent }
func (rr *resolverRoot) Environment() EnvironmentResolver           { return &rr.environment }
func (rr *resolverRoot) EnvironmentEvent() EnvironmentEventResolver { return &rr.environmentEvent }
func (rr *resolverRoot) Job() JobResolver                           { return &rr.job }
func (rr *resolverRoot) MergeRequest() MergeRequestResolver         { return &rr.mergeRequest }
func (rr *resolverRoot) Mutation() MutationResolver                 { return &rr.mutation }
func (rr *resolverRoot) Pipeline() PipelineResolver                 { return &rr.pipeline }
func (rr *resolverRoot) Project() ProjectResolver                   { return &rr.project }
func (rr *resolverRoot) Query() QueryResolver                       { return &rr.query }
func (rr *resolverRoot) Subscription() SubscriptionResolver         { return &rr.subscription }
