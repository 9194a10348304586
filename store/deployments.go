package store

import (
	"context"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DeploymentQuery selects one page of deployments: a scope (a project, one
// of its environments, or the deployments that shipped a merge request),
// filters that all combine, an order and a page.
type DeploymentQuery struct {
	ProjectID       int64
	EnvironmentID   int64   // only this environment's deployments
	EnvironmentName *string // only the deployments of the project's environment of that name
	MergeRequestID  int64   // only the deployments that shipped this merge request

	OrderBy DeploymentOrder
	Desc    bool

	// Time windows are half-open: After is inclusive, Before exclusive.
	UpdatedAfter, UpdatedBefore   *time.Time
	FinishedAfter, FinishedBefore *time.Time

	Status   *DeploymentStatus
	Statuses []DeploymentStatus
	// VisibleOnly limits the list to VisibleDeploymentStatuses unless a
	// status filter is given (Environment.deployments).
	VisibleOnly bool
	Ref, SHA    *string

	Page PageArgs
}

// deploymentPlan is a checked query: where to scan and what to check.
type deploymentPlan struct {
	q        DeploymentQuery
	statuses []DeploymentStatus // empty: any
	empty    bool               // the scope does not exist: nothing matches
	scope    []byte
	sha      string
}

func (q DeploymentQuery) plan(tx *bolt.Tx) (*deploymentPlan, error) {
	p := &deploymentPlan{q: q}
	if q.OrderBy == 0 {
		p.q.OrderBy = OrderByID
	}
	if !slices.Contains(deploymentOrders[:], p.q.OrderBy) {
		return nil, invalid("Unknown deployment order")
	}
	switch {
	case q.Status != nil && q.Statuses != nil:
		return nil, invalid("status and statuses cannot be used together")
	case q.Status != nil:
		p.statuses = []DeploymentStatus{*q.Status}
	case q.Statuses != nil:
		p.statuses = slices.Compact(slices.Sorted(slices.Values(q.Statuses)))
		if len(p.statuses) == 0 {
			p.empty = true
		}
	case q.VisibleOnly:
		p.statuses = VisibleDeploymentStatuses
	}
	for _, st := range p.statuses {
		if statusCode(st) == 0 {
			return nil, invalid("Unknown deployment status %q", st)
		}
	}
	if q.SHA != nil {
		p.sha = strings.ToLower(*q.SHA)
	}
	p.scope = projectScope(q.ProjectID)
	if q.EnvironmentID != 0 {
		p.scope = envScope(q.EnvironmentID)
	}
	if q.EnvironmentName != nil {
		v := tx.Bucket(bktEnvByName).Get(join(u64(q.ProjectID), []byte(*q.EnvironmentName)))
		switch {
		case v == nil:
			p.empty = true
		case q.EnvironmentID != 0 && readU64(v) != q.EnvironmentID:
			p.empty = true
		default:
			p.scope = envScope(readU64(v))
		}
	}
	return p, nil
}

// matches checks the filters that the scanned index does not answer.
func (p *deploymentPlan) matches(d *Deployment, statusChecked bool) bool {
	q := p.q
	if d.ProjectID != q.ProjectID {
		return false
	}
	if !statusChecked && len(p.statuses) > 0 && !slices.Contains(p.statuses, d.Status) {
		return false
	}
	if q.Ref != nil && d.Ref != *q.Ref {
		return false
	}
	if q.SHA != nil && d.SHA != p.sha {
		return false
	}
	if !inWindow(&d.UpdatedAt, q.UpdatedAfter, q.UpdatedBefore) {
		return false
	}
	if (q.FinishedAfter != nil || q.FinishedBefore != nil) && !inWindow(d.FinishedAt, q.FinishedAfter, q.FinishedBefore) {
		return false
	}
	return true
}

// inWindow reports whether t lies in [after, before); a missing t lies in no
// window.
func inWindow(t, after, before *time.Time) bool {
	if after == nil && before == nil {
		return true
	}
	if t == nil {
		return false
	}
	return (after == nil || !t.Before(*after)) && (before == nil || t.Before(*before))
}

// filtersOnRecord reports whether any filter needs the record itself.
func (p *deploymentPlan) filtersOnRecord() bool {
	q := p.q
	return q.Ref != nil || q.SHA != nil || q.UpdatedAfter != nil || q.UpdatedBefore != nil ||
		q.FinishedAfter != nil || q.FinishedBefore != nil
}

// source picks the index prefixes to scan: for ID and FINISHED_AT order,
// the status partitions of the statuses asked for (of all of them without a
// filter), else the order's own prefix, with the statuses checked on the
// records.
func (p *deploymentPlan) source(tx *bolt.Tx) (src source, statusChecked bool) {
	idx := tx.Bucket(bktDeployIndex)
	switch o := p.q.OrderBy; o {
	case OrderByID, OrderByFinishedAt:
		tag := byte(tagByStatus)
		if o == OrderByFinishedAt {
			tag = tagByStatusFinished
		}
		statuses := p.statuses
		if len(statuses) == 0 {
			statuses = AllDeploymentStatuses
		}
		return statusPartitions(idx, p.scope, tag, statuses, p.q.Desc), true
	default:
		return boltSource{b: idx, prefix: join(p.scope, []byte{byte(o)}), desc: p.q.Desc}, len(p.statuses) == 0
	}
}

// reader loads deployments by id within one transaction, decoding each once.
type deploymentReader struct {
	tx      *bolt.Tx
	records *bolt.Cursor // opened on first use (see seekValue)
	cache   map[int64]*Deployment
}

func (r *deploymentReader) get(id int64) (*Deployment, error) {
	if d, ok := r.cache[id]; ok {
		return d, nil
	}
	if r.records == nil {
		r.records = r.tx.Bucket(bktDeployments).Cursor()
	}
	d, err := getByIDIn[Deployment](r.records, bktDeployments, id)
	if err != nil {
		return nil, err
	}
	if r.cache == nil {
		r.cache = map[int64]*Deployment{}
	}
	r.cache[id] = d
	return d, nil
}

// scan returns the source and matcher for the plan.
func (p *deploymentPlan) scan(r *deploymentReader) (source, matcher, error) {
	if p.q.MergeRequestID != 0 {
		return p.mergeRequestSource(r)
	}
	src, statusChecked := p.source(r.tx)
	if statusChecked && !p.filtersOnRecord() {
		return src, nil, nil
	}
	return src, func(key []byte) (bool, error) {
		d, err := r.get(lastID(key))
		if err != nil || d == nil {
			return false, err
		}
		return p.matches(d, statusChecked), nil
	}, nil
}

// mergeRequestSource lists the deployments linked to one merge request in
// memory: a merge request ships to a handful of environments.
func (p *deploymentPlan) mergeRequestSource(r *deploymentReader) (source, matcher, error) {
	var keys [][]byte
	c := r.tx.Bucket(bktMRDeploys).Cursor()
	prefix := u64(p.q.MergeRequestID)
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		d, err := r.get(lastID(k))
		if err != nil {
			return nil, nil, err
		}
		if d == nil || (p.q.EnvironmentID != 0 && d.EnvironmentID != p.q.EnvironmentID) {
			continue
		}
		keys = append(keys, d.sortKey(p.q.OrderBy))
	}
	return newMemSource(keys, p.q.Desc), func(key []byte) (bool, error) {
		d, err := r.get(lastID(key))
		return d != nil && p.matches(d, false), err
	}, nil
}

func (p *deploymentPlan) page(r *deploymentReader) (Page[*Deployment], error) {
	var page Page[*Deployment]
	w, err := p.q.Page.window(byte(p.q.OrderBy))
	if err != nil || p.empty {
		return page, err
	}
	src, match, err := p.scan(r)
	if err != nil {
		return page, err
	}
	keys, hasPrev, hasNext, err := paginate(src, match, w)
	if err != nil {
		return page, err
	}
	page.HasPreviousPage, page.HasNextPage = hasPrev, hasNext
	page.Items = make([]*Deployment, 0, len(keys))
	for _, k := range keys {
		d, err := r.get(lastID(k))
		if err != nil {
			return page, err
		}
		page.Items = append(page.Items, d)
	}
	page.Cursors = encodeCursors(byte(p.q.OrderBy), keys)
	return page, nil
}

func (p *deploymentPlan) count(r *deploymentReader) (int, error) {
	if p.empty {
		return 0, nil
	}
	if p.q.MergeRequestID == 0 && !p.filtersOnRecord() {
		statuses := p.statuses
		if len(statuses) == 0 {
			statuses = AllDeploymentStatuses
		}
		counts := r.tx.Bucket(bktDeployCounts)
		n := 0
		for _, st := range statuses {
			if v := counts.Get(countKey(p.scope, st)); v != nil {
				n += int(readU64(v))
			}
		}
		return n, nil
	}
	src, match, err := p.scan(r)
	if err != nil {
		return 0, err
	}
	return countMatches(src, match)
}

// ListDeployments answers several deployment queries in one read
// transaction, index-aligned: pages[i] and errs[i] answer qs[i].
func (s *Store) ListDeployments(ctx context.Context, qs []DeploymentQuery) (pages []Page[*Deployment], errs []error) {
	pages, errs = make([]Page[*Deployment], len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		r := &deploymentReader{tx: tx}
		for i, q := range qs {
			p, err := q.plan(tx)
			if err == nil {
				pages[i], err = p.page(r)
			}
			errs[i] = err
		}
		return nil
	})
	return pages, fillErrs(errs, err)
}

