package store

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AccessLevel is a member's role in a project, with GitLab's numeric values so
// that "at least DEVELOPER" is a plain comparison.
type AccessLevel int

// Roles, lowest first. NoAccess means "not a member".
const (
	NoAccess   AccessLevel = 0
	Guest      AccessLevel = 10
	Reporter   AccessLevel = 20
	Developer  AccessLevel = 30
	Maintainer AccessLevel = 40
	Owner      AccessLevel = 50
)

// Valid reports whether l is one of the five roles.
func (l AccessLevel) Valid() bool {
	switch l {
	case Guest, Reporter, Developer, Maintainer, Owner:
		return true
	}
	return false
}

// Visibility decides who may read a project without being a member.
type Visibility string

// Visibility levels, as GitLab spells them.
const (
	Private  Visibility = "private"
	Internal Visibility = "internal"
	Public   Visibility = "public"
)

// UserState says whether a user may authenticate.
type UserState string

// User states; only active users authenticate.
const (
	UserActive      UserState = "active"
	UserBlocked     UserState = "blocked"
	UserDeactivated UserState = "deactivated"
)

// EnvironmentState is where an environment is in its stop life cycle.
type EnvironmentState string

// Environment states.
const (
	EnvAvailable EnvironmentState = "available"
	EnvStopping  EnvironmentState = "stopping"
	EnvStopped   EnvironmentState = "stopped"
)

// EnvironmentTier classifies an environment; missing tiers are guessed from
// the name (GuessTier).
type EnvironmentTier string

// Environment tiers.
const (
	TierProduction  EnvironmentTier = "production"
	TierStaging     EnvironmentTier = "staging"
	TierTesting     EnvironmentTier = "testing"
	TierDevelopment EnvironmentTier = "development"
	TierOther       EnvironmentTier = "other"
)

// DeploymentStatus is a deployment's place in the status machine.
type DeploymentStatus string

// Deployment statuses.
const (
	StatusCreated  DeploymentStatus = "created"
	StatusRunning  DeploymentStatus = "running"
	StatusSuccess  DeploymentStatus = "success"
	StatusFailed   DeploymentStatus = "failed"
	StatusCanceled DeploymentStatus = "canceled"
	StatusSkipped  DeploymentStatus = "skipped"
	StatusBlocked  DeploymentStatus = "blocked"
)

// AllDeploymentStatuses lists every status in a fixed order; the order is
// also each status's one-byte code in the indexes.
var AllDeploymentStatuses = []DeploymentStatus{
	StatusCreated, StatusRunning, StatusSuccess, StatusFailed, StatusCanceled, StatusSkipped, StatusBlocked,
}

// VisibleDeploymentStatuses are the statuses Environment.deployments shows by
// default (GitLab's "visible" deployments).
var VisibleDeploymentStatuses = []DeploymentStatus{
	StatusRunning, StatusSuccess, StatusFailed, StatusCanceled, StatusBlocked,
}

// ApprovalStatus is the verdict of one deployment approval.
type ApprovalStatus string

// Approval verdicts.
const (
	Approved ApprovalStatus = "approved"
	Rejected ApprovalStatus = "rejected"
)

// SummaryStatus is the state of an approval rule or of a whole deployment's
// approvals.
type SummaryStatus string

// Summary states.
const (
	SummaryApproved        SummaryStatus = "approved"
	SummaryRejected        SummaryStatus = "rejected"
	SummaryPendingApproval SummaryStatus = "pending_approval"
)

// MergeRequestState is a merge request's state.
type MergeRequestState string

// Merge request states.
const (
	MROpened MergeRequestState = "opened"
	MRClosed MergeRequestState = "closed"
	MRLocked MergeRequestState = "locked"
	MRMerged MergeRequestState = "merged"
)

