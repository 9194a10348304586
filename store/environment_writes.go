package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	staleMinAge            = 7 * 24 * time.Hour
	staleMaxAgeYears       = 10
	reviewAppsFolder       = "review"
	reviewAppsDefaultAge   = 30 * 24 * time.Hour
	reviewAppsDefaultLimit = 100
	reviewAppsMaxLimit     = 1000
	reviewAppsDeleteDelay  = 7 * 24 * time.Hour
	envSlugSuffixLength    = 6
	envSlugRetries         = 64

	msgEnvNotFound         = "Environment not found"
	msgEnvNameTaken        = "Name has already been taken"
	msgEnvStopFailed       = "Attempted to stop the environment but failed to change the status"
	msgEnvDeleteNotStopped = "Environment must be stopped before it can be deleted"
	msgStaleInvalidDate    = "Invalid Date"
	msgStaleStopped        = "Successfully requested stop for all stale environments"
	msgReviewLimit         = "limit must be between 1 and 1000"
	msgReviewUnauthorized  = "Failed to authorize deletions for some or all of the environments. Ask someone with more permissions to delete the environments."
	msgReviewNoCandidates  = "No environments found for deletion"
)

// NewEnvironment is createEnvironment's input.
type NewEnvironment struct {
	ProjectID   int64
	Name        string
	ExternalURL *string          // optional; blank means none
	Tier        *EnvironmentTier // nil: guessed from the name
	AutoStopAt  *time.Time
}

// EnvironmentUpdate is updateEnvironment's input; nil fields stay as they
// are.
type EnvironmentUpdate struct {
	EnvironmentID   int64
	ExternalURL     *string // "" (or blank) clears it
	Tier            *EnvironmentTier
	AutoStopAt      *time.Time
	ClearAutoStopAt bool // explicit null in the request
}

// ReviewAppCleanup is deleteStoppedReviewApps' answer: what was (or, in a
// dry run, would be) scheduled for deletion, and what the caller may not
// delete.
type ReviewAppCleanup struct {
	Scheduled, Unprocessable []*Environment
	DryRun                   bool
	Message                  string
}

// CreateEnvironment adds an environment to a project (SPEC 6.2); DEVELOPER+
// may, and a protected name also needs deploy access.
func (s *Store) CreateEnvironment(ctx context.Context, v Viewer, in NewEnvironment) (*Environment, error) {
	now := s.Now()
	var e *Environment
	err := s.update(func(tx *bolt.Tx) error {
		_, acc, err := authorize(tx, v, in.ProjectID, Developer)
		if err != nil {
			return err
		}
		if err := ValidateEnvironmentName(in.Name); err != nil {
			return err
		}
		rec := &Environment{ProjectID: in.ProjectID, Name: in.Name, Tier: GuessTier(in.Name), AutoStopAt: autoStopTime(in.AutoStopAt)}
		if in.Tier != nil {
			if err := checkEnvironmentTier(*in.Tier); err != nil {
				return err
			}
			rec.Tier = *in.Tier
		}
		if in.ExternalURL != nil {
			if rec.ExternalURL, err = ValidateExternalURL(*in.ExternalURL); err != nil {
				return err
			}
		}
		if _, err := requireDeployAccess(tx, v, acc, in.ProjectID, in.Name); err != nil {
			return err
		}
		if err := insertEnvironment(tx, s.changesOf(tx), rec, now); err != nil {
			return err
		}
		e = rec
		return nil
	})
	if err != nil {
		return nil, internalContext(err, "create environment %q", in.Name)
	}
	return e, nil
}

