package main

// The benchmarks' data set (issue 5): n deployments over 10 projects of 20
// environments each, 100 users, a CI job and pipeline per deployment, one
// approval per 10 deployments and two linked merge requests per 5.
//
// The data goes in through the import path (SPEC 7), so that it passes
// every check the importer makes and is stored exactly as real data would
// be, indexes and counters included. A million deployments cannot be held
// in memory as one document, so the generator streams the document to a
// file, element by element, and the importer streams it back.
//
// Generating a million deployments takes minutes, so the result is cached
// in os.TempDir() under a name that carries n and benchDataVersion. The
// file appears under that name only once complete (it is built under a
// temporary name and renamed), so an interrupted run never leaves a half
// store that a later run would reuse.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// benchDataVersion names the generator's output in the cache file names:
// bump it whenever the generated data changes (or the store's file format
// does, or how it is laid out: version 2 keeps the freelist, version 3
// fills the pages of append-only buckets, version 4 has index layout 2),
// so that stale cached stores are not reused.
const benchDataVersion = 4

// benchAdminToken authenticates as root in every generated store: the load
// client sends it, and newApp's EnsureAdminToken finds it already there.
const benchAdminToken = "deploygraph-bench-admin-token"

// The data set's fixed dimensions.
const (
	benchProjectCount = 10
	benchEnvCount     = 20
	benchUserCount    = 100
	benchSeed1        = 0x5eed
	benchSeed2        = 5
)

// benchBase is the first deployment's creation time; deployment i (global,
// 0-based) is created 30 s after deployment i-1, so a million deployments
// span about a year.
var benchBase = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

// benchEnvNames are every project's 20 environments. Index 0 (production)
// is protected with approval rules; the review apps sit in a folder.
var benchEnvNames = func() []string {
	names := []string{"production", "staging", "qa", "development", "canary-1", "canary-2", "canary-3"}
	for i := 1; len(names) < benchEnvCount; i++ {
		names = append(names, fmt.Sprintf("review/feature-%d", i))
	}
	return names
}()

// benchProjectPath is the full path of project p (0-based).
func benchProjectPath(p int) string { return fmt.Sprintf("bench/p%d", p) }

// benchPerProject is how many deployments project p holds: deployment i
// (0-based, global) belongs to project i%10 with iid i/10+1.
func benchPerProject(n, p int) int { return (n - p + benchProjectCount - 1) / benchProjectCount }

// benchDeploymentEnv is the environment index of the deployment with that
// iid: a project's deployments go round its environments in turn, so a
// "release" of 20 consecutive iids visits every environment once, starting
// with production.
func benchDeploymentEnv(iid int) int { return (iid - 1) % benchEnvCount }

// benchApprovedIID is the newest iid of project 0 that went to production:
// q3 asks for it, as it has approvals and linked merge requests.
func benchApprovedIID(n int) int {
	last := benchPerProject(n, 0)
	return (last-1)/benchEnvCount*benchEnvCount + 1
}

// benchIsMaintainer gives every fourth user MAINTAINER in every project,
// the others DEVELOPER.
func benchIsMaintainer(user int) bool { return user%4 == 0 }

// benchSHA is the commit of a project's release c: the 20 deployments of a
// release share it (one deploy pipeline per environment), which keeps the
// document and store smaller than a commit per deployment would.
func benchSHA(p, c int) string {
	h := sha1.Sum([]byte(fmt.Sprintf("bench-commit-%d-%d", p, c)))
	return hex.EncodeToString(h[:])
}

func benchTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// benchRef is the branch deployed to environment e: main, except for the
// review apps, which deploy their feature branch.
func benchRef(e int) string {
	if name, ok := strings.CutPrefix(benchEnvNames[e], "review/"); ok {
		return name
	}
	return "main"
}

// ---- the document's elements (SPEC 7), only the fields the data needs ----

type bdID struct {
	ID int64 `json:"id"`
}

type bdUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	State    string `json:"state"`
}

