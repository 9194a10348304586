package main

import (
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
