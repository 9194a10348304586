package main

import (
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/graph"
)

// pageQuery asks for a page of deployments with every nested lookup.
const pageQuery = `query($first: Int!) { project(id: "acme/app") { deployments(first: $first) { count nodes {
  id iid environment { name tier } user { username } project { fullPath }
  deployable { name stage status user { username } commit { title } pipeline { id status } }
  commit { sha title } approvals { status user { username } }
  pendingApprovalCount approvalSummary { status rules { accessLevelDescription approvedCount canApprove } }
  isLastDeployment userPermissions { updateDeployment destroyDeployment approveDeployment }
  mergeRequests(first: 5) { count nodes { iid title author { username } } }
} } } }`

// Ensure that a page of deployments with all its nested objects costs a
// fixed number of store reads, whatever the page size.
func TestNestedLookupsAreBatched(t *testing.T) {
	// The test proves structure, not timing: a generous quiet period and
	// cap keep a loaded machine (the race detector, a busy CI) from
	// splitting a level into two reads.
	quiet, wait := graph.BatchQuiet, graph.BatchWait
	graph.BatchQuiet, graph.BatchWait = 20*time.Millisecond, time.Second
	t.Cleanup(func() { graph.BatchQuiet, graph.BatchWait = quiet, wait })
	s := startServer(t, fixtureDoc(120))
	token := s.tokenFor(t, userMaintainer)
	reads := func(first int) int64 {
		best := int64(-1)
		// The fewest of a few runs: a batch that the scheduler split is
		// timing, not a per-parent read.
		for range 5 {
			before := s.store.Reads()
			data := s.mustQuery(t, token, pageQuery, map[string]any{"first": first})
			n := s.store.Reads() - before
			if got := len(list(data, "project.deployments.nodes")); got != first {
				t.Fatalf("page of %d returned %d deployments", first, got)
			}
			if best < 0 || n < best {
				best = n
			}
		}
		return best
	}
	small, large := reads(5), reads(50)
	if large != small {
		t.Errorf("store reads: %d for 5 deployments, %d for 50: nested lookups are not batched", small, large)
	}
	if small > 25 {
		t.Errorf("store reads for one page: %d, want at most 25 (one per nesting level and loader)", small)
	}
}

// A page prefetches, for all of its items at once, what the query asks of
// them, so that no item waits for a batch of its own: its lookups are
// sent at once, and none of the page's batches waits for the items of a
// list (deploygraph_dataloader_waits_total stays where it was).
func TestPagesPrefetchWhatTheirItemsAsk(t *testing.T) {
	s := startServer(t, fixtureDoc(120))
	token := s.tokenFor(t, userMaintainer)
	waits := func() float64 { return metricSum(t, s.url, "deploygraph_dataloader_waits_total") }
	tests := []struct{ name, query string }{{
		"deployments", `{ project(id: "acme/app") { deployments(first: 20) { nodes {
  id environment { name tier } user { username } project { fullPath } commit { sha }
  deployable { name user { username } commit { title } pipeline { id status } }
  approvals { status user { username } } pendingApprovalCount
  approvalSummary { status rules { accessLevelDescription approvedCount canApprove user { username } group { name } } }
  isLastDeployment userPermissions { updateDeployment destroyDeployment approveDeployment }
  mergeRequests(first: 5) { count nodes { iid title } } titled: mergeRequests(orderBy: TITLE, sort: ASC, labels: ["backend"]) { nodes { iid } }
} edges { node { environment { name } ...on Deployment { user { name } mergeRequests(first: 5) { count } } } } } } }`,
	}, {
		"environments", `{ project(id: "acme/app") { environments(first: 20) { nodes {
  name protected lastDeployment { status user { username } deployable { name pipeline { id } } }
  failed: lastDeployment(status: FAILED) { status environment { name } }
} } } }`,
	}, {
		// The check can fail: the authors of an item's merge requests are
		// not prefetched.
		"control", `{ project(id: "acme/app") { deployments(first: 20) { nodes { mergeRequests { nodes { author { username } } } } } } }`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := waits()
			s.mustQuery(t, token, tt.query, nil)
			waited := waits() - before
			if tt.name == "control" {
				if waited == 0 {
					t.Fatal("the authors of a page's merge requests did not wait for the page's items: the metric counts nothing")
				}
				return
			}
			if waited != 0 {
				t.Fatalf("%v batches waited for the items of a list, want none", waited)
			}
		})
	}
}

