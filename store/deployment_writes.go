package store

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NewDeployment is createDeployment's input.
type NewDeployment struct {
	ProjectID   int64
	Environment string // a name: found, or created
	SHA, Ref    string
	Tag         bool
	Status      DeploymentStatus
}

// creatableStatuses may be asked for when recording a deployment; CREATED
// is a deviation from GitLab for queued deployments.
var creatableStatuses = []DeploymentStatus{StatusCreated, StatusRunning, StatusSuccess, StatusFailed, StatusCanceled}

// updatableStatuses may be set through the API.
var updatableStatuses = []DeploymentStatus{StatusRunning, StatusSuccess, StatusFailed, StatusCanceled}

// finished reports whether a status ends a deployment (sets finishedAt).
func finished(s DeploymentStatus) bool {
	return s == StatusSuccess || s == StatusFailed || s == StatusCanceled
}

// CanTransition is the deployment status machine (SPEC 6.3): run moves
// CREATED or BLOCKED to RUNNING; succeed, drop and cancel move any other
// status to SUCCESS, FAILED and CANCELED.
func CanTransition(from, to DeploymentStatus) bool {
	switch to {
	case StatusRunning:
		return from == StatusCreated || from == StatusBlocked
	case StatusSuccess, StatusFailed, StatusCanceled:
		return from != to
	}
	return false
}

