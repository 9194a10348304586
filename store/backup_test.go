package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// Ensure that a backup is the store as of one moment: writes committed while
// it is being written go on unhindered and are not in it, and the copy opens
// as a sound bbolt file with the project's iids gap-free.
func TestBackup(t *testing.T) {
	ctx := context.Background()
	s, _, as := openDeployStore(t)
	create := func(i int) error {
		_, err := s.CreateDeployment(ctx, as["dev"], store.NewDeployment{
			ProjectID: 1, Environment: "staging", SHA: sha(i), Ref: "main", Status: store.StatusRunning})
		return err
	}
	for i := range 10 {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	const during = 20
	w := &pausingWriter{started: make(chan struct{}), resume: make(chan struct{})}
	writesDone := make(chan error, 1)
	go func() {
		<-w.started
		defer close(w.resume)
		var wg sync.WaitGroup
		errs := make(chan error, during)
		for i := range during {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- create(100 + i)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				writesDone <- err
				return
			}
		}
		writesDone <- nil
	}()
	var announced int64 = -1
	n, err := s.Backup(ctx, as["root"], w, func(size int64) { announced = size })
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	select {
	case err := <-writesDone:
		if err != nil {
			t.Fatalf("write during the backup: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes did not finish while a backup was being written")
	}
	if announced != n || n != int64(w.buf.Len()) {
		t.Errorf("size announced %d, written %d, received %d: want all equal", announced, n, w.buf.Len())
	}
	if got, want := countDeployments(t, s), 1+10+during; got != want {
		t.Errorf("deployments in the store: got %d, want %d", got, want)
	}

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, w.buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	backup, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer backup.Close()
	if err := backup.Check(); err != nil {
		t.Fatalf("backup consistency check: %v", err)
	}
	if got, want := countDeployments(t, backup), 1+10; got != want {
		t.Errorf("deployments in the backup: got %d, want %d (those before it began)", got, want)
	}
	checkIIDsGapFree(t, backup, 1)
}

// Ensure that only an administrator may take a backup, and that a refused
// one writes nothing.
func TestBackupNeedsAdmin(t *testing.T) {
	s, _, as := openDeployStore(t)
	for name, code := range map[string]store.Code{"anonymous": store.EUnauthenticated, "dev": store.EForbidden} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			sized := false
			_, err := s.Backup(context.Background(), as[name], &buf, func(int64) { sized = true })
			if got := store.ErrorCode(err); got != code {
				t.Errorf("error code: got %q (%v), want %q", got, err, code)
			}
			if buf.Len() > 0 || sized {
				t.Errorf("a refused backup wrote %d bytes (size announced: %v)", buf.Len(), sized)
			}
		})
	}
}

// checkIIDsGapFree asserts that a project's deployments have the iids 1..n,
// n being their count.
func checkIIDsGapFree(t *testing.T, s *store.Store, projectID int64) {
	t.Helper()
	counts, errs := s.CountDeployments(context.Background(), []store.DeploymentQuery{{ProjectID: projectID}})
	mustNoErrs(t, errs)
	n := counts[0]
	keys := make([]store.IIDKey, n+1)
	for i := range keys {
		keys[i] = store.IIDKey{ProjectID: projectID, IID: int64(i + 1)}
	}
	deps := must(s.DeploymentsByIID(context.Background(), keys))
	for i, d := range deps[:n] {
		if d == nil {
			t.Errorf("project %d: no deployment with iid %d of %d", projectID, i+1, n)
		}
	}
	if deps[n] != nil {
		t.Errorf("project %d: %d deployments, yet iid %d exists", projectID, n, n+1)
	}
}

// pausingWriter collects what it is given; its first Write waits until
// resume is closed.
type pausingWriter struct {
	buf     bytes.Buffer
	started chan struct{}
	resume  chan struct{}
	once    sync.Once
}

func (w *pausingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.started)
		<-w.resume
	})
	return w.buf.Write(p)
}
