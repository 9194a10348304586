package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// EnvironmentQuery selects a page of one project's environments, ordered by
// id ascending.
type EnvironmentQuery struct {
	ProjectID int64
	Name      *string // exact, case-sensitive
	Search    *string // case-insensitive prefix of the name or of the name within its folder
	States    []EnvironmentState
	Tiers     []EnvironmentTier
	Page      PageArgs
}

const tagEnvironments = 'E'

func (q EnvironmentQuery) check() error {
	if q.Name != nil && q.Search != nil {
		return invalid("name, search cannot be used together")
	}
	if q.Search != nil && len([]rune(*q.Search)) < 3 {
		return invalid("Search query is less than 3 characters")
	}
	return nil
}

// readsRecords is whether matches looks at anything: without a filter,
// every environment of the index matches, and none need be read. Keep it
// in step with matches.
func (q EnvironmentQuery) readsRecords() bool {
	return q.Name != nil || q.Search != nil || q.States != nil || q.Tiers != nil
}

func (q EnvironmentQuery) matches(e *Environment) bool {
	if q.Name != nil && e.Name != *q.Name {
		return false
	}
	if q.Search != nil {
		s, name := strings.ToLower(*q.Search), strings.ToLower(e.Name)
		_, inFolder, _ := strings.Cut(name, "/")
		if !strings.HasPrefix(name, s) && (inFolder == "" || !strings.HasPrefix(inFolder, s)) {
			return false
		}
	}
	if q.States != nil && !slices.Contains(q.States, e.State) {
		return false
	}
	if q.Tiers != nil && !slices.Contains(q.Tiers, e.Tier) {
		return false
	}
	return true
}

func (q EnvironmentQuery) scan(tx *bolt.Tx) (source, matcher) {
	var src source = boltSource{b: tx.Bucket(bktProjectEnvs), prefix: u64(q.ProjectID)}
	if q.Name != nil {
		// A name names at most one environment: no need to scan.
		id := lookupID(tx, bktEnvByName, join(u64(q.ProjectID), []byte(*q.Name)))
		var keys [][]byte
		if id != 0 {
			keys = [][]byte{u64(id)}
		}
		src = newMemSource(keys, false)
	}
	if !q.readsRecords() {
		return src, nil
	}
	records := tx.Bucket(bktEnvironments).Cursor()
	return src, func(key []byte) (bool, error) {
		e, err := getByIDIn[Environment](records, bktEnvironments, lastID(key))
		return e != nil && q.matches(e), err
	}
}

// ListEnvironments answers several environment queries in one read
// transaction, index-aligned to qs.
func (s *Store) ListEnvironments(ctx context.Context, qs []EnvironmentQuery) ([]Page[*Environment], []error) {
	pages, errs := make([]Page[*Environment], len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, q := range qs {
			pages[i], errs[i] = q.page(tx)
		}
		return nil
	})
	return pages, fillErrs(errs, err)
}

func (q EnvironmentQuery) page(tx *bolt.Tx) (Page[*Environment], error) {
	var page Page[*Environment]
	if err := q.check(); err != nil {
		return page, err
	}
	w, err := q.Page.window(tagEnvironments)
	if err != nil {
		return page, err
	}
	src, match := q.scan(tx)
	keys, hasPrev, hasNext, err := paginate(src, match, w)
	if err != nil {
		return page, err
	}
	page.HasPreviousPage, page.HasNextPage = hasPrev, hasNext
	records := tx.Bucket(bktEnvironments).Cursor()
	page.Items = make([]*Environment, 0, len(keys))
	for _, k := range keys {
		e, err := getByIDIn[Environment](records, bktEnvironments, lastID(k))
		if err != nil {
			return page, err
		}
		if e == nil {
			return page, fmt.Errorf("environment %d is indexed but not stored", lastID(k))
		}
		page.Items = append(page.Items, e)
	}
	page.Cursors = encodeCursors(tagEnvironments, keys)
	return page, nil
}

// CountEnvironments counts what each query matches, ignoring its page.
func (s *Store) CountEnvironments(ctx context.Context, qs []EnvironmentQuery) ([]int, []error) {
	counts, errs := make([]int, len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, q := range qs {
			if errs[i] = q.check(); errs[i] != nil {
				continue
			}
			src, match := q.scan(tx)
			counts[i], errs[i] = countMatches(src, match)
		}
		return nil
	})
	return counts, fillErrs(errs, err)
}