type bdMember struct {
	UserID      int64 `json:"user_id"`
	AccessLevel int   `json:"access_level"`
}

type bdRule struct {
	AccessLevel       int `json:"access_level"`
	RequiredApprovals int `json:"required_approvals,omitempty"`
}

type bdProtected struct {
	Name               string   `json:"name"`
	DeployAccessLevels []bdRule `json:"deploy_access_levels"`
	ApprovalRules      []bdRule `json:"approval_rules"`
}

type bdEnvironment struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	State     string `json:"state"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// bdProject is a project's scalars and small lists; its three big lists are
// streamed after them.
type bdProject struct {
	ID                    int64           `json:"id"`
	Name                  string          `json:"name"`
	Path                  string          `json:"path"`
	PathWithNamespace     string          `json:"path_with_namespace"`
	Visibility            string          `json:"visibility"`
	CreatedAt             string          `json:"created_at"`
	Members               []bdMember      `json:"members"`
	ProtectedEnvironments []bdProtected   `json:"protected_environments"`
	Environments          []bdEnvironment `json:"environments"`
}

// bdCommit is a full commit on its first use and a reference (only its
// sha) after that.
type bdCommit struct {
	ID            string `json:"id"`
	Message       string `json:"message,omitempty"`
	AuthorName    string `json:"author_name,omitempty"`
	AuthorEmail   string `json:"author_email,omitempty"`
	CommittedDate string `json:"committed_date,omitempty"`
}

type bdPipeline struct {
	ID        int64  `json:"id"`
	Ref       string `json:"ref"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type bdJob struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Stage      string     `json:"stage"`
	Status     string     `json:"status"`
	Ref        string     `json:"ref"`
	Tag        bool       `json:"tag"`
	CreatedAt  string     `json:"created_at"`
	StartedAt  string     `json:"started_at"`
	FinishedAt string     `json:"finished_at,omitempty"`
	Duration   *float64   `json:"duration,omitempty"`
	User       bdID       `json:"user"`
	Commit     bdCommit   `json:"commit"`
	Pipeline   bdPipeline `json:"pipeline"`
}

type bdApproval struct {
	User      bdID   `json:"user"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

type bdEnvRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type bdDeployment struct {
	ID          int64        `json:"id"`
	IID         int64        `json:"iid"`
	Ref         string       `json:"ref"`
	SHA         string       `json:"sha"`
	Tag         bool         `json:"tag"`
	Status      string       `json:"status"`
	CreatedAt   string       `json:"created_at"`
	UpdatedAt   string       `json:"updated_at"`
	FinishedAt  string       `json:"finished_at,omitempty"`
	User        bdID         `json:"user"`
	Environment bdEnvRef     `json:"environment"`
	Deployable  bdJob        `json:"deployable"`
	Approvals   []bdApproval `json:"approvals,omitempty"`
}

type bdMergeRequest struct {
	ID           int64  `json:"id"`
	IID          int64  `json:"iid"`
	Title        string `json:"title"`
	State        string `json:"state"`
	SourceBranch string `json:"source_branch"`
	TargetBranch string `json:"target_branch"`
	Author       bdID   `json:"author"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at"`
	MergedAt     string `json:"merged_at"`
}

type bdLink struct {
	DeploymentID   int64 `json:"deployment_id"`
	MergeRequestID int64 `json:"merge_request_id"`
}

// ---- the generator ----

// benchDocWriter streams the document; the bufio.Writer keeps the first
// write error, which Flush reports.
type benchDocWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	rng *rand.Rand
	n   int
}

func (d *benchDocWriter) raw(s string) { d.w.WriteString(s) }

// value writes one JSON value (followed by a newline, which JSON allows
// between array elements).
func (d *benchDocWriter) value(v any) {
	if err := d.enc.Encode(v); err != nil {
		panic(err) // our own types always marshal; write errors stay in d.w
	}
}

// list writes count elements made by elem, comma-separated.
func (d *benchDocWriter) list(count int, elem func(i int) any) {
	d.raw("[")
	for i := range count {
		if i > 0 {
			d.raw(",")
		}
		d.value(elem(i))
	}
	d.raw("]")
}

