package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// backupRequest asks for a backup with the given headers.
func backupRequest(t *testing.T, url string, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/admin/backup", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("backup request: %v", err)
	}
	return resp
}

// Ensure that GET /admin/backup is for administrators only, refused the
// way GraphQL requests are.
func TestBackupRefusals(t *testing.T) {
	s := startServer(t, fixtureDoc(3))
	dev := s.tokenFor(t, userDeveloper)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
		code    string
	}{
		{"ErrAnonymous", nil, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"ErrUnknownToken", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"ErrNotAdmin", map[string]string{"Authorization": "Bearer " + dev}, http.StatusForbidden, "FORBIDDEN"},
		{"ErrNotAdminPrivateToken", map[string]string{"PRIVATE-TOKEN": dev}, http.StatusForbidden, "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := backupRequest(t, s.url, tc.headers)
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status: got %d, want %d (%s)", resp.StatusCode, tc.status, raw)
			}
			var body struct{ Errors []gqlError }
			if err := json.Unmarshal(raw, &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body: got %s, want a JSON error", raw)
			}
			if got := body.Errors[0].Extensions["code"]; got != tc.code {
				t.Errorf("extensions.code: got %v, want %s", got, tc.code)
			}
		})
	}
	t.Run("Head", func(t *testing.T) {
		for _, tc := range []struct {
			token  string
			status int
		}{{"", http.StatusUnauthorized}, {dev, http.StatusForbidden}, {rootToken, http.StatusOK}} {
			req, _ := http.NewRequest(http.MethodHead, s.url+"/admin/backup", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HEAD with %q: status %d, want %d", tc.token, resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				continue
			}
			get := backupRequest(t, s.url, map[string]string{"Authorization": "Bearer " + rootToken})
			n, _ := io.Copy(io.Discard, get.Body)
			get.Body.Close()
			if resp.ContentLength != n || resp.Header.Get("Content-Disposition") == "" {
				t.Fatalf("HEAD: Content-Length %d and Content-Disposition %q; GET sent %d bytes",
					resp.ContentLength, resp.Header.Get("Content-Disposition"), n)
			}
		}
	})
	t.Run("PrivateTokenOfAdmin", func(t *testing.T) {
		resp := backupRequest(t, s.url, map[string]string{"PRIVATE-TOKEN": rootToken})
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status: got %d, want 200", resp.StatusCode)
		}
	})
}

// Ensure that a backup downloaded while deployments are being created is a
// sound store holding a consistent state: every deployment acknowledged
// before the download began, and per-project iids without gaps.
func TestBackupWhileWriting(t *testing.T) {
	const fixtureN = 30
	s := startServer(t, fixtureDoc(fixtureN))
	dev := s.tokenFor(t, userDeveloper)
	var (
		stop    atomic.Bool
		writers deploymentWriters
		errs    = make(chan error, 16)
	)
	// Each writer finishes the request it is sending when told to stop, so
	// that no write outlives the test; every failure counts.
	writers.start(8, stop.Load, func(w, i int) (createdDeployment, error) {
		return createDeploymentOver(context.Background(), http.DefaultClient, s.url, dev, "acme/app", "staging", w*100000+i)
	}, func(err error) { errs <- err })
	// Let the writers get going, so that the backup is taken among them.
	waitFor(t, 5*time.Second, "20 deployments created", func() bool { return writers.count() >= 20 })
	before := writers.ackedSoFar()

	resp := backupRequest(t, s.url, map[string]string{"Authorization": "Bearer " + rootToken})
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	got, copyErr := io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()
	// Reads go on too while the writers run.
	s.mustQuery(t, dev, `{ project(id: "acme/app") { deployments { count } } }`, nil)
	stop.Store(true)
	writers.wait()
	close(errs)
	for err := range errs {
		t.Errorf("write during the backup: %v", err)
	}

	if resp.StatusCode != http.StatusOK || copyErr != nil {
		t.Fatalf("backup: status %d, error %v", resp.StatusCode, copyErr)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type: got %q, want application/octet-stream", ct)
	}
	disposition := resp.Header.Get("Content-Disposition")
	if !regexp.MustCompile(`^attachment; filename=deploygraph-\d{8}T\d{6}Z\.db$`).MatchString(disposition) {
		t.Errorf("Content-Disposition: got %q, want attachment; filename=deploygraph-<UTC time>.db", disposition)
	}
	if length, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); length != got || got == 0 {
		t.Errorf("Content-Length %q, body %d bytes: want equal", resp.Header.Get("Content-Length"), got)
	}

	backup := openChecked(t, path)
	count := checkIIDsGapFree(t, backup, 1)
	checkIIDsGapFree(t, backup, 2)
	checkAcknowledged(t, backup, map[string]int64{"acme/app": 1}, before)
	if total := fixtureN + writers.count(); count < fixtureN+len(before) || count > total {
		t.Errorf("deployments in the backup: got %d, want between %d and %d", count, fixtureN+len(before), total)
	}
	t.Logf("backup of %d bytes with %d of %d deployments", got, count, fixtureN+writers.count())
}