// UpdateEnvironment changes an environment's external URL, tier or
// autoStopAt; its name never changes.
func (s *Store) UpdateEnvironment(ctx context.Context, v Viewer, in EnvironmentUpdate) (*Environment, error) {
	now := s.Now()
	var e *Environment
	err := s.update(func(tx *bolt.Tx) error {
		rec, err := environmentForChange(tx, v, in.EnvironmentID)
		if err != nil {
			return err
		}
		if in.AutoStopAt != nil && in.ClearAutoStopAt {
			return invalid("autoStopAt cannot be both set and cleared")
		}
		changed := false
		if in.ExternalURL != nil {
			url, err := ValidateExternalURL(*in.ExternalURL)
			if err != nil {
				return err
			}
			changed = changed || !sameExternalURL(rec.ExternalURL, url)
			rec.ExternalURL = url
		}
		if in.Tier != nil {
			if err := checkEnvironmentTier(*in.Tier); err != nil {
				return err
			}
			changed = changed || rec.Tier != *in.Tier
			rec.Tier = *in.Tier
		}
		if in.AutoStopAt != nil || in.ClearAutoStopAt {
			at := autoStopTime(in.AutoStopAt)
			changed = changed || !sameAutoStop(rec.AutoStopAt, at)
			rec.AutoStopAt = at
		}
		if changed {
			rec.UpdatedAt = now
			if err := putEnvironment(tx, rec); err != nil {
				return err
			}
			s.changesOf(tx).environment(EventUpdated, rec)
		}
		e = rec
		return nil
	})
	if err != nil {
		return nil, internalContext(err, "update environment %d", in.EnvironmentID)
	}
	return e, nil
}

// StopEnvironment moves an AVAILABLE environment (or, with force, a
// STOPPING one) to STOPPED.
func (s *Store) StopEnvironment(ctx context.Context, v Viewer, environmentID int64, force bool) (*Environment, error) {
	now := s.Now()
	var e *Environment
	err := s.update(func(tx *bolt.Tx) error {
		rec, err := environmentForChange(tx, v, environmentID)
		if err != nil {
			return err
		}
		if rec.State != EnvAvailable && !(force && rec.State == EnvStopping) {
			return Errorf(EFailedPrecondition, msgEnvStopFailed)
		}
		if err := stopEnvironmentRecord(tx, s.changesOf(tx), rec, now); err != nil {
			return err
		}
		e = rec
		return nil
	})
	if err != nil {
		return nil, internalContext(err, "stop environment %d", environmentID)
	}
	return e, nil
}

// DeleteEnvironment removes a STOPPED environment with its deployments,
// their approvals and merge-request links, and returns what it removed.
func (s *Store) DeleteEnvironment(ctx context.Context, v Viewer, environmentID int64) (*Environment, error) {
	var e *Environment
	err := s.update(func(tx *bolt.Tx) error {
		rec, err := environmentForChange(tx, v, environmentID)
		if err != nil {
			return err
		}
		if rec.State != EnvStopped {
			return Errorf(EFailedPrecondition, msgEnvDeleteNotStopped)
		}
		if err := deleteEnvironmentRecord(tx, s.changesOf(tx), rec); err != nil {
			return err
		}
		e = rec
		return nil
	})
	if err != nil {
		return nil, internalContext(err, "delete environment %d", environmentID)
	}
	return e, nil
}

// StopStaleEnvironments stops the project's unprotected AVAILABLE
// environments that nobody changed or deployed to since before (SPEC 6.2);
// MAINTAINER+ may.
func (s *Store) StopStaleEnvironments(ctx context.Context, v Viewer, projectID int64, before time.Time) (string, []*Environment, error) {
	now := s.Now()
	var stopped []*Environment
	err := s.update(func(tx *bolt.Tx) error {
		if _, _, err := authorize(tx, v, projectID, Maintainer); err != nil {
			return err
		}
		if before.Before(now.AddDate(-staleMaxAgeYears, 0, 0)) || before.After(now.Add(-staleMinAge)) {
			return invalid(msgStaleInvalidDate)
		}
		envs, err := projectEnvironments(tx, projectID)
		if err != nil {
			return err
		}
		for _, e := range envs {
			stale, err := isStaleEnvironment(tx, e, before)
			if err != nil {
				return err
			}
			if !stale {
				continue
			}
			if err := stopEnvironmentRecord(tx, s.changesOf(tx), e, now); err != nil {
				return err
			}
			stopped = append(stopped, e)
		}
		return nil
	})
	if err != nil {
		return "", nil, internalContext(err, "stop stale environments of project %d", projectID)
	}
	return msgStaleStopped, stopped, nil
}

