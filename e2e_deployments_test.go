package main

// End-to-end tests of the deployment lists and lookups (SPEC 3 "Lists",
// 6.3 "List", lastDeployment, isLastDeployment; 6.5 MergeRequest.deployments).

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

const depConnFields = `count nodes { id } edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`

// depScopeQuery builds a query for one deployment connection. scope is
// "project", "env:<name>" or "mr:<iid>"; the connection is aliased c.
func depScopeQuery(scope, args string) (query, path string) {
	conn := "c: deployments"
	if args != "" {
		conn += "(" + args + ")"
	}
	conn += " { " + depConnFields + " }"
	switch {
	case scope == "project":
		return `{ project(id: "acme/app") { ` + conn + ` } }`, "project.c"
	case strings.HasPrefix(scope, "env:"):
		return fmt.Sprintf(`{ project(id: "acme/app") { environment(name: %q) { %s } } }`, strings.TrimPrefix(scope, "env:"), conn), "project.environment.c"
	case strings.HasPrefix(scope, "mr:"):
		return fmt.Sprintf(`{ project(id: "acme/app") { mergeRequest(iid: %s) { %s } } }`, strings.TrimPrefix(scope, "mr:"), conn), "project.mergeRequest.c"
	}
	panic("unknown scope " + scope)
}

type depPage struct {
	Count            int
	IDs              []int64
	EdgeIDs          []int64
	Cursors          []string
	HasNext, HasPrev bool
	Start, End       any
}

// fetchDeps runs one deployment connection query; ok is false (and the
// test already marked failed) when the query failed.
func fetchDeps(t *testing.T, s *testServer, token, scope, args string) (depPage, bool) {
	t.Helper()
	qs, path := depScopeQuery(scope, args)
	return fetchConnection(t, s, token, qs, path, "Deployment")
}

// fetchConnection runs a query and reads the connection at path (selected
// with count, nodes { id }, edges { cursor node { id } } and pageInfo).
func fetchConnection(t *testing.T, s *testServer, token, query, path, typ string) (depPage, bool) {
	t.Helper()
	r := s.query(t, token, query, nil)
	if len(r.Errors) > 0 || r.Status != 200 {
		t.Errorf("query %s failed (%d): %s", query, r.Status, r.raw)
		return depPage{}, false
	}
	c := get(r.Data, path)
	if c == nil {
		t.Errorf("query %s: no connection at %s: %s", query, path, r.raw)
		return depPage{}, false
	}
	var p depPage
	cnt, _ := get(c, "count").(float64)
	p.Count = int(cnt)
	p.IDs = gidNumbers(t, pluck(list(c, "nodes"), "id"), typ)
	edges := list(c, "edges")
	p.EdgeIDs = gidNumbers(t, pluck(edges, "node.id"), typ)
	for _, e := range edges {
		cur, _ := get(e, "cursor").(string)
		p.Cursors = append(p.Cursors, cur)
	}
	p.HasNext, _ = get(c, "pageInfo.hasNextPage").(bool)
	p.HasPrev, _ = get(c, "pageInfo.hasPreviousPage").(bool)
	p.Start, p.End = get(c, "pageInfo.startCursor"), get(c, "pageInfo.endCursor")
	return p, true
}

func fmtIDs(ids []int64) string {
	if len(ids) == 0 {
		return "[]"
	}
	return fmt.Sprint(ids)
}

// checkPageShape checks the parts of a page that do not depend on the
// expectation: nodes and edges agree, and the cursors of pageInfo are those
// of the first and last edges (null on an empty page).
func checkPageShape(t *testing.T, p depPage) {
	t.Helper()
	if !slices.Equal(p.IDs, p.EdgeIDs) {
		t.Errorf("nodes and edges differ: got nodes %v, edges %v", p.IDs, p.EdgeIDs)
	}
	if len(p.Cursors) == 0 {
		if p.Start != nil || p.End != nil {
			t.Errorf("empty page: got startCursor %v endCursor %v, want null", p.Start, p.End)
		}
		return
	}
	if p.Start != p.Cursors[0] {
		t.Errorf("startCursor: got %v, want the first edge's cursor %q", p.Start, p.Cursors[0])
	}
	if p.End != p.Cursors[len(p.Cursors)-1] {
		t.Errorf("endCursor: got %v, want the last edge's cursor %q", p.End, p.Cursors[len(p.Cursors)-1])
	}
}

func tq(t time.Time) string { return fmt.Sprintf("%q", t.UTC().Format(time.RFC3339Nano)) }

// Every order and direction of Project.deployments and
// Environment.deployments, computed from the fixture.
func TestE2EDeploymentOrders(t *testing.T) {
	doc := scrambledDoc(60)
	all := fxDeploymentsOf(doc, 0)
	s := startServer(t, doc)
	token := s.tokenFor(t, userReporter)

	orders := []string{"ID", "IID", "CREATED_AT", "UPDATED_AT", "FINISHED_AT", "REF"}
	// The fixture must make every order different from the id order, or the
	// test would prove nothing.
	for _, o := range orders[1:] {
		if slices.Equal(depIDs(sortDeployments(all, o, false)), depIDs(sortDeployments(all, "ID", false))) {
			t.Fatalf("fixture: order %s equals the id order", o)
		}
	}
	visible := func(d fxDeployment) bool {
		return slices.Contains([]string{"RUNNING", "SUCCESS", "FAILED", "CANCELED", "BLOCKED"}, d.Status)
	}
	for _, o := range orders {
		for _, dir := range []string{"ASC", "DESC"} {
			args := fmt.Sprintf("orderBy: %s, sort: %s, first: 100", o, dir)
			t.Run("project deployments ordered by "+o+" "+dir, func(t *testing.T) {
				want := depIDs(sortDeployments(all, o, dir == "DESC"))
				p, ok := fetchDeps(t, s, token, "project", args)
				if !ok {
					return
				}
				if !slices.Equal(p.IDs, want) {
					t.Errorf("%s:\n got %v\nwant %v", args, fmtIDs(p.IDs), fmtIDs(want))
				}
				if p.Count != len(want) {
					t.Errorf("count: got %d, want %d", p.Count, len(want))
				}
			})
			t.Run("environment deployments ordered by "+o+" "+dir, func(t *testing.T) {
				for _, env := range []string{"production", "staging", "review/fix-foo"} {
					want := depIDs(sortDeployments(filterDeployments(all, func(d fxDeployment) bool {
						return d.Env == env && visible(d)
					}), o, dir == "DESC"))
					p, ok := fetchDeps(t, s, token, "env:"+env, args)
					if !ok {
						return
					}
					if !slices.Equal(p.IDs, want) {
						t.Errorf("%s, %s:\n got %v\nwant %v", env, args, fmtIDs(p.IDs), fmtIDs(want))
					}
				}
			})
		}
	}
	t.Run("default order is ID ASC", func(t *testing.T) {
		want := depIDs(sortDeployments(all, "ID", false))
		p, ok := fetchDeps(t, s, token, "project", "first: 100")
		if ok && !slices.Equal(p.IDs, want) {
			t.Errorf("got %v, want %v", fmtIDs(p.IDs), fmtIDs(want))
		}
	})
	t.Run("sort DESC alone orders by id descending", func(t *testing.T) {
		want := depIDs(sortDeployments(all, "ID", true))
		p, ok := fetchDeps(t, s, token, "project", "sort: DESC, first: 100")
		if ok && !slices.Equal(p.IDs, want) {
			t.Errorf("got %v, want %v", fmtIDs(p.IDs), fmtIDs(want))
		}
	})
}

