package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// seekHole is lseek's SEEK_HOLE: the offset of the first hole at or past
// the one given (the file's size when it has none).
const seekHole = 4

// holesReported skips the test when the filesystem under dir does not
// report holes, where a written tail cannot be told from bbolt's own.
func holesReported(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4 << 20); err != nil {
		t.Fatal(err)
	}
	if hole, err := f.Seek(0, seekHole); err != nil || hole != 0 {
		t.Skipf("the filesystem does not report holes (SEEK_HOLE: %d, %v)", hole, err)
	}
}

func TestFileTailRefill(t *testing.T) {
	const page = 4096
	tests := []struct {
		name      string
		size      int64 // the file's size before the refill
		written   int64 // how far the tail knows the file is written
		end       int64 // the transaction's high-water mark
		wantZeros [2]int64
	}{
		{"fresh file", 4 * page, 0, 4 * page, [2]int64{4 * page, 4*page + tailAhead}},
		{"enough room left", 4*page + tailAhead, 4*page + tailAhead, 4 * page, [2]int64{}},
		{"room running out", 4*page + tailAhead, 4*page + tailAhead, 4*page + tailAhead - tailRefill + page,
			[2]int64{4*page + tailAhead, 4*page + tailAhead - tailRefill + page + tailAhead}},
		// A large commit grew the file past the tail with a hole and wrote
		// pages into it: only what lies past its data is written.
		{"data grown past the tail", 64 << 20, 4 * page, 40 << 20, [2]int64{40 << 20, 40<<20 + tailAhead}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file")
			// Everything the file holds is data, as far as this test knows.
			if err := os.WriteFile(path, bytes.Repeat([]byte{0xdb}, int(tc.size)), 0o600); err != nil {
				t.Fatal(err)
			}
			tail, err := openFileTail(path)
			if err != nil {
				t.Fatal(err)
			}
			tail.written = tc.written
			tail.refill(tc.end)
			if err := tail.close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte{0xdb}, int(max(tc.size, tc.wantZeros[1])))
			copy(want[tc.wantZeros[0]:tc.wantZeros[1]], make([]byte, tc.wantZeros[1]-tc.wantZeros[0]))
			if len(got) != len(want) {
				t.Fatalf("file is %d bytes, want %d", len(got), len(want))
			}
			if i := firstDifference(got, want); i >= 0 {
				t.Fatalf("byte %d is %#x, want %#x (zeros wanted in [%d, %d))", i, got[i], want[i], tc.wantZeros[0], tc.wantZeros[1])
			}
			if wantWritten := max(tc.written, tc.wantZeros[1]); tail.written != wantWritten {
				t.Errorf("written = %d, want %d", tail.written, wantWritten)
			}
		})
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestWritesLeaveTheFileTailWritten checks the store's file after commits
// of the hot write path: past the data lie at least tailRefill bytes of
// written zeros before any hole bbolt's growth left, and the file still
// checks and reopens.
func TestWritesLeaveTheFileTailWritten(t *testing.T) {
	dir := t.TempDir()
	holesReported(t, dir)
	path := filepath.Join(dir, "deploygraph.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Enough writes for the data to pass the first refill's tail.
	const writes = 3000
	createDeployments(t, s, writes)
	var end int64
	if err := s.db.View(func(tx *bolt.Tx) error { end = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if end <= tailAhead {
		t.Fatalf("the data (%d bytes) never passed the first tail (%d bytes): the test proves nothing", end, tailAhead)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := f.Seek(end, seekHole)
	if err != nil {
		t.Fatal(err)
	}
	if hole-end < tailRefill {
		t.Errorf("%d bytes written past the data, then a hole; want at least %d", hole-end, tailRefill)
	}
	rest, err := io.ReadAll(io.NewSectionReader(f, end, hole-end))
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Errorf("byte %d past the data is not zero", i)
	}

	reopened, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if err := reopened.Check(); err != nil {
		t.Fatal(err)
	}
	counts, errs := reopened.CountDeployments(context.Background(), []DeploymentQuery{{ProjectID: 1}})
	if errs[0] != nil || counts[0] != writes {
		t.Fatalf("reopened store counts %d deployments (%v), want %d", counts[0], errs[0], writes)
	}
}

// createDeployments records n successful deployments in project 1
// (created here), one write at a time, in one environment.
func createDeployments(t *testing.T, s *Store, n int) {
	t.Helper()
	putTestProject(t, s)
	for i := range n {
		createDeployment(t, s, i, "production", StatusSuccess)
	}
}

// putTestProject stores project 1, which the tests here record
// deployments in.
func putTestProject(t *testing.T, s *Store) {
	t.Helper()
	if err := s.update(func(tx *bolt.Tx) error {
		return putProject(tx, &Project{ID: 1, Name: "app", Path: "app", FullPath: "acme/app", Visibility: Private})
	}); err != nil {
		t.Fatal(err)
	}
}

// createDeployment records a deployment of ref main in project 1, with the
// i-th sha: a different i for each, so that none repeats the one before.
func createDeployment(t *testing.T, s *Store, i int, env string, status DeploymentStatus) *Deployment {
	t.Helper()
	in := NewDeployment{ProjectID: 1, Environment: env, SHA: fmt.Sprintf("%040x", i), Ref: "main", Status: status}
	d, err := s.CreateDeployment(context.Background(), System, in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAppendBucketsFillTheirPages checks that the buckets new entries are
// appended to keep their pages about appendFill full: at bbolt's default
// they would be half empty, and their trees twice the pages.
func TestAppendBucketsFillTheirPages(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	createDeployments(t, s, 2000)
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktDeployIndex, bktDeployByIID} {
			st := tx.Bucket(name).Stats()
			if st.LeafPageN < 10 {
				return fmt.Errorf("%s has %d leaf pages: too few to judge", name, st.LeafPageN)
			}
			// Each of the index's 12 orderings ends in a page still filling.
			if used := float64(st.LeafInuse) / float64(st.LeafAlloc); used < 0.75 {
				t.Errorf("%s's %d leaf pages are %.0f%% used, want at least 75%%", name, st.LeafPageN, 100*used)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
