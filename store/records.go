package store

import (
	"context"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// getMany loads records by id in one read transaction, index-aligned to
// ids; missing records are nil.
func getMany[T any](ctx context.Context, s *Store, bucket []byte, ids []int64) ([]*T, error) {
	out := make([]*T, len(ids))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		records := tx.Bucket(bucket).Cursor()
		for i, id := range ids {
			v, err := getByIDIn[T](records, bucket, id)
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	return out, err
}

// Users loads users by id (nil where missing).
func (s *Store) Users(ctx context.Context, ids []int64) ([]*User, error) {
	return getMany[User](ctx, s, bktUsers, ids)
}

// Groups loads groups by id (nil where missing).
func (s *Store) Groups(ctx context.Context, ids []int64) ([]*Group, error) {
	return getMany[Group](ctx, s, bktGroups, ids)
}

// Projects loads projects by id (nil where missing).
func (s *Store) Projects(ctx context.Context, ids []int64) ([]*Project, error) {
	return getMany[Project](ctx, s, bktProjects, ids)
}

// Environments loads environments by id (nil where missing).
func (s *Store) Environments(ctx context.Context, ids []int64) ([]*Environment, error) {
	return getMany[Environment](ctx, s, bktEnvironments, ids)
}

// Deployments loads deployments by id (nil where missing).
func (s *Store) Deployments(ctx context.Context, ids []int64) ([]*Deployment, error) {
	return getMany[Deployment](ctx, s, bktDeployments, ids)
}

// Jobs loads CI jobs by id (nil where missing).
func (s *Store) Jobs(ctx context.Context, ids []int64) ([]*Job, error) {
	return getMany[Job](ctx, s, bktJobs, ids)
}

// Pipelines loads pipelines by id (nil where missing).
func (s *Store) Pipelines(ctx context.Context, ids []int64) ([]*Pipeline, error) {
	return getMany[Pipeline](ctx, s, bktPipelines, ids)
}

// MergeRequests loads merge requests by id (nil where missing).
func (s *Store) MergeRequests(ctx context.Context, ids []int64) ([]*MergeRequest, error) {
	return getMany[MergeRequest](ctx, s, bktMergeRequests, ids)
}

// AccessTokens loads access tokens by id (nil where missing).
func (s *Store) AccessTokens(ctx context.Context, ids []int64) ([]*AccessToken, error) {
	return getMany[AccessToken](ctx, s, bktTokens, ids)
}

// Commits loads commits by sha (nil where unknown).
func (s *Store) Commits(ctx context.Context, shas []string) ([]*Commit, error) {
	out := make([]*Commit, len(shas))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, sha := range shas {
			var c Commit
			ok, err := getJSON(tx, bktCommits, []byte(strings.ToLower(sha)), &c)
			if err != nil {
				return err
			}
			if ok {
				out[i] = &c
			}
		}
		return nil
	})
	return out, err
}

// lookupID reads an id from a name index; 0 when absent.
func lookupID(tx *bolt.Tx, bucket, key []byte) int64 {
	return lookupIDIn(tx.Bucket(bucket).Cursor(), key)
}

// lookupIDIn is lookupID through a cursor of the bucket (see seekValue).
func lookupIDIn(index *bolt.Cursor, key []byte) int64 {
	if v := seekValue(index, key); v != nil {
		return readU64(v)
	}
	return 0
}

// UserByUsername finds a user by username, case-insensitively, or nil.
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	var u *User
	err := s.read(ctx, func(tx *bolt.Tx) error {
		var err error
		u, err = userByUsername(tx, username)
		return err
	})
	return u, err
}

func userByUsername(tx *bolt.Tx, username string) (*User, error) {
	id := lookupID(tx, bktUserByName, []byte(strings.ToLower(username)))
	if id == 0 {
		return nil, nil
	}
	return getByID[User](tx, bktUsers, id)
}

// ProjectByPath finds a project by its full path, case-insensitively, or
// nil. A project found is kept until a project (or token or user) is
// written (see kept.go): most requests name their project by its path.
func (s *Store) ProjectByPath(ctx context.Context, fullPath string) (*Project, error) {
	path := strings.ToLower(fullPath)
	writes := s.keptWrites.Load() // before the state it describes is read
	if p, ok := s.projectPaths.get(path, writes); ok {
		return &p, nil
	}
	var p *Project
	// Read through ctx's snapshot, if any (see snapshot's IMPORTANT), and
	// kept with the count of kept writes from before its transaction
	// began, which may be older than writes.
	readAfter, err := s.readKept(ctx, func(tx *bolt.Tx) error {
		id := lookupID(tx, bktProjectByPath, []byte(path))
		if id == 0 {
			return nil
		}
		var err error
		p, err = getByID[Project](tx, bktProjects, id)
		return err
	})
	if err == nil && p != nil {
		s.projectPaths.put(path, readAfter, *p)
	}
	return p, err
}

// GroupByPath finds a group by its full path, case-insensitively, or nil.
func (s *Store) GroupByPath(ctx context.Context, fullPath string) (*Group, error) {
	var g *Group
	err := s.read(ctx, func(tx *bolt.Tx) error {
		id := lookupID(tx, bktGroupByPath, []byte(strings.ToLower(fullPath)))
		if id == 0 {
			return nil
		}
		var err error
		g, err = getByID[Group](tx, bktGroups, id)
		return err
	})
	return g, err
}

