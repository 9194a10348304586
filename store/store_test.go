package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// Ensure that Options.OnTx hears of every read and write transaction, with
// its kind and its error.
func TestOptionsOnTx(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	s, err := store.Open(filepath.Join(t.TempDir(), "deploygraph.db"), store.Options{
		NoSync: true,
		OnTx: func(kind string, d time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("%s transaction took %v", kind, d)
			}
			seen[kind]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.EnsureAdminToken(ctx, "secret-token"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[store.TxRead] == 0 || seen[store.TxWrite] == 0 {
		t.Errorf("got transactions %v, want reads and writes", seen)
	}
}