// writeBenchDoc streams the import document of n deployments to w. Only
// math/rand/v2 with a fixed seed decides the random parts (who deployed,
// statuses, durations, approvers), in a fixed order, so the same n always
// gives the same document.
func writeBenchDoc(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	d := &benchDocWriter{w: bw, enc: json.NewEncoder(bw), rng: rand.New(rand.NewPCG(benchSeed1, benchSeed2)), n: n}
	d.enc.SetEscapeHTML(false)
	d.raw(`{"users":`)
	d.list(benchUserCount, func(i int) any {
		u := i + 1
		return bdUser{ID: int64(u), Username: fmt.Sprintf("user%03d", u), Name: fmt.Sprintf("Bench User %d", u), State: "active"}
	})
	d.raw(`,"projects":[`)
	for p := range benchProjectCount {
		if p > 0 {
			d.raw(",")
		}
		d.project(p)
	}
	d.raw("]}\n")
	return bw.Flush()
}

// project writes project p: its scalars and small lists, then its
// deployments, merge requests and links, one element at a time.
func (d *benchDocWriter) project(p int) {
	created := benchTime(benchBase.Add(-48 * time.Hour))
	head := bdProject{
		ID: int64(p + 1), Name: fmt.Sprintf("p%d", p), Path: fmt.Sprintf("p%d", p),
		PathWithNamespace: benchProjectPath(p), Visibility: "private", CreatedAt: created,
		// Deployers need DEVELOPER on production; approvals come from one
		// maintainer (first rule) and one developer (second rule), so a
		// deployment with both has nothing pending.
		ProtectedEnvironments: []bdProtected{{
			Name:               "production",
			DeployAccessLevels: []bdRule{{AccessLevel: 30}},
			ApprovalRules:      []bdRule{{AccessLevel: 40, RequiredApprovals: 1}, {AccessLevel: 30, RequiredApprovals: 1}},
		}},
	}
	for u := 1; u <= benchUserCount; u++ {
		level := 30
		if benchIsMaintainer(u) {
			level = 40
		}
		head.Members = append(head.Members, bdMember{UserID: int64(u), AccessLevel: level})
	}
	for e, name := range benchEnvNames {
		head.Environments = append(head.Environments, bdEnvironment{
			ID: int64(p*benchEnvCount + e + 1), Name: name, State: "available",
			CreatedAt: benchTime(benchBase.Add(-24 * time.Hour)), UpdatedAt: benchTime(benchBase.Add(-24 * time.Hour)),
		})
	}
	headJSON, err := json.Marshal(head)
	if err != nil {
		panic(err)
	}
	d.w.Write(headJSON[:len(headJSON)-1]) // without its closing brace
	count := benchPerProject(d.n, p)
	d.raw(`,"deployments":`)
	d.list(count, func(i int) any { return d.deployment(p, i+1) })
	// Two merge requests for every fifth deployment (iids 1, 6, 11, …,
	// which include every production deployment), merged shortly before
	// it and linked to it.
	linked := (count + 4) / 5
	d.raw(`,"merge_requests":`)
	d.list(2*linked, func(i int) any { return benchMergeRequest(p, i+1) })
	d.raw(`,"deployment_merge_requests":`)
	d.list(2*linked, func(i int) any {
		mrIID := i + 1
		return bdLink{DeploymentID: benchDeploymentID(p, benchMRDeploymentIID(mrIID)), MergeRequestID: benchMRID(p, mrIID)}
	})
	d.raw("}")
}

// benchDeploymentID is the id of project p's deployment iid: ids count
// through the projects in turn, in creation order.
func benchDeploymentID(p, iid int) int64 { return int64((iid-1)*benchProjectCount + p + 1) }

func benchCreatedAt(p, iid int) time.Time {
	return benchBase.Add(time.Duration(benchDeploymentID(p, iid)-1) * 30 * time.Second)
}

