package store

import (
	"context"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MergeRequestOrder is the field a merge request list is sorted by.
type MergeRequestOrder byte

// Merge request orders; the value is the order's tag in cursors.
const (
	MROrderByCreatedAt MergeRequestOrder = 'C'
	MROrderByUpdatedAt MergeRequestOrder = 'U'
	MROrderByMergedAt  MergeRequestOrder = 'M'
	MROrderByTitle     MergeRequestOrder = 'T'
)

// MergeRequestQuery selects a page of merge requests of a project, or of
// those a deployment shipped, with the Merge Requests API's filters.
type MergeRequestQuery struct {
	ProjectID    int64
	DeploymentID int64 // only those linked to this deployment

	State   *MergeRequestState
	OrderBy MergeRequestOrder // default CREATED_AT
	Asc     bool              // default descending, as GitLab

	Labels         []string // all of them
	Search         *string  // in title or description, case-insensitive
	AuthorUsername *string
	SourceBranch   *string
	TargetBranch   *string
	// Windows are inclusive at both ends, as GitLab's created_after/before.
	CreatedAfter, CreatedBefore *time.Time
	UpdatedAfter, UpdatedBefore *time.Time
	Draft                       *bool

	Page PageArgs
}

func (mr *MergeRequest) sortKey(o MergeRequestOrder) []byte {
	id := u64(mr.ID)
	switch o {
	case MROrderByUpdatedAt:
		return join(timeKey(&mr.UpdatedAt), id)
	case MROrderByMergedAt:
		return join(timeKey(mr.MergedAt), id)
	case MROrderByTitle:
		return join([]byte(mr.Title), []byte{0}, id)
	default:
		return join(timeKey(&mr.CreatedAt), id)
	}
}

func inClosedWindow(t time.Time, after, before *time.Time) bool {
	return (after == nil || !t.Before(*after)) && (before == nil || !t.After(*before))
}

func (q MergeRequestQuery) matches(mr *MergeRequest, authorID int64) bool {
	switch {
	case q.State != nil && mr.State != *q.State,
		q.SourceBranch != nil && mr.SourceBranch != *q.SourceBranch,
		q.TargetBranch != nil && mr.TargetBranch != *q.TargetBranch,
		q.Draft != nil && mr.Draft != *q.Draft,
		q.AuthorUsername != nil && mr.AuthorID != authorID,
		!inClosedWindow(mr.CreatedAt, q.CreatedAfter, q.CreatedBefore),
		!inClosedWindow(mr.UpdatedAt, q.UpdatedAfter, q.UpdatedBefore):
		return false
	}
	for _, l := range q.Labels {
		if !slices.Contains(mr.Labels, l) {
			return false
		}
	}
	if q.Search != nil {
		s := strings.ToLower(*q.Search)
		desc := ""
		if mr.Description != nil {
			desc = *mr.Description
		}
		if !strings.Contains(strings.ToLower(mr.Title), s) && !strings.Contains(strings.ToLower(desc), s) {
			return false
		}
	}
	return true
}

// mrReader reads the merge requests of several queries in one transaction,
// each bucket opened once: a page of 50 deployments asks for 50 pages of
// their merge requests.
type mrReader struct {
	tx                               *bolt.Tx
	byProject, byDeployment, records *bolt.Cursor
}

func newMRReader(tx *bolt.Tx) *mrReader {
	return &mrReader{
		tx:           tx,
		byProject:    tx.Bucket(bktProjectMRs).Cursor(),
		byDeployment: tx.Bucket(bktDeployMRs).Cursor(),
		records:      tx.Bucket(bktMergeRequests).Cursor(),
	}
}

// candidates loads the merge requests in the query's scope. Both scopes are
// read whole and sorted in memory.
func (q MergeRequestQuery) candidates(r *mrReader) (map[int64]*MergeRequest, error) {
	c, prefix := r.byProject, u64(q.ProjectID)
	if q.DeploymentID != 0 {
		c, prefix = r.byDeployment, u64(q.DeploymentID)
	}
	var out map[int64]*MergeRequest // nil for none: most deployments shipped none
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		mr, err := getByIDIn[MergeRequest](r.records, bktMergeRequests, lastID(k))
		if err != nil {
			return nil, err
		}
		if mr != nil && (q.ProjectID == 0 || mr.ProjectID == q.ProjectID) {
			if out == nil {
				out = make(map[int64]*MergeRequest)
			}
			out[mr.ID] = mr
		}
	}
	return out, nil
}

func (q MergeRequestQuery) order() MergeRequestOrder {
	if q.OrderBy == 0 {
		return MROrderByCreatedAt
	}
	return q.OrderBy
}

// filtered returns the matching merge requests as a sorted source.
func (q MergeRequestQuery) filtered(r *mrReader) (memSource, map[int64]*MergeRequest, error) {
	all, err := q.candidates(r)
	if err != nil {
		return memSource{}, nil, err
	}
	var authorID int64
	if q.AuthorUsername != nil {
		u, err := userByUsername(r.tx, *q.AuthorUsername)
		if err != nil {
			return memSource{}, nil, err
		}
		if u != nil {
			authorID = u.ID
		} else {
			authorID = -1
		}
	}
	var keys [][]byte
	for _, mr := range all {
		if q.matches(mr, authorID) {
			keys = append(keys, mr.sortKey(q.order()))
		}
	}
	return newMemSource(keys, !q.Asc), all, nil
}

// ListMergeRequests answers several merge request queries in one read
// transaction, index-aligned to qs.
func (s *Store) ListMergeRequests(ctx context.Context, qs []MergeRequestQuery) ([]Page[*MergeRequest], []error) {
	pages, errs := make([]Page[*MergeRequest], len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		r := newMRReader(tx)
		for i, q := range qs {
			pages[i], errs[i] = q.page(r)
		}
		return nil
	})
	return pages, fillErrs(errs, err)
}

func (q MergeRequestQuery) page(r *mrReader) (Page[*MergeRequest], error) {
	var page Page[*MergeRequest]
	w, err := q.Page.window(byte(q.order()))
	if err != nil {
		return page, err
	}
	src, all, err := q.filtered(r)
	if err != nil || len(src.keys) == 0 {
		return page, err // nothing matches: no page either side
	}
	keys, hasPrev, hasNext, err := paginate(src, nil, w)
	if err != nil {
		return page, err
	}
	page.HasPreviousPage, page.HasNextPage = hasPrev, hasNext
	page.Items = make([]*MergeRequest, 0, len(keys))
	for _, k := range keys {
		page.Items = append(page.Items, all[lastID(k)])
	}
	page.Cursors = encodeCursors(byte(q.order()), keys)
	return page, nil
}

// CountMergeRequests counts what each query matches, ignoring its page.
func (s *Store) CountMergeRequests(ctx context.Context, qs []MergeRequestQuery) ([]int, []error) {
	counts, errs := make([]int, len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		r := newMRReader(tx)
		for i, q := range qs {
			src, _, err := q.filtered(r)
			counts[i], errs[i] = len(src.keys), err
		}
		return nil
	})
	return counts, fillErrs(errs, err)
}
