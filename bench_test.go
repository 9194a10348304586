package main

// Load benchmarks (issue 5, SPEC 8 "Performance"): three read queries
// through the real HTTP handler over loopback with parallel clients, each
// next to a bare net/http handler that answers the same bytes (the limit
// that HTTP on loopback and the load client allow on this machine), and
// createDeployment at 1 and 32 clients with fsync on.
//
// The load client lives in this process: the figures include its CPU
// (about a tenth of a write's; see loadConn), and the memory figures
// include its memory.
// Memory is reported twice: peak-RSS-MiB is VmHWM since the server
// started (reset after the store file is copied), and peak-anon-MiB the
// highest anonymous resident memory (Go heap, stacks, runtime) sampled
// during the run. They differ by the store's file pages that bbolt maps:
// clean page cache, but counted in RSS, and the whole file once bbolt has
// rebuilt its freelist on open.
//
// Knobs (environment variables):
//
//	DEPLOYGRAPH_BENCH_N         deployments in the data set (default 10000)
//	DEPLOYGRAPH_BENCH_REQUESTS  requests per measured run; unset: b.N
//	DEPLOYGRAPH_BENCH_WRITES    createDeployment requests per run; unset:
//	                            DEPLOYGRAPH_BENCH_REQUESTS, else b.N
//	DEPLOYGRAPH_BENCH_WRITE_N   deployments in the store the writes go
//	                            into, a copy of the generated data set
//	                            (default 0: a fresh store)
//	DEPLOYGRAPH_BENCH_CLIENTS   parallel clients for the queries (default 32)
//
// Without the request counts, b.N is the number of requests and ns/op the
// wall time per request at that concurrency (1 / throughput). A fixed count
// is steadier for percentiles; use it with -benchtime 1x:
//
//	# 10,000 deployments (generated once, then cached in $TMPDIR):
//	DEPLOYGRAPH_BENCH_REQUESTS=20000 go test -run '^$' -bench BenchmarkQuery -benchtime 1x -timeout 30m .
//	# 1,000,000 deployments (generation takes minutes the first time):
//	DEPLOYGRAPH_BENCH_N=1000000 DEPLOYGRAPH_BENCH_REQUESTS=20000 go test -run '^$' -bench BenchmarkQuery -benchtime 1x -timeout 60m .
//	# writes, fsync on, into a fresh store and into 1,000,000 deployments:
//	DEPLOYGRAPH_BENCH_WRITES=2000 go test -run '^$' -bench BenchmarkCreateDeployment -benchtime 1x .
//	DEPLOYGRAPH_BENCH_WRITE_N=1000000 DEPLOYGRAPH_BENCH_WRITES=20000 go test -run '^$' -bench BenchmarkCreateDeployment -benchtime 1x -timeout 60m .
//	# CI: a tiny size, once, so that the benchmarks keep compiling and working:
//	DEPLOYGRAPH_BENCH_N=600 DEPLOYGRAPH_BENCH_WRITE_N=600 DEPLOYGRAPH_BENCH_REQUESTS=200 go test -run '^$' -bench . -benchtime 1x .
//
//	# the server's own CPU cost and allocations per request, one at a time
//	# (q1–q3, a page of failures, and createDeployment with fsync off):
//	go test -run '^$' -bench BenchmarkServe -benchtime 2s .
//
// A CPU profile of one query: add -bench 'BenchmarkQuery/q2$' -cpuprofile q2.prof.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// benchEnvInt reads a positive integer knob; def when unset.
func benchEnvInt(tb testing.TB, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// ---- the queries ----

// benchQuery is one of the three read queries, with the checks its
// answer must pass.
type benchQuery struct {
	name  string
	query string
	vars  map[string]any
	check func(data map[string]any) error
}

// q1: one project's environments, each with its last deployment.
const benchQ1 = `query Q1($project: ID!) { project(id: $project) { environments(first: 20) { count nodes {
  name lastDeployment { status ref sha createdAt user { username name } deployable { name status duration } }
} } } }`

// q2: the newest 50 of one project's deployments with their nested objects.
const benchQ2 = `query Q2($project: ID!) { project(id: $project) { deployments(first: 50, orderBy: ID, sort: DESC) {
  count pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  nodes {
    id iid status ref createdAt
    environment { name tier } user { username }
    deployable { name stage status pipeline { id status } }
    approvals { status user { username } }
    mergeRequests(first: 5) { nodes { iid title } }
  }
} } }`

// benchFailures is a page of 50 of one project's failed or canceled
// deployments, newest first.
const benchFailures = `query Failures($project: ID!) { project(id: $project) {
  deployments(first: 50, orderBy: ID, sort: DESC, statuses: [FAILED, CANCELED]) { nodes { iid status ref } }
} }`

// q3: one deployment by iid with everything nested.
const benchQ3 = `query Q3($project: ID!, $iid: Int!) { project(id: $project) { deployment(iid: $iid) {
  id iid ref sha tag status createdAt updatedAt finishedAt isLastDeployment
  user { id username name state }
  environment { id name slug state tier folder externalUrl createdAt updatedAt protected
    protection { name deployAccessLevels { accessLevel description } approvalRules { accessLevel accessLevelDescription requiredApprovals } } }
  project { id fullPath name visibility allowSelfApproval currentUserAccessLevel }
  deployable { id name stage status ref tag createdAt startedAt finishedAt duration coverage webUrl
    user { username } commit { sha shortId title message authorName authorEmail committedDate parentIds }
    pipeline { id sha ref status createdAt updatedAt } artifacts { fileType size filename } }
  commit { sha shortId title }
  approvals { status comment createdAt representedAs user { username name } }
  pendingApprovalCount
  approvalSummary { status rules { accessLevel accessLevelDescription requiredApprovals approvedCount pendingApprovalCount status canApprove
    deploymentApprovals { status user { username } } } }
  mergeRequests(first: 5) { count nodes { id iid title state sourceBranch targetBranch mergedAt labels author { username } } }
  userPermissions { updateDeployment destroyDeployment approveDeployment }
} } }`

// benchQueries are q1–q3 against project bench/p0 of the data set of n
// deployments.
func benchQueries(n int) []benchQuery {
	project := benchProjectPath(0)
	approved := benchApprovedIID(n)
	return []benchQuery{{
		name: "q1", query: benchQ1, vars: map[string]any{"project": project},
		check: func(data map[string]any) error {
			envs := list(data, "project.environments.nodes")
			if len(envs) != benchEnvCount {
				return fmt.Errorf("%d environments, want %d", len(envs), benchEnvCount)
			}
			with := 0
			for _, e := range envs {
				if get(e, "lastDeployment.status") == "SUCCESS" {
					with++
				}
			}
			if with == 0 {
				return errors.New("no environment has a last deployment")
			}
			return nil
		},
	}, {
		name: "q2", query: benchQ2, vars: map[string]any{"project": project},
		check: func(data map[string]any) error {
			nodes := list(data, "project.deployments.nodes")
			count, _ := get(data, "project.deployments.count").(float64)
			if want := min(50, benchPerProject(n, 0)); len(nodes) != want || int(count) != benchPerProject(n, 0) {
				return fmt.Errorf("%d deployments of %v, want %d of %d", len(nodes), count, want, benchPerProject(n, 0))
			}
			if get(nodes[0], "iid") != float64(benchPerProject(n, 0)) {
				return fmt.Errorf("first deployment is iid %v, want the newest", get(nodes[0], "iid"))
			}
			return nil
		},
	}, {
		name: "q3", query: benchQ3, vars: map[string]any{"project": project, "iid": approved},
		check: func(data map[string]any) error {
			d := get(data, "project.deployment")
			if d == nil || get(d, "iid") != float64(approved) {
				return fmt.Errorf("deployment iid %d not returned", approved)
			}
			if got := len(list(d, "approvals")); got != 2 {
				return fmt.Errorf("%d approvals, want 2", got)
			}
			if got := len(list(d, "mergeRequests.nodes")); got != 2 {
				return fmt.Errorf("%d merge requests, want 2", got)
			}
			if get(d, "deployable.pipeline.id") == nil || get(d, "deployable.commit.title") == nil {
				return errors.New("deployable without pipeline or commit")
			}
			if got := get(d, "approvalSummary.status"); got != "APPROVED" {
				return fmt.Errorf("approval summary %v, want APPROVED", got)
			}
			return nil
		},
	}}
}

func (q benchQuery) body() []byte {
	b, err := json.Marshal(map[string]any{"query": q.query, "variables": q.vars})
	if err != nil {
		panic(err)
	}
	return b
}

// ---- the servers ----

// benchServer is the real server (newApp's handler) on 127.0.0.1.
type benchServer struct {
	base  string // scheme and host: /metrics is there
	url   string // the GraphQL endpoint
	store *store.Store
}

// openBenchApp opens the server on c as the server opens itself (fsync on
// unless opts say otherwise), as root with the bench token, with the request
// log formatted and dropped. The store closes when the benchmark ends.
func openBenchApp(tb testing.TB, c config, opts store.Options) *app {
	tb.Helper()
	c.adminToken, c.logger = benchAdminToken, discardLogger
	a, err := newApp(context.Background(), c, opts)
	if err != nil {
		tb.Fatalf("start server: %v", err)
	}
	tb.Cleanup(func() { a.store.Close() })
	return a
}

// openBenchCopy opens a copy of the store file src: bbolt locks its file,
// and the cached data set must stay as generated.
func openBenchCopy(tb testing.TB, src string, opts store.Options) *app {
	tb.Helper()
	db := filepath.Join(tb.TempDir(), "deploygraph.db")
	if err := copyFile(db, src); err != nil {
		tb.Fatal(err)
	}
	return openBenchApp(tb, config{db: db, introspection: true}, opts)
}

// serveBench serves a on 127.0.0.1 until the benchmark ends (before its
// store closes: cleanups run last first).
func serveBench(tb testing.TB, a *app) *benchServer {
	srv := httptest.NewServer(timedHandler(a.handler))
	tb.Cleanup(srv.Close)
	return &benchServer{base: srv.URL, url: srv.URL + "/graphql", store: a.store}
}

// startBenchServer serves a copy of the store file src, opened as the
// server opens it.
func startBenchServer(tb testing.TB, src string, opts store.Options) *benchServer {
	tb.Helper()
	return serveBench(tb, openBenchCopy(tb, src, opts))
}

// benchAnswer is one response, captured to be served again by the bare
// handler.
type benchAnswer struct {
	body          []byte
	contentType   string
	contentLength int64
}

// capture asks the real server q once, checks the answer and returns it.
func capture(tb testing.TB, url string, q benchQuery) benchAnswer {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(q.body()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var decoded struct {
		Data   map[string]any    `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	// A cached data set older than a change to the store's format fails
	// here: bump benchDataVersion (benchdata_test.go).
	if err := json.Unmarshal(raw, &decoded); err != nil || resp.StatusCode != http.StatusOK || len(decoded.Errors) > 0 {
		tb.Fatalf("%s failed (%d): %.2000s\n(a stale cached data set? bump benchDataVersion)", q.name, resp.StatusCode, raw)
	}
	if err := q.check(decoded.Data); err != nil {
		tb.Fatalf("%s: %v\n%.2000s\n(a stale cached data set? bump benchDataVersion)", q.name, err, raw)
	}
	return benchAnswer{body: raw, contentType: resp.Header.Get("Content-Type"), contentLength: resp.ContentLength}
}

// startBareServer answers every request with the captured bytes: the
// reference limit for the same request and response sizes over loopback.
// It reads the request body as the real handler does.
func startBareServer(tb testing.TB, ans benchAnswer) string {
	tb.Helper()
	srv := httptest.NewServer(timedHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ans.contentType)
		if ans.contentLength >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(ans.contentLength, 10))
		}
		w.Write(ans.body)
	})))
	tb.Cleanup(srv.Close)
	return srv.URL + "/graphql"
}

// ---- where a request's time goes ----

// handlerTimes are when the handler began and ended each request of a load
// run, by the number the load client sends with it (requestNumberHeader).
// With the client's own times they split a request's latency in three:
// the wait before the handler runs (the connection's goroutine waits for
// the runtime to poll the network, which a busy processor does only once
// its run queue is empty, and then for a processor), the handler (its
// turn and its work), and the wait after (the response reaching the load
// client's goroutine, which waits the same way).
type handlerTimes struct {
	start, end []time.Time
}

// measuredRun is the load run whose handler times are being recorded.
var measuredRun atomic.Pointer[handlerTimes]

const requestNumberHeader = "X-Bench-Request"

// timedHandler records h's handler times for the measured run.
func timedHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		times := measuredRun.Load()
		if times == nil {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		h.ServeHTTP(w, r)
		end := time.Now()
		if i, err := strconv.Atoi(r.Header.Get(requestNumberHeader)); err == nil && i >= 0 && i < len(times.start) {
			times.start[i], times.end[i] = start, end
		}
	})
}

// runTimedLoad runs spec with its requests numbered, and returns with the
// result its requests' latencies split at the handler (see handlerTimes).
func runTimedLoad(spec loadSpec) (loadResult, latencySplit, error) {
	times := &handlerTimes{start: make([]time.Time, spec.total), end: make([]time.Time, spec.total)}
	measuredRun.Store(times)
	spec.numbered = true
	res, err := runLoad(spec)
	measuredRun.Store(nil)
	if err != nil {
		return res, latencySplit{}, err
	}
	split, err := splitLatencies(res, times)
	return res, split, err
}

// latencySplit is a run's latencies split at the handler, each part sorted.
type latencySplit struct {
	before, handler, after []time.Duration
}

func splitLatencies(res loadResult, times *handlerTimes) (latencySplit, error) {
	var s latencySplit
	for i := range res.total {
		if times.start[i].IsZero() {
			return s, fmt.Errorf("request %d did not reach the timed handler", i)
		}
		s.before = append(s.before, times.start[i].Sub(res.sent[i]))
		s.handler = append(s.handler, times.end[i].Sub(times.start[i]))
		s.after = append(s.after, res.received[i].Sub(times.end[i]))
	}
	for _, part := range [][]time.Duration{s.before, s.handler, s.after} {
		slices.Sort(part)
	}
	return s, nil
}

// mean is the mean of d.
func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(len(d), 1))
}

// report reports the split's means, and the handler's p99.
func (s latencySplit) report(b *testing.B) {
	b.ReportMetric(ms(mean(s.before)), "before-ms")
	b.ReportMetric(ms(mean(s.handler)), "handler-ms")
	b.ReportMetric(ms(mean(s.after)), "after-ms")
	b.ReportMetric(ms(loadResult{lat: s.handler}.pct(99)), "handler-p99-ms")
}

// ---- the load client ----

// loadSpec is a load run: total requests posted from clients goroutines,
// each taking the next request number until none is left.
type loadSpec struct {
	url     string
	token   string
	clients int
	total   int
	body    func(i int) []byte
	// check validates response i; the body buffer is reused afterwards.
	check func(i, status int, body []byte) error
	// numbered sends each request's number (requestNumberHeader), and
	// keeps when each was sent and its answer received.
	numbered bool
}

// loadResult holds a run's wall time and every request's latency.
type loadResult struct {
	total   int
	clients int
	elapsed time.Duration
	lat     []time.Duration // sorted
	// sent and received, by request number, for a numbered run.
	sent, received []time.Time
}

func (r loadResult) rps() float64 { return float64(r.total) / r.elapsed.Seconds() }

// pct is the p-th percentile latency (nearest rank).
func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests, %d clients, %.2fs: %.0f/s, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
		r.total, r.clients, r.elapsed.Seconds(), r.rps(), ms(r.pct(50)), ms(r.pct(90)), ms(r.pct(99)), ms(r.lat[len(r.lat)-1]))
}

// runLoad runs spec and returns the first failure, if any.
func runLoad(spec loadSpec) (loadResult, error) {
	lat := make([]time.Duration, spec.total)
	var sent, received []time.Time
	if spec.numbered {
		sent, received = make([]time.Time, spec.total), make([]time.Time, spec.total)
	}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	start := time.Now()
	for range spec.clients {
		wg.Go(func() {
			var buf bytes.Buffer
			conn, err := newLoadConn(spec.url, spec.token)
			if err != nil {
				fail(err)
				return
			}
			defer conn.close()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= spec.total {
					return
				}
				body, number := spec.body(i), -1
				if spec.numbered {
					number = i
				}
				t0 := time.Now()
				status, err := conn.post(body, number, &buf)
				t1 := time.Now()
				lat[i] = t1.Sub(t0)
				if spec.numbered {
					sent[i], received[i] = t0, t1
				}
				if err == nil {
					err = spec.check(i, status, buf.Bytes())
				}
				if err != nil {
					fail(fmt.Errorf("request %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{total: spec.total, clients: spec.clients, elapsed: time.Since(start), lat: lat, sent: sent, received: received}
	slices.Sort(res.lat)
	return res, firstErr
}

// loadConn is one load client's keep-alive connection, with requests
// written by hand and no goroutine of its own. The load client shares the
// server's two cores, and net/http's client (three goroutines and a
// connection pool per client) costs about as much CPU per request as a
// small query does; the bare handler is measured with this client too.
type loadConn struct {
	addr   string
	header []byte // the request's line and fixed headers
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
}

func newLoadConn(rawURL, token string) (*loadConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	header := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n"
	if token != "" {
		header += "Authorization: Bearer " + token + "\r\n"
	}
	return &loadConn{addr: u.Host, header: []byte(header)}, nil
}

// post sends body, with its number unless that is negative, and reads the
// whole answer into buf.
func (c *loadConn) post(body []byte, number int, buf *bytes.Buffer) (int, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn, c.br, c.bw = conn, bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 16<<10)
	}
	c.bw.Write(c.header)
	if number >= 0 {
		c.bw.WriteString(requestNumberHeader + ": ")
		c.bw.Write(strconv.AppendInt(nil, int64(number), 10))
		c.bw.WriteString("\r\n")
	}
	c.bw.WriteString("Content-Length: ")
	c.bw.Write(strconv.AppendInt(nil, int64(len(body)), 10))
	c.bw.WriteString("\r\n\r\n")
	c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, err
}

func (c *loadConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// sameAnswer checks that a response is exactly the captured one: a read
// query's answer does not change, so any difference is an error.
func sameAnswer(want []byte) func(i, status int, body []byte) error {
	return func(_, status int, body []byte) error {
		if status != http.StatusOK || !bytes.Equal(body, want) {
			return fmt.Errorf("status %d, answer differs from the captured one: %.500s", status, body)
		}
		return nil
	}
}

// queryLoad is spec for total requests of one fixed body.
func queryLoad(url string, clients, total int, body, want []byte) loadSpec {
	return loadSpec{
		url: url, token: benchAdminToken, clients: clients, total: total,
		body: func(int) []byte { return body }, check: sameAnswer(want),
	}
}

// ---- memory ----

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status.
func procStatusKB(field string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb, err == nil
	}
	return 0, false
}

// resetPeakRSS restarts VmHWM (Linux ≥ 4.0), so that the peak reported
// after the query runs is theirs, not the data generation's.
func resetPeakRSS() error { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// sampleAnonRSS samples the process's anonymous resident memory (RssAnon:
// the Go heap, stacks and runtime, without the store's file pages) every
// 20 ms until the returned function is called, which returns the peak in
// kB. VmHWM alone cannot tell the two apart, and bbolt's mmap of a large
// store dominates it.
func sampleAnonRSS() (stop func() int64) {
	var peak atomic.Int64
	sample := func() {
		if kb, ok := procStatusKB("RssAnon"); ok && kb > peak.Load() {
			peak.Store(kb)
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		sample()
		return peak.Load()
	}
}

// reportMemory reports the peak resident memory since the last
// resetPeakRSS and peakAnon (kB, from sampleAnonRSS), and describes them.
func reportMemory(b *testing.B, peakAnon int64) string {
	if kb, ok := procStatusKB("VmHWM"); ok {
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
	}
	b.ReportMetric(float64(peakAnon)/1024, "peak-anon-MiB")
	return fmt.Sprintf("peak anonymous %.0f MiB during the run; %s", float64(peakAnon)/1024, memoryLine())
}

// memoryLine summarises the process's resident memory: the peak and the
// current split into anonymous memory (the Go heap and stacks) and file
// pages (the store's mmap).
func memoryLine() string {
	var parts []string
	for _, f := range []string{"VmHWM", "VmRSS", "RssAnon", "RssFile"} {
		if kb, ok := procStatusKB(f); ok {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", f, float64(kb)/1024))
		}
	}
	return strings.Join(parts, ", ")
}

// ---- the benchmarks ----

// BenchmarkQuery runs q1, q2 and q3 against the data set of
// DEPLOYGRAPH_BENCH_N deployments through the real handler (q1, q2, q3)
// and the same answers from a bare handler (q1-bare, …). One server
// serves every sub-benchmark; the parent body runs once.
func BenchmarkQuery(b *testing.B) {
	tuneGC() // as the server runs
	n := benchEnvInt(b, "DEPLOYGRAPH_BENCH_N", 10000)
	clients := benchEnvInt(b, "DEPLOYGRAPH_BENCH_CLIENTS", 32)
	srv := startBenchServer(b, benchStore(b, n), store.Options{})
	if err := resetPeakRSS(); err != nil {
		b.Logf("cannot reset the peak RSS (%v): it includes the data generation", err)
	}
	for _, q := range benchQueries(n) {
		ans := capture(b, srv.url, q)
		bare := startBareServer(b, ans)
		body := q.body()
		// Warm up: connections, the page cache and the Go heap.
		for _, url := range []string{srv.url, bare} {
			if _, err := runLoad(queryLoad(url, clients, 4*clients, body, ans.body)); err != nil {
				b.Fatalf("%s warm-up: %v", q.name, err)
			}
		}
		for _, target := range []struct{ name, url string }{{q.name, srv.url}, {q.name + "-bare", bare}} {
			b.Run(target.name, func(b *testing.B) {
				total := benchEnvInt(b, "DEPLOYGRAPH_BENCH_REQUESTS", b.N)
				anon := sampleAnonRSS()
				b.ResetTimer()
				cpu, reads := processCPU(), srv.store.Reads()
				res, split, err := runTimedLoad(queryLoad(target.url, clients, total, body, ans.body))
				cpu, reads = processCPU()-cpu, srv.store.Reads()-reads
				b.StopTimer()
				peakAnon := anon()
				if err != nil {
					b.Fatalf("%s: %v", target.name, err)
				}
				reportLoad(b, res, "req/s")
				split.report(b)
				// The load client's share included: it runs in this process.
				b.ReportMetric(float64(cpu.Microseconds())/float64(res.total), "cpu-µs/req")
				if target.url == srv.url {
					// Store read transactions: batching under load.
					b.ReportMetric(float64(reads)/float64(res.total), "reads/req")
				}
				memory := reportMemory(b, peakAnon)
				b.Logf("N=%d %s (%d response bytes): %s, CPU %.0f µs per request", n, target.name, len(ans.body), res, float64(cpu.Microseconds())/float64(res.total))
				b.Logf("N=%d %s memory: %s", n, target.name, memory)
			})
		}
	}
}

// reportLoad reports throughput and latency percentiles; ns/op becomes
// the wall time per request, whatever b.N was.
func reportLoad(b *testing.B, res loadResult, unit string) {
	b.ReportMetric(float64(res.elapsed.Nanoseconds())/float64(res.total), "ns/op")
	b.ReportMetric(res.rps(), unit)
	b.ReportMetric(ms(res.pct(50)), "p50-ms")
	b.ReportMetric(ms(res.pct(99)), "p99-ms")
}

// benchWriteProject is the one project the write benchmark records
// deployments in; benchWriter is a DEVELOPER in it. Their ids are past the
// generated data set's, so that the writes can go into a copy of it.
const (
	benchWriteProject   = "bench/writes"
	benchWriteProjectID = 9001
	benchWriter         = 9001
)

// startWriteServer serves a store with one more project (see
// openWriteApp) and returns the server and a DEVELOPER's token.
func startWriteServer(tb testing.TB, opts store.Options, base string) (*benchServer, string) {
	tb.Helper()
	a, token := openWriteApp(tb, opts, base)
	return serveBench(tb, a), token
}

// openWriteApp opens a server with one more project, the write benchmarks'
// target, and returns it with a token of its developer: on a fresh store,
// or on a copy of the store file base when there is one.
func openWriteApp(tb testing.TB, opts store.Options, base string) (*app, string) {
	tb.Helper()
	doc := map[string]any{
		"users": []map[string]any{{"id": benchWriter, "username": "deployer", "name": "Deployer", "state": "active"}},
		"projects": []map[string]any{{
			"id": benchWriteProjectID, "name": "writes", "path": "writes", "path_with_namespace": benchWriteProject, "visibility": "private",
			"members": []map[string]any{{"user_id": benchWriter, "access_level": 30}},
		}},
	}
	dir := tb.TempDir()
	db := filepath.Join(dir, "deploygraph.db")
	if base != "" {
		if err := copyFile(db, base); err != nil {
			tb.Fatal(err)
		}
	}
	a := openBenchApp(tb, config{db: db, importFile: writeDoc(tb, dir, "import.json", doc)}, opts)
	token, _, err := a.store.CreateAccessToken(context.Background(), store.System, benchWriter, "bench", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return a, token
}

const benchCreateMutation = `mutation Create($input: CreateDeploymentInput!) { createDeployment(input: $input) { deployment { id iid status } } }`

// createDeploymentBody is the i-th write's request, with a sha of its own
// so that no write is a retry of another.
func createDeploymentBody(i int) []byte {
	h := sha1.Sum([]byte(fmt.Sprintf("write-%d", i)))
	body, _ := json.Marshal(map[string]any{"query": benchCreateMutation, "variables": map[string]any{"input": map[string]any{
		"projectId": benchWriteProject, "environment": "production", "sha": hex.EncodeToString(h[:]),
		"ref": "main", "tag": false, "status": "SUCCESS",
	}}})
	return body
}

// createdIID reads the iid of a successful answer to benchCreateMutation,
// which is exactly {"data":{"createDeployment":{"deployment":{"id":"…",
// "iid":N,"status":"…"}}}}: anything else (an error, a missing field, an
// extra one) is not ok. The id's form is the graph package's, not checked
// here. The load client shares the server's cores, and
// decoding each answer with encoding/json cost it about 10 µs of CPU per
// write, a thirtieth of the server's.
func createdIID(body []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(`{"data":{"createDeployment":{"deployment":{"id":"`))
	if !ok {
		return 0, false
	}
	id, rest, ok := bytes.Cut(rest, []byte(`","iid":`))
	if !ok || len(id) == 0 || bytes.ContainsAny(id, `"\`) {
		return 0, false
	}
	digits, rest, ok := bytes.Cut(rest, []byte(`,"status":"`))
	if !ok {
		return 0, false
	}
	iid, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	status, rest, ok := bytes.Cut(rest, []byte(`"}}}}`))
	if !ok || len(rest) != 0 || len(status) == 0 || bytes.ContainsAny(status, `"\{}`) {
		return 0, false
	}
	return iid, true
}

// runWrites posts total createDeployment mutations (createDeploymentBody)
// from clients goroutines and then checks that the project's iids are
// exactly 1..total, both in the answers and in the store.
func runWrites(tb testing.TB, srv *benchServer, token string, clients, total int, measure func(run func() (loadResult, error)) (loadResult, error)) loadResult {
	tb.Helper()
	bodies := make([][]byte, total)
	for i := range bodies {
		bodies[i] = createDeploymentBody(i)
	}
	iids := make([]int64, total)
	res, err := measure(func() (loadResult, error) {
		return runLoad(loadSpec{
			url: srv.url, token: token, clients: clients, total: total,
			body: func(i int) []byte { return bodies[i] },
			check: func(i, status int, body []byte) error {
				iid, ok := createdIID(body)
				if !ok || status != http.StatusOK {
					return fmt.Errorf("createDeployment failed (%d): %.500s", status, body)
				}
				iids[i] = iid
				return nil
			},
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(iids)
	for i, iid := range iids {
		if iid != int64(i+1) {
			tb.Fatalf("answered iids are not 1..%d: position %d holds %d", total, i, iid)
		}
	}
	stored := storedIIDs(tb, srv.url)
	if len(stored) != total {
		tb.Fatalf("the project holds %d deployments after %d creates", len(stored), total)
	}
	for i, iid := range stored {
		if iid != int64(i+1) {
			tb.Fatalf("stored iids are not 1..%d: position %d holds %d", total, i, iid)
		}
	}
	return res
}

// storedIIDs lists the write project's iids in order, page by page.
func storedIIDs(tb testing.TB, url string) []int64 {
	tb.Helper()
	const q = `query($after: String) { project(id: "bench/writes") { deployments(orderBy: IID, first: 100, after: $after) {
  nodes { iid } pageInfo { hasNextPage endCursor } } } }`
	conn, err := newLoadConn(url, benchAdminToken)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.close()
	var out []int64
	var after any
	for {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"after": after}})
		var buf bytes.Buffer
		status, err := conn.post(body, -1, &buf)
		var r struct {
			Data struct {
				Project struct {
					Deployments struct {
						Nodes    []struct{ IID int64 }
						PageInfo struct {
							HasNextPage bool
							EndCursor   string
						}
					}
				}
			}
			Errors []json.RawMessage
		}
		if err == nil {
			err = json.Unmarshal(buf.Bytes(), &r)
		}
		if err != nil || status != http.StatusOK || len(r.Errors) > 0 {
			tb.Fatalf("list deployments (%d, %v): %.500s", status, err, buf.Bytes())
		}
		for _, n := range r.Data.Project.Deployments.Nodes {
			out = append(out, n.IID)
		}
		if !r.Data.Project.Deployments.PageInfo.HasNextPage {
			return out
		}
		after = r.Data.Project.Deployments.PageInfo.EndCursor
	}
}

// BenchmarkCreateDeployment records deployments over HTTP with fsync on
// (the server's own store options) from 1 and 32 clients, into a fresh
// store per run (or a fresh copy of the generated data set, with
// DEPLOYGRAPH_BENCH_WRITE_N), and fails unless the iids come out gap-free.
func BenchmarkCreateDeployment(b *testing.B) {
	tuneGC() // as the server runs
	var base string
	if n := benchEnvInt(b, "DEPLOYGRAPH_BENCH_WRITE_N", 0); n > 0 {
		base = benchStore(b, n)
	}
	for _, load := range []struct {
		name    string
		clients int
		opts    store.Options
	}{
		{"clients-1", 1, store.Options{}},
		{"clients-32", 32, store.Options{}},
		// The same load with fsync off: what the CPU alone allows, the
		// limit of any way of making the writes durable (compare in one
		// run, as the queries compare with the bare handler).
		{"ceiling-32", 32, store.Options{NoSync: true}},
	} {
		clients := load.clients
		b.Run(load.name, func(b *testing.B) {
			total := benchEnvInt(b, "DEPLOYGRAPH_BENCH_WRITES", benchEnvInt(b, "DEPLOYGRAPH_BENCH_REQUESTS", b.N))
			b.StopTimer()
			srv, token := startWriteServer(b, load.opts, base)
			if err := resetPeakRSS(); err != nil {
				b.Logf("cannot reset the peak RSS (%v): it includes the store's copy", err)
			}
			var cpu time.Duration
			var allocs uint64
			var commits writeTxs
			var peakAnon int64
			res := runWrites(b, srv, token, clients, total, func(run func() (loadResult, error)) (loadResult, error) {
				before := writeTxsOf(b, srv)
				b.StartTimer()
				defer b.StopTimer()
				start, allocated, anon := processCPU(), heapObjectsAllocated(), sampleAnonRSS()
				defer func() {
					cpu, allocs, peakAnon = processCPU()-start, heapObjectsAllocated()-allocated, anon()
					commits = writeTxsOf(b, srv).since(before)
				}()
				return run()
			})
			reportLoad(b, res, "writes/s")
			// The load client's share included: it runs in this process.
			b.ReportMetric(float64(cpu.Microseconds())/float64(res.total), "cpu-µs/write")
			b.ReportMetric(float64(allocs)/float64(res.total), "allocs/write")
			// How group commit shared the fsyncs: writes per write
			// transaction, and how long one took (running its writes, then
			// bbolt's commit with its two fdatasyncs).
			b.ReportMetric(float64(res.total)/commits.count, "writes/commit")
			b.ReportMetric(1000*commits.seconds/commits.count, "commit-ms")
			// The part of a commit spent writing its pages and syncing
			// them: the disk's share, which no faster processor shortens.
			b.ReportMetric(1000*commits.sync/commits.count, "sync-ms")
			b.ReportMetric(commits.pages/commits.count, "pages/commit")
			memory := reportMemory(b, peakAnon)
			fsync := "on"
			if load.opts.NoSync {
				fsync = "off"
			}
			b.Logf("createDeployment, fsync %s: %s", fsync, res)
			b.Logf("createDeployment memory: %s", memory)
		})
	}
}

// writeTxs is the store's write transactions so far, as /metrics counts
// them: how many, their total duration, the part of it spent writing and
// syncing pages, and the pages written.
type writeTxs struct{ count, seconds, sync, pages float64 }

func writeTxsOf(tb testing.TB, srv *benchServer) writeTxs {
	tb.Helper()
	text := metricsText(tb, srv.base)
	const name = "deploygraph_store_transaction_duration_seconds"
	w := writeTxs{
		count:   metricValue(text, name+`_count{kind="write"}`),
		seconds: metricValue(text, name+`_sum{kind="write"}`),
		sync:    metricValue(text, "deploygraph_store_commit_sync_seconds_total"),
		pages:   metricValue(text, "deploygraph_store_page_writes_total"),
	}
	if w.count < 0 || w.seconds < 0 || w.sync < 0 || w.pages < 0 {
		tb.Fatalf("/metrics lacks the store's write transaction figures: %+v", w)
	}
	return w
}

func (w writeTxs) since(before writeTxs) writeTxs {
	return writeTxs{
		count: w.count - before.count, seconds: w.seconds - before.seconds,
		sync: w.sync - before.sync, pages: w.pages - before.pages,
	}
}

// TestCreatedIIDTakesOnlyASuccess pins the write load's check of an
// answer: an iid is read only from a whole, successful answer.
func TestCreatedIIDTakesOnlyASuccess(t *testing.T) {
	const ok = `{"data":{"createDeployment":{"deployment":{"id":"gid://deploygraph/Deployment/7","iid":3,"status":"SUCCESS"}}}}`
	for _, c := range []struct {
		name, body string
		iid        int64
		ok         bool
	}{
		{"success", ok, 3, true},
		{"errors", `{"errors":[{"message":"x"}],"data":{"createDeployment":null}}`, 0, false},
		{"errors after the data", ok[:len(ok)-1] + `,"errors":[{"message":"x"}]}`, 0, false},
		{"no deployment", `{"data":{"createDeployment":{"deployment":null}}}`, 0, false},
		{"iid not a number", `{"data":{"createDeployment":{"deployment":{"id":"gid://deploygraph/Deployment/7","iid":"3","status":"SUCCESS"}}}}`, 0, false},
		{"no id", `{"data":{"createDeployment":{"deployment":{"id":"","iid":3,"status":"SUCCESS"}}}}`, 0, false},
		{"no status", `{"data":{"createDeployment":{"deployment":{"id":"gid://deploygraph/Deployment/7","iid":3}}}}`, 0, false},
		{"something after", ok + ` `, 0, false},
		{"cut short", ok[:40], 0, false},
	} {
		iid, got := createdIID([]byte(c.body))
		if iid != c.iid || got != c.ok {
			t.Errorf("%s: createdIID = %d, %v; want %d, %v", c.name, iid, got, c.iid, c.ok)
		}
	}
}

// TestBenchHarnessTiny runs the benchmarks' machinery once at a tiny size,
// so that `go test ./...` keeps it working: a fresh data set of 600
// deployments (never the cache, which may predate a change), each query
// through the real and the bare handler, and a few concurrent writes.
func TestBenchHarnessTiny(t *testing.T) {
	const n = 600 // 60 deployments per project: q2 gets a full page of 50
	var doc1, doc2 bytes.Buffer
	if err := writeBenchDoc(&doc1, n); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchDoc(&doc2, n); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc1.Bytes(), doc2.Bytes()) {
		t.Fatal("the generator is not deterministic")
	}
	db := filepath.Join(t.TempDir(), "bench.db")
	g := generateBenchStore(t, db, n)
	want := store.ImportStats{
		Users: benchUserCount, Projects: benchProjectCount, Members: benchProjectCount * benchUserCount,
		ProtectedEnvironments: benchProjectCount, Environments: benchProjectCount * benchEnvCount,
		Deployments: n, Jobs: n, Pipelines: n, Commits: n / benchEnvCount,
		Approvals: n / 10, MergeRequests: 2 * n / 5, Links: 2 * n / 5,
	}
	if g.Records != want {
		t.Errorf("imported %s\nwant     %s", g.Records, want)
	}

	srv := startBenchServer(t, db, store.Options{NoSync: true})
	const clients, total = 8, 32
	for _, q := range benchQueries(n) {
		ans := capture(t, srv.url, q)
		bare := startBareServer(t, ans)
		for _, url := range []string{srv.url, bare} {
			res, split, err := runTimedLoad(queryLoad(url, clients, total, q.body(), ans.body))
			if err != nil {
				t.Fatalf("%s at %s: %v", q.name, url, err)
			}
			if len(res.lat) != total || res.pct(50) <= 0 || res.pct(99) < res.pct(50) {
				t.Errorf("%s: implausible result %s", q.name, res)
			}
			// The three parts of each request's latency are in order and
			// add up to it.
			for i := range total {
				before, handler, after := split.before[i], split.handler[i], split.after[i]
				if before < 0 || handler <= 0 || after < 0 {
					t.Errorf("%s: a part of a latency is negative: %v, %v, %v", q.name, before, handler, after)
				}
			}
			if got, want := mean(split.before)+mean(split.handler)+mean(split.after), mean(res.lat); got < want-time.Microsecond || got > want+time.Microsecond {
				t.Errorf("%s: the parts' means add up to %v, the latencies' mean is %v", q.name, got, want)
			}
		}
	}

	wsrv, token := startWriteServer(t, store.Options{NoSync: true}, "")
	runWrites(t, wsrv, token, clients, 50, func(run func() (loadResult, error)) (loadResult, error) { return run() })
}

// BenchmarkServe runs q1–q3, and createDeployment, one at a time through
// the handler in this process, without sockets: cpu-ms/op is the server's
// CPU cost of a request (what bounds throughput), allocs/op its allocation
// count, and ns/op its latency with nothing else running: the steadiest
// figures to compare changes with on a noisy machine.
func BenchmarkServe(b *testing.B) {
	tuneGC() // as the server runs
	n := benchEnvInt(b, "DEPLOYGRAPH_BENCH_N", 10000)
	a := openBenchCopy(b, benchStore(b, n), store.Options{})
	for _, q := range benchQueries(n) {
		body := q.body()
		b.Run(q.name, func(b *testing.B) {
			serveOneAtATime(b, a, benchAdminToken, func(int) []byte { return body })
		})
	}
	// A page of the project's failures (a tenth of its deployments): the
	// index's status partitions give it without reading the successes.
	failures := benchQuery{query: benchFailures, vars: map[string]any{"project": benchProjectPath(0)}}.body()
	b.Run("failures", func(b *testing.B) {
		serveOneAtATime(b, a, benchAdminToken, func(int) []byte { return failures })
	})
	// One write per commit, fsync off: the CPU of the request, its
	// transaction and bbolt's commit without the disk (the body's making
	// included). Under concurrency a commit is shared, and its part with it.
	b.Run("createDeployment", func(b *testing.B) {
		w, token := openWriteApp(b, store.Options{NoSync: true}, "")
		serveOneAtATime(b, w, token, createDeploymentBody)
	})
}

// serveOneAtATime sends the i-th body to a's handler in turn, in process,
// and reports the CPU and allocations per request.
func serveOneAtATime(b *testing.B, a *app, token string, body func(i int) []byte) {
	b.ReportAllocs()
	cpu := processCPU()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body(i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			b.Fatalf("%s: %d %.500s", b.Name(), rec.Code, rec.Body.Bytes())
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// processCPU is the CPU time (user and system) this process has used.
// heapObjectsAllocated counts the heap objects this process has allocated
// so far, without stopping the world as runtime.ReadMemStats does.
func heapObjectsAllocated() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