// A page's merge requests, prefetched for all of its deployments at once,
// answer as each deployment's own field does, whatever the arguments
// (literal or variables, each alias its own), and no batch of the page
// waits for its items.
func TestPrefetchedMergeRequestsAnswerAsEachDeployment(t *testing.T) {
	s := startServer(t, fixtureDoc(120))
	token := s.tokenFor(t, userMaintainer)
	const fields = `merged: mergeRequests(state: MERGED, orderBy: TITLE, sort: ASC, first: 5) { count nodes { iid } }
  none: mergeRequests(state: OPENED, first: 5) { count nodes { iid } }
  first: mergeRequests(first: 1) { nodes { iid } pageInfo { hasNextPage } }
  last: mergeRequests(last: 1, labels: ["backend"], draft: false) { nodes { iid } }
  found: mergeRequests(search: "MR 21", authorUsername: "dev", first: 5) { nodes { iid } }
  branch: mergeRequests(sourceBranch: $branch, targetBranch: "main", first: 5) { nodes { iid } }
  window: mergeRequests(createdAfter: $after, updatedBefore: $before, orderBy: UPDATED_AT, first: 5) { nodes { iid } }`
	vars := map[string]any{"branch": "topic-7", "after": at(106), "before": at(160)}
	page := `query($branch: String, $after: Time, $before: Time) { project(id: "acme/app") {
  deployments(first: 20, orderBy: ID, sort: ASC) { nodes { iid ` + fields + ` } } } }`
	one := `query($iid: Int!, $branch: String, $after: Time, $before: Time) { project(id: "acme/app") {
  deployment(iid: $iid) { iid ` + fields + ` } } }`

	waits := func() float64 { return metricSum(t, s.url, "deploygraph_dataloader_waits_total") }
	before := waits()
	nodes := list(s.mustQuery(t, token, page, vars), "project.deployments.nodes")
	if waited := waits() - before; waited != 0 {
		t.Errorf("%v batches of the page waited for its items, want none: its merge requests were not prefetched", waited)
	}
	if len(nodes) != 20 {
		t.Fatalf("%d deployments, want 20", len(nodes))
	}
	narrowed := map[string]bool{}
	for _, d := range nodes {
		vars := maps.Clone(vars)
		vars["iid"] = get(d, "iid")
		own := get(s.mustQuery(t, token, one, vars), "project.deployment")
		if !reflect.DeepEqual(d, own) {
			t.Fatalf("deployment %v in a page:\n%v\nasked alone:\n%v", get(d, "iid"), d, own)
		}
		for _, alias := range []string{"branch", "window", "found"} {
			if n := len(list(d, alias+".nodes")); n > 0 && n < len(list(d, "merged.nodes")) {
				narrowed[alias] = true
			}
		}
	}
	if len(narrowed) < 2 {
		t.Fatalf("only %v narrowed a deployment's merge requests: the fixture no longer tells the arguments apart", narrowed)
	}
}

// A field's arguments are read once per operation and shared by the items
// of a page; each alias keeps its own, and variables are applied.
func TestItemsKeepEachAliasArguments(t *testing.T) {
	s := startServer(t, fixtureDoc(120))
	token := s.tokenFor(t, userMaintainer)
	data := s.mustQuery(t, token, `query($two: Int!) { project(id: "acme/app") { deployments(first: 30) { nodes {
  one: mergeRequests(first: 1) { nodes { iid } } two: mergeRequests(first: $two) { nodes { iid } }
  all: mergeRequests { count nodes { iid } }
} } } }`, map[string]any{"two": 2})
	checked := 0
	for _, d := range list(data, "project.deployments.nodes") {
		all := list(d, "all.nodes")
		for alias, want := range map[string]int{"one": min(1, len(all)), "two": min(2, len(all))} {
			if got := len(list(d, alias+".nodes")); got != want {
				t.Fatalf("%s: %d merge requests, want %d of %d", alias, got, want, len(all))
			}
		}
		if len(all) >= 2 {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no deployment has two merge requests: the fixture no longer tests the aliases apart")
	}
}

// A level of a list is sent as soon as its last item waits for it, not at
// the next quiet moment: with BatchQuiet and BatchWait at 15 s, queries
// whose lists' items look up objects that no page prefetches (a page's
// merge requests and their authors, a deployment's approvals and their
// users) still answer.
func TestListLevelsGoWhenEveryItemWaits(t *testing.T) {
	quiet, wait := graph.BatchQuiet, graph.BatchWait
	// Long enough to tell waiting from not, short enough that a server
	// whose batches wait can still shut down after the test fails.
	graph.BatchQuiet, graph.BatchWait = 15*time.Second, 15*time.Second
	t.Cleanup(func() { graph.BatchQuiet, graph.BatchWait = quiet, wait })
	s := startServer(t, fixtureDoc(120))
	token := s.tokenFor(t, userMaintainer)
	tests := []struct {
		name, query string
		check       func(data map[string]any) bool
	}{{
		"a page's merge requests and their authors",
		`{ project(id: "acme/app") { deployments(first: 30) { nodes { iid mergeRequests(first: 5) { count nodes { iid author { username } } } } } } }`,
		func(data map[string]any) bool {
			for _, d := range list(data, "project.deployments.nodes") {
				for _, mr := range list(d, "mergeRequests.nodes") {
					if get(mr, "author.username") != nil {
						return true
					}
				}
			}
			return false
		},
	}, {
		"a deployment's approvals, rules and merge requests",
		`{ project(id: "acme/app") { deployment(iid: 3) { iid approvals { status user { username } }
  approvalSummary { rules { accessLevelDescription deploymentApprovals { user { username } } } }
  mergeRequests(first: 5) { nodes { iid author { username } } } } } }`,
		func(data map[string]any) bool { return get(data, "project.deployment.iid") != nil },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan gqlResponse, 1)
			go func() { done <- s.query(t, token, tt.query, nil) }()
			select {
			case r := <-done:
				if len(r.Errors) > 0 || !tt.check(r.Data) {
					t.Fatalf("the answer lacks what the query asks: %s", r.raw)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer after 10 s: a list's batch waited for BatchQuiet")
			}
		})
	}
}