// User is a person or bot that can authenticate and own things.
type User struct {
	ID           int64      `json:"id"`
	Username     string     `json:"username"`
	Name         string     `json:"name"`
	State        UserState  `json:"state"`
	Admin        bool       `json:"admin,omitempty"`
	AvatarURL    *string    `json:"avatar_url,omitempty"`
	WebURL       *string    `json:"web_url,omitempty"`
	CreatedAt    *time.Time `json:"created_at,omitempty"`
	Bio          *string    `json:"bio,omitempty"`
	Location     *string    `json:"location,omitempty"`
	PublicEmail  *string    `json:"public_email,omitempty"`
	Skype        *string    `json:"skype,omitempty"`
	Linkedin     *string    `json:"linkedin,omitempty"`
	Twitter      *string    `json:"twitter,omitempty"`
	WebsiteURL   *string    `json:"website_url,omitempty"`
	Organization *string    `json:"organization,omitempty"`
}

// Group is a set of users, used for namespaces and approval rules.
type Group struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	FullPath string `json:"full_path"`
	ParentID int64  `json:"parent_id,omitempty"`
}

// Project owns environments, deployments and merge requests.
type Project struct {
	ID                int64      `json:"id"`
	Name              string     `json:"name"`
	Path              string     `json:"path"`
	FullPath          string     `json:"full_path"`
	Visibility        Visibility `json:"visibility"`
	WebURL            *string    `json:"web_url,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	AllowSelfApproval bool       `json:"allow_self_approval"`
}

// Environment is a place a project deploys to.
type Environment struct {
	ID           int64            `json:"id"`
	ProjectID    int64            `json:"project_id"`
	Name         string           `json:"name"`
	Slug         string           `json:"slug"`
	ExternalURL  *string          `json:"external_url,omitempty"`
	State        EnvironmentState `json:"state"`
	Tier         EnvironmentTier  `json:"tier"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
	AutoStopAt   *time.Time       `json:"auto_stop_at,omitempty"`
	AutoDeleteAt *time.Time       `json:"auto_delete_at,omitempty"`
}

// Deployment records one ref and sha shipped to an environment.
type Deployment struct {
	ID            int64            `json:"id"`
	IID           int64            `json:"iid"`
	ProjectID     int64            `json:"project_id"`
	EnvironmentID int64            `json:"environment_id"`
	Ref           string           `json:"ref"`
	SHA           string           `json:"sha"`
	Tag           bool             `json:"tag"`
	Status        DeploymentStatus `json:"status"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	FinishedAt    *time.Time       `json:"finished_at,omitempty"`
	UserID        int64            `json:"user_id,omitempty"`
	DeployableID  int64            `json:"deployable_id,omitempty"` // the CI job; 0 when created through the API
}

// encodesExactly: every deployment write reads the environment's newest
// deployment, which the write before it has just stored (see putRecord).
func (d *Deployment) encodesExactly() bool {
	return utf8.ValidString(d.Ref) && utf8.ValidString(d.SHA) && utf8.ValidString(string(d.Status)) &&
		exactTime(d.CreatedAt) && exactTime(d.UpdatedAt) && (d.FinishedAt == nil || exactTime(*d.FinishedAt))
}

// exactTime reports whether t comes back from its JSON form as it is: in
// UTC (which also means no monotonic clock reading), within the years JSON
// holds.
func exactTime(t time.Time) bool {
	return t.Location() == time.UTC && t.Year() >= 0 && t.Year() <= 9999
}

// Job is the CI job that ran a deployment.
type Job struct {
	ID                int64         `json:"id"`
	ProjectID         int64         `json:"project_id"`
	Name              string        `json:"name"`
	Stage             string        `json:"stage"`
	Status            string        `json:"status"`
	Ref               string        `json:"ref"`
	Tag               bool          `json:"tag"`
	Coverage          *float64      `json:"coverage,omitempty"`
	CreatedAt         time.Time     `json:"created_at"`
	StartedAt         *time.Time    `json:"started_at,omitempty"`
	FinishedAt        *time.Time    `json:"finished_at,omitempty"`
	Duration          *float64      `json:"duration,omitempty"`
	WebURL            *string       `json:"web_url,omitempty"`
	UserID            int64         `json:"user_id,omitempty"`
	CommitSHA         string        `json:"commit_sha,omitempty"`
	PipelineID        int64         `json:"pipeline_id,omitempty"`
	Artifacts         []JobArtifact `json:"artifacts,omitempty"`
	ArtifactsExpireAt *time.Time    `json:"artifacts_expire_at,omitempty"`
}

// JobArtifact is one file a job kept.
type JobArtifact struct {
	FileType   string  `json:"file_type"`
	Size       int64   `json:"size"`
	Filename   string  `json:"filename"`
	FileFormat *string `json:"file_format,omitempty"`
}

// Pipeline is the CI pipeline a job belongs to.
type Pipeline struct {
	ID        int64      `json:"id"`
	ProjectID int64      `json:"project_id"`
	SHA       string     `json:"sha"`
	Ref       string     `json:"ref"`
	Status    string     `json:"status"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	WebURL    *string    `json:"web_url,omitempty"`
}