// CountDeployments counts what each query matches, ignoring its page, in
// one read transaction. Counts without time, ref or sha filters come from
// kept counters.
func (s *Store) CountDeployments(ctx context.Context, qs []DeploymentQuery) (counts []int, errs []error) {
	counts, errs = make([]int, len(qs)), make([]error, len(qs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		r := &deploymentReader{tx: tx}
		for i, q := range qs {
			p, err := q.plan(tx)
			if err == nil {
				counts[i], err = p.count(r)
			}
			errs[i] = err
		}
		return nil
	})
	return counts, fillErrs(errs, err)
}

// LastDeploymentKey asks for an environment's last deployment with a status.
type LastDeploymentKey struct {
	EnvironmentID int64
	Status        DeploymentStatus
}

// LastDeployments finds, for each key, the environment's last deployment
// with that status: for SUCCESS the one that finished last (ties: higher
// id), for any other status the newest by id. Missing ones are nil.
func (s *Store) LastDeployments(ctx context.Context, keys []LastDeploymentKey) ([]*Deployment, error) {
	out := make([]*Deployment, len(keys))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		index, records := tx.Bucket(bktDeployIndex).Cursor(), tx.Bucket(bktDeployments).Cursor()
		for i, k := range keys {
			d, err := lastDeploymentIn(index, records, k.EnvironmentID, k.Status)
			if err != nil {
				return err
			}
			out[i] = d
		}
		return nil
	})
	return out, err
}