type depFilterCase struct {
	name  string
	args  string // GraphQL arguments (filters and order)
	keep  func(fxDeployment) bool
	order string
	desc  bool
}

// Every filter, alone and combined with others and with non-default orders.
func TestE2EDeploymentFilters(t *testing.T) {
	doc := scrambledDoc(60)
	all := fxDeploymentsOf(doc, 0)
	s := startServer(t, doc)
	token := s.tokenFor(t, userDeveloper)

	statusIn := func(st ...string) func(fxDeployment) bool {
		return func(d fxDeployment) bool { return slices.Contains(st, d.Status) }
	}
	updated := func(after, before *time.Time) func(fxDeployment) bool {
		return func(d fxDeployment) bool { return inHalfOpen(&d.Updated, after, before) }
	}
	finished := func(after, before *time.Time) func(fxDeployment) bool {
		return func(d fxDeployment) bool { return inHalfOpen(d.Finished, after, before) }
	}
	and := func(fs ...func(fxDeployment) bool) func(fxDeployment) bool {
		return func(d fxDeployment) bool {
			for _, f := range fs {
				if !f(d) {
					return false
				}
			}
			return true
		}
	}
	none := func(fxDeployment) bool { return false }
	ref := func(r string) func(fxDeployment) bool { return func(d fxDeployment) bool { return d.Ref == r } }
	env := func(e string) func(fxDeployment) bool { return func(d fxDeployment) bool { return d.Env == e } }
	// The fixture's updatedAt values are whole minutes 1000..1024 and its
	// finishedAt values whole minutes 2000..2006, each shared by several
	// deployments: the boundaries below are exact values of the data.
	u1005, u1010, u1015 := *tp(1005), *tp(1010), *tp(1015)
	f2002, f2003, f2004 := *tp(2002), *tp(2003), *tp(2004)
	oneMS := time.Millisecond

	cases := []depFilterCase{
		{name: "updatedAfter is inclusive", args: "updatedAfter: " + tq(u1010), keep: updated(&u1010, nil)},
		{name: "updatedAfter one millisecond past a value excludes it", args: "updatedAfter: " + tq(u1010.Add(oneMS)), keep: updated(ptr(u1010.Add(oneMS)), nil)},
		{name: "updatedBefore is exclusive", args: "updatedBefore: " + tq(u1010), keep: updated(nil, &u1010)},
		{name: "updatedBefore one millisecond past a value includes it", args: "updatedBefore: " + tq(u1010.Add(oneMS)), keep: updated(nil, ptr(u1010.Add(oneMS)))},
		{name: "updated window is half-open", args: "updatedAfter: " + tq(u1005) + ", updatedBefore: " + tq(u1010), keep: updated(&u1005, &u1010)},
		{name: "updated window given with a time zone offset", args: `updatedAfter: "2024-01-01T18:45:00+02:00", updatedBefore: "2024-01-01T11:50:00-05:00"`, keep: updated(&u1005, &u1010)},
		{name: "updated window of zero length matches nothing", args: "updatedAfter: " + tq(u1010) + ", updatedBefore: " + tq(u1010), keep: none},
		{name: "updated window whose end precedes its start matches nothing", args: "updatedAfter: " + tq(u1015) + ", updatedBefore: " + tq(u1005), keep: none},
		// A deployment that has not finished has no finish time and so lies
		// in no finished window (as SQL's finished_at < x).
		{name: "finishedAfter is inclusive and skips unfinished", args: "finishedAfter: " + tq(f2003), keep: finished(&f2003, nil)},
		{name: "finishedBefore is exclusive and skips unfinished", args: "finishedBefore: " + tq(f2003), keep: finished(nil, &f2003)},
		{name: "finished window is half-open", args: "finishedAfter: " + tq(f2002) + ", finishedBefore: " + tq(f2004), keep: finished(&f2002, &f2004)},
		{name: "finished window whose end precedes its start matches nothing", args: "finishedAfter: " + tq(f2004) + ", finishedBefore: " + tq(f2002), keep: none},
		{name: "status SUCCESS", args: "status: SUCCESS", keep: statusIn("SUCCESS")},
		{name: "status CREATED", args: "status: CREATED", keep: statusIn("CREATED")},
		{name: "status SKIPPED", args: "status: SKIPPED", keep: statusIn("SKIPPED")},
		{name: "status BLOCKED", args: "status: BLOCKED", keep: statusIn("BLOCKED")},
		{name: "statuses keeps any of them", args: "statuses: [FAILED, CANCELED]", keep: statusIn("FAILED", "CANCELED")},
		{name: "statuses with invisible ones", args: "statuses: [CREATED, SKIPPED, RUNNING]", keep: statusIn("CREATED", "SKIPPED", "RUNNING")},
		{name: "ref is exact", args: `ref: "feature/a"`, keep: ref("feature/a")},
		{name: "ref that no deployment has", args: `ref: "feature"`, keep: none},
		{name: "sha", args: fmt.Sprintf("sha: %q", sha(7)), keep: func(d fxDeployment) bool { return d.SHA == sha(7) }},
		{name: "sha of another project's deployment", args: fmt.Sprintf("sha: %q", sha(5000)), keep: none},
		{name: "environment name", args: `environment: "staging"`, keep: env("staging")},
		{name: "environment name in a folder", args: `environment: "review/fix-foo"`, keep: env("review/fix-foo")},
		{name: "environment name is exact and case-sensitive", args: `environment: "Staging"`, keep: none},
		{name: "environment that does not exist", args: `environment: "nope"`, keep: none},

		{name: "statuses and ref ordered by FINISHED_AT DESC", args: `statuses: [SUCCESS, FAILED], ref: "main", orderBy: FINISHED_AT, sort: DESC`,
			keep: and(statusIn("SUCCESS", "FAILED"), ref("main")), order: "FINISHED_AT", desc: true},
		{name: "environment and updated window ordered by REF DESC", args: `environment: "production", updatedAfter: ` + tq(u1005) + `, updatedBefore: ` + tq(*tp(1020)) + `, orderBy: REF, sort: DESC`,
			keep: and(env("production"), updated(&u1005, tp(1020))), order: "REF", desc: true},
		{name: "status RUNNING ordered by FINISHED_AT (all missing)", args: `status: RUNNING, orderBy: FINISHED_AT`, keep: statusIn("RUNNING"), order: "FINISHED_AT"},
		{name: "finishedBefore and ref ordered by CREATED_AT DESC", args: `finishedBefore: ` + tq(f2004) + `, ref: "develop", orderBy: CREATED_AT, sort: DESC`,
			keep: and(finished(nil, &f2004), ref("develop")), order: "CREATED_AT", desc: true},
		{name: "environment, statuses and finishedAfter ordered by UPDATED_AT", args: `environment: "staging", statuses: [SUCCESS], finishedAfter: ` + tq(*tp(2001)) + `, orderBy: UPDATED_AT`,
			keep: and(env("staging"), statusIn("SUCCESS"), finished(tp(2001), nil)), order: "UPDATED_AT"},
		{name: "sha and its environment", args: fmt.Sprintf(`sha: %q, environment: %q, orderBy: IID, sort: DESC`, sha(8), all[7].Env),
			keep: func(d fxDeployment) bool { return d.ID == 8 }, order: "IID", desc: true},
		{name: "sha and another environment", args: fmt.Sprintf(`sha: %q, environment: "review/fix-foo"`, sha(1)), keep: none},
		{name: "status and updatedBefore ordered by IID DESC", args: `status: SUCCESS, updatedBefore: ` + tq(*tp(1012)) + `, orderBy: IID, sort: DESC`,
			keep: and(statusIn("SUCCESS"), updated(nil, tp(1012))), order: "IID", desc: true},
		{name: "every filter at once ordered by FINISHED_AT ASC", args: `environment: "production", statuses: [SUCCESS, FAILED, CANCELED], ref: "main", updatedAfter: ` + tq(*tp(1000)) + `, updatedBefore: ` + tq(*tp(1025)) + `, finishedAfter: ` + tq(*tp(2000)) + `, finishedBefore: ` + tq(*tp(2006)) + `, orderBy: FINISHED_AT`,
			keep: and(env("production"), statusIn("SUCCESS", "FAILED", "CANCELED"), ref("main"), updated(tp(1000), tp(1025)), finished(tp(2000), tp(2006))), order: "FINISHED_AT"},
	}
	nonEmpty := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			order := c.order
			if order == "" {
				order = "ID"
			}
			want := depIDs(sortDeployments(filterDeployments(all, c.keep), order, c.desc))
			if len(want) > 0 {
				nonEmpty++
			}
			p, ok := fetchDeps(t, s, token, "project", c.args+", first: 100")
			if !ok {
				return
			}
			checkPageShape(t, p)
			if !slices.Equal(p.IDs, want) {
				t.Errorf("%s:\n got %v\nwant %v", c.args, fmtIDs(p.IDs), fmtIDs(want))
			}
			if p.Count != len(want) {
				t.Errorf("count: got %d, want %d", p.Count, len(want))
			}
			// count is the whole list's, whatever the page.
			p2, ok := fetchDeps(t, s, token, "project", c.args+", first: 2")
			if !ok {
				return
			}
			if p2.Count != len(want) {
				t.Errorf("count with first: 2: got %d, want %d", p2.Count, len(want))
			}
			if n := min(2, len(want)); !slices.Equal(p2.IDs, want[:n]) {
				t.Errorf("first: 2: got %v, want %v", fmtIDs(p2.IDs), fmtIDs(want[:n]))
			}
			if got, want := p2.HasNext, len(want) > 2; got != want {
				t.Errorf("hasNextPage with first: 2: got %v, want %v", got, want)
			}
		})
	}
	if nonEmpty < 20 {
		t.Errorf("fixture: only %d filter cases match anything", nonEmpty)
	}

	t.Run("status with statuses is BAD_USER_INPUT", func(t *testing.T) {
		for _, scope := range []string{"project", "env:production", "mr:2"} {
			qs, _ := depScopeQuery(scope, "status: SUCCESS, statuses: [FAILED]")
			expectError(t, s.query(t, token, qs, nil), "BAD_USER_INPUT", "")
		}
	})
	t.Run("unparseable time is BAD_USER_INPUT", func(t *testing.T) {
		for _, arg := range []string{`updatedAfter: "yesterday"`, `updatedBefore: "2024-13-01T00:00:00Z"`, `finishedAfter: "2024-01-01T25:00:00Z"`, `finishedBefore: ""`} {
			qs, _ := depScopeQuery("project", arg)
			expectError(t, s.query(t, token, qs, nil), "BAD_USER_INPUT", "")
		}
	})

	t.Run("environment deployments show only visible statuses by default", func(t *testing.T) {
		for _, e := range []string{"production", "staging", "review/fix-foo"} {
			want := depIDs(filterDeployments(all, and(env(e), statusIn("RUNNING", "SUCCESS", "FAILED", "CANCELED", "BLOCKED"))))
			p, ok := fetchDeps(t, s, token, "env:"+e, "first: 100")
			if !ok {
				return
			}
			if !slices.Equal(p.IDs, want) {
				t.Errorf("%s: got %v, want %v", e, fmtIDs(p.IDs), fmtIDs(want))
			}
			if p.Count != len(want) {
				t.Errorf("%s count: got %d, want %d", e, p.Count, len(want))
			}
		}
	})
	t.Run("project deployments show every status", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", "first: 100")
		if ok && p.Count != len(all) {
			t.Errorf("count: got %d, want %d", p.Count, len(all))
		}
		got := map[string]bool{}
		for _, d := range all {
			if slices.Contains(p.IDs, d.ID) {
				got[d.Status] = true
			}
		}
		for _, st := range []string{"CREATED", "SKIPPED", "BLOCKED", "RUNNING"} {
			if !got[st] {
				t.Errorf("no %s deployment listed", st)
			}
		}
	})
	envCases := []depFilterCase{
		{name: "status asks for an invisible status", args: "status: CREATED", keep: statusIn("CREATED")},
		{name: "status SKIPPED", args: "status: SKIPPED", keep: statusIn("SKIPPED")},
		{name: "statuses mixing invisible and visible", args: "statuses: [SKIPPED, SUCCESS]", keep: statusIn("SKIPPED", "SUCCESS")},
		{name: "default statuses ordered by FINISHED_AT DESC", args: "orderBy: FINISHED_AT, sort: DESC",
			keep: statusIn("RUNNING", "SUCCESS", "FAILED", "CANCELED", "BLOCKED"), order: "FINISHED_AT", desc: true},
		{name: "default statuses with updated window ordered by REF", args: "updatedAfter: " + tq(u1005) + ", updatedBefore: " + tq(u1015) + ", orderBy: REF",
			keep: and(statusIn("RUNNING", "SUCCESS", "FAILED", "CANCELED", "BLOCKED"), updated(&u1005, &u1015)), order: "REF"},
		{name: "ref and finished window ordered by CREATED_AT DESC", args: `ref: "main", finishedAfter: ` + tq(f2002) + `, finishedBefore: ` + tq(*tp(2006)) + `, orderBy: CREATED_AT, sort: DESC`,
			keep: and(ref("main"), finished(&f2002, tp(2006))), order: "CREATED_AT", desc: true},
		{name: "sha of a deployment in this environment", args: fmt.Sprintf("sha: %q", sha(4)), keep: func(d fxDeployment) bool { return d.ID == 4 }},
		{name: "sha of a deployment in another environment", args: fmt.Sprintf("sha: %q", sha(2)), keep: none},
		{name: "window whose end precedes its start", args: "updatedAfter: " + tq(u1015) + ", updatedBefore: " + tq(u1010), keep: none},
	}
	for _, c := range envCases {
		t.Run("environment "+c.name, func(t *testing.T) {
			order := c.order
			if order == "" {
				order = "ID"
			}
			want := depIDs(sortDeployments(filterDeployments(all, and(env("production"), c.keep)), order, c.desc))
			p, ok := fetchDeps(t, s, token, "env:production", c.args+", first: 100")
			if !ok {
				return
			}
			checkPageShape(t, p)
			if !slices.Equal(p.IDs, want) {
				t.Errorf("%s:\n got %v\nwant %v", c.args, fmtIDs(p.IDs), fmtIDs(want))
			}
			if p.Count != len(want) {
				t.Errorf("count: got %d, want %d", p.Count, len(want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// walkForward pages through a list with first/after and checks every page
// against want.
func walkForward(t *testing.T, s *testServer, token, scope, args string, size int, want []int64) {
	t.Helper()
	walkForwardWith(t, func(a string) (depPage, bool) { return fetchDeps(t, s, token, scope, a) }, args, size, want)
}

// walkForwardWith is walkForward over any connection: fetch runs the query
// with the given arguments.
func walkForwardWith(t *testing.T, fetch func(args string) (depPage, bool), args string, size int, want []int64) {
	t.Helper()
	var after string
	pos := 0
	for page := 0; ; page++ {
		a := strings.TrimPrefix(fmt.Sprintf("%s, first: %d", args, size), ", ")
		if after != "" {
			a += fmt.Sprintf(", after: %q", after)
		}
		p, ok := fetch(a)
		if !ok {
			return
		}
		checkPageShape(t, p)
		end := min(pos+size, len(want))
		if !slices.Equal(p.IDs, want[pos:end]) {
			t.Fatalf("page %d (%s): got %v, want %v", page, a, fmtIDs(p.IDs), fmtIDs(want[pos:end]))
		}
		if got, w := p.HasPrev, pos > 0; got != w {
			t.Errorf("page %d: hasPreviousPage got %v, want %v", page, got, w)
		}
		if got, w := p.HasNext, end < len(want); got != w {
			t.Errorf("page %d: hasNextPage got %v, want %v", page, got, w)
		}
		if p.Count != len(want) {
			t.Errorf("page %d: count got %d, want %d", page, p.Count, len(want))
		}
		pos = end
		if !p.HasNext || len(p.Cursors) == 0 || page > len(want) {
			break
		}
		after = p.Cursors[len(p.Cursors)-1]
	}
	if pos != len(want) {
		t.Errorf("forward walk stopped after %d of %d items", pos, len(want))
	}
}

// walkBackward pages from the end with last/before.
func walkBackward(t *testing.T, s *testServer, token, scope, args string, size int, want []int64) {
	t.Helper()
	walkBackwardWith(t, func(a string) (depPage, bool) { return fetchDeps(t, s, token, scope, a) }, args, size, want)
}

// walkBackwardWith is walkBackward over any connection.
func walkBackwardWith(t *testing.T, fetch func(args string) (depPage, bool), args string, size int, want []int64) {
	t.Helper()
	var before string
	end := len(want)
	for page := 0; ; page++ {
		a := strings.TrimPrefix(fmt.Sprintf("%s, last: %d", args, size), ", ")
		if before != "" {
			a += fmt.Sprintf(", before: %q", before)
		}
		p, ok := fetch(a)
		if !ok {
			return
		}
		checkPageShape(t, p)
		start := max(end-size, 0)
		if !slices.Equal(p.IDs, want[start:end]) {
			t.Fatalf("page %d from the end (%s): got %v, want %v", page, a, fmtIDs(p.IDs), fmtIDs(want[start:end]))
		}
		if got, w := p.HasPrev, start > 0; got != w {
			t.Errorf("page %d from the end: hasPreviousPage got %v, want %v", page, got, w)
		}
		if got, w := p.HasNext, end < len(want); got != w {
			t.Errorf("page %d from the end: hasNextPage got %v, want %v", page, got, w)
		}
		end = start
		if !p.HasPrev || len(p.Cursors) == 0 || page > len(want) {
			break
		}
		before = p.Cursors[0]
	}
	if end != 0 {
		t.Errorf("backward walk stopped with %d items left", end)
	}
}

// Relay pagination over filtered, ordered lists, both ways.
func TestE2EDeploymentPagination(t *testing.T) {
	doc := scrambledDoc(60)
	all := fxDeploymentsOf(doc, 0)
	s := startServer(t, doc)
	token := s.tokenFor(t, userMaintainer)

	mainByFinishedDesc := depIDs(sortDeployments(filterDeployments(all, func(d fxDeployment) bool { return d.Ref == "main" }), "FINISHED_AT", true))
	if len(mainByFinishedDesc) != 20 {
		t.Fatalf("fixture: %d deployments on main, want 20", len(mainByFinishedDesc))
	}
	const mainArgs = `ref: "main", orderBy: FINISHED_AT, sort: DESC`
	for _, size := range []int{1, 3, 4, 7, 20, 100} {
		t.Run(fmt.Sprintf("forward walk with first %d visits the filtered order", size), func(t *testing.T) {
			walkForward(t, s, token, "project", mainArgs, size, mainByFinishedDesc)
		})
		t.Run(fmt.Sprintf("backward walk with last %d visits the filtered order", size), func(t *testing.T) {
			walkBackward(t, s, token, "project", mainArgs, size, mainByFinishedDesc)
		})
	}
	prodVisible := depIDs(sortDeployments(filterDeployments(all, func(d fxDeployment) bool {
		return d.Env == "production" && d.Status != "CREATED" && d.Status != "SKIPPED"
	}), "UPDATED_AT", true))
	t.Run("environment deployments forward walk", func(t *testing.T) {
		walkForward(t, s, token, "env:production", "orderBy: UPDATED_AT, sort: DESC", 5, prodVisible)
	})
	t.Run("environment deployments backward walk", func(t *testing.T) {
		walkBackward(t, s, token, "env:production", "orderBy: UPDATED_AT, sort: DESC", 5, prodVisible)
	})
	byRef := depIDs(sortDeployments(all, "REF", false))
	t.Run("unfiltered walk by REF", func(t *testing.T) {
		walkForward(t, s, token, "project", "orderBy: REF", 25, byRef)
		walkBackward(t, s, token, "project", "orderBy: REF", 25, byRef)
	})

	t.Run("before a cursor from the middle gives the items before it", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", mainArgs+", first: 10")
		if !ok {
			return
		}
		c := p.Cursors[6] // the 7th item
		p2, ok := fetchDeps(t, s, token, "project", mainArgs+fmt.Sprintf(", last: 3, before: %q", c))
		if !ok {
			return
		}
		if want := mainByFinishedDesc[3:6]; !slices.Equal(p2.IDs, want) {
			t.Errorf("got %v, want %v", fmtIDs(p2.IDs), fmtIDs(want))
		}
		if !p2.HasPrev || !p2.HasNext {
			t.Errorf("hasPreviousPage, hasNextPage: got %v, %v, want true, true", p2.HasPrev, p2.HasNext)
		}
	})
	t.Run("after and before together give the items between", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", mainArgs+", first: 20")
		if !ok {
			return
		}
		p2, ok := fetchDeps(t, s, token, "project", mainArgs+fmt.Sprintf(", first: 100, after: %q, before: %q", p.Cursors[2], p.Cursors[9]))
		if !ok {
			return
		}
		if want := mainByFinishedDesc[3:9]; !slices.Equal(p2.IDs, want) {
			t.Errorf("got %v, want %v", fmtIDs(p2.IDs), fmtIDs(want))
		}
	})
	t.Run("a cursor gives the same page on every request", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", mainArgs+", first: 5")
		if !ok {
			return
		}
		var pages [][]int64
		for range 2 {
			p2, ok := fetchDeps(t, s, token, "project", mainArgs+fmt.Sprintf(", first: 5, after: %q", p.End))
			if !ok {
				return
			}
			pages = append(pages, p2.IDs)
		}
		if !slices.Equal(pages[0], pages[1]) || !slices.Equal(pages[0], mainByFinishedDesc[5:10]) {
			t.Errorf("got %v then %v, want %v", pages[0], pages[1], mainByFinishedDesc[5:10])
		}
	})
	t.Run("empty list has no cursors and no pages", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", `ref: "nope", first: 5`)
		if !ok {
			return
		}
		checkPageShape(t, p)
		if p.Count != 0 || len(p.IDs) != 0 || p.HasNext || p.HasPrev {
			t.Errorf("got count %d, nodes %v, hasNext %v, hasPrev %v; want 0, [], false, false", p.Count, p.IDs, p.HasNext, p.HasPrev)
		}
	})
	t.Run("default page is 20", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "project", "")
		if !ok {
			return
		}
		if want := depIDs(all)[:20]; !slices.Equal(p.IDs, want) {
			t.Errorf("got %v, want %v", fmtIDs(p.IDs), fmtIDs(want))
		}
		if !p.HasNext || p.HasPrev || p.Count != 60 {
			t.Errorf("hasNext %v hasPrev %v count %d; want true false 60", p.HasNext, p.HasPrev, p.Count)
		}
		p, ok = fetchDeps(t, s, token, "project", "after: "+fmt.Sprintf("%q", p.End))
		if !ok {
			return
		}
		if want := depIDs(all)[20:40]; !slices.Equal(p.IDs, want) {
			t.Errorf("second default page: got %v, want %v", fmtIDs(p.IDs), fmtIDs(want))
		}
	})
	t.Run("page size 100 is allowed", func(t *testing.T) {
		for _, a := range []string{"first: 100", "last: 100"} {
			p, ok := fetchDeps(t, s, token, "project", a)
			if ok && len(p.IDs) != 60 {
				t.Errorf("%s: got %d items, want 60", a, len(p.IDs))
			}
		}
	})
	for _, scope := range []string{"project", "env:production", "mr:2"} {
		for _, a := range []string{"first: 101", "last: 101", "first: -1", "last: -1", "first: 1000000"} {
			t.Run(fmt.Sprintf("%s on %s is BAD_USER_INPUT", a, scope), func(t *testing.T) {
				qs, _ := depScopeQuery(scope, a)
				expectError(t, s.query(t, token, qs, nil), "BAD_USER_INPUT", "")
			})
		}
	}
	envCursor := func() string {
		d := s.mustQuery(t, token, `{ project(id: "acme/app") { environments(first: 1) { edges { cursor } } } }`, nil)
		c, _ := get(list(d, "project.environments.edges")[0], "cursor").(string)
		return c
	}()
	for _, bad := range []string{"garbage", "Zm9vYmFy", "!!!", "gid://deploygraph/Deployment/1", envCursor} {
		for _, dir := range []string{"after", "before"} {
			t.Run(fmt.Sprintf("%s cursor %q is BAD_USER_INPUT", dir, bad), func(t *testing.T) {
				// A cursor from another kind of list is as unusable as garbage.
				qs, _ := depScopeQuery("project", fmt.Sprintf("first: 5, %s: %q", dir, bad))
				expectError(t, s.query(t, token, qs, nil), "BAD_USER_INPUT", "")
			})
		}
	}
}