// DeleteStoppedReviewApps schedules the project's old stopped review apps
// for deletion a week from now, or with dryRun (the default) only reports
// which it would schedule.
func (s *Store) DeleteStoppedReviewApps(ctx context.Context, v Viewer, projectID int64, before *time.Time, limit *int, dryRun *bool) (ReviewAppCleanup, error) {
	now := s.Now()
	out := ReviewAppCleanup{DryRun: dryRun == nil || *dryRun}
	cutoff := now.Add(-reviewAppsDefaultAge)
	if before != nil {
		cutoff = *before
	}
	n := reviewAppsDefaultLimit
	if limit != nil {
		n = *limit
	}
	err := s.update(func(tx *bolt.Tx) error {
		_, acc, err := authorize(tx, v, projectID, Developer)
		if err != nil {
			return err
		}
		if n < 1 || n > reviewAppsMaxLimit {
			return invalid(msgReviewLimit)
		}
		candidates, err := reviewAppCandidates(tx, projectID, cutoff, n)
		if err != nil {
			return err
		}
		for _, e := range candidates {
			_, err := requireDeployAccess(tx, v, acc, projectID, e.Name)
			switch {
			case ErrorCode(err) == EForbidden:
				out.Unprocessable = append(out.Unprocessable, e)
			case err != nil:
				return err
			default:
				out.Scheduled = append(out.Scheduled, e)
			}
		}
		switch {
		case len(out.Unprocessable) > 0:
			out.Scheduled, out.Message = nil, msgReviewUnauthorized
			return nil
		case len(out.Scheduled) == 0:
			out.Message = msgReviewNoCandidates
			return nil
		case out.DryRun:
			out.Message = fmt.Sprintf("%s would be scheduled for deletion", environmentsPhrase(len(out.Scheduled)))
			return nil
		}
		deleteAt := now.Add(reviewAppsDeleteDelay)
		for _, e := range out.Scheduled {
			e.AutoDeleteAt, e.UpdatedAt = &deleteAt, now
			if err := putEnvironment(tx, e); err != nil {
				return err
			}
			s.changesOf(tx).environment(EventUpdated, e)
		}
		out.Message = fmt.Sprintf("%s scheduled for deletion", environmentsPhrase(len(out.Scheduled)))
		return nil
	})
	if err != nil {
		return ReviewAppCleanup{}, internalContext(err, "delete stopped review apps of project %d", projectID)
	}
	return out, nil
}

// SweepEnvironments runs the background sweeps once: it stops AVAILABLE
// environments whose AutoStopAt has passed and deletes STOPPED environments
// whose AutoDeleteAt has passed (with their deployments, approvals and
// links). It acts as the system, not as a user.
func (s *Store) SweepEnvironments(ctx context.Context) (stopped, deleted int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	now := s.Now()
	err = s.update(func(tx *bolt.Tx) error {
		toStop, toDelete, err := sweepCandidates(tx, now)
		if err != nil {
			return err
		}
		ch := s.changesOf(tx)
		for _, e := range toStop {
			if err := stopEnvironmentRecord(tx, ch, e, now); err != nil {
				return err
			}
		}
		for _, e := range toDelete {
			if err := deleteEnvironmentRecord(tx, ch, e); err != nil {
				return err
			}
		}
		stopped, deleted = len(toStop), len(toDelete)
		return nil
	})
	if err != nil {
		return 0, 0, internalContext(err, "sweep environments")
	}
	return stopped, deleted, nil
}

// restartEnvironment makes a STOPPED or STOPPING environment AVAILABLE
// again (a deployment reached SUCCESS there); no-op otherwise. A pending
// scheduled deletion is cancelled: the environment is in use again.
func restartEnvironment(tx *bolt.Tx, ch *changes, e *Environment, now time.Time) error {
	if e.State != EnvStopped && e.State != EnvStopping {
		return nil
	}
	e.State, e.UpdatedAt, e.AutoDeleteAt = EnvAvailable, now, nil
	if err := putEnvironment(tx, e); err != nil {
		return fmt.Errorf("restart environment %d: %w", e.ID, err)
	}
	ch.environment(EventUpdated, e)
	return nil
}

// findOrCreateEnvironment returns the project's environment of that name,
// or a new one created with createEnvironment's rules (name validated,
// slug, tier guessed). It checks no access: createDeployment has.
func findOrCreateEnvironment(tx *bolt.Tx, ch *changes, projectID int64, name string, now time.Time) (*Environment, error) {
	if e, err := environmentByName(tx, projectID, name); err != nil || e != nil {
		return e, err
	}
	if err := ValidateEnvironmentName(name); err != nil {
		return nil, err
	}
	e := &Environment{ProjectID: projectID, Name: name, Tier: GuessTier(name)}
	if err := insertEnvironment(tx, ch, e, now); err != nil {
		return nil, err
	}
	return e, nil
}

