package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Ensure that SIGTERM lets the requests in flight finish: the server stops
// accepting connections, answers every request it had begun to read in
// full, then closes the store and exits 0.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "deploygraph.db")
	p := startProcess(t, "-db", db, "-admin-token", rootToken, "-import", writeDoc(t, dir, "import.json", fixtureDoc(3)))
	addr := mustHost(t, p.url)

	// Each request is cut in two: the headers and half the body now, the
	// rest once the server is shutting down, so that every one of them is
	// surely in flight when the signal arrives.
	const inFlight = 16
	type halfSent struct {
		conn net.Conn
		rest []byte
	}
	var reqs []halfSent
	for i := range inFlight {
		q := `{ project(id: "acme/app") { deployments { count nodes { iid status } } } }`
		var vars map[string]any
		if i%2 == 1 {
			q, vars = createDeploymentMutation, map[string]any{"p": "acme/app", "e": "staging", "sha": fmt.Sprintf("%040x", i)}
		}
		body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := fmt.Sprintf("POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", addr, rootToken, len(body))
		half := len(body) / 2
		if _, err := io.WriteString(conn, head+string(body[:half])); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, halfSent{conn, body[half:]})
	}
	time.Sleep(300 * time.Millisecond) // the server accepts and reads the headers

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes first: new connections are refused.
	waitFor(t, 5*time.Second, "connections refused after SIGTERM", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	for i, r := range reqs {
		if _, err := r.conn.Write(r.rest); err != nil {
			t.Fatalf("request %d: finish the body: %v", i, err)
		}
	}
	created := 0
	for i, r := range reqs {
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(r.conn), nil)
		if err != nil {
			t.Errorf("request %d: no answer: %v", i, err)
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var decoded struct {
			Data   map[string]any
			Errors []gqlError
		}
		if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &decoded) != nil ||
			len(decoded.Errors) > 0 || decoded.Data == nil {
			t.Errorf("request %d: got %d %s (%v), want a complete 200 answer", i, resp.StatusCode, raw, err)
			continue
		}
		if decoded.Data["createDeployment"] != nil {
			created++
		}
	}
	if created != inFlight/2 {
		t.Errorf("deployments created: got %d, want %d", created, inFlight/2)
	}

	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: got %v, want status 0\n%s", err, p.log())
	}
	s := openChecked(t, db)
	if n := checkIIDsGapFree(t, s, 1); n != 3+inFlight/2 {
		t.Errorf("deployments after the restart: got %d, want %d", n, 3+inFlight/2)
	}
}

// mustHost is the host:port of a URL.
func mustHost(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// Ensure that SIGTERM ends subscriptions with a proper close (1001, going
// away) before the server exits 0.
func TestShutdownClosesSubscriptions(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "-db", filepath.Join(dir, "deploygraph.db"), "-admin-token", rootToken,
		"-import", writeDoc(t, dir, "import.json", fixtureDoc(3)))
	c := wsConnect(t, &testServer{url: p.url}, rootToken)
	c.subscribe(t, "envs", envEventsSub, map[string]any{"p": "acme/app"})
	waitFor(t, wsWait, "the subscription started", func() bool {
		return metricAt(t, p.url, "deploygraph_graphql_active_subscriptions") == 1
	})

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(wsWait):
		t.Fatal("the subscription stayed open after SIGTERM")
	}
	if got := websocket.CloseStatus(c.err); got != websocket.StatusGoingAway {
		t.Errorf("close status %d (%v), want 1001 going away", got, c.err)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Errorf("exit: %v\n%s", err, p.log())
	}
}
