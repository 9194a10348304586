package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Ensure that a deployment whose creation was acknowledged survives kill -9
// of the server at any moment, and that the file reopens cleanly with
// gap-free iids: 32 clients create deployments in two projects, the server
// is killed at a random moment, the file is checked, and the server is
// started again on it, a few times over.
func TestCrashSafety(t *testing.T) {
	const (
		rounds  = 4
		clients = 32
	)
	dir := t.TempDir()
	db := filepath.Join(dir, "deploygraph.db")
	projects := map[string]int64{"acme/app": 1, "acme/site": 2}
	envs := map[string]string{"acme/app": "staging", "acme/site": "production"}
	p := startProcess(t, "-db", db, "-admin-token", rootToken, "-import", writeDoc(t, dir, "import.json", fixtureDoc(3)))

	var acked []createdDeployment
	for round := range rounds {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var (
			killed  atomic.Bool
			writers deploymentWriters
			failure = make(chan error, clients)
		)
		// The writers go on until the kill fails their requests; only a
		// failure before the kill counts.
		writers.start(clients, nil, func(c, i int) (createdDeployment, error) {
			project := "acme/app"
			if c%2 == 1 {
				project = "acme/site"
			}
			return createDeploymentOver(context.Background(), client, p.url, rootToken, project, envs[project], (round*clients+c)*100000+i)
		}, func(err error) {
			if !killed.Load() {
				failure <- err
			}
		})
		// Kill at a random moment once writes are flowing.
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: a creation acknowledged", round), func() bool { return writers.count() > 0 })
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		killed.Store(true)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		writers.wait()
		acked = append(acked, writers.acked...)
		p.wait(t, 10*time.Second)
		client.CloseIdleConnections()
		close(failure)
		for err := range failure {
			t.Fatalf("round %d: a write failed before the kill: %v", round, err)
		}

		// The file as the crash left it.
		s := openChecked(t, db)
		counts := map[string]int{}
		for path, id := range projects {
			counts[path] = checkIIDsGapFree(t, s, id)
		}
		checkAcknowledged(t, s, projects, acked)
		s.Close()
		if t.Failed() {
			t.Fatalf("round %d: killed after %d acknowledged creations", round, writers.count())
		}
		t.Logf("round %d: killed after %d acknowledged creations; %v deployments", round, writers.count(), counts)

		// The server starts again on it and serves what was there.
		p = startProcess(t, "-db", db, "-admin-token", rootToken)
		for path, want := range counts {
			_, data, err := postGraphQL(context.Background(), http.DefaultClient, p.url, rootToken,
				`query($p: ID!) { project(id: $p) { deployments { count } } }`, map[string]any{"p": path})
			if err != nil {
				t.Fatalf("round %d: after the restart: %v", round, err)
			}
			if got := int(asInt64(get(data, "project.deployments.count"))); got != want {
				t.Errorf("round %d: %s after the restart: got %d deployments, want %d", round, path, got, want)
			}
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: got %v, want status 0", err)
	}
	s := openChecked(t, db)
	for _, id := range projects {
		checkIIDsGapFree(t, s, id)
	}
	checkAcknowledged(t, s, projects, acked)
}
