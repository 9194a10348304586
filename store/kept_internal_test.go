package store

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestKeptWritesCountCommits pins what invalidates the store's kept
// answers: one count per committed transaction that wrote to keptBuckets,
// however many of their records it wrote; none for other writes or for a
// transaction rolled back.
func TestKeptWritesCountCommits(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	errRollBack := errors.New("roll back")
	for _, c := range []struct {
		name  string
		write func(tx *bolt.Tx) error
		count uint64
	}{
		{"a user, a token and a project", func(tx *bolt.Tx) error {
			for _, w := range []struct {
				bucket []byte
				v      any
			}{{bktUsers, User{ID: 1, Username: "u"}}, {bktTokens, AccessToken{ID: 1}}, {bktProjects, Project{ID: 1}}} {
				if err := putJSON(tx, w.bucket, u64(1), w.v); err != nil {
					return err
				}
			}
			return nil
		}, 1},
		{"nothing kept", func(tx *bolt.Tx) error {
			return putJSON(tx, bktEnvironments, u64(1), Environment{ID: 1})
		}, 0},
		{"rolled back", func(tx *bolt.Tx) error {
			if err := putJSON(tx, bktUsers, u64(2), User{ID: 2, Username: "v"}); err != nil {
				return err
			}
			return errRollBack
		}, 0},
	} {
		before := s.keptWrites.Load()
		if err := s.update(c.write); err != nil && !errors.Is(err, errRollBack) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := s.keptWrites.Load() - before; got != c.count {
			t.Errorf("%s: counted %d, want %d", c.name, got, c.count)
		}
	}
}

// bbolt keeps no statistics of its own, which would take a lock at the end
// of every read transaction; the store counts what its write transactions
// write, rolled back or committed (CommitStats).
func TestWriteStatsKeptByTheStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	before := s.CommitStats()
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put([]byte("probe"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.view(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := s.db.Stats().TxN; got != 0 {
		t.Errorf("bbolt counted %d read transactions: its statistics are on", got)
	}
	after := s.CommitStats()
	if after.PageWrites <= before.PageWrites || after.SyncTime <= before.SyncTime {
		t.Errorf("a commit left the store's counts at %+v (before %+v)", after, before)
	}
}