// A cursor stays valid when records are added (SPEC 3): the next page
// starts right after the cursor's record in the list as it now is.
func TestE2EDeploymentCursorSurvivesNewRecords(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "deploygraph.db")
	before, after := fixtureDoc(30), fixtureDoc(40)
	c := config{db: db, adminToken: rootToken, introspection: true, importFile: writeDoc(t, dir, "first.json", before)}
	s, closeFirst := openServer(t, c, store.Options{})
	type saved struct {
		name, args string
		order      string
		desc       bool
		cursor     string
		lastID     int64
	}
	cases := []*saved{
		{name: "ID ASC", args: "orderBy: ID", order: "ID"},
		{name: "REF ASC", args: "orderBy: REF", order: "REF"},
		{name: "CREATED_AT DESC", args: "orderBy: CREATED_AT, sort: DESC", order: "CREATED_AT", desc: true},
		{name: "FINISHED_AT ASC", args: "orderBy: FINISHED_AT", order: "FINISHED_AT"},
		{name: "UPDATED_AT DESC filtered", args: "orderBy: UPDATED_AT, sort: DESC, statuses: [SUCCESS, FAILED]", order: "UPDATED_AT", desc: true},
	}
	for _, sc := range cases {
		p, ok := fetchDeps(t, s, rootToken, "project", sc.args+", first: 7")
		if !ok || len(p.Cursors) != 7 {
			t.Fatalf("%s: first page: %+v", sc.name, p)
		}
		sc.cursor, sc.lastID = p.Cursors[6], p.IDs[6]
	}
	closeFirst()

	c.importFile = writeDoc(t, dir, "second.json", after)
	s2, _ := openServer(t, c, store.Options{})
	all := fxDeploymentsOf(after, 0)
	for _, sc := range cases {
		t.Run("cursor of "+sc.name+" continues after its record", func(t *testing.T) {
			keep := func(fxDeployment) bool { return true }
			if strings.Contains(sc.args, "statuses") {
				keep = func(d fxDeployment) bool { return d.Status == "SUCCESS" || d.Status == "FAILED" }
			}
			sorted := depIDs(sortDeployments(filterDeployments(all, keep), sc.order, sc.desc))
			i := slices.Index(sorted, sc.lastID)
			want := sorted[i+1:]
			p, ok := fetchDeps(t, s2, rootToken, "project", sc.args+fmt.Sprintf(", first: 100, after: %q", sc.cursor))
			if !ok {
				return
			}
			if !slices.Equal(p.IDs, want) {
				t.Errorf("got %v\nwant %v", fmtIDs(p.IDs), fmtIDs(want))
			}
			if !p.HasPrev {
				t.Errorf("hasPreviousPage: got false, want true")
			}
			// And backwards from the same cursor.
			p, ok = fetchDeps(t, s2, rootToken, "project", sc.args+fmt.Sprintf(", last: 100, before: %q", sc.cursor))
			if !ok {
				return
			}
			if want := sorted[:i]; !slices.Equal(p.IDs, want) {
				t.Errorf("before: got %v\nwant %v", fmtIDs(p.IDs), fmtIDs(want))
			}
		})
	}
}

