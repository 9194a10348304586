package store

import (
	"strings"

	bolt "go.etcd.io/bbolt"
)

// deleteOwnKey removes an index entry only while it still points at id: a
// key that another record has taken over (two records swapping names in
// one transaction) belongs to that record now.
func deleteOwnKey(b *bolt.Bucket, key []byte, id int64) error {
	if v := b.Get(key); v != nil && readU64(v) == id {
		return b.Delete(key)
	}
	return nil
}

// The put functions write one record and its index entries inside the
// caller's transaction, replacing any previous version of the record. They
// check no workflow rule: callers (mutations, the importer) do.

func putGroup(tx *bolt.Tx, g *Group) error {
	old, err := getByID[Group](tx, bktGroups, g.ID)
	if err != nil {
		return err
	}
	byPath := tx.Bucket(bktGroupByPath)
	if old != nil && !strings.EqualFold(old.FullPath, g.FullPath) {
		if err := deleteOwnKey(byPath, []byte(strings.ToLower(old.FullPath)), g.ID); err != nil {
			return err
		}
	}
	if err := byPath.Put([]byte(strings.ToLower(g.FullPath)), u64(g.ID)); err != nil {
		return err
	}
	if err := putJSON(tx, bktGroups, u64(g.ID), g); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktGroups), g.ID)
}

func putGroupMember(tx *bolt.Tx, groupID, userID int64) error {
	if err := tx.Bucket(bktGroupMembers).Put(pair(groupID, userID), nil); err != nil {
		return err
	}
	return tx.Bucket(bktUserGroups).Put(pair(userID, groupID), nil)
}

func putProject(tx *bolt.Tx, p *Project) error {
	old, err := getByID[Project](tx, bktProjects, p.ID)
	if err != nil {
		return err
	}
	byPath := tx.Bucket(bktProjectByPath)
	if old != nil && !strings.EqualFold(old.FullPath, p.FullPath) {
		if err := deleteOwnKey(byPath, []byte(strings.ToLower(old.FullPath)), p.ID); err != nil {
			return err
		}
	}
	if err := byPath.Put([]byte(strings.ToLower(p.FullPath)), u64(p.ID)); err != nil {
		return err
	}
	if err := putJSON(tx, bktProjects, u64(p.ID), p); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktProjects), p.ID)
}

// putProjectMember sets a user's role in a project; NoAccess removes it.
func putProjectMember(tx *bolt.Tx, projectID, userID int64, level AccessLevel) error {
	members, byUser := tx.Bucket(bktProjectMembers), tx.Bucket(bktUserProjects)
	if level == NoAccess {
		if err := members.Delete(pair(projectID, userID)); err != nil {
			return err
		}
		return byUser.Delete(pair(userID, projectID))
	}
	if err := members.Put(pair(projectID, userID), u64(int64(level))); err != nil {
		return err
	}
	return byUser.Put(pair(userID, projectID), u64(int64(level)))
}

func putEnvironment(tx *bolt.Tx, e *Environment) error {
	old, err := getByID[Environment](tx, bktEnvironments, e.ID)
	if err != nil {
		return err
	}
	byName, bySlug := tx.Bucket(bktEnvByName), tx.Bucket(bktEnvBySlug)
	if old != nil {
		if err := deleteOwnKey(byName, join(u64(old.ProjectID), []byte(old.Name)), old.ID); err != nil {
			return err
		}
		if err := deleteOwnKey(bySlug, join(u64(old.ProjectID), []byte(old.Slug)), old.ID); err != nil {
			return err
		}
		if err := tx.Bucket(bktProjectEnvs).Delete(pair(old.ProjectID, old.ID)); err != nil {
			return err
		}
	}
	if err := byName.Put(join(u64(e.ProjectID), []byte(e.Name)), u64(e.ID)); err != nil {
		return err
	}
	if err := bySlug.Put(join(u64(e.ProjectID), []byte(e.Slug)), u64(e.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bktProjectEnvs).Put(pair(e.ProjectID, e.ID), nil); err != nil {
		return err
	}
	if err := putJSON(tx, bktEnvironments, u64(e.ID), e); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktEnvironments), e.ID)
}