func lastDeployment(tx *bolt.Tx, envID int64, status DeploymentStatus) (*Deployment, error) {
	return lastDeploymentIn(tx.Bucket(bktDeployIndex).Cursor(), tx.Bucket(bktDeployments).Cursor(), envID, status)
}

// lastDeploymentIn is lastDeployment through a cursor of the deployment
// index and one of the deployments, which a batch's lookups share (a new
// cursor's first seek grows its stack; see also seekValue).
func lastDeploymentIn(index, records *bolt.Cursor, envID int64, status DeploymentStatus) (*Deployment, error) {
	// The keys on the stack: a page of 20 environments looks up 20.
	var partitionBuf, endBuf [scopeLen + 2]byte
	tag := byte(tagByStatus)
	if status == StatusSuccess {
		tag = tagByStatusFinished
	}
	partition := append(appendEnvScope(partitionBuf[:0], envID), tag, statusCode(status))
	k := lastBefore(index, appendPrefixEnd(endBuf[:0], partition))
	// A success without a finish time (its time key is nilTime, last) is
	// never "last".
	for status == StatusSuccess && k != nil && hasPrefix(k, partition) && string(k[len(partition):len(partition)+8]) == string(nilTime) {
		k, _ = index.Prev()
	}
	if k == nil || !hasPrefix(k, partition) {
		return nil, nil
	}
	return getByIDIn[Deployment](records, bktDeployments, lastID(k))
}

// IIDKey names a record by project and iid.
type IIDKey struct {
	ProjectID, IID int64
}

// DeploymentsByIID loads deployments by project and iid (nil where missing).
func (s *Store) DeploymentsByIID(ctx context.Context, keys []IIDKey) ([]*Deployment, error) {
	return getManyByIndex[Deployment](ctx, s, bktDeployByIID, bktDeployments, keys)
}

// getManyByIndex loads records through a project|iid index.
func getManyByIndex[T any](ctx context.Context, s *Store, index, bucket []byte, keys []IIDKey) ([]*T, error) {
	out := make([]*T, len(keys))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		ids, records := tx.Bucket(index).Cursor(), tx.Bucket(bucket).Cursor()
		for i, k := range keys {
			id := lookupIDIn(ids, pair(k.ProjectID, k.IID))
			if id == 0 {
				continue
			}
			var err error
			if out[i], err = getByIDIn[T](records, bucket, id); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// fillErrs gives every query the transaction's error when the transaction
// itself failed.
func fillErrs(errs []error, err error) []error {
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}