// Project.deployment, Environment.lastDeployment, isLastDeployment and
// MergeRequest.deployments.
func TestE2EDeploymentLookups(t *testing.T) {
	doc := scrambledDoc(60)
	// Merge request 2 (linked to deployment 1 by the fixture) also shipped
	// with these deployments.
	p0 := docProjects(doc)[0]
	links := p0["deployment_merge_requests"].([]map[string]any)
	mrDeploys := []int64{1, 4, 10, 13, 22, 31, 40, 52, 55}
	for _, id := range mrDeploys[1:] {
		links = append(links, map[string]any{"deployment_id": id, "merge_request_id": 2})
	}
	p0["deployment_merge_requests"] = links
	all := fxDeploymentsOf(doc, 0)
	byID := map[int64]fxDeployment{}
	for _, d := range all {
		byID[d.ID] = d
	}
	s := startServer(t, doc)
	token := s.tokenFor(t, userReporter)

	t.Run("deployment by iid", func(t *testing.T) {
		for _, d := range []fxDeployment{all[0], all[6], all[29], all[59]} {
			data := s.mustQuery(t, token, `query($iid: Int!) { project(id: "acme/app") { deployment(iid: $iid) { id iid sha } } }`, map[string]any{"iid": d.IID})
			if got := gidNumber(t, get(data, "project.deployment.id"), "Deployment"); got != d.ID {
				t.Errorf("iid %d: got deployment %d, want %d", d.IID, got, d.ID)
			}
			if got := get(data, "project.deployment.iid"); got != float64(d.IID) {
				t.Errorf("iid: got %v, want %d", got, d.IID)
			}
		}
	})
	t.Run("deployment by id as number or global ID", func(t *testing.T) {
		for _, ref := range []string{"7", gid("Deployment", 7)} {
			data := s.mustQuery(t, token, `query($id: ID!) { project(id: "acme/app") { deployment(id: $id) { id iid sha } } }`, map[string]any{"id": ref})
			if got := get(data, "project.deployment.id"); got != gid("Deployment", 7) {
				t.Errorf("%s: got %v, want %s", ref, got, gid("Deployment", 7))
			}
			if got := get(data, "project.deployment.iid"); got != float64(byID[7].IID) {
				t.Errorf("%s: iid got %v, want %d", ref, got, byID[7].IID)
			}
			if got := get(data, "project.deployment.sha"); got != sha(7) {
				t.Errorf("%s: sha got %v, want %s", ref, got, sha(7))
			}
		}
	})
	t.Run("missing deployment is null", func(t *testing.T) {
		for _, a := range []string{"iid: 999", `id: "999"`, `id: "5000"` /* another project's */} {
			r := s.query(t, token, `{ project(id: "acme/app") { deployment(`+a+`) { id } } }`, nil)
			if got := get(r.Data, "project.deployment"); got != nil {
				t.Errorf("%s: got %v, want null", a, got)
			}
			if r.Data == nil || get(r.Data, "project") == nil {
				t.Errorf("%s: the project itself must still resolve: %s", a, r.raw)
			}
			for _, c := range r.codes() {
				if c != "NOT_FOUND" {
					t.Errorf("%s: error code %s, want none or NOT_FOUND", a, c)
				}
			}
		}
	})
	t.Run("deployment needs exactly one of iid and id", func(t *testing.T) {
		for _, a := range []string{"", `(iid: 1, id: "1")`} {
			r := s.query(t, token, `{ project(id: "acme/app") { deployment`+a+` { id } } }`, nil)
			expectError(t, r, "BAD_USER_INPUT", "")
		}
	})

	statuses := []string{"CREATED", "RUNNING", "SUCCESS", "FAILED", "CANCELED", "SKIPPED", "BLOCKED"}
	lastByEnv := map[string]int64{}
	tied := false
	for _, env := range []string{"production", "staging", "review/fix-foo"} {
		var best *fxDeployment
		for _, d := range all {
			if d.Env != env || d.Status != "SUCCESS" {
				continue
			}
			if best == nil || d.Finished.After(*best.Finished) || d.Finished.Equal(*best.Finished) && d.ID > best.ID {
				best = &d
			}
		}
		lastByEnv[env] = best.ID
		for _, d := range all {
			if d.Env == env && d.Status == "SUCCESS" && d.ID != best.ID && d.Finished.Equal(*best.Finished) {
				tied = true
			}
		}
	}
	if !tied {
		t.Fatalf("fixture: no tie on the latest finishedAt; the tie rule would be untested")
	}
	for _, env := range []string{"production", "staging", "review/fix-foo"} {
		t.Run("lastDeployment of "+env+" is the SUCCESS that finished last, ties to the higher id", func(t *testing.T) {
			var fields []string
			for _, st := range statuses {
				fields = append(fields, fmt.Sprintf("%s: lastDeployment(status: %s) { id }", strings.ToLower(st), st))
			}
			data := s.mustQuery(t, token, fmt.Sprintf(`{ project(id: "acme/app") { environment(name: %q) { lastDeployment { id status } %s } } }`, env, strings.Join(fields, " ")), nil)
			e := get(data, "project.environment")
			if got := gidNumber(t, get(e, "lastDeployment.id"), "Deployment"); got != lastByEnv[env] {
				t.Errorf("lastDeployment: got %d, want %d", got, lastByEnv[env])
			}
			if got := get(e, "success.id"); got != gid("Deployment", lastByEnv[env]) {
				t.Errorf("lastDeployment(status: SUCCESS): got %v, want %s", got, gid("Deployment", lastByEnv[env]))
			}
			for _, st := range statuses {
				if st == "SUCCESS" {
					continue
				}
				var want int64
				for _, d := range all {
					if d.Env == env && d.Status == st && d.ID > want {
						want = d.ID
					}
				}
				got := get(e, strings.ToLower(st)+".id")
				if want == 0 {
					if got != nil {
						t.Errorf("lastDeployment(status: %s): got %v, want null", st, got)
					}
					continue
				}
				if got != gid("Deployment", want) {
					t.Errorf("lastDeployment(status: %s): got %v, want the newest by id %s", st, got, gid("Deployment", want))
				}
			}
		})
	}
	t.Run("lastDeployment read anonymously in a public project; null when no deployment has the status", func(t *testing.T) {
		data := s.mustQuery(t, "", `{ project(id: "acme/site") { environment(name: "production") { lastDeployment { id } failed: lastDeployment(status: FAILED) { id } } } }`, nil)
		if got := get(data, "project.environment.lastDeployment.id"); got != gid("Deployment", 5000) {
			t.Errorf("acme/site production: got %v, want %s", got, gid("Deployment", 5000))
		}
		if got := get(data, "project.environment.failed"); got != nil {
			t.Errorf("lastDeployment(status: FAILED) with none: got %v, want null", got)
		}
	})
	t.Run("isLastDeployment is true for exactly the lastDeployment of each environment", func(t *testing.T) {
		data := s.mustQuery(t, token, `{ project(id: "acme/app") { deployments(first: 100) { nodes { id isLastDeployment } } } }`, nil)
		want := map[int64]bool{}
		for _, id := range lastByEnv {
			want[id] = true
		}
		nodes := list(data, "project.deployments.nodes")
		if len(nodes) != len(all) {
			t.Fatalf("got %d deployments, want %d", len(nodes), len(all))
		}
		for _, n := range nodes {
			id := gidNumber(t, get(n, "id"), "Deployment")
			if got := get(n, "isLastDeployment"); got != want[id] {
				t.Errorf("deployment %d (%s, %s): isLastDeployment got %v, want %v", id, byID[id].Env, byID[id].Status, got, want[id])
			}
		}
	})

	shipped := filterDeployments(all, func(d fxDeployment) bool { return slices.Contains(mrDeploys, d.ID) })
	mrCases := []depFilterCase{
		{name: "default order", args: "", keep: nil},
		{name: "ordered by FINISHED_AT DESC", args: "orderBy: FINISHED_AT, sort: DESC", order: "FINISHED_AT", desc: true},
		{name: "ordered by IID", args: "orderBy: IID", order: "IID"},
		{name: "status SUCCESS ordered by REF DESC", args: "status: SUCCESS, orderBy: REF, sort: DESC", keep: func(d fxDeployment) bool { return d.Status == "SUCCESS" }, order: "REF", desc: true},
		{name: "updated window", args: "updatedAfter: " + tq(*tp(1005)) + ", updatedBefore: " + tq(*tp(1020)), keep: func(d fxDeployment) bool { return inHalfOpen(&d.Updated, tp(1005), tp(1020)) }},
		{name: "ref", args: `ref: "develop"`, keep: func(d fxDeployment) bool { return d.Ref == "develop" }},
	}
	for _, c := range mrCases {
		t.Run("merge request deployments "+c.name, func(t *testing.T) {
			order := c.order
			if order == "" {
				order = "ID"
			}
			want := depIDs(sortDeployments(filterDeployments(shipped, c.keep), order, c.desc))
			args := "first: 100"
			if c.args != "" {
				args = c.args + ", " + args
			}
			p, ok := fetchDeps(t, s, token, "mr:2", args)
			if !ok {
				return
			}
			if !slices.Equal(p.IDs, want) {
				t.Errorf("got %v, want %v", fmtIDs(p.IDs), fmtIDs(want))
			}
			if p.Count != len(want) {
				t.Errorf("count: got %d, want %d", p.Count, len(want))
			}
		})
	}
	t.Run("merge request deployments paginate", func(t *testing.T) {
		walkForward(t, s, token, "mr:2", "orderBy: CREATED_AT", 4, depIDs(sortDeployments(shipped, "CREATED_AT", false)))
		walkBackward(t, s, token, "mr:2", "orderBy: CREATED_AT", 4, depIDs(sortDeployments(shipped, "CREATED_AT", false)))
	})
	t.Run("merge request with one deployment", func(t *testing.T) {
		p, ok := fetchDeps(t, s, token, "mr:35", "")
		if ok && !slices.Equal(p.IDs, []int64{17}) {
			t.Errorf("merge request 35 (fixture: deployment 17): got %v, want [17]", p.IDs)
		}
	})
}