// benchMRDeploymentIID is the deployment that merge request mrIID shipped
// with: merge requests 1 and 2 with deployment 1, 3 and 4 with 6, …
func benchMRDeploymentIID(mrIID int) int { return (mrIID-1)/2*5 + 1 }

func benchMRID(p, mrIID int) int64 { return int64((mrIID-1)*benchProjectCount + p + 1) }

// deployment makes project p's deployment iid, drawing from the rng.
func (d *benchDocWriter) deployment(p, iid int) bdDeployment {
	e := benchDeploymentEnv(iid)
	id := benchDeploymentID(p, iid)
	created := benchCreatedAt(p, iid)
	started := created.Add(30 * time.Second)
	ref := benchRef(e)
	user := 1 + d.rng.IntN(benchUserCount)
	// Mostly successes; some failures and cancellations. RUNNING only for
	// the newest deployment of an environment: an old one still running
	// would be a stuck deployment.
	status := "success"
	switch r := d.rng.IntN(100); {
	case r < 88:
	case r < 94:
		status = "failed"
	case r < 98:
		status = "canceled"
	default:
		if iid > benchPerProject(d.n, p)-benchEnvCount {
			status = "running"
		}
	}
	duration := math.Round((20+d.rng.Float64()*600)*10) / 10
	release := (iid - 1) / benchEnvCount
	commit := bdCommit{ID: benchSHA(p, release)}
	if e == 0 { // the release's first deployment carries the full commit
		commit.Message = fmt.Sprintf("Release %d of p%d\n\nChanges since the previous release.", release+1, p)
		commit.AuthorName = fmt.Sprintf("Bench User %d", user)
		commit.AuthorEmail = fmt.Sprintf("user%03d@example.com", user)
		commit.CommittedDate = benchTime(created.Add(-time.Hour))
	}
	dep := bdDeployment{
		ID: id, IID: int64(iid), Ref: ref, SHA: commit.ID, Status: status,
		CreatedAt: benchTime(created), UpdatedAt: benchTime(started),
		User:        bdID{int64(user)},
		Environment: bdEnvRef{ID: int64(p*benchEnvCount + e + 1), Name: benchEnvNames[e]},
		Deployable: bdJob{
			ID: id, Name: "deploy:" + strings.ReplaceAll(benchEnvNames[e], "/", "-"), Stage: "deploy", Status: status,
			Ref: ref, CreatedAt: benchTime(created), StartedAt: benchTime(started),
			User: bdID{int64(user)}, Commit: commit,
			Pipeline: bdPipeline{ID: id, Ref: ref, Status: status, CreatedAt: benchTime(created.Add(-time.Minute)), UpdatedAt: benchTime(started)},
		},
	}
	if status != "running" {
		finished := benchTime(started.Add(time.Duration(duration * float64(time.Second))))
		dep.FinishedAt, dep.UpdatedAt = finished, finished
		dep.Deployable.FinishedAt, dep.Deployable.Duration = finished, &duration
		dep.Deployable.Pipeline.UpdatedAt = finished
	}
	if e == 0 {
		// Production requires approval: one maintainer and one developer,
		// neither of them the deployer, approved before the job started.
		m := 4 * (1 + d.rng.IntN(benchUserCount/4))
		if m == user {
			m = m%benchUserCount + 4
		}
		dev := 1 + d.rng.IntN(benchUserCount)
		for benchIsMaintainer(dev) || dev == user {
			dev = dev%benchUserCount + 1
		}
		dep.Approvals = []bdApproval{
			{User: bdID{int64(m)}, Status: "approved", CreatedAt: benchTime(created.Add(10 * time.Second))},
			{User: bdID{int64(dev)}, Status: "approved", CreatedAt: benchTime(created.Add(20 * time.Second))},
		}
	}
	return dep
}