// Commit is a git commit, identified by its full sha.
type Commit struct {
	SHA            string     `json:"id"`
	ShortID        string     `json:"short_id"`
	Title          string     `json:"title"`
	Message        string     `json:"message"`
	AuthorName     *string    `json:"author_name,omitempty"`
	AuthorEmail    *string    `json:"author_email,omitempty"`
	AuthoredDate   *time.Time `json:"authored_date,omitempty"`
	CommitterName  *string    `json:"committer_name,omitempty"`
	CommitterEmail *string    `json:"committer_email,omitempty"`
	CommittedDate  *time.Time `json:"committed_date,omitempty"`
	CreatedAt      *time.Time `json:"created_at,omitempty"`
	ParentIDs      []string   `json:"parent_ids"`
}

// MergeRequest is a change proposed to a project, possibly shipped by
// deployments.
type MergeRequest struct {
	ID             int64             `json:"id"`
	IID            int64             `json:"iid"`
	ProjectID      int64             `json:"project_id"`
	Title          string            `json:"title"`
	Description    *string           `json:"description,omitempty"`
	State          MergeRequestState `json:"state"`
	SourceBranch   string            `json:"source_branch"`
	TargetBranch   string            `json:"target_branch"`
	AuthorID       int64             `json:"author_id,omitempty"`
	Labels         []string          `json:"labels"`
	Draft          bool              `json:"draft"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	MergedAt       *time.Time        `json:"merged_at,omitempty"`
	MergeCommitSHA *string           `json:"merge_commit_sha,omitempty"`
	WebURL         *string           `json:"web_url,omitempty"`
}

// Rule names who a protected-environment rule admits: exactly one of a user,
// a group, or everyone at or above an access level.
type Rule struct {
	UserID      int64       `json:"user_id,omitempty"`
	GroupID     int64       `json:"group_id,omitempty"`
	AccessLevel AccessLevel `json:"access_level,omitempty"`
}

// Key identifies the rule by what it admits, so approvals keep pointing at
// the same rule when an environment is protected again.
func (r Rule) Key() string {
	switch {
	case r.UserID != 0:
		return "u" + strconv.FormatInt(r.UserID, 10)
	case r.GroupID != 0:
		return "g" + strconv.FormatInt(r.GroupID, 10)
	default:
		return "a" + strconv.Itoa(int(r.AccessLevel))
	}
}

// ApprovalRule is a rule that must approve a deployment RequiredApprovals
// times.
type ApprovalRule struct {
	Rule
	RequiredApprovals int `json:"required_approvals"`
}

// ProtectedEnvironment restricts who may deploy to the environments of that
// name, and who must approve their deployments.
type ProtectedEnvironment struct {
	ProjectID          int64          `json:"project_id"`
	Name               string         `json:"name"`
	DeployAccessLevels []Rule         `json:"deploy_access_levels"`
	ApprovalRules      []ApprovalRule `json:"approval_rules"`
}

// Approval is one user's verdict on a deployment under one rule.
type Approval struct {
	DeploymentID  int64          `json:"deployment_id"`
	UserID        int64          `json:"user_id"`
	RuleKey       string         `json:"rule_key,omitempty"` // Rule.Key of the rule it counts for; empty when none matched
	Status        ApprovalStatus `json:"status"`
	Comment       *string        `json:"comment,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	RepresentedAs *string        `json:"represented_as,omitempty"`
}

// AccessToken authenticates API calls as its user. Only the hash of its
// secret is stored.
type AccessToken struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	Hash       []byte     `json:"hash"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	Revoked    bool       `json:"revoked"`
}
