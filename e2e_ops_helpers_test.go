package main

// Helpers for the operations tests (backup, shutdown, crash safety): a
// GraphQL client safe to use from many goroutines, writers that keep the
// deployments acknowledged, the real server binary run as a process, and
// checks of a store file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// createdDeployment is a createDeployment the server acknowledged.
type createdDeployment struct {
	Project string
	ID, IID int64
}

const createDeploymentMutation = `mutation($p: ID!, $e: String!, $sha: String!) {
  createDeployment(input: {projectId: $p, environment: $e, sha: $sha, ref: "main", tag: false, status: RUNNING}) {
    deployment { id iid }
  }
}`

// postGraphQL sends one request and decodes its answer; unlike
// testServer.query it never stops the test, so goroutines may call it.
func postGraphQL(ctx context.Context, client *http.Client, url, token, q string, vars map[string]any) (int, map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var decoded struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	if len(decoded.Errors) > 0 {
		return resp.StatusCode, decoded.Data, fmt.Errorf("errors (%d): %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, decoded.Data, nil
}

// createDeploymentOver records a deployment through the API; ok only when
// the server answered 200 with the deployment.
func createDeploymentOver(ctx context.Context, client *http.Client, url, token, project, env string, n int) (createdDeployment, error) {
	status, data, err := postGraphQL(ctx, client, url, token, createDeploymentMutation,
		map[string]any{"p": project, "e": env, "sha": fmt.Sprintf("%040x", n)})
	if err != nil {
		return createdDeployment{}, err
	}
	id, _ := get(data, "createDeployment.deployment.id").(string)
	iid, _ := get(data, "createDeployment.deployment.iid").(float64)
	if status != http.StatusOK || id == "" || iid == 0 {
		return createdDeployment{}, fmt.Errorf("createDeployment answered %d without a deployment: %v", status, data)
	}
	var num int64
	if _, err := fmt.Sscanf(id, "gid://deploygraph/Deployment/%d", &num); err != nil {
		return createdDeployment{}, fmt.Errorf("deployment id %q: %v", id, err)
	}
	return createdDeployment{Project: project, ID: num, IID: int64(iid)}, nil
}

// deploymentWriters creates deployments from many goroutines and keeps each
// creation the server acknowledged: the backup and crash tests check that
// those survive.
type deploymentWriters struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked []createdDeployment
}

// start runs writers goroutines. Writer w calls create(w, i) for i = 0, 1, …
// until stop returns true (nil: never) or a creation fails; it then passes
// the error to failed, which decides whether it counts, and ends.
func (ws *deploymentWriters) start(writers int, stop func() bool, create func(w, i int) (createdDeployment, error), failed func(error)) {
	for w := range writers {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for i := 0; stop == nil || !stop(); i++ {
				d, err := create(w, i)
				if err != nil {
					failed(err)
					return
				}
				ws.mu.Lock()
				ws.acked = append(ws.acked, d)
				ws.mu.Unlock()
			}
		}()
	}
}

// count is how many creations were acknowledged until now.
func (ws *deploymentWriters) count() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.acked)
}

// ackedSoFar copies the creations acknowledged until now.
func (ws *deploymentWriters) ackedSoFar() []createdDeployment {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]createdDeployment(nil), ws.acked...)
}

// wait waits for every writer to end.
func (ws *deploymentWriters) wait() { ws.wg.Wait() }

// checkIIDsGapFree asserts that a project's deployments in s carry the
// iids 1..n, n being their count, and returns n.
func checkIIDsGapFree(t testing.TB, s *store.Store, projectID int64) int {
	t.Helper()
	ctx := context.Background()
	counts, errs := s.CountDeployments(ctx, []store.DeploymentQuery{{ProjectID: projectID}})
	if errs[0] != nil {
		t.Fatalf("count deployments of project %d: %v", projectID, errs[0])
	}
	n := counts[0]
	keys := make([]store.IIDKey, n+1)
	for i := range keys {
		keys[i] = store.IIDKey{ProjectID: projectID, IID: int64(i + 1)}
	}
	deps, err := s.DeploymentsByIID(ctx, keys)
	if err != nil {
		t.Fatalf("deployments of project %d by iid: %v", projectID, err)
	}
	for i, d := range deps[:n] {
		if d == nil {
			t.Errorf("project %d: %d deployments, but none with iid %d", projectID, n, i+1)
		}
	}
	if deps[n] != nil {
		t.Errorf("project %d: %d deployments, yet iid %d exists", projectID, n, n+1)
	}
	return n
}

// checkAcknowledged asserts that every acknowledged deployment is in s
// under its iid.
func checkAcknowledged(t testing.TB, s *store.Store, projectIDs map[string]int64, acked []createdDeployment) {
	t.Helper()
	keys := make([]store.IIDKey, len(acked))
	for i, a := range acked {
		keys[i] = store.IIDKey{ProjectID: projectIDs[a.Project], IID: a.IID}
	}
	deps, err := s.DeploymentsByIID(context.Background(), keys)
	if err != nil {
		t.Fatalf("deployments by iid: %v", err)
	}
	missing := 0
	for i, d := range deps {
		if d == nil || d.ID != acked[i].ID {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged deployment %d (%s, iid %d) is missing", acked[i].ID, acked[i].Project, acked[i].IID)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged deployments are missing", missing, len(acked))
	}
}

// openChecked opens a store file once no server holds it, checks its
// consistency and closes it when the test ends.
func openChecked(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Check(); err != nil {
		t.Fatalf("consistency check of %s: %v", path, err)
	}
	return s
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

// serverBinary builds the server once per test binary and returns its path.
func serverBinary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "deploygraph-bin-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "deploygraph")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// serverProcess is the server binary running in its own process.
type serverProcess struct {
	cmd    *exec.Cmd
	url    string
	done   chan struct{} // closed once the process has exited
	err    error         // its exit status, once done
	mu     sync.Mutex
	stderr strings.Builder
}

var servingRE = regexp.MustCompile(`"msg":"serving","addr":"(http://[^"]+)/"`)

// startProcess runs the server binary with args on 127.0.0.1 and a free
// port, and waits until it serves. The process is killed when the test
// ends, should it still run.
func startProcess(t testing.TB, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(serverBinary(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "DEPLOYGRAPH_ADMIN_TOKEN=", "DEPLOYGRAPH_ADDR=", "DEPLOYGRAPH_DB=")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.url = <-addr:
	case <-p.done:
		t.Fatalf("the server stopped before serving: %v\n%s", p.err, p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not start serving\n%s", p.log())
	}
	return p
}

// log is what the process wrote to its standard error so far.
func (p *serverProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits up to limit for the process to exit and returns its exit
// status.
func (p *serverProcess) wait(t testing.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		t.Fatalf("the server did not exit within %s\n%s", limit, p.log())
		return nil
	}
}

// TestMain removes the server binary the operations tests built.
func TestMain(m *testing.M) {
	flag.Parse()
	// The tests check, at every read of a kept record, that no reader
	// changed it; the benchmarks measure reads as served.
	if flag.Lookup("test.bench").Value.String() == "" {
		store.CheckSharedRecords()
	}
	code := m.Run()
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}