// Ensure that a query answers from one state of the store: a deployment
// committed while the query runs, after its first read, is in neither the
// page's count nor its nodes, and the next query has it in both.
func TestQueryReadsOneState(t *testing.T) {
	var (
		srv      *testServer
		armed    atomic.Bool
		midQuery = make(chan error, 1)
	)
	// The store's hook hears of each read as it ends: the armed query's
	// first read commits a deployment before the query goes on.
	onTx := func(kind string, _ time.Duration, _ error) {
		if kind == store.TxRead && armed.CompareAndSwap(true, false) {
			ctx := context.Background()
			maintainer := must(srv.store.Users(ctx, []int64{userMaintainer}))[0]
			_, err := srv.store.CreateDeployment(ctx, store.Viewer{User: maintainer}, store.NewDeployment{
				ProjectID: 1, Environment: "staging", SHA: sha(999), Ref: "main", Status: store.StatusRunning,
			})
			midQuery <- err
		}
	}
	dir := t.TempDir()
	srv, _ = openServer(t, config{
		db: filepath.Join(dir, "deploygraph.db"), adminToken: rootToken,
		importFile: writeDoc(t, dir, "import.json", fixtureDoc(12)),
	}, store.Options{OnTx: onTx})
	token := srv.tokenFor(t, userMaintainer)
	const q = `{ project(id: "acme/app") { deployments(first: 100) { count nodes { id } } } }`
	page := func() (count any, ids []any) {
		data := srv.mustQuery(t, token, q, nil)
		return get(data, "project.deployments.count"), pluck(list(data, "project.deployments.nodes"), "id")
	}

	// Twice first (the first use of a token records it), so that the
	// token and the project's path are answered from what the store keeps:
	// the armed query's first read is then one of its own.
	page()
	count, ids := page()
	armed.Store(true)
	gotCount, gotIDs := page()
	select {
	case err := <-midQuery:
		if err != nil {
			t.Fatalf("the deployment committed during the query: %v", err)
		}
	default:
		t.Fatal("the query read nothing from the store")
	}
	if gotCount != count || !slices.Equal(gotIDs, ids) {
		t.Errorf("during a commit: count %v and %d nodes, want %v and %v as before it", gotCount, len(gotIDs), count, ids)
	}
	if afterCount, afterIDs := page(); afterCount != count.(float64)+1 || len(afterIDs) != len(ids)+1 {
		t.Errorf("after it: count %v and %d nodes, want %v and %d", afterCount, len(afterIDs), count.(float64)+1, len(ids)+1)
	}
}

