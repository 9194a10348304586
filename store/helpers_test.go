package store_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// clock is a store clock that tests set and move forward, so that no test
// sleeps.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// openStore opens an empty store in a temporary directory, on the clock now
// (nil: the real one). When the test ends, the file is checked for
// consistency and closed.
func openStore(t *testing.T, now func() time.Time) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "deploygraph.db"), store.Options{NoSync: true, Clock: now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// must unwraps a read; a failing read is a broken store, not a failed
// expectation, so it panics (which fails the test).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustNoErrs(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