// EnvironmentKey names an environment by project and name.
type EnvironmentKey struct {
	ProjectID int64
	Name      string
}

// Key names e by project and name: how protections find it, and the key of
// ProtectedEnvironments.
func (e *Environment) Key() EnvironmentKey {
	return EnvironmentKey{ProjectID: e.ProjectID, Name: e.Name}
}

// EnvironmentsByName loads environments by project and name (nil where
// missing).
func (s *Store) EnvironmentsByName(ctx context.Context, keys []EnvironmentKey) ([]*Environment, error) {
	out := make([]*Environment, len(keys))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, k := range keys {
			var err error
			if out[i], err = environmentByName(tx, k.ProjectID, k.Name); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// environmentByName reads the project's environment of that name, or nil.
func environmentByName(tx *bolt.Tx, projectID int64, name string) (*Environment, error) {
	id := lookupID(tx, bktEnvByName, join(u64(projectID), []byte(name)))
	if id == 0 {
		return nil, nil
	}
	return getByID[Environment](tx, bktEnvironments, id)
}

// MergeRequestsByIID loads merge requests by project and iid (nil where
// missing).
func (s *Store) MergeRequestsByIID(ctx context.Context, keys []IIDKey) ([]*MergeRequest, error) {
	return getManyByIndex[MergeRequest](ctx, s, bktMRByIID, bktMergeRequests, keys)
}

// Approvals loads each deployment's approvals, index-aligned to ids.
func (s *Store) Approvals(ctx context.Context, deploymentIDs []int64) ([][]Approval, error) {
	out := make([][]Approval, len(deploymentIDs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktApprovals).Cursor()
		for i, id := range deploymentIDs {
			var err error
			if out[i], err = approvalsIn(c, id); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func approvalsOf(tx *bolt.Tx, deploymentID int64) ([]Approval, error) {
	return approvalsIn(tx.Bucket(bktApprovals).Cursor(), deploymentID)
}

// approvalsIn is approvalsOf through a cursor of the approvals bucket (see
// seekValue).
func approvalsIn(c *bolt.Cursor, deploymentID int64) ([]Approval, error) {
	var list []Approval
	prefix := u64(deploymentID)
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		var a Approval
		if err := unmarshal(v, &a); err != nil {
			return nil, err
		}
		list = append(list, a)
	}
	return list, nil
}

// ProtectedEnvironments loads the protection of each named environment (nil
// where the name is not protected).
func (s *Store) ProtectedEnvironments(ctx context.Context, keys []EnvironmentKey) ([]*ProtectedEnvironment, error) {
	out := make([]*ProtectedEnvironment, len(keys))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, k := range keys {
			var pe ProtectedEnvironment
			ok, err := getJSON(tx, bktProtected, join(u64(k.ProjectID), []byte(k.Name)), &pe)
			if err != nil {
				return err
			}
			if ok {
				out[i] = &pe
			}
		}
		return nil
	})
	return out, err
}

// ProjectProtectedEnvironments lists each project's protected environments,
// by name.
func (s *Store) ProjectProtectedEnvironments(ctx context.Context, projectIDs []int64) ([][]ProtectedEnvironment, error) {
	out := make([][]ProtectedEnvironment, len(projectIDs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, pid := range projectIDs {
			prefix := u64(pid)
			c := tx.Bucket(bktProtected).Cursor()
			for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
				var pe ProtectedEnvironment
				if err := unmarshal(v, &pe); err != nil {
					return err
				}
				out[i] = append(out[i], pe)
			}
		}
		return nil
	})
	return out, err
}

// MemberKey names a user's membership of a project.
type MemberKey struct {
	ProjectID, UserID int64
}

// MemberLevels loads each user's role in each project (NoAccess when not a
// member).
func (s *Store) MemberLevels(ctx context.Context, keys []MemberKey) ([]AccessLevel, error) {
	out := make([]AccessLevel, len(keys))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, k := range keys {
			out[i] = memberLevel(tx, k.ProjectID, k.UserID)
		}
		return nil
	})
	return out, err
}

func memberLevel(tx *bolt.Tx, projectID, userID int64) AccessLevel {
	if v := tx.Bucket(bktProjectMembers).Get(pair(projectID, userID)); v != nil {
		return AccessLevel(readU64(v))
	}
	return NoAccess
}

// UserGroupIDs lists the groups each user belongs to.
func (s *Store) UserGroupIDs(ctx context.Context, userIDs []int64) ([][]int64, error) {
	out := make([][]int64, len(userIDs))
	err := s.read(ctx, func(tx *bolt.Tx) error {
		for i, uid := range userIDs {
			out[i] = userGroupIDs(tx, uid)
		}
		return nil
	})
	return out, err
}

func userGroupIDs(tx *bolt.Tx, userID int64) []int64 {
	var ids []int64
	prefix := u64(userID)
	c := tx.Bucket(bktUserGroups).Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, lastID(k))
	}
	return ids
}