// Ensure that a mutation's fields read what the fields before them wrote
// (mutations read outside any snapshot): the second of two deployments
// counts both, though the first one's fields read the store before the
// second was written.
func TestMutationReadsItsOwnWrites(t *testing.T) {
	s := startServer(t, fixtureDoc(3))
	token := s.tokenFor(t, userMaintainer)
	const q = `mutation($a: CreateDeploymentInput!, $b: CreateDeploymentInput!) {
  a: createDeployment(input: $a) { deployment { environment { deployments { count } } } }
  b: createDeployment(input: $b) { deployment { environment { deployments { count } } } }
}`
	data := s.mustQuery(t, token, q, map[string]any{
		"a": map[string]any{"projectId": "acme/app", "environment": "staging", "sha": sha(901), "ref": "main", "tag": false, "status": "RUNNING"},
		"b": map[string]any{"projectId": "acme/app", "environment": "staging", "sha": sha(902), "ref": "main", "tag": false, "status": "RUNNING"},
	})
	count := func(alias string) float64 {
		n, _ := get(data, alias+".deployment.environment.deployments.count").(float64)
		return n
	}
	if a, b := count("a"), count("b"); a == 0 || b != a+1 {
		t.Errorf("staging's deployments: %v after the first write, %v after the second, want one more", a, b)
	}
}