// deleteEnvironmentRecord removes e with its deployments (and their
// approvals and links), its deployment counters and its index entries.
func deleteEnvironmentRecord(tx *bolt.Tx, ch *changes, e *Environment) error {
	var ids []int64
	prefix := join(envScope(e.ID), []byte{byte(OrderByIID)})
	c := tx.Bucket(bktDeployIndex).Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, lastID(k))
	}
	for _, id := range ids {
		d, err := getByID[Deployment](tx, bktDeployments, id)
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("environment %d: deployment index names missing deployment %d", e.ID, id)
		}
		if err := deleteDeploymentRecord(tx, d); err != nil {
			return fmt.Errorf("environment %d: delete deployment %d: %w", e.ID, id, err)
		}
		ch.deployment(EventDeleted, e, d)
	}
	if err := deletePrefix(tx.Bucket(bktDeployCounts), envScope(e.ID)); err != nil {
		return err
	}
	if err := deleteOwnKey(tx.Bucket(bktEnvByName), join(u64(e.ProjectID), []byte(e.Name)), e.ID); err != nil {
		return err
	}
	if err := deleteOwnKey(tx.Bucket(bktEnvBySlug), join(u64(e.ProjectID), []byte(e.Slug)), e.ID); err != nil {
		return err
	}
	if err := tx.Bucket(bktProjectEnvs).Delete(pair(e.ProjectID, e.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bktEnvironments).Delete(u64(e.ID)); err != nil {
		return err
	}
	ch.environment(EventDeleted, e)
	return nil
}

// environmentForChange loads an environment for update, stop or delete by
// v: anonymous callers are refused first, an environment in a project v
// cannot see does not exist, and a protected one needs deploy access.
func environmentForChange(tx *bolt.Tx, v Viewer, id int64) (*Environment, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	e, err := getByID[Environment](tx, bktEnvironments, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, Errorf(ENotFound, msgEnvNotFound)
	}
	_, acc, err := authorize(tx, v, e.ProjectID, Developer)
	if ErrorCode(err) == ENotFound {
		return nil, Errorf(ENotFound, msgEnvNotFound)
	}
	if err != nil {
		return nil, err
	}
	if _, err := requireDeployAccess(tx, v, acc, e.ProjectID, e.Name); err != nil {
		return nil, err
	}
	return e, nil
}

// insertEnvironment stores a new AVAILABLE environment with a fresh id and
// a slug unique in its project; its name must be free.
func insertEnvironment(tx *bolt.Tx, ch *changes, e *Environment, now time.Time) error {
	if lookupID(tx, bktEnvByName, join(u64(e.ProjectID), []byte(e.Name))) != 0 {
		return Errorf(EConflict, msgEnvNameTaken)
	}
	slug, err := uniqueEnvironmentSlug(tx, e.ProjectID, Slugify(e.Name))
	if err != nil {
		return err
	}
	id, err := nextID(tx.Bucket(bktEnvironments))
	if err != nil {
		return fmt.Errorf("allocate environment id: %w", err)
	}
	e.ID, e.Slug, e.State, e.CreatedAt, e.UpdatedAt = id, slug, EnvAvailable, now, now
	if err := putEnvironment(tx, e); err != nil {
		return fmt.Errorf("store environment %d: %w", id, err)
	}
	ch.environment(EventCreated, e)
	return nil
}