// benchMergeRequest makes project p's merge request mrIID, merged into the
// branch its deployment shipped, an hour before that deployment.
func benchMergeRequest(p, mrIID int) bdMergeRequest {
	depIID := benchMRDeploymentIID(mrIID)
	at := benchCreatedAt(p, depIID)
	k := time.Duration(mrIID%2) * time.Minute
	return bdMergeRequest{
		ID: benchMRID(p, mrIID), IID: int64(mrIID), Title: fmt.Sprintf("Feature %d of p%d", mrIID, p), State: "merged",
		SourceBranch: fmt.Sprintf("mr-%d", mrIID), TargetBranch: benchRef(benchDeploymentEnv(depIID)),
		Author:    bdID{int64(1 + mrIID*37%benchUserCount)},
		CreatedAt: benchTime(at.Add(-2*time.Hour + k)), UpdatedAt: benchTime(at.Add(-time.Hour + k)), MergedAt: benchTime(at.Add(-time.Hour + k)),
	}
}

// ---- building and caching the store ----

// benchGenStats is what generating a store cost.
type benchGenStats struct {
	DocBytes  int64
	WriteDoc  time.Duration
	Import    time.Duration
	FileBytes int64
	Records   store.ImportStats
}

func (g benchGenStats) String() string {
	return fmt.Sprintf("document %.1f MiB written in %s, imported in %s, store %.1f MiB (%s)",
		float64(g.DocBytes)/(1<<20), g.WriteDoc.Round(time.Millisecond), g.Import.Round(time.Millisecond),
		float64(g.FileBytes)/(1<<20), g.Records)
}

// benchStore returns the path of a store holding the data set of n
// deployments, generating it on first use and reusing the cached file
// after that. Callers that serve it must copy it first: bbolt locks the
// file, and a copy keeps the cached data pristine. A run killed while
// generating leaves its *.db.part file behind (never reused; delete it).
func benchStore(tb testing.TB, n int) string {
	tb.Helper()
	name := fmt.Sprintf("deploygraph-bench-%d-v%d", n, benchDataVersion)
	path := filepath.Join(os.TempDir(), name+".db")
	if _, err := os.Stat(path); err == nil {
		tb.Logf("bench data: reusing %s", path)
		return path
	}
	tmp, err := os.CreateTemp(os.TempDir(), name+"-*.db.part")
	if err != nil {
		tb.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed
	tb.Logf("bench data: generating %d deployments into %s", n, path)
	g := generateBenchStore(tb, tmp.Name(), n)
	// The sidecar is informative only (how long generation took).
	_ = os.WriteFile(filepath.Join(os.TempDir(), name+".txt"), []byte(g.String()+"\n"), 0o644)
	if err := os.Rename(tmp.Name(), path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("bench data: %s", g)
	return path
}

// generateBenchStore writes the document of n deployments next to dbPath,
// imports it into a new store at dbPath, mints the admin token, and
// removes the document. NoSync makes the import several times faster; the
// file is synced once at the end instead.
func generateBenchStore(tb testing.TB, dbPath string, n int) benchGenStats {
	tb.Helper()
	var g benchGenStats
	docPath := dbPath + ".json"
	defer os.Remove(docPath)
	start := time.Now()
	f, err := os.Create(docPath)
	if err != nil {
		tb.Fatal(err)
	}
	err = writeBenchDoc(f, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("write bench document: %v", err)
	}
	g.WriteDoc = time.Since(start)
	if fi, err := os.Stat(docPath); err == nil {
		g.DocBytes = fi.Size()
	}

	start = time.Now()
	ctx := context.Background()
	s, err := store.Open(dbPath, store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	stats, err := s.ImportFile(ctx, docPath)
	if err == nil {
		err = s.EnsureAdminToken(ctx, benchAdminToken)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("import bench document: %v", err)
	}
	if err := syncFile(dbPath); err != nil {
		tb.Fatal(err)
	}
	g.Import = time.Since(start)
	g.Records = stats
	if fi, err := os.Stat(dbPath); err == nil {
		g.FileBytes = fi.Size()
	}
	return g
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyFile copies src to dst (a new file).
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		// Written back now, not in the background of the measured run,
		// where it would compete with the writes' syncs.
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
