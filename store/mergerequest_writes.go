package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// maxLinkBatch bounds how many merge requests one link or unlink call
// names, as a page bounds a list.
const maxLinkBatch = 100

// NewMergeRequest is what a developer gives to open a merge request.
type NewMergeRequest struct {
	ProjectID                  int64
	Title                      string
	Description                *string
	SourceBranch, TargetBranch string
	Labels                     []string
	Draft                      bool
}

// validateBranch applies ValidateRef's rules to a named branch field, so
// the message names the field the caller got wrong.
func validateBranch(field, branch string) error {
	if err := ValidateRef(branch); err != nil {
		msg, _ := strings.CutPrefix(err.Error(), "Ref ")
		return invalid("%s %s", field, msg)
	}
	return nil
}

// cleanLabels trims labels, drops blank ones and keeps the first of each,
// in order; never nil, as the API's labels list is never null.
func cleanLabels(in []string) []string {
	out := make([]string, 0, len(in))
	for _, l := range in {
		l = strings.TrimSpace(l)
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func (in NewMergeRequest) check() (title string, labels []string, err error) {
	if title, err = validateName("Title", in.Title); err != nil {
		return "", nil, err
	}
	if err := validateBranch("Source branch", in.SourceBranch); err != nil {
		return "", nil, err
	}
	if err := validateBranch("Target branch", in.TargetBranch); err != nil {
		return "", nil, err
	}
	if in.SourceBranch == in.TargetBranch {
		return "", nil, invalid("Source branch must be different from the target branch")
	}
	return title, cleanLabels(in.Labels), nil
}

// CreateMergeRequest opens a merge request authored by the caller, with the
// project's next iid; developers and up may.
func (s *Store) CreateMergeRequest(ctx context.Context, v Viewer, in NewMergeRequest) (*MergeRequest, error) {
	var mr *MergeRequest
	err := s.update(func(tx *bolt.Tx) error {
		if _, _, err := authorize(tx, v, in.ProjectID, Developer); err != nil {
			return err
		}
		title, labels, err := in.check()
		if err != nil {
			return err
		}
		iid, err := nextCounter(tx, mrIIDCounter(in.ProjectID))
		if err != nil {
			return fmt.Errorf("allocate merge request iid in project %d: %w", in.ProjectID, err)
		}
		id, err := nextID(tx.Bucket(bktMergeRequests))
		if err != nil {
			return fmt.Errorf("allocate merge request id: %w", err)
		}
		now := s.Now()
		mr = &MergeRequest{
			ID: id, IID: iid, ProjectID: in.ProjectID, Title: title, Description: in.Description,
			State: MROpened, SourceBranch: in.SourceBranch, TargetBranch: in.TargetBranch,
			AuthorID: v.UserID(), Labels: labels, Draft: in.Draft, CreatedAt: now, UpdatedAt: now,
		}
		if err := putMergeRequest(tx, mr); err != nil {
			return fmt.Errorf("create merge request in project %d: %w", in.ProjectID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mr, nil
}

// hideAs reports a project the caller cannot see as the record they asked
// for, so that neither one's existence leaks.
func hideAs(err error, what string) error {
	if ErrorCode(err) == ENotFound {
		return notFound(what)
	}
	return err
}

// MergeMergeRequest marks an open, non-draft merge request merged now, with
// the merge commit when the caller knows it.
func (s *Store) MergeMergeRequest(ctx context.Context, v Viewer, mergeRequestID int64, mergeCommitSHA *string) (*MergeRequest, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	var mr *MergeRequest
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if mr, err = getByID[MergeRequest](tx, bktMergeRequests, mergeRequestID); err != nil {
			return fmt.Errorf("load merge request %d: %w", mergeRequestID, err)
		}
		if mr == nil {
			return notFound("Merge request")
		}
		if _, _, err := authorize(tx, v, mr.ProjectID, Developer); err != nil {
			return hideAs(err, "Merge request")
		}
		var sha *string
		if mergeCommitSHA != nil {
			got, err := ValidateSHA(*mergeCommitSHA)
			if err != nil {
				msg, _ := strings.CutPrefix(err.Error(), "Sha ")
				return invalid("Merge commit sha %s", msg)
			}
			sha = &got
		}
		switch {
		case mr.State != MROpened:
			return Errorf(EFailedPrecondition, "Only open merge requests can be merged")
		case mr.Draft:
			return Errorf(EFailedPrecondition, "Draft merge requests can't be merged")
		}
		now := s.Now()
		mr.State, mr.MergedAt, mr.UpdatedAt, mr.MergeCommitSHA = MRMerged, &now, now, sha
		if err := putMergeRequest(tx, mr); err != nil {
			return fmt.Errorf("merge merge request %d: %w", mr.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mr, nil
}

// linkTarget loads a deployment that v may link merge requests to, and
// checks that every merge request named is one of its project's.
func linkTarget(tx *bolt.Tx, v Viewer, deploymentID int64, mergeRequestIDs []int64) (*Deployment, []int64, error) {
	if err := requireUser(v); err != nil {
		return nil, nil, err
	}
	d, err := getByID[Deployment](tx, bktDeployments, deploymentID)
	if err != nil {
		return nil, nil, fmt.Errorf("load deployment %d: %w", deploymentID, err)
	}
	if d == nil {
		return nil, nil, notFound("Deployment")
	}
	if _, _, err := authorize(tx, v, d.ProjectID, Developer); err != nil {
		return nil, nil, hideAs(err, "Deployment")
	}
	ids := slices.Compact(slices.Sorted(slices.Values(mergeRequestIDs)))
	switch {
	case len(ids) == 0:
		return nil, nil, invalid("Merge request ids can't be empty")
	case len(ids) > maxLinkBatch:
		return nil, nil, invalid("At most %d merge requests can be linked or unlinked at once", maxLinkBatch)
	}
	for _, id := range ids {
		mr, err := getByID[MergeRequest](tx, bktMergeRequests, id)
		if err != nil {
			return nil, nil, fmt.Errorf("load merge request %d: %w", id, err)
		}
		if mr == nil || mr.ProjectID != d.ProjectID {
			return nil, nil, invalid("Merge request %d is not a merge request of the deployment's project", id)
		}
	}
	return d, ids, nil
}

// LinkMergeRequests records by hand that a deployment shipped merge requests
// of its project; linking twice changes nothing.
func (s *Store) LinkMergeRequests(ctx context.Context, v Viewer, deploymentID int64, mergeRequestIDs []int64) (*Deployment, error) {
	var d *Deployment
	err := s.update(func(tx *bolt.Tx) error {
		var (
			ids []int64
			err error
		)
		if d, ids, err = linkTarget(tx, v, deploymentID, mergeRequestIDs); err != nil {
			return err
		}
		changed := false
		for _, id := range ids {
			changed = changed || tx.Bucket(bktDeployMRs).Get(pair(d.ID, id)) == nil
			if err := putLink(tx, d.ID, id); err != nil {
				return fmt.Errorf("link deployment %d to merge request %d: %w", d.ID, id, err)
			}
		}
		return linksChanged(tx, s.changesOf(tx), d, changed)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// UnlinkMergeRequests removes links made by hand or automatically; pairs
// that are not linked are ignored.
func (s *Store) UnlinkMergeRequests(ctx context.Context, v Viewer, deploymentID int64, mergeRequestIDs []int64) (*Deployment, error) {
	var d *Deployment
	err := s.update(func(tx *bolt.Tx) error {
		var (
			ids []int64
			err error
		)
		if d, ids, err = linkTarget(tx, v, deploymentID, mergeRequestIDs); err != nil {
			return err
		}
		changed := false
		for _, id := range ids {
			changed = changed || tx.Bucket(bktDeployMRs).Get(pair(d.ID, id)) != nil
			if err := tx.Bucket(bktDeployMRs).Delete(pair(d.ID, id)); err != nil {
				return fmt.Errorf("unlink deployment %d from merge request %d: %w", d.ID, id, err)
			}
			if err := tx.Bucket(bktMRDeploys).Delete(pair(id, d.ID)); err != nil {
				return fmt.Errorf("unlink merge request %d from deployment %d: %w", id, d.ID, err)
			}
		}
		return linksChanged(tx, s.changesOf(tx), d, changed)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// linksChanged records that d's merge requests changed, when they did.
func linksChanged(tx *bolt.Tx, ch *changes, d *Deployment, changed bool) error {
	if !changed {
		return nil
	}
	env, err := getByID[Environment](tx, bktEnvironments, d.EnvironmentID)
	if err != nil || env == nil {
		return err
	}
	ch.deployment(EventUpdated, env, d)
	return nil
}