// CreateDeployment records a deployment as v. The environment is found by
// name or created; on an environment that requires approval the deployment
// is held as BLOCKED whatever status was asked. A retry of the same
// deployment (same ref, tag, sha and status as the environment's newest)
// returns that deployment instead of recording another.
func (s *Store) CreateDeployment(ctx context.Context, v Viewer, in NewDeployment) (*Deployment, error) {
	var d *Deployment
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		now := s.Now()
		ch := s.changesOf(tx)
		sha, pe, err := checkCreateDeployment(tx, v, in)
		if err != nil {
			return refused(err) // nothing written yet
		}
		env, err := findOrCreateEnvironment(tx, ch, in.ProjectID, in.Environment, now)
		if err != nil {
			return err
		}
		status := in.Status
		if pe.RequiresApproval() {
			status = StatusBlocked
		}
		newest, err := newestDeployment(tx, env.ID)
		if err != nil {
			return err
		}
		if newest != nil && newest.Ref == in.Ref && newest.Tag == in.Tag && newest.SHA == sha && newest.Status == status {
			d = newest
			return nil
		}
		id, err := nextID(tx.Bucket(bktDeployments))
		if err != nil {
			return err
		}
		iid, err := nextCounter(tx, deployIIDCounter(in.ProjectID))
		if err != nil {
			return err
		}
		d = &Deployment{
			ID: id, IID: iid, ProjectID: in.ProjectID, EnvironmentID: env.ID,
			Ref: in.Ref, SHA: sha, Tag: in.Tag, Status: status,
			CreatedAt: now, UpdatedAt: now, UserID: v.UserID(),
		}
		return saveDeployment(tx, ch, EventCreated, env, d, now)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// checkCreateDeployment is what createDeployment checks before it writes
// anything: that v may deploy to the environment, and the input. Access
// first: a caller who may not see the project learns nothing about it from
// how their input is judged. It returns the sha as stored and the
// environment's protection.
func checkCreateDeployment(tx *bolt.Tx, v Viewer, in NewDeployment) (string, *ProtectedEnvironment, error) {
	_, acc, err := authorize(tx, v, in.ProjectID, Developer)
	if err != nil {
		return "", nil, err
	}
	sha, err := checkNewDeployment(in)
	if err != nil {
		return "", nil, err
	}
	pe, err := requireDeployAccess(tx, v, acc, in.ProjectID, in.Environment)
	return sha, pe, err
}

// checkNewDeployment validates createDeployment's input and returns the sha
// as stored (lower case).
func checkNewDeployment(in NewDeployment) (string, error) {
	if !slices.Contains(creatableStatuses, in.Status) {
		return "", invalid("Status must be one of created, running, success, failed or canceled")
	}
	sha, err := ValidateSHA(in.SHA)
	if err != nil {
		return "", err
	}
	if err := ValidateRef(in.Ref); err != nil {
		return "", err
	}
	return sha, ValidateEnvironmentName(in.Environment)
}

// newestDeployment is the environment's deployment with the highest id: the
// highest of the last keys of its ID partitions, found with one cursor
// (every createDeployment asks, inside the commit others wait for).
func newestDeployment(tx *bolt.Tx, envID int64) (*Deployment, error) {
	c := tx.Bucket(bktDeployIndex).Cursor()
	partition := join(envScope(envID), []byte{tagByStatus, 0})
	past := bytes.Clone(partition) // the partition of the next status code
	code := len(partition) - 1
	var id int64
	for _, st := range AllDeploymentStatuses {
		partition[code], past[code] = statusCode(st), statusCode(st)+1
		if k := lastBefore(c, past); k != nil && hasPrefix(k, partition) {
			id = max(id, lastID(k))
		}
	}
	if id == 0 {
		return nil, nil
	}
	return getByID[Deployment](tx, bktDeployments, id)
}

// saveDeployment stores d in its new status, with what reaching that
// status entails: a finish time, the environment restarted and merge
// requests linked on SUCCESS. kind is the event the change makes.
func saveDeployment(tx *bolt.Tx, ch *changes, kind EventKind, env *Environment, d *Deployment, now time.Time) error {
	if finished(d.Status) {
		d.FinishedAt = &now
	}
	var previous *Deployment
	if d.Status == StatusSuccess {
		var err error
		if previous, err = lastDeployment(tx, env.ID, StatusSuccess); err != nil {
			return err
		}
	}
	if err := putDeployment(tx, d); err != nil {
		return err
	}
	ch.deployment(kind, env, d)
	if d.Status != StatusSuccess {
		return nil
	}
	if err := restartEnvironment(tx, ch, env, now); err != nil {
		return err
	}
	if EnvironmentFolder(env.Name) != "" {
		return nil
	}
	return linkShippedMergeRequests(tx, d, previous)
}

// linkShippedMergeRequests links d to the merge requests it shipped (SPEC
// 6.5): those merged into its ref after the previous successful deployment
// finished and no later than d finished, and those whose merge commit it
// deployed.
func linkShippedMergeRequests(tx *bolt.Tx, d, previous *Deployment) error {
	var ids []int64
	prefix := join(u64(d.ProjectID), []byte(d.Ref), []byte{0})
	from := prefix
	if previous != nil && previous.FinishedAt != nil && previous.ID != d.ID {
		// Strictly after the previous finish: skip every key at that time.
		from = join(prefix, timeKey(previous.FinishedAt), nilTime)
	}
	until := join(prefix, timeKey(d.FinishedAt), nilTime)
	c := tx.Bucket(bktMRMerged).Cursor()
	for k, _ := c.Seek(from); k != nil && hasPrefix(k, prefix) && string(k) <= string(until); k, _ = c.Next() {
		ids = append(ids, lastID(k))
	}
	shaPrefix := join(u64(d.ProjectID), []byte(d.SHA), []byte{0})
	c = tx.Bucket(bktMRByMergeSHA).Cursor()
	for k, _ := c.Seek(shaPrefix); k != nil && hasPrefix(k, shaPrefix); k, _ = c.Next() {
		ids = append(ids, lastID(k))
	}
	for _, id := range ids {
		if err := putLink(tx, d.ID, id); err != nil {
			return err
		}
	}
	return nil
}

// UpdateDeploymentStatus moves a deployment through the status machine as
// v. Deployments that came from CI jobs are changed by their jobs only.
func (s *Store) UpdateDeploymentStatus(ctx context.Context, v Viewer, deploymentID int64, status DeploymentStatus) (*Deployment, error) {
	var d *Deployment
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		now := s.Now()
		var env *Environment
		var err error
		if d, env, err = checkStatusUpdate(tx, v, deploymentID, status); err != nil {
			return refused(err) // nothing written yet
		}
		d.Status, d.UpdatedAt = status, now
		return saveDeployment(tx, s.changesOf(tx), EventUpdated, env, d, now)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// checkStatusUpdate is what updateDeployment checks before it writes
// anything, and the deployment with its environment.
func checkStatusUpdate(tx *bolt.Tx, v Viewer, deploymentID int64, status DeploymentStatus) (*Deployment, *Environment, error) {
	d, env, pe, err := deploymentForWrite(tx, v, deploymentID, Developer)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(updatableStatuses, status) {
		return nil, nil, invalid("Status must be one of running, success, failed or canceled")
	}
	if d.DeployableID != 0 {
		return nil, nil, Errorf(EForbidden, "Deployments created by CI jobs cannot be updated through the API")
	}
	if !CanTransition(d.Status, status) {
		return nil, nil, Errorf(EFailedPrecondition, "Cannot change the status of a deployment from %s to %s",
			strings.ToUpper(string(d.Status)), strings.ToUpper(string(status)))
	}
	if d.Status == StatusBlocked && (status == StatusRunning || status == StatusSuccess) && pe.RequiresApproval() {
		approvals, err := approvalsOf(tx, d.ID)
		if err != nil {
			return nil, nil, err
		}
		if n := PendingApprovalCount(pe.ApprovalRules, approvals); n > 0 {
			return nil, nil, Errorf(EFailedPrecondition, "This deployment is waiting for %d more approvals", n)
		}
	}
	return d, env, nil
}

// DeleteDeployment removes a deployment with its approvals and links, as v.
func (s *Store) DeleteDeployment(ctx context.Context, v Viewer, deploymentID int64) (*Deployment, error) {
	var d *Deployment
	err := s.update(func(tx *bolt.Tx) error {
		var (
			env *Environment
			err error
		)
		if d, env, _, err = deploymentForWrite(tx, v, deploymentID, Maintainer); err != nil {
			return err
		}
		if d.Status == StatusRunning {
			return Errorf(EFailedPrecondition, "Cannot destroy running deployment")
		}
		last, err := lastDeployment(tx, d.EnvironmentID, StatusSuccess)
		if err != nil {
			return err
		}
		if last != nil && last.ID == d.ID {
			return Errorf(EFailedPrecondition, "Deployment currently deployed to environment")
		}
		if err := deleteDeploymentRecord(tx, d); err != nil {
			return err
		}
		s.changesOf(tx).deployment(EventDeleted, env, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// deploymentForWrite loads a deployment, its environment and protection
// for a write by v that needs role `need` and, on a protected environment,
// deploy access. A deployment v cannot see is not found.
func deploymentForWrite(tx *bolt.Tx, v Viewer, id int64, need AccessLevel) (*Deployment, *Environment, *ProtectedEnvironment, error) {
	if err := requireUser(v); err != nil {
		return nil, nil, nil, err
	}
	d, err := getByID[Deployment](tx, bktDeployments, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if d == nil {
		return nil, nil, nil, notFound("Deployment")
	}
	_, acc, err := authorize(tx, v, d.ProjectID, need)
	if err != nil {
		if ErrorCode(err) == ENotFound {
			err = notFound("Deployment")
		}
		return nil, nil, nil, err
	}
	env, err := getByID[Environment](tx, bktEnvironments, d.EnvironmentID)
	if err != nil {
		return nil, nil, nil, err
	}
	if env == nil {
		return nil, nil, nil, notFound("Environment")
	}
	pe, err := requireDeployAccess(tx, v, acc, d.ProjectID, env.Name)
	return d, env, pe, err
}