// uniqueEnvironmentSlug returns slug or, when another environment of the
// project has it already, slug's start with a random base-36 suffix (still
// a valid slug of at most 24 characters).
func uniqueEnvironmentSlug(tx *bolt.Tx, projectID int64, slug string) (string, error) {
	taken := func(s string) bool { return lookupID(tx, bktEnvBySlug, join(u64(projectID), []byte(s))) != 0 }
	if !taken(slug) {
		return slug, nil
	}
	stem := strings.TrimRight(slug[:min(len(slug), maxSlugLength-1-envSlugSuffixLength)], "-")
	for range envSlugRetries {
		candidate := stem + "-" + randomSlugSuffix(envSlugSuffixLength)
		if ValidSlug(candidate) && !taken(candidate) {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("no free slug for %q after %d attempts", slug, envSlugRetries)
}

func randomSlugSuffix(n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return string(b)
}

// stopEnvironmentRecord moves e to STOPPED; callers check the state it may
// come from.
func stopEnvironmentRecord(tx *bolt.Tx, ch *changes, e *Environment, now time.Time) error {
	e.State, e.AutoStopAt, e.UpdatedAt = EnvStopped, nil, now
	if err := putEnvironment(tx, e); err != nil {
		return fmt.Errorf("stop environment %d: %w", e.ID, err)
	}
	ch.environment(EventStopped, e)
	return nil
}

// projectEnvironments loads every environment of a project, by id. They
// are read before any is written: writing moves the index under a cursor.
func projectEnvironments(tx *bolt.Tx, projectID int64) ([]*Environment, error) {
	var ids []int64
	prefix := u64(projectID)
	c := tx.Bucket(bktProjectEnvs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, lastID(k))
	}
	envs := make([]*Environment, 0, len(ids))
	for _, id := range ids {
		e, err := getByID[Environment](tx, bktEnvironments, id)
		if err != nil {
			return nil, err
		}
		if e != nil {
			envs = append(envs, e)
		}
	}
	return envs, nil
}

// isStaleEnvironment reports whether stopStaleEnvironments stops e:
// AVAILABLE, unprotected, and neither updated nor deployed to since before.
func isStaleEnvironment(tx *bolt.Tx, e *Environment, before time.Time) (bool, error) {
	if e.State != EnvAvailable || !e.UpdatedAt.Before(before) {
		return false, nil
	}
	pe, err := protectionByName(tx, e.ProjectID, e.Name)
	if err != nil || pe != nil {
		return false, err
	}
	prefix := join(envScope(e.ID), []byte{byte(OrderByUpdatedAt)})
	k, _ := tx.Bucket(bktDeployIndex).Cursor().Seek(join(prefix, timeKey(&before)))
	return k == nil || !hasPrefix(k, prefix), nil
}

// reviewAppCandidates lists the project's unscheduled STOPPED environments
// in the review folder created before cutoff, oldest first, at most limit.
func reviewAppCandidates(tx *bolt.Tx, projectID int64, cutoff time.Time, limit int) ([]*Environment, error) {
	envs, err := projectEnvironments(tx, projectID)
	if err != nil {
		return nil, err
	}
	envs = slices.DeleteFunc(envs, func(e *Environment) bool {
		return e.AutoDeleteAt != nil || e.State != EnvStopped ||
			EnvironmentFolder(e.Name) != reviewAppsFolder || !e.CreatedAt.Before(cutoff)
	})
	slices.SortStableFunc(envs, func(a, b *Environment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return envs[:min(len(envs), limit)], nil
}

// sweepCandidates finds the environments due to stop and to delete at now.
func sweepCandidates(tx *bolt.Tx, now time.Time) (toStop, toDelete []*Environment, err error) {
	err = tx.Bucket(bktEnvironments).ForEach(func(_, data []byte) error {
		var e Environment
		if err := unmarshal(data, &e); err != nil {
			return err
		}
		switch {
		case e.State == EnvStopped && e.AutoDeleteAt != nil && !e.AutoDeleteAt.After(now):
			toDelete = append(toDelete, &e)
		case e.State == EnvAvailable && e.AutoStopAt != nil && !e.AutoStopAt.After(now):
			toStop = append(toStop, &e)
		}
		return nil
	})
	return toStop, toDelete, err
}

func checkEnvironmentTier(t EnvironmentTier) error {
	switch t {
	case TierProduction, TierStaging, TierTesting, TierDevelopment, TierOther:
		return nil
	}
	return invalid("Tier must be one of production, staging, testing, development or other")
}

func environmentsPhrase(n int) string {
	if n == 1 {
		return "1 environment"
	}
	return fmt.Sprintf("%d environments", n)
}

// autoStopTime is how times are stored: UTC, to the microsecond.
func autoStopTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

func sameExternalURL(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func sameAutoStop(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// internalContext says what was being done when an unexpected error
// happened; domain errors pass unchanged, their message is for the caller.
func internalContext(err error, format string, args ...any) error {
	var domain *Error
	if errors.As(err, &domain) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
