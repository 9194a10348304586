package store

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DemoData is the built-in demo document (SPEC 7): the seeds' examples and
// enough more to explore every query and mutation, so that `-demo` works
// without any file at hand.
//
//go:embed demo.json
var DemoData []byte

// ImportDemo imports DemoData into a store that holds no projects, and
// reports whether it did: demo data must never mix with real data.
func (s *Store) ImportDemo(ctx context.Context) (ImportStats, bool, error) {
	var hasProjects bool
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bktProjects).Cursor().First()
		hasProjects = k != nil
		return nil
	})
	if err != nil {
		return ImportStats{}, false, fmt.Errorf("import demo: %w", err)
	}
	if hasProjects {
		return ImportStats{}, false, nil
	}
	st, err := s.Import(ctx, bytes.NewReader(DemoData))
	if err != nil {
		return st, false, fmt.Errorf("import demo: %w", err)
	}
	return st, true, nil
}