func putProtectedEnvironment(tx *bolt.Tx, pe *ProtectedEnvironment) error {
	return putJSON(tx, bktProtected, join(u64(pe.ProjectID), []byte(pe.Name)), pe)
}

func putJob(tx *bolt.Tx, j *Job) error {
	if err := putJSON(tx, bktJobs, u64(j.ID), j); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktJobs), j.ID)
}

func putPipeline(tx *bolt.Tx, p *Pipeline) error {
	if err := putJSON(tx, bktPipelines, u64(p.ID), p); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktPipelines), p.ID)
}

// putCommitOnce stores c unless a commit with its sha is already stored:
// the first copy of a commit wins.
func putCommitOnce(tx *bolt.Tx, c *Commit) error {
	key := []byte(strings.ToLower(c.SHA))
	if tx.Bucket(bktCommits).Get(key) != nil {
		return nil
	}
	return putJSON(tx, bktCommits, key, c)
}

func approvalKey(a *Approval) []byte {
	return join(pair(a.DeploymentID, a.UserID), []byte(a.RuleKey))
}

func putApproval(tx *bolt.Tx, a *Approval) error {
	return putJSON(tx, bktApprovals, approvalKey(a), a)
}

func putMergeRequest(tx *bolt.Tx, mr *MergeRequest) error {
	old, err := getByID[MergeRequest](tx, bktMergeRequests, mr.ID)
	if err != nil {
		return err
	}
	if old != nil {
		if err := unindexMergedMR(tx, old); err != nil {
			return err
		}
		if err := deleteOwnKey(tx.Bucket(bktMRByIID), pair(old.ProjectID, old.IID), old.ID); err != nil {
			return err
		}
		if err := tx.Bucket(bktProjectMRs).Delete(pair(old.ProjectID, old.ID)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bktMRByIID).Put(pair(mr.ProjectID, mr.IID), u64(mr.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bktProjectMRs).Put(pair(mr.ProjectID, mr.ID), nil); err != nil {
		return err
	}
	if err := indexMergedMR(tx, mr); err != nil {
		return err
	}
	if err := putJSON(tx, bktMergeRequests, u64(mr.ID), mr); err != nil {
		return err
	}
	if err := raiseCounter(tx, mrIIDCounter(mr.ProjectID), mr.IID); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktMergeRequests), mr.ID)
}

// putLink records that a deployment shipped a merge request; idempotent.
func putLink(tx *bolt.Tx, deploymentID, mrID int64) error {
	if err := tx.Bucket(bktDeployMRs).Put(pair(deploymentID, mrID), nil); err != nil {
		return err
	}
	return tx.Bucket(bktMRDeploys).Put(pair(mrID, deploymentID), nil)
}

// The merged-merge-request indexes answer automatic linking (SPEC 6.5)
// without reading every merge request of the project.
func mergedKeys(mr *MergeRequest) (byBranch, bySHA []byte) {
	if mr.State == MRMerged && mr.MergedAt != nil {
		byBranch = join(u64(mr.ProjectID), []byte(mr.TargetBranch), []byte{0}, timeKey(mr.MergedAt), u64(mr.ID))
	}
	if mr.MergeCommitSHA != nil && *mr.MergeCommitSHA != "" {
		bySHA = join(u64(mr.ProjectID), []byte(strings.ToLower(*mr.MergeCommitSHA)), []byte{0}, u64(mr.ID))
	}
	return byBranch, bySHA
}

func indexMergedMR(tx *bolt.Tx, mr *MergeRequest) error {
	byBranch, bySHA := mergedKeys(mr)
	if byBranch != nil {
		if err := tx.Bucket(bktMRMerged).Put(byBranch, nil); err != nil {
			return err
		}
	}
	if bySHA != nil {
		return tx.Bucket(bktMRByMergeSHA).Put(bySHA, nil)
	}
	return nil
}

func unindexMergedMR(tx *bolt.Tx, mr *MergeRequest) error {
	byBranch, bySHA := mergedKeys(mr)
	if byBranch != nil {
		if err := tx.Bucket(bktMRMerged).Delete(byBranch); err != nil {
			return err
		}
	}
	if bySHA != nil {
		return tx.Bucket(bktMRByMergeSHA).Delete(bySHA)
	}
	return nil
}
