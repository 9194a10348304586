package store

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The importer reads a GitLab-shaped document (SPEC 7) twice, streaming it
// one array element at a time so that memory does not grow with the file:
//
//  1. validation: every element is checked on its own, and what later
//     checks need (id sets, names and iids per project, who belongs where)
//     is kept in importFacts; references and uniqueness against the store
//     are checked once the whole document has been read;
//  2. writing: the same walk, now writing each element with the put
//     functions, in transactions of at most importBatchSize elements.
//
// Nothing is written unless the whole document is valid.

// importBatchSize bounds the elements written per transaction. bbolt splits
// nodes only at commit, so inserting into one transaction costs more the
// bigger it grows: a deployment brings some 12 index keys, and 1,000
// deployments per transaction import 3 to 4 times faster than 5,000.
const importBatchSize = 1000

// ImportStats counts the records an import wrote, per type, so that the
// server can log what a file brought in.
type ImportStats struct {
	Users                 int
	Groups                int
	Projects              int
	Members               int
	ProtectedEnvironments int
	Environments          int
	Deployments           int
	Jobs                  int
	Pipelines             int
	Commits               int
	Approvals             int
	MergeRequests         int
	Links                 int
}

// String is the one-line summary the server logs after an import.
func (st ImportStats) String() string {
	return fmt.Sprintf("%d users, %d groups, %d projects, %d members, %d protected environments, "+
		"%d environments, %d deployments, %d jobs, %d pipelines, %d commits, %d approvals, "+
		"%d merge requests, %d links",
		st.Users, st.Groups, st.Projects, st.Members, st.ProtectedEnvironments,
		st.Environments, st.Deployments, st.Jobs, st.Pipelines, st.Commits, st.Approvals,
		st.MergeRequests, st.Links)
}

// ImportFile imports the document at path; see Import.
func (s *Store) ImportFile(ctx context.Context, path string) (ImportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportStats{}, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()
	return s.Import(ctx, f)
}

// Import loads a document in the import format (SPEC 7) from r, starting at
// its current position. Records keep their ids and replace stored records
// with the same ids, so importing the same document again changes nothing.
// The whole document is validated first: an invalid one is refused with an
// EInvalid error whose message starts with the JSON path of the first
// problem, and nothing of it is stored. A valid one is written in several
// transactions; if writing fails midway (the context is canceled, the disk
// is full), importing the document again completes it.
func (s *Store) Import(ctx context.Context, r io.ReadSeeker) (ImportStats, error) {
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return ImportStats{}, fmt.Errorf("import: find start of document: %w", err)
	}
	facts := newImportFacts()
	if err := newImporter(ctx, r, facts, nil).run(); err != nil {
		return ImportStats{}, err
	}
	if err := s.view(facts.checkStore); err != nil {
		return ImportStats{}, err
	}
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return ImportStats{}, fmt.Errorf("import: rewind document: %w", err)
	}
	w := &importWriter{s: s, f: facts, now: s.Now()}
	if err := newImporter(ctx, r, facts, w).run(); err != nil {
		w.rollback()
		return w.stats, fmt.Errorf("import: write: %w", err)
	}
	if err := w.commit(); err != nil {
		return w.stats, fmt.Errorf("import: write: %w", err)
	}
	return w.stats, nil
}

// ---- paths and problems ----

// docRootPath names the document itself in error messages.
const docRootPath = "$"

func fieldPath(path, field string) string { return path + "." + field }

func elemPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// problem is a validation failure at a JSON path.
func invalidAt(path, format string, args ...any) error {
	return Errorf(EInvalid, "%s: %s", path, fmt.Sprintf(format, args...))
}

// reword puts a naming rule's message (naming.go) at a JSON path.
func rewordAt(path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return invalidAt(path, "%s", e.Message)
	}
	return invalidAt(path, "%v", err)
}

// jsonProblem turns a decoding error into a problem at path; read errors
// stay internal.
func jsonProblem(path string, err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			path = fieldPath(path, typeErr.Field)
		}
		return invalidAt(path, "expected %s, got %s", kindName(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntax):
		return invalidAt(path, "invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidAt(path, "unexpected end of document")
	}
	return fmt.Errorf("%s: read: %w", path, err)
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// ---- field checks ----

func strOf(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isBlank(s *string) bool { return s == nil || strings.TrimSpace(*s) == "" }

func checkDocID(path string, id int64) error {
	if id <= 0 {
		return invalidAt(fieldPath(path, "id"), "must be a positive integer")
	}
	return nil
}

func requiredStr(path string, s *string) (string, error) {
	if isBlank(s) {
		return "", invalidAt(path, "is required")
	}
	return *s, nil
}

// enumOf checks an optional enum value; "" when absent.
func enumOf[T ~string](path, what string, v *string, allowed ...T) (T, error) {
	if v == nil || *v == "" {
		return "", nil
	}
	if !slices.Contains(allowed, T(*v)) {
		return "", invalidAt(path, "unknown %s %q", what, *v)
	}
	return T(*v), nil
}

// requiredEnum is enumOf for a value that must be present.
func requiredEnum[T ~string](path, what string, v *string, allowed ...T) (T, error) {
	if v == nil || *v == "" {
		return "", invalidAt(path, "is required")
	}
	return enumOf(path, what, v, allowed...)
}

// docTimeLayouts are RFC 3339 and the near variants GitLab exports contain.
var docTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
}

// parseTime reads an optional time, stored as UTC to the microsecond.
func parseDocTime(path string, v *string) (*time.Time, error) {
	if isBlank(v) {
		return nil, nil
	}
	for _, layout := range docTimeLayouts {
		if t, err := time.Parse(layout, *v); err == nil {
			t = t.UTC().Truncate(time.Microsecond)
			return &t, nil
		}
	}
	return nil, invalidAt(path, "unparseable time %q (want RFC 3339, e.g. 2016-08-11T07:36:40.222Z)", *v)
}

// timeOrZero is parseTime for fields whose absence the writer fills in.
func docTimeOrZero(path string, v *string) (time.Time, error) {
	t, err := parseDocTime(path, v)
	if t == nil || err != nil {
		return time.Time{}, err
	}
	return *t, nil
}

func checkDocSHA(path string, v string) (string, error) {
	sha, err := ValidateSHA(v)
	if err != nil {
		return "", rewordAt(path, err)
	}
	return sha, nil
}

func checkDocRef(path string, v *string) (string, error) {
	if err := ValidateRef(strOf(v)); err != nil {
		return "", rewordAt(path, err)
	}
	return *v, nil
}

// lastSegment is the last part of a slash-separated path.
func lastSegment(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// checkFullPath requires at least min non-empty, slash-separated segments.
func checkFullPath(path, v string, min int) error {
	parts := strings.Split(v, "/")
	if len(parts) < min {
		return invalidAt(path, "%q must have at least %d segments separated by '/'", v, min)
	}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return invalidAt(path, "%q has an empty segment", v)
		}
	}
	return nil
}

// ciStatuses are GitLab's job and pipeline statuses.
var ciStatuses = []string{
	"created", "waiting_for_resource", "preparing", "pending", "running", "success", "failed",
	"canceling", "canceled", "skipped", "manual", "scheduled",
}

// ---- the document's shapes ----

type docUser struct {
	ID           int64   `json:"id"`
	Username     *string `json:"username"`
	Name         *string `json:"name"`
	State        *string `json:"state"`
	Admin        *bool   `json:"admin"`
	AvatarURL    *string `json:"avatar_url"`
	WebURL       *string `json:"web_url"`
	CreatedAt    *string `json:"created_at"`
	Bio          *string `json:"bio"`
	Location     *string `json:"location"`
	PublicEmail  *string `json:"public_email"`
	Skype        *string `json:"skype"`
	Linkedin     *string `json:"linkedin"`
	Twitter      *string `json:"twitter"`
	WebsiteURL   *string `json:"website_url"`
	Organization *string `json:"organization"`
}

// record checks a user. A top-level user must have a name; a nested copy
// without one is named after its username.
func (d *docUser) record(path string, top bool) (*User, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	username, err := requiredStr(fieldPath(path, "username"), d.Username)
	if err != nil {
		return nil, err
	}
	name := strOf(d.Name)
	if strings.TrimSpace(name) == "" {
		if top {
			return nil, invalidAt(fieldPath(path, "name"), "is required")
		}
		name = username
	}
	state, err := enumOf(fieldPath(path, "state"), "user state", d.State, UserActive, UserBlocked, UserDeactivated)
	if err != nil {
		return nil, err
	}
	if state == "" {
		state = UserActive
	}
	createdAt, err := parseDocTime(fieldPath(path, "created_at"), d.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &User{
		ID: d.ID, Username: username, Name: name, State: state, Admin: d.Admin != nil && *d.Admin,
		AvatarURL: d.AvatarURL, WebURL: d.WebURL, CreatedAt: createdAt, Bio: d.Bio, Location: d.Location,
		PublicEmail: d.PublicEmail, Skype: d.Skype, Linkedin: d.Linkedin, Twitter: d.Twitter,
		WebsiteURL: d.WebsiteURL, Organization: d.Organization,
	}, nil
}

type docMember struct {
	UserID      int64 `json:"user_id"`
	ID          int64 `json:"id"` // GitLab's member payloads name the user "id"
	AccessLevel *int  `json:"access_level"`
}

func (d *docMember) userID(path string) (int64, error) {
	id := d.UserID
	if id == 0 {
		id = d.ID
	}
	if id <= 0 {
		return 0, invalidAt(fieldPath(path, "user_id"), "must be a positive integer")
	}
	return id, nil
}

type docGroup struct {
	ID       int64             `json:"id"`
	Name     *string           `json:"name"`
	Path     *string           `json:"path"`
	FullPath *string           `json:"full_path"`
	Members  []json.RawMessage `json:"members"`
}

type importedGroup struct {
	g       Group
	members []int64
	refs    []docRef
}

func (d *docGroup) record(path string) (*importedGroup, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	name, err := requiredStr(fieldPath(path, "name"), d.Name)
	if err != nil {
		return nil, err
	}
	fullPath := strOf(d.FullPath)
	if fullPath == "" {
		fullPath = strOf(d.Path)
	}
	if fullPath == "" {
		return nil, invalidAt(fieldPath(path, "full_path"), "is required")
	}
	if err := checkFullPath(fieldPath(path, "full_path"), fullPath, 1); err != nil {
		return nil, err
	}
	short := strOf(d.Path)
	if short == "" {
		short = lastSegment(fullPath)
	}
	ig := &importedGroup{g: Group{ID: d.ID, Name: name, Path: short, FullPath: fullPath}}
	members, err := decodeList[docMember](fieldPath(path, "members"), d.Members)
	if err != nil {
		return nil, err
	}
	for i, m := range members {
		mpath := elemPath(fieldPath(path, "members"), i)
		uid, err := m.userID(mpath)
		if err != nil {
			return nil, err
		}
		ig.members = append(ig.members, uid)
		ig.refs = append(ig.refs, docRef{kind: refUser, id: uid, path: fieldPath(mpath, "user_id")})
	}
	return ig, nil
}

type docProject struct {
	ID                int64   `json:"id"`
	Name              *string `json:"name"`
	Path              *string `json:"path"`
	PathWithNamespace *string `json:"path_with_namespace"`
	Visibility        *string `json:"visibility"`
	WebURL            *string `json:"web_url"`
	CreatedAt         *string `json:"created_at"`
	AllowSelfApproval *bool   `json:"allow_self_approval"`
}

// fields maps the project's scalar keys to where they decode to: a project
// object is walked key by key, never decoded whole.
func (d *docProject) fields() map[string]any {
	return map[string]any{
		"id": &d.ID, "name": &d.Name, "path": &d.Path, "path_with_namespace": &d.PathWithNamespace,
		"visibility": &d.Visibility, "web_url": &d.WebURL, "created_at": &d.CreatedAt,
		"allow_self_approval": &d.AllowSelfApproval,
	}
}

func (d *docProject) record(path string) (*Project, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	name, err := requiredStr(fieldPath(path, "name"), d.Name)
	if err != nil {
		return nil, err
	}
	fullPath, err := requiredStr(fieldPath(path, "path_with_namespace"), d.PathWithNamespace)
	if err != nil {
		return nil, err
	}
	if err := checkFullPath(fieldPath(path, "path_with_namespace"), fullPath, 2); err != nil {
		return nil, err
	}
	short := strOf(d.Path)
	if short == "" {
		short = lastSegment(fullPath)
	}
	vis, err := enumOf(fieldPath(path, "visibility"), "visibility", d.Visibility, Private, Internal, Public)
	if err != nil {
		return nil, err
	}
	if vis == "" {
		vis = Private
	}
	createdAt, err := docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &Project{
		ID: d.ID, Name: name, Path: short, FullPath: fullPath, Visibility: vis, WebURL: d.WebURL,
		CreatedAt: createdAt, AllowSelfApproval: d.AllowSelfApproval != nil && *d.AllowSelfApproval,
	}, nil
}

func (d *docMember) record(path string) (int64, AccessLevel, error) {
	uid, err := d.userID(path)
	if err != nil {
		return 0, 0, err
	}
	if d.AccessLevel == nil {
		return 0, 0, invalidAt(fieldPath(path, "access_level"), "is required")
	}
	level := AccessLevel(*d.AccessLevel)
	if !level.Valid() {
		return 0, 0, invalidAt(fieldPath(path, "access_level"), "unknown access level %d (want 10, 20, 30, 40 or 50)", *d.AccessLevel)
	}
	return uid, level, nil
}

type docRule struct {
	UserID            *int64 `json:"user_id"`
	GroupID           *int64 `json:"group_id"`
	AccessLevel       *int   `json:"access_level"`
	RequiredApprovals *int   `json:"required_approvals"`
}

// rule checks that the entry names exactly one user, group or role.
func (d *docRule) rule(path string) (Rule, []docRef, error) {
	n := 0
	for _, set := range []bool{d.UserID != nil, d.GroupID != nil, d.AccessLevel != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Rule{}, nil, invalidAt(path, "must have exactly one of user_id, group_id and access_level")
	}
	switch {
	case d.UserID != nil:
		if *d.UserID <= 0 {
			return Rule{}, nil, invalidAt(fieldPath(path, "user_id"), "must be a positive integer")
		}
		return Rule{UserID: *d.UserID}, []docRef{{kind: refUser, id: *d.UserID, path: fieldPath(path, "user_id")}}, nil
	case d.GroupID != nil:
		if *d.GroupID <= 0 {
			return Rule{}, nil, invalidAt(fieldPath(path, "group_id"), "must be a positive integer")
		}
		return Rule{GroupID: *d.GroupID}, []docRef{{kind: refGroup, id: *d.GroupID, path: fieldPath(path, "group_id")}}, nil
	}
	level := AccessLevel(*d.AccessLevel)
	if !level.Valid() {
		return Rule{}, nil, invalidAt(fieldPath(path, "access_level"), "unknown access level %d (want 10, 20, 30, 40 or 50)", *d.AccessLevel)
	}
	return Rule{AccessLevel: level}, nil, nil
}

type docProtectedEnvironment struct {
	Name               *string           `json:"name"`
	DeployAccessLevels []json.RawMessage `json:"deploy_access_levels"`
	ApprovalRules      []json.RawMessage `json:"approval_rules"`
}

type importedProtection struct {
	pe   ProtectedEnvironment
	refs []docRef
}

func (d *docProtectedEnvironment) record(path string) (*importedProtection, error) {
	name := strOf(d.Name)
	if err := ValidateEnvironmentName(name); err != nil {
		return nil, rewordAt(fieldPath(path, "name"), err)
	}
	ip := &importedProtection{pe: ProtectedEnvironment{Name: name, DeployAccessLevels: []Rule{}, ApprovalRules: []ApprovalRule{}}}
	deploy, err := decodeList[docRule](fieldPath(path, "deploy_access_levels"), d.DeployAccessLevels)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, dr := range deploy {
		rpath := elemPath(fieldPath(path, "deploy_access_levels"), i)
		r, refs, err := dr.rule(rpath)
		if err != nil {
			return nil, err
		}
		if seen[r.Key()] {
			return nil, invalidAt(rpath, "duplicate deploy access level")
		}
		seen[r.Key()] = true
		ip.pe.DeployAccessLevels = append(ip.pe.DeployAccessLevels, r)
		ip.refs = append(ip.refs, refs...)
	}
	rules, err := decodeList[docRule](fieldPath(path, "approval_rules"), d.ApprovalRules)
	if err != nil {
		return nil, err
	}
	clear(seen)
	for i, dr := range rules {
		rpath := elemPath(fieldPath(path, "approval_rules"), i)
		r, refs, err := dr.rule(rpath)
		if err != nil {
			return nil, err
		}
		if seen[r.Key()] {
			return nil, invalidAt(rpath, "duplicate approval rule")
		}
		seen[r.Key()] = true
		if dr.RequiredApprovals == nil || *dr.RequiredApprovals < 1 || *dr.RequiredApprovals > 5 {
			return nil, invalidAt(fieldPath(rpath, "required_approvals"), "must be between 1 and 5")
		}
		ip.pe.ApprovalRules = append(ip.pe.ApprovalRules, ApprovalRule{Rule: r, RequiredApprovals: *dr.RequiredApprovals})
		ip.refs = append(ip.refs, refs...)
	}
	return ip, nil
}

type docEnvironment struct {
	ID           int64   `json:"id"`
	Name         *string `json:"name"`
	Slug         *string `json:"slug"`
	ExternalURL  *string `json:"external_url"`
	State        *string `json:"state"`
	Tier         *string `json:"tier"`
	CreatedAt    *string `json:"created_at"`
	UpdatedAt    *string `json:"updated_at"`
	AutoStopAt   *string `json:"auto_stop_at"`
	AutoDeleteAt *string `json:"auto_delete_at"`
}

func (d *docEnvironment) record(path string) (*Environment, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	name := strOf(d.Name)
	if err := ValidateEnvironmentName(name); err != nil {
		return nil, rewordAt(fieldPath(path, "name"), err)
	}
	slug := strOf(d.Slug)
	switch {
	case slug == "":
		slug = Slugify(name)
	case !ValidSlug(slug):
		return nil, invalidAt(fieldPath(path, "slug"), "%q is not a valid slug (lower-case letters, digits and '-', starting with a letter, at most 24 characters)", slug)
	}
	externalURL, err := ValidateExternalURL(strOf(d.ExternalURL))
	if err != nil {
		return nil, rewordAt(fieldPath(path, "external_url"), err)
	}
	state, err := requiredEnum(fieldPath(path, "state"), "environment state", d.State, EnvAvailable, EnvStopping, EnvStopped)
	if err != nil {
		return nil, err
	}
	tier, err := enumOf(fieldPath(path, "tier"), "environment tier", d.Tier,
		TierProduction, TierStaging, TierTesting, TierDevelopment, TierOther)
	if err != nil {
		return nil, err
	}
	if tier == "" {
		tier = GuessTier(name)
	}
	e := &Environment{ID: d.ID, Name: name, Slug: slug, ExternalURL: externalURL, State: state, Tier: tier}
	if e.CreatedAt, err = docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return nil, err
	}
	if e.UpdatedAt, err = docTimeOrZero(fieldPath(path, "updated_at"), d.UpdatedAt); err != nil {
		return nil, err
	}
	if e.AutoStopAt, err = parseDocTime(fieldPath(path, "auto_stop_at"), d.AutoStopAt); err != nil {
		return nil, err
	}
	if e.AutoDeleteAt, err = parseDocTime(fieldPath(path, "auto_delete_at"), d.AutoDeleteAt); err != nil {
		return nil, err
	}
	return e, nil
}

type docEnvironmentRef struct {
	ID   int64   `json:"id"`
	Name *string `json:"name"`
}

type docCommit struct {
	ID             *string  `json:"id"`
	ShortID        *string  `json:"short_id"`
	Title          *string  `json:"title"`
	Message        *string  `json:"message"`
	AuthorName     *string  `json:"author_name"`
	AuthorEmail    *string  `json:"author_email"`
	AuthoredDate   *string  `json:"authored_date"`
	CommitterName  *string  `json:"committer_name"`
	CommitterEmail *string  `json:"committer_email"`
	CommittedDate  *string  `json:"committed_date"`
	CreatedAt      *string  `json:"created_at"`
	ParentIDs      []string `json:"parent_ids"`
}

func (d *docCommit) onlyID() bool {
	c := *d
	c.ID = nil
	return c.ParentIDs == nil && reflect.ValueOf(c).IsZero()
}

func (d *docCommit) record(path string) (*Commit, error) {
	sha, err := checkDocSHA(fieldPath(path, "id"), strOf(d.ID))
	if err != nil {
		return nil, err
	}
	c := &Commit{
		SHA: sha, ShortID: strOf(d.ShortID), Title: strOf(d.Title), Message: strOf(d.Message),
		AuthorName: d.AuthorName, AuthorEmail: d.AuthorEmail, CommitterName: d.CommitterName,
		CommitterEmail: d.CommitterEmail, ParentIDs: []string{},
	}
	if c.ShortID == "" {
		c.ShortID = sha[:8]
	}
	if c.Title == "" {
		c.Title, _, _ = strings.Cut(c.Message, "\n")
	}
	if c.AuthoredDate, err = parseDocTime(fieldPath(path, "authored_date"), d.AuthoredDate); err != nil {
		return nil, err
	}
	if c.CommittedDate, err = parseDocTime(fieldPath(path, "committed_date"), d.CommittedDate); err != nil {
		return nil, err
	}
	if c.CreatedAt, err = parseDocTime(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return nil, err
	}
	for i, p := range d.ParentIDs {
		parent, err := checkDocSHA(elemPath(fieldPath(path, "parent_ids"), i), p)
		if err != nil {
			return nil, err
		}
		c.ParentIDs = append(c.ParentIDs, parent)
	}
	return c, nil
}

type docPipeline struct {
	ID        int64   `json:"id"`
	SHA       *string `json:"sha"`
	Ref       *string `json:"ref"`
	Status    *string `json:"status"`
	CreatedAt *string `json:"created_at"`
	UpdatedAt *string `json:"updated_at"`
	WebURL    *string `json:"web_url"`
}

func (d *docPipeline) onlyID() bool { return *d == docPipeline{ID: d.ID} }

func (d *docPipeline) record(path string) (*Pipeline, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	p := &Pipeline{ID: d.ID, Ref: strOf(d.Ref), WebURL: d.WebURL}
	var err error
	if !isBlank(d.SHA) {
		if p.SHA, err = checkDocSHA(fieldPath(path, "sha"), *d.SHA); err != nil {
			return nil, err
		}
	}
	if p.Status, err = enumOf(fieldPath(path, "status"), "pipeline status", d.Status, ciStatuses...); err != nil {
		return nil, err
	}
	if p.CreatedAt, err = parseDocTime(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return nil, err
	}
	if p.UpdatedAt, err = parseDocTime(fieldPath(path, "updated_at"), d.UpdatedAt); err != nil {
		return nil, err
	}
	return p, nil
}

type docArtifact struct {
	FileType   *string `json:"file_type"`
	Size       int64   `json:"size"`
	Filename   *string `json:"filename"`
	FileFormat *string `json:"file_format"`
}

type docJob struct {
	ID                int64             `json:"id"`
	Name              *string           `json:"name"`
	Stage             *string           `json:"stage"`
	Status            *string           `json:"status"`
	Ref               *string           `json:"ref"`
	Tag               *bool             `json:"tag"`
	Coverage          *float64          `json:"coverage"`
	CreatedAt         *string           `json:"created_at"`
	StartedAt         *string           `json:"started_at"`
	FinishedAt        *string           `json:"finished_at"`
	Duration          *float64          `json:"duration"`
	WebURL            *string           `json:"web_url"`
	User              *docUser          `json:"user"`
	Commit            *docCommit        `json:"commit"`
	Pipeline          *docPipeline      `json:"pipeline"`
	Artifacts         []json.RawMessage `json:"artifacts"`
	ArtifactsExpireAt *string           `json:"artifacts_expire_at"`
}

func (d *docJob) onlyID() bool {
	return d.Name == nil && d.Stage == nil && d.Status == nil && d.Ref == nil && d.Tag == nil &&
		d.Coverage == nil && d.CreatedAt == nil && d.StartedAt == nil && d.FinishedAt == nil &&
		d.Duration == nil && d.WebURL == nil && d.User == nil && d.Commit == nil && d.Pipeline == nil &&
		d.Artifacts == nil && d.ArtifactsExpireAt == nil
}

type docApproval struct {
	User          *docUser `json:"user"`
	Status        *string  `json:"status"`
	Comment       *string  `json:"comment"`
	CreatedAt     *string  `json:"created_at"`
	RepresentedAs *string  `json:"represented_as"`
}

type docDeployment struct {
	ID          int64              `json:"id"`
	IID         int64              `json:"iid"`
	Ref         *string            `json:"ref"`
	SHA         *string            `json:"sha"`
	Tag         *bool              `json:"tag"`
	Status      *string            `json:"status"`
	CreatedAt   *string            `json:"created_at"`
	UpdatedAt   *string            `json:"updated_at"`
	FinishedAt  *string            `json:"finished_at"`
	User        *docUser           `json:"user"`
	Environment *docEnvironmentRef `json:"environment"`
	Deployable  *docJob            `json:"deployable"`
	Approvals   []json.RawMessage  `json:"approvals"`
}

type docMergeRequest struct {
	ID             int64    `json:"id"`
	IID            int64    `json:"iid"`
	Title          *string  `json:"title"`
	Description    *string  `json:"description"`
	State          *string  `json:"state"`
	SourceBranch   *string  `json:"source_branch"`
	TargetBranch   *string  `json:"target_branch"`
	Author         *docUser `json:"author"`
	Labels         []string `json:"labels"`
	Draft          *bool    `json:"draft"`
	CreatedAt      *string  `json:"created_at"`
	UpdatedAt      *string  `json:"updated_at"`
	MergedAt       *string  `json:"merged_at"`
	MergeCommitSHA *string  `json:"merge_commit_sha"`
	WebURL         *string  `json:"web_url"`
}

type docLink struct {
	DeploymentID   int64 `json:"deployment_id"`
	MergeRequestID int64 `json:"merge_request_id"`
}

// decodeList decodes each raw element on its own, so that a type error
// names the element's index.
func decodeList[T any](path string, raw []json.RawMessage) ([]T, error) {
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, jsonProblem(elemPath(path, i), err)
		}
	}
	return out, nil
}

// ---- nested records and references ----

type refKind uint8

const (
	refUser refKind = iota + 1
	refGroup
	refEnvironment
	refDeployment
	refMergeRequest
	refJob
	refPipeline
	refCommit
)

// docRef is a reference that must resolve in the document or the store.
// name is the environment name a deployment gives (checked when not
// empty), or a commit's sha.
type docRef struct {
	kind refKind
	id   int64
	name string
	path string
}

// nestedUser is a fuller copy of a user inside another record.
type nestedUser struct {
	u          *User
	adminGiven bool
	path       string
}

// nestedRecords collects what an element refers to and the nested copies it
// carries.
type nestedRecords struct {
	refs  []docRef
	users []nestedUser
}

// user reads a nested user: a copy when it has a username, else a
// reference. It returns the user id (0 for null).
func (n *nestedRecords) user(path string, d *docUser) (int64, error) {
	if d == nil {
		return 0, nil
	}
	if d.Username == nil {
		if err := checkDocID(path, d.ID); err != nil {
			return 0, err
		}
		n.refs = append(n.refs, docRef{kind: refUser, id: d.ID, path: fieldPath(path, "id")})
		return d.ID, nil
	}
	u, err := d.record(path, false)
	if err != nil {
		return 0, err
	}
	n.users = append(n.users, nestedUser{u: u, adminGiven: d.Admin != nil, path: path})
	return u.ID, nil
}

type importedDeployment struct {
	nestedRecords
	d         Deployment
	envName   string // as the document gives it; "" when absent
	job       *Job   // a full copy
	pipeline  *Pipeline
	commit    *Commit
	approvals []Approval
}

func (d *docDeployment) record(path string) (*importedDeployment, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	if d.IID <= 0 {
		return nil, invalidAt(fieldPath(path, "iid"), "must be a positive integer")
	}
	out := &importedDeployment{d: Deployment{ID: d.ID, IID: d.IID, Tag: d.Tag != nil && *d.Tag}}
	var err error
	if out.d.Ref, err = checkDocRef(fieldPath(path, "ref"), d.Ref); err != nil {
		return nil, err
	}
	if out.d.SHA, err = checkDocSHA(fieldPath(path, "sha"), strOf(d.SHA)); err != nil {
		return nil, err
	}
	if out.d.Status, err = requiredEnum(fieldPath(path, "status"), "deployment status", d.Status, AllDeploymentStatuses...); err != nil {
		return nil, err
	}
	if out.d.CreatedAt, err = docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return nil, err
	}
	if out.d.UpdatedAt, err = docTimeOrZero(fieldPath(path, "updated_at"), d.UpdatedAt); err != nil {
		return nil, err
	}
	if out.d.FinishedAt, err = parseDocTime(fieldPath(path, "finished_at"), d.FinishedAt); err != nil {
		return nil, err
	}
	if out.d.UserID, err = out.user(fieldPath(path, "user"), d.User); err != nil {
		return nil, err
	}
	if err := out.environment(fieldPath(path, "environment"), d.Environment); err != nil {
		return nil, err
	}
	if err := out.deployable(fieldPath(path, "deployable"), d.Deployable); err != nil {
		return nil, err
	}
	approvals, err := decodeList[docApproval](fieldPath(path, "approvals"), d.Approvals)
	if err != nil {
		return nil, err
	}
	for i := range approvals {
		if err := out.approval(elemPath(fieldPath(path, "approvals"), i), &approvals[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (out *importedDeployment) environment(path string, d *docEnvironmentRef) error {
	if d == nil {
		return invalidAt(path, "is required")
	}
	if err := checkDocID(path, d.ID); err != nil {
		return err
	}
	out.d.EnvironmentID = d.ID
	out.envName = strOf(d.Name)
	out.refs = append(out.refs, docRef{kind: refEnvironment, id: d.ID, name: out.envName, path: fieldPath(path, "id")})
	return nil
}

func (out *importedDeployment) deployable(path string, d *docJob) error {
	if d == nil {
		return nil
	}
	if err := checkDocID(path, d.ID); err != nil {
		return err
	}
	out.d.DeployableID = d.ID
	if d.onlyID() {
		out.refs = append(out.refs, docRef{kind: refJob, id: d.ID, path: fieldPath(path, "id")})
		return nil
	}
	j := &Job{
		ID: d.ID, Name: strOf(d.Name), Stage: strOf(d.Stage), Ref: strOf(d.Ref), Tag: d.Tag != nil && *d.Tag,
		Coverage: d.Coverage, Duration: d.Duration, WebURL: d.WebURL,
	}
	var err error
	if j.Status, err = enumOf(fieldPath(path, "status"), "job status", d.Status, ciStatuses...); err != nil {
		return err
	}
	if j.CreatedAt, err = docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return err
	}
	if j.StartedAt, err = parseDocTime(fieldPath(path, "started_at"), d.StartedAt); err != nil {
		return err
	}
	if j.FinishedAt, err = parseDocTime(fieldPath(path, "finished_at"), d.FinishedAt); err != nil {
		return err
	}
	if j.ArtifactsExpireAt, err = parseDocTime(fieldPath(path, "artifacts_expire_at"), d.ArtifactsExpireAt); err != nil {
		return err
	}
	if j.UserID, err = out.user(fieldPath(path, "user"), d.User); err != nil {
		return err
	}
	if j.CommitSHA, err = out.nestedCommit(fieldPath(path, "commit"), d.Commit); err != nil {
		return err
	}
	if j.PipelineID, err = out.nestedPipeline(fieldPath(path, "pipeline"), d.Pipeline, j.CommitSHA); err != nil {
		return err
	}
	artifacts, err := decodeList[docArtifact](fieldPath(path, "artifacts"), d.Artifacts)
	if err != nil {
		return err
	}
	for _, a := range artifacts {
		j.Artifacts = append(j.Artifacts, JobArtifact{FileType: strOf(a.FileType), Size: a.Size, Filename: strOf(a.Filename), FileFormat: a.FileFormat})
	}
	out.job = j
	return nil
}

func (out *importedDeployment) nestedCommit(path string, d *docCommit) (string, error) {
	if d == nil {
		return "", nil
	}
	if d.onlyID() {
		sha, err := checkDocSHA(fieldPath(path, "id"), strOf(d.ID))
		if err != nil {
			return "", err
		}
		out.refs = append(out.refs, docRef{kind: refCommit, name: sha, path: fieldPath(path, "id")})
		return sha, nil
	}
	c, err := d.record(path)
	if err != nil {
		return "", err
	}
	out.commit = c
	return c.SHA, nil
}

func (out *importedDeployment) nestedPipeline(path string, d *docPipeline, commitSHA string) (int64, error) {
	if d == nil {
		return 0, nil
	}
	if d.onlyID() {
		if err := checkDocID(path, d.ID); err != nil {
			return 0, err
		}
		out.refs = append(out.refs, docRef{kind: refPipeline, id: d.ID, path: fieldPath(path, "id")})
		return d.ID, nil
	}
	p, err := d.record(path)
	if err != nil {
		return 0, err
	}
	if p.SHA == "" {
		p.SHA = commitSHA
	}
	out.pipeline = p
	return p.ID, nil
}

func (out *importedDeployment) approval(path string, d *docApproval) error {
	if d.User == nil {
		return invalidAt(fieldPath(path, "user"), "is required")
	}
	uid, err := out.user(fieldPath(path, "user"), d.User)
	if err != nil {
		return err
	}
	a := Approval{DeploymentID: out.d.ID, UserID: uid, Comment: d.Comment, RepresentedAs: d.RepresentedAs}
	if a.Status, err = requiredEnum(fieldPath(path, "status"), "approval status", d.Status, Approved, Rejected); err != nil {
		return err
	}
	if a.CreatedAt, err = docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return err
	}
	out.approvals = append(out.approvals, a)
	return nil
}

type importedMergeRequest struct {
	nestedRecords
	mr MergeRequest
}

func (d *docMergeRequest) record(path string) (*importedMergeRequest, error) {
	if err := checkDocID(path, d.ID); err != nil {
		return nil, err
	}
	if d.IID <= 0 {
		return nil, invalidAt(fieldPath(path, "iid"), "must be a positive integer")
	}
	out := &importedMergeRequest{mr: MergeRequest{
		ID: d.ID, IID: d.IID, Description: d.Description, Labels: d.Labels, Draft: d.Draft != nil && *d.Draft, WebURL: d.WebURL,
	}}
	if out.mr.Labels == nil {
		out.mr.Labels = []string{}
	}
	var err error
	if out.mr.Title, err = requiredStr(fieldPath(path, "title"), d.Title); err != nil {
		return nil, err
	}
	if out.mr.State, err = requiredEnum(fieldPath(path, "state"), "merge request state", d.State, MROpened, MRClosed, MRLocked, MRMerged); err != nil {
		return nil, err
	}
	if out.mr.SourceBranch, err = checkDocRef(fieldPath(path, "source_branch"), d.SourceBranch); err != nil {
		return nil, err
	}
	if out.mr.TargetBranch, err = checkDocRef(fieldPath(path, "target_branch"), d.TargetBranch); err != nil {
		return nil, err
	}
	if out.mr.AuthorID, err = out.user(fieldPath(path, "author"), d.Author); err != nil {
		return nil, err
	}
	if out.mr.CreatedAt, err = docTimeOrZero(fieldPath(path, "created_at"), d.CreatedAt); err != nil {
		return nil, err
	}
	if out.mr.UpdatedAt, err = docTimeOrZero(fieldPath(path, "updated_at"), d.UpdatedAt); err != nil {
		return nil, err
	}
	if out.mr.MergedAt, err = parseDocTime(fieldPath(path, "merged_at"), d.MergedAt); err != nil {
		return nil, err
	}
	if !isBlank(d.MergeCommitSHA) {
		sha, err := checkDocSHA(fieldPath(path, "merge_commit_sha"), *d.MergeCommitSHA)
		if err != nil {
			return nil, err
		}
		out.mr.MergeCommitSHA = &sha
	}
	return out, nil
}

func (d *docLink) refs(path string) ([]docRef, error) {
	if d.DeploymentID <= 0 {
		return nil, invalidAt(fieldPath(path, "deployment_id"), "must be a positive integer")
	}
	if d.MergeRequestID <= 0 {
		return nil, invalidAt(fieldPath(path, "merge_request_id"), "must be a positive integer")
	}
	return []docRef{
		{kind: refDeployment, id: d.DeploymentID, path: fieldPath(path, "deployment_id")},
		{kind: refMergeRequest, id: d.MergeRequestID, path: fieldPath(path, "merge_request_id")},
	}, nil
}

// ---- the walk ----

// importer walks the document once; without a writer it validates and
// gathers facts, with one it writes.
type importer struct {
	ctx context.Context
	dec *json.Decoder
	f   *importFacts
	w   *importWriter
}

func newImporter(ctx context.Context, r io.Reader, f *importFacts, w *importWriter) *importer {
	return &importer{ctx: ctx, dec: json.NewDecoder(bufio.NewReaderSize(r, 1<<16)), f: f, w: w}
}

func (im *importer) validating() bool { return im.w == nil }

func (im *importer) run() error {
	if err := im.open(docRootPath, '{', "a JSON object"); err != nil {
		return err
	}
	for im.dec.More() {
		key, err := im.key(docRootPath)
		if err != nil {
			return err
		}
		switch key {
		case "users":
			err = im.list(key, eachElement(im, im.user))
		case "groups":
			err = im.list(key, eachElement(im, im.group))
		case "projects":
			err = im.list(key, im.project)
		default:
			err = im.skip(key)
		}
		if err != nil {
			return err
		}
	}
	if _, err := im.dec.Token(); err != nil {
		return jsonProblem(docRootPath, err)
	}
	if _, err := im.dec.Token(); err != io.EOF {
		return invalidAt(docRootPath, "unexpected data after the document")
	}
	return nil
}

// open reads the opening delimiter of a value that must be an object or an
// array.
func (im *importer) open(path string, delim json.Delim, what string) error {
	t, err := im.dec.Token()
	if err != nil {
		return jsonProblem(path, err)
	}
	if t != delim {
		return invalidAt(path, "expected %s", what)
	}
	return nil
}

func (im *importer) key(path string) (string, error) {
	t, err := im.dec.Token()
	if err != nil {
		return "", jsonProblem(path, err)
	}
	return t.(string), nil // inside an object the decoder only yields string keys
}

func (im *importer) decode(path string, v any) error {
	return jsonProblem(path, im.dec.Decode(v))
}

// skip reads past a value the format does not use, token by token.
func (im *importer) skip(path string) error {
	depth := 0
	for {
		t, err := im.dec.Token()
		if err != nil {
			return jsonProblem(path, err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// list walks an array (null is an empty one), calling visit per element.
func (im *importer) list(path string, visit func(path string, i int) error) error {
	t, err := im.dec.Token()
	if err != nil {
		return jsonProblem(path, err)
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return invalidAt(path, "expected an array")
	}
	for i := 0; im.dec.More(); i++ {
		if err := im.ctx.Err(); err != nil {
			return err
		}
		if err := visit(elemPath(path, i), i); err != nil {
			return err
		}
	}
	_, err = im.dec.Token()
	return jsonProblem(path, err)
}

// each decodes one array element into a D and hands it to visit with its
// offset in the document, which orders problems found later.
func eachElement[D any](im *importer, visit func(d *D, path string, i int, off int64) error) func(string, int) error {
	return func(path string, i int) error {
		off := im.dec.InputOffset()
		var d D
		if err := im.decode(path, &d); err != nil {
			return err
		}
		return visit(&d, path, i, off)
	}
}

func (im *importer) user(d *docUser, path string, _ int, off int64) error {
	u, err := d.record(path, true)
	if err != nil {
		return err
	}
	if im.validating() {
		return im.f.addUser(u, d.Admin != nil, path, off)
	}
	return im.w.user(u)
}

func (im *importer) group(d *docGroup, path string, _ int, off int64) error {
	g, err := d.record(path)
	if err != nil {
		return err
	}
	if im.validating() {
		return im.f.addGroup(g, path, off)
	}
	return im.w.group(g)
}

// project walks a project object key by key: its arrays may be huge, and
// its id may come after them.
func (im *importer) project(path string, idx int) error {
	off := im.dec.InputOffset()
	if err := im.open(path, '{', "an object"); err != nil {
		return err
	}
	pf, err := im.projectFacts(path, idx)
	if err != nil {
		return err
	}
	var d docProject
	scalars := d.fields()
	lists := map[string]func(string, int) error{
		"members":                   eachElement(im, im.member(pf)),
		"protected_environments":    eachElement(im, im.protection(pf)),
		"environments":              eachElement(im, im.environment(pf)),
		"deployments":               eachElement(im, im.deployment(pf)),
		"merge_requests":            eachElement(im, im.mergeRequest(pf)),
		"deployment_merge_requests": eachElement(im, im.link(pf)),
	}
	for im.dec.More() {
		key, err := im.key(path)
		if err != nil {
			return err
		}
		if ptr, ok := scalars[key]; ok {
			err = im.decode(fieldPath(path, key), ptr)
		} else if visit, ok := lists[key]; ok {
			err = im.list(fieldPath(path, key), visit)
		} else {
			err = im.skip(fieldPath(path, key))
		}
		if err != nil {
			return err
		}
	}
	if _, err := im.dec.Token(); err != nil {
		return jsonProblem(path, err)
	}
	p, err := d.record(path)
	if err != nil {
		return err
	}
	if im.validating() {
		return im.f.addProject(pf, p, path, off)
	}
	if p.ID != pf.id {
		return fmt.Errorf("%s: the document changed during the import", path)
	}
	return im.w.project(p)
}

func (im *importer) projectFacts(path string, idx int) (*projectFacts, error) {
	if im.validating() {
		pf := newProjectFacts(int32(idx), path)
		im.f.projects = append(im.f.projects, pf)
		return pf, nil
	}
	if idx >= len(im.f.projects) {
		return nil, fmt.Errorf("%s: the document changed during the import", path)
	}
	return im.f.projects[idx], nil
}

func (im *importer) member(pf *projectFacts) func(*docMember, string, int, int64) error {
	return func(d *docMember, path string, _ int, off int64) error {
		uid, level, err := d.record(path)
		if err != nil {
			return err
		}
		if im.validating() {
			pf.members[uid] = level
			return im.f.need(docRef{kind: refUser, id: uid, path: fieldPath(path, "user_id")}, pf.idx, off)
		}
		return im.w.member(pf, uid, level)
	}
}

func (im *importer) protection(pf *projectFacts) func(*docProtectedEnvironment, string, int, int64) error {
	return func(d *docProtectedEnvironment, path string, _ int, off int64) error {
		ip, err := d.record(path)
		if err != nil {
			return err
		}
		if im.validating() {
			return im.f.addProtection(pf, ip, path, off)
		}
		return im.w.protection(pf, &ip.pe)
	}
}

func (im *importer) environment(pf *projectFacts) func(*docEnvironment, string, int, int64) error {
	return func(d *docEnvironment, path string, _ int, off int64) error {
		e, err := d.record(path)
		if err != nil {
			return err
		}
		if im.validating() {
			return im.f.addEnvironment(pf, e, path, off)
		}
		return im.w.environment(pf, e)
	}
}

func (im *importer) deployment(pf *projectFacts) func(*docDeployment, string, int, int64) error {
	return func(d *docDeployment, path string, i int, off int64) error {
		id, err := d.record(path)
		if err != nil {
			return err
		}
		if im.validating() {
			return im.f.addDeployment(pf, id, path, int32(i), off)
		}
		return im.w.deployment(pf, id)
	}
}

func (im *importer) mergeRequest(pf *projectFacts) func(*docMergeRequest, string, int, int64) error {
	return func(d *docMergeRequest, path string, i int, off int64) error {
		imr, err := d.record(path)
		if err != nil {
			return err
		}
		if im.validating() {
			return im.f.addMergeRequest(pf, imr, path, int32(i), off)
		}
		return im.w.mergeRequest(pf, imr)
	}
}

func (im *importer) link(pf *projectFacts) func(*docLink, string, int, int64) error {
	return func(d *docLink, path string, _ int, off int64) error {
		refs, err := d.refs(path)
		if err != nil {
			return err
		}
		if im.validating() {
			return im.f.needAll(refs, pf.idx, off)
		}
		return im.w.link(d.DeploymentID, d.MergeRequestID)
	}
}

// ---- what validation keeps ----

// docUse remembers where a name, iid or reference first appeared.
type docUse struct {
	id   int64
	off  int64
	path string
}

// iidUse is a docUse whose path is rebuilt from the element index: there is
// one per deployment, so it stays small.
type iidUse struct {
	id  int64
	off int64
	idx int32
}

type userFact struct {
	name       string
	admin      *bool // nil: a nested copy that does not say
	top        bool  // a top-level record, not a nested copy
	username   string
	path       string
	off        int64
	written    bool
	adminGiven bool
}

type groupFact struct {
	name string
}

type envFact struct {
	proj int32
	name string
}

// projectFacts is what one project of the document holds, by project
// index: the id is known only at the end of the object.
type projectFacts struct {
	idx        int32
	path       string
	id         int64
	members    map[int64]AccessLevel
	protected  map[string][]ApprovalRule
	envNames   map[string]docUse
	envSlugs   map[string]docUse
	deployIIDs map[int64]iidUse
	mrIIDs     map[int64]iidUse
}

func newProjectFacts(idx int32, path string) *projectFacts {
	return &projectFacts{
		idx: idx, path: path,
		members: map[int64]AccessLevel{}, protected: map[string][]ApprovalRule{},
		envNames: map[string]docUse{}, envSlugs: map[string]docUse{},
		deployIIDs: map[int64]iidUse{}, mrIIDs: map[int64]iidUse{},
	}
}

type refKey struct {
	kind refKind
	id   int64
	proj int32
	name string
}

// importFacts is what the validation pass keeps for the checks that need
// the whole document, and what the writing pass needs to know of records
// defined elsewhere in it.
type importFacts struct {
	users        map[int64]*userFact
	usernames    map[string]docUse // lower-case usernames of top-level users
	groups       map[int64]groupFact
	groupPaths   map[string]docUse
	userGroups   map[int64][]int64
	projects     []*projectFacts
	projectIDs   map[int64]int32
	projectPaths map[string]docUse
	envs         map[int64]envFact
	deployments  map[int64]int32 // id → project index
	mrs          map[int64]int32
	jobs         map[int64]bool // full copies; true until written
	pipelines    map[int64]bool
	commits      map[string]bool
	refs         map[refKey]refUse // references not resolved when first met
}

// refUse is where a reference that did not resolve yet first appeared; seq
// orders the references of one element as they were met.
type refUse struct {
	off, seq int64
	path     string
}

func newImportFacts() *importFacts {
	return &importFacts{
		users: map[int64]*userFact{}, usernames: map[string]docUse{},
		groups: map[int64]groupFact{}, groupPaths: map[string]docUse{}, userGroups: map[int64][]int64{},
		projectIDs: map[int64]int32{}, projectPaths: map[string]docUse{},
		envs: map[int64]envFact{}, deployments: map[int64]int32{}, mrs: map[int64]int32{},
		jobs: map[int64]bool{}, pipelines: map[int64]bool{}, commits: map[string]bool{},
		refs: map[refKey]refUse{},
	}
}

func duplicateID(path, what string, id int64) error {
	return invalidAt(fieldPath(path, "id"), "duplicate %s id %d", what, id)
}

func (f *importFacts) addUser(u *User, adminGiven bool, path string, off int64) error {
	if old := f.users[u.ID]; old != nil && old.top {
		return duplicateID(path, "user", u.ID)
	}
	lower := strings.ToLower(u.Username)
	if other, ok := f.usernames[lower]; ok {
		return invalidAt(fieldPath(path, "username"), "username %q is already taken by %s", u.Username, other.path)
	}
	f.usernames[lower] = docUse{id: u.ID, off: off, path: path}
	f.users[u.ID] = &userFact{name: u.Name, admin: &u.Admin, top: true, username: lower, path: path, off: off}
	return nil
}

// addNested keeps the first copy of each user that has no top-level record
// (so far: a later top-level record replaces it).
func (f *importFacts) addNested(n *nestedRecords, proj int32, off int64) error {
	for _, nu := range n.users {
		if f.users[nu.u.ID] != nil {
			continue
		}
		fact := &userFact{name: nu.u.Name, username: strings.ToLower(nu.u.Username), path: nu.path, off: off, adminGiven: nu.adminGiven}
		if nu.adminGiven {
			fact.admin = &nu.u.Admin
		}
		f.users[nu.u.ID] = fact
	}
	return f.needAll(n.refs, proj, off)
}

func (f *importFacts) addGroup(g *importedGroup, path string, off int64) error {
	if _, ok := f.groups[g.g.ID]; ok {
		return duplicateID(path, "group", g.g.ID)
	}
	lower := strings.ToLower(g.g.FullPath)
	if other, ok := f.groupPaths[lower]; ok {
		return invalidAt(fieldPath(path, "full_path"), "full path %q is already taken by %s", g.g.FullPath, other.path)
	}
	f.groups[g.g.ID] = groupFact{name: g.g.Name}
	f.groupPaths[lower] = docUse{id: g.g.ID, off: off, path: path}
	for _, uid := range g.members {
		if !slices.Contains(f.userGroups[uid], g.g.ID) {
			f.userGroups[uid] = append(f.userGroups[uid], g.g.ID)
		}
	}
	return f.needAll(g.refs, -1, off)
}

func (f *importFacts) addProject(pf *projectFacts, p *Project, path string, off int64) error {
	if _, ok := f.projectIDs[p.ID]; ok {
		return duplicateID(path, "project", p.ID)
	}
	lower := strings.ToLower(p.FullPath)
	if other, ok := f.projectPaths[lower]; ok {
		return invalidAt(fieldPath(path, "path_with_namespace"), "full path %q is already taken by %s", p.FullPath, other.path)
	}
	pf.id = p.ID
	f.projectIDs[p.ID] = pf.idx
	f.projectPaths[lower] = docUse{id: p.ID, off: off, path: path}
	return nil
}

func (f *importFacts) addProtection(pf *projectFacts, ip *importedProtection, path string, off int64) error {
	if _, ok := pf.protected[ip.pe.Name]; ok {
		return invalidAt(fieldPath(path, "name"), "environment %q is protected twice", ip.pe.Name)
	}
	pf.protected[ip.pe.Name] = ip.pe.ApprovalRules
	return f.needAll(ip.refs, pf.idx, off)
}

func (f *importFacts) addEnvironment(pf *projectFacts, e *Environment, path string, off int64) error {
	if _, ok := f.envs[e.ID]; ok {
		return duplicateID(path, "environment", e.ID)
	}
	if other, ok := pf.envNames[e.Name]; ok {
		return invalidAt(fieldPath(path, "name"), "name %q is already taken by %s", e.Name, other.path)
	}
	if other, ok := pf.envSlugs[e.Slug]; ok {
		return invalidAt(fieldPath(path, "slug"), "slug %q is already taken by %s", e.Slug, other.path)
	}
	f.envs[e.ID] = envFact{proj: pf.idx, name: e.Name}
	pf.envNames[e.Name] = docUse{id: e.ID, off: off, path: path}
	pf.envSlugs[e.Slug] = docUse{id: e.ID, off: off, path: path}
	return nil
}

func (f *importFacts) addDeployment(pf *projectFacts, d *importedDeployment, path string, i int32, off int64) error {
	if _, ok := f.deployments[d.d.ID]; ok {
		return duplicateID(path, "deployment", d.d.ID)
	}
	if other, ok := pf.deployIIDs[d.d.IID]; ok {
		return invalidAt(fieldPath(path, "iid"), "iid %d is already taken by %s", d.d.IID, pf.deploymentPath(other.idx))
	}
	f.deployments[d.d.ID] = pf.idx
	pf.deployIIDs[d.d.IID] = iidUse{id: d.d.ID, off: off, idx: i}
	if d.job != nil {
		if _, ok := f.jobs[d.job.ID]; !ok {
			f.jobs[d.job.ID] = true
		}
	}
	if d.pipeline != nil {
		if _, ok := f.pipelines[d.pipeline.ID]; !ok {
			f.pipelines[d.pipeline.ID] = true
		}
	}
	if d.commit != nil {
		if _, ok := f.commits[d.commit.SHA]; !ok {
			f.commits[d.commit.SHA] = true
		}
	}
	return f.addNested(&d.nestedRecords, pf.idx, off)
}

func (f *importFacts) addMergeRequest(pf *projectFacts, imr *importedMergeRequest, path string, i int32, off int64) error {
	if _, ok := f.mrs[imr.mr.ID]; ok {
		return duplicateID(path, "merge request", imr.mr.ID)
	}
	if other, ok := pf.mrIIDs[imr.mr.IID]; ok {
		return invalidAt(fieldPath(path, "iid"), "iid %d is already taken by %s", imr.mr.IID, pf.mergeRequestPath(other.idx))
	}
	f.mrs[imr.mr.ID] = pf.idx
	pf.mrIIDs[imr.mr.IID] = iidUse{id: imr.mr.ID, off: off, idx: i}
	return f.addNested(&imr.nestedRecords, pf.idx, off)
}

func (pf *projectFacts) deploymentPath(i int32) string {
	return elemPath(fieldPath(pf.path, "deployments"), int(i))
}

func (pf *projectFacts) mergeRequestPath(i int32) string {
	return elemPath(fieldPath(pf.path, "merge_requests"), int(i))
}

func (f *importFacts) needAll(refs []docRef, proj int32, off int64) error {
	for _, r := range refs {
		if err := f.need(r, proj, off); err != nil {
			return err
		}
	}
	return nil
}

// need checks a reference against the document read so far, and keeps it
// for the end when it does not resolve yet (it may come later, or be in
// the store).
func (f *importFacts) need(r docRef, proj int32, off int64) error {
	found, msg := f.inDocument(r, proj)
	if found {
		if msg != "" {
			return invalidAt(r.path, "%s", msg)
		}
		return nil
	}
	k := refKey{kind: r.kind, id: r.id, name: r.name, proj: -1}
	if r.kind == refEnvironment || r.kind == refDeployment || r.kind == refMergeRequest {
		k.proj = proj
	}
	if _, ok := f.refs[k]; !ok {
		f.refs[k] = refUse{off: off, seq: int64(len(f.refs)) + 1, path: r.path}
	}
	return nil
}

// inDocument resolves a reference in the document; msg says why a record
// that was found does not fit.
func (f *importFacts) inDocument(r docRef, proj int32) (found bool, msg string) {
	switch r.kind {
	case refUser:
		return f.users[r.id] != nil, ""
	case refGroup:
		_, found = f.groups[r.id]
	case refEnvironment:
		e, ok := f.envs[r.id]
		if !ok {
			return false, ""
		}
		return true, environmentMismatch(r, e.proj == proj, e.name)
	case refDeployment:
		p, ok := f.deployments[r.id]
		if ok && p != proj {
			return true, fmt.Sprintf("deployment %d belongs to another project", r.id)
		}
		found = ok
	case refMergeRequest:
		p, ok := f.mrs[r.id]
		if ok && p != proj {
			return true, fmt.Sprintf("merge request %d belongs to another project", r.id)
		}
		found = ok
	case refJob:
		_, found = f.jobs[r.id]
	case refPipeline:
		_, found = f.pipelines[r.id]
	case refCommit:
		_, found = f.commits[r.name]
	}
	return found, ""
}

func environmentMismatch(r docRef, sameProject bool, name string) string {
	switch {
	case !sameProject:
		return fmt.Sprintf("environment %d belongs to another project", r.id)
	case r.name != "" && r.name != name:
		return fmt.Sprintf("environment %d is named %q, not %q", r.id, name, r.name)
	}
	return ""
}

// inStore resolves a reference in the store; "" when it does.
func refInStore(tx *bolt.Tx, r refKey, projectID int64) (string, error) {
	exists := func(bucket, key []byte) bool { return tx.Bucket(bucket).Get(key) != nil }
	switch r.kind {
	case refUser:
		if !exists(bktUsers, u64(r.id)) {
			return fmt.Sprintf("user %d not found", r.id), nil
		}
	case refGroup:
		if !exists(bktGroups, u64(r.id)) {
			return fmt.Sprintf("group %d not found", r.id), nil
		}
	case refEnvironment:
		e, err := getByID[Environment](tx, bktEnvironments, r.id)
		if err != nil || e == nil {
			return fmt.Sprintf("environment %d not found", r.id), err
		}
		return environmentMismatch(docRef{id: r.id, name: r.name}, e.ProjectID == projectID, e.Name), nil
	case refDeployment:
		d, err := getByID[Deployment](tx, bktDeployments, r.id)
		if err != nil || d == nil {
			return fmt.Sprintf("deployment %d not found", r.id), err
		}
		if d.ProjectID != projectID {
			return fmt.Sprintf("deployment %d belongs to another project", r.id), nil
		}
	case refMergeRequest:
		mr, err := getByID[MergeRequest](tx, bktMergeRequests, r.id)
		if err != nil || mr == nil {
			return fmt.Sprintf("merge request %d not found", r.id), err
		}
		if mr.ProjectID != projectID {
			return fmt.Sprintf("merge request %d belongs to another project", r.id), nil
		}
	case refJob:
		if !exists(bktJobs, u64(r.id)) {
			return fmt.Sprintf("job %d not found", r.id), nil
		}
	case refPipeline:
		if !exists(bktPipelines, u64(r.id)) {
			return fmt.Sprintf("pipeline %d not found", r.id), nil
		}
	case refCommit:
		if !exists(bktCommits, []byte(r.name)) {
			return fmt.Sprintf("commit %s not found", r.name), nil
		}
	}
	return "", nil
}

// firstProblem keeps the problem that comes first in the document: by the
// offset of its element, then by the order it was met in the element.
type firstProblem struct {
	off, seq int64
	err      error
}

func (fp *firstProblem) add(off int64, err error) { fp.addInOrder(off, 0, err) }

func (fp *firstProblem) addInOrder(off, seq int64, err error) {
	if fp.err == nil || off < fp.off || off == fp.off && (seq < fp.seq || seq == fp.seq && err.Error() < fp.err.Error()) {
		fp.off, fp.seq, fp.err = off, seq, err
	}
}

// checkStore runs the checks that needed the whole document: references
// that did not resolve when met, and uniqueness against the store's
// records with other ids (a stored record that the document redefines
// does not count: it is about to be replaced).
func (f *importFacts) checkStore(tx *bolt.Tx) error {
	var fp firstProblem
	for k, u := range f.refs {
		found, msg := f.inDocument(docRef{kind: k.kind, id: k.id, name: k.name}, k.proj)
		if !found {
			var pid int64
			if k.proj >= 0 {
				pid = f.projects[k.proj].id
			}
			var err error
			if msg, err = refInStore(tx, k, pid); err != nil {
				return err
			}
		}
		if msg != "" {
			fp.addInOrder(u.off, u.seq, invalidAt(u.path, "%s", msg))
		}
	}
	f.checkUsernames(tx, &fp)
	f.checkTaken(tx, &fp, bktGroupByPath, f.groupPaths, "full_path", "full path", func(id int64) bool { _, ok := f.groups[id]; return ok })
	f.checkTaken(tx, &fp, bktProjectByPath, f.projectPaths, "path_with_namespace", "full path", func(id int64) bool { _, ok := f.projectIDs[id]; return ok })
	for _, pf := range f.projects {
		if err := f.checkProject(tx, pf, &fp); err != nil {
			return err
		}
	}
	return fp.err
}

// checkUsernames adds the nested copies that will be stored to the
// top-level usernames, then checks them all against the store.
func (f *importFacts) checkUsernames(tx *bolt.Tx, fp *firstProblem) {
	names := make(map[string]docUse, len(f.usernames))
	for k, v := range f.usernames {
		names[k] = v
	}
	var copies []int64
	for id, u := range f.users {
		if !u.top {
			copies = append(copies, id)
		}
	}
	slices.SortFunc(copies, func(a, b int64) int { return cmp.Compare(f.users[a].off, f.users[b].off) })
	for _, id := range copies {
		u := f.users[id]
		if other, ok := names[u.username]; ok && other.id != id {
			fp.add(u.off, invalidAt(fieldPath(u.path, "username"), "username %q is already taken by %s", u.username, other.path))
			continue
		}
		names[u.username] = docUse{id: id, off: u.off, path: u.path}
	}
	f.checkTaken(tx, fp, bktUserByName, names, "username", "username", func(id int64) bool { return f.users[id] != nil })
}

// checkTaken checks lower-case names against a store index.
func (f *importFacts) checkTaken(tx *bolt.Tx, fp *firstProblem, bucket []byte, names map[string]docUse, field, what string, inDocument func(int64) bool) {
	for name, u := range names {
		id := lookupID(tx, bucket, []byte(name))
		if id != 0 && id != u.id && !inDocument(id) {
			fp.add(u.off, invalidAt(fieldPath(u.path, field), "%s %q is already taken", what, name))
		}
	}
}

func (f *importFacts) checkProject(tx *bolt.Tx, pf *projectFacts, fp *firstProblem) error {
	pid := pf.id
	envInDocument := func(id int64) bool { _, ok := f.envs[id]; return ok }
	for name, u := range pf.envNames {
		if id := lookupID(tx, bktEnvByName, join(u64(pid), []byte(name))); id != 0 && id != u.id && !envInDocument(id) {
			fp.add(u.off, invalidAt(fieldPath(u.path, "name"), "name %q is already taken", name))
		}
		e, err := getByID[Environment](tx, bktEnvironments, u.id)
		if err != nil {
			return err
		}
		if e != nil && e.ProjectID != pid {
			fp.add(u.off, invalidAt(fieldPath(u.path, "id"), "environment %d belongs to another project", u.id))
		}
	}
	for slug, u := range pf.envSlugs {
		if id := lookupID(tx, bktEnvBySlug, join(u64(pid), []byte(slug))); id != 0 && id != u.id && !envInDocument(id) {
			fp.add(u.off, invalidAt(fieldPath(u.path, "slug"), "slug %q is already taken", slug))
		}
	}
	for iid, u := range pf.deployIIDs {
		path := pf.deploymentPath(u.idx)
		if id := lookupID(tx, bktDeployByIID, pair(pid, iid)); id != 0 && id != u.id {
			if _, ok := f.deployments[id]; !ok {
				fp.add(u.off, invalidAt(fieldPath(path, "iid"), "iid %d is already taken", iid))
			}
		}
		d, err := getByID[Deployment](tx, bktDeployments, u.id)
		if err != nil {
			return err
		}
		if d != nil && d.ProjectID != pid {
			fp.add(u.off, invalidAt(fieldPath(path, "id"), "deployment %d belongs to another project", u.id))
		}
	}
	for iid, u := range pf.mrIIDs {
		path := pf.mergeRequestPath(u.idx)
		if id := lookupID(tx, bktMRByIID, pair(pid, iid)); id != 0 && id != u.id {
			if _, ok := f.mrs[id]; !ok {
				fp.add(u.off, invalidAt(fieldPath(path, "iid"), "iid %d is already taken", iid))
			}
		}
		mr, err := getByID[MergeRequest](tx, bktMergeRequests, u.id)
		if err != nil {
			return err
		}
		if mr != nil && mr.ProjectID != pid {
			fp.add(u.off, invalidAt(fieldPath(path, "id"), "merge request %d belongs to another project", u.id))
		}
	}
	return nil
}

// ---- writing ----

// importWriter writes elements in transactions of at most importBatchSize
// elements.
type importWriter struct {
	s     *Store
	f     *importFacts
	now   time.Time
	tx    *bolt.Tx
	n     int
	stats ImportStats
}

func (w *importWriter) do(fn func(tx *bolt.Tx) error) error {
	if w.tx == nil {
		tx, err := w.s.db.Begin(true)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		w.s.beginWrite(tx) // imports publish no events, but the broker counts every commit
		w.tx = tx
	}
	if err := fn(w.tx); err != nil {
		return err
	}
	w.n++
	if w.n >= importBatchSize {
		return w.commit()
	}
	return nil
}

func (w *importWriter) commit() error {
	if w.tx == nil {
		return nil
	}
	tx := w.tx
	w.tx, w.n = nil, 0
	defer w.s.countWrite(tx)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (w *importWriter) rollback() {
	if w.tx != nil {
		_ = w.tx.Rollback()
		w.s.countWrite(w.tx)
		w.tx, w.n = nil, 0
	}
}

// indexEntry is one name-index key of a stored record.
type indexEntry struct {
	bucket, key []byte
}

// putKeepingOthers runs put for the record id and then restores the index
// entries of other records that put removed when it dropped the record's
// old keys: with renames in one document, the old name of one record may
// already be the new name of another.
func putKeepingOthers(tx *bolt.Tx, id int64, old []indexEntry, put func() error) error {
	var restore []indexEntry
	var values [][]byte
	for _, e := range old {
		if v := tx.Bucket(e.bucket).Get(e.key); v != nil && readU64(v) != id {
			restore = append(restore, e)
			values = append(values, bytes.Clone(v))
		}
	}
	if err := put(); err != nil {
		return err
	}
	for i, e := range restore {
		b := tx.Bucket(e.bucket)
		if b.Get(e.key) == nil {
			if err := b.Put(e.key, values[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *importWriter) user(u *User) error {
	return w.do(func(tx *bolt.Tx) error { return w.putUser(tx, u) })
}

func (w *importWriter) putUser(tx *bolt.Tx, u *User) error {
	old, err := getByID[User](tx, bktUsers, u.ID)
	if err != nil {
		return err
	}
	var entries []indexEntry
	if old != nil {
		entries = append(entries, indexEntry{bktUserByName, []byte(strings.ToLower(old.Username))})
	}
	if err := putKeepingOthers(tx, u.ID, entries, func() error { return putUser(tx, u) }); err != nil {
		return fmt.Errorf("user %d: %w", u.ID, err)
	}
	w.stats.Users++
	return nil
}

// nested writes the first copy of each nested user that has no top-level
// record. A copy that does not say whether the user is an admin keeps the
// stored flag, so importing GitLab payloads never demotes an admin.
func (w *importWriter) nested(tx *bolt.Tx, n *nestedRecords) error {
	for _, nu := range n.users {
		fact := w.f.users[nu.u.ID]
		if fact == nil || fact.top || fact.written {
			continue
		}
		fact.written = true
		u := *nu.u
		if !nu.adminGiven {
			old, err := getByID[User](tx, bktUsers, u.ID)
			if err != nil {
				return err
			}
			u.Admin = old != nil && old.Admin
		}
		if err := w.putUser(tx, &u); err != nil {
			return err
		}
	}
	return nil
}

func (w *importWriter) group(g *importedGroup) error {
	return w.do(func(tx *bolt.Tx) error {
		rec := g.g
		if parent, _, ok := cutLast(rec.FullPath); ok {
			rec.ParentID = w.groupID(tx, parent)
		}
		old, err := getByID[Group](tx, bktGroups, rec.ID)
		if err != nil {
			return err
		}
		var entries []indexEntry
		if old != nil {
			entries = append(entries, indexEntry{bktGroupByPath, []byte(strings.ToLower(old.FullPath))})
		}
		if err := putKeepingOthers(tx, rec.ID, entries, func() error { return putGroup(tx, &rec) }); err != nil {
			return fmt.Errorf("group %d: %w", rec.ID, err)
		}
		for _, uid := range g.members {
			if err := putGroupMember(tx, rec.ID, uid); err != nil {
				return fmt.Errorf("group %d member %d: %w", rec.ID, uid, err)
			}
		}
		w.stats.Groups++
		return nil
	})
}

func cutLast(p string) (before, after string, found bool) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}

// groupID finds a group by full path in the document, else in the store.
func (w *importWriter) groupID(tx *bolt.Tx, fullPath string) int64 {
	lower := strings.ToLower(fullPath)
	if u, ok := w.f.groupPaths[lower]; ok {
		return u.id
	}
	return lookupID(tx, bktGroupByPath, []byte(lower))
}

func (w *importWriter) project(p *Project) error {
	return w.do(func(tx *bolt.Tx) error {
		old, err := getByID[Project](tx, bktProjects, p.ID)
		if err != nil {
			return err
		}
		var entries []indexEntry
		if old != nil {
			entries = append(entries, indexEntry{bktProjectByPath, []byte(strings.ToLower(old.FullPath))})
		}
		if p.CreatedAt.IsZero() {
			p.CreatedAt = w.now
			if old != nil {
				p.CreatedAt = old.CreatedAt
			}
		}
		if err := putKeepingOthers(tx, p.ID, entries, func() error { return putProject(tx, p) }); err != nil {
			return fmt.Errorf("project %d: %w", p.ID, err)
		}
		w.stats.Projects++
		return nil
	})
}

func (w *importWriter) member(pf *projectFacts, uid int64, level AccessLevel) error {
	return w.do(func(tx *bolt.Tx) error {
		if err := putProjectMember(tx, pf.id, uid, level); err != nil {
			return fmt.Errorf("project %d member %d: %w", pf.id, uid, err)
		}
		w.stats.Members++
		return nil
	})
}

func (w *importWriter) protection(pf *projectFacts, pe *ProtectedEnvironment) error {
	return w.do(func(tx *bolt.Tx) error {
		pe.ProjectID = pf.id
		if err := putProtectedEnvironment(tx, pe); err != nil {
			return fmt.Errorf("project %d protected environment %q: %w", pf.id, pe.Name, err)
		}
		w.stats.ProtectedEnvironments++
		return nil
	})
}

// createdAt fills in a creation time the document left out: the stored
// one, so that importing again changes nothing, or now.
func (w *importWriter) createdAt(t *time.Time, stored *time.Time) {
	if !t.IsZero() {
		return
	}
	*t = w.now
	if stored != nil {
		*t = *stored
	}
}

func (w *importWriter) environment(pf *projectFacts, e *Environment) error {
	return w.do(func(tx *bolt.Tx) error {
		e.ProjectID = pf.id
		old, err := getByID[Environment](tx, bktEnvironments, e.ID)
		if err != nil {
			return err
		}
		var entries []indexEntry
		var stored *time.Time
		if old != nil {
			entries = append(entries,
				indexEntry{bktEnvByName, join(u64(old.ProjectID), []byte(old.Name))},
				indexEntry{bktEnvBySlug, join(u64(old.ProjectID), []byte(old.Slug))})
			stored = &old.CreatedAt
		}
		w.createdAt(&e.CreatedAt, stored)
		if e.UpdatedAt.IsZero() {
			e.UpdatedAt = e.CreatedAt
		}
		if err := putKeepingOthers(tx, e.ID, entries, func() error { return putEnvironment(tx, e) }); err != nil {
			return fmt.Errorf("environment %d: %w", e.ID, err)
		}
		w.stats.Environments++
		return nil
	})
}

func (w *importWriter) deployment(pf *projectFacts, d *importedDeployment) error {
	return w.do(func(tx *bolt.Tx) error {
		if err := w.nested(tx, &d.nestedRecords); err != nil {
			return err
		}
		rec := d.d
		rec.ProjectID = pf.id
		old, err := getByID[Deployment](tx, bktDeployments, rec.ID)
		if err != nil {
			return err
		}
		var entries []indexEntry
		var stored *time.Time
		if old != nil {
			entries = append(entries, indexEntry{bktDeployByIID, pair(old.ProjectID, old.IID)})
			stored = &old.CreatedAt
		}
		w.createdAt(&rec.CreatedAt, stored)
		if rec.UpdatedAt.IsZero() {
			rec.UpdatedAt = rec.CreatedAt
		}
		if err := w.ciRecords(tx, pf, d, rec.CreatedAt); err != nil {
			return err
		}
		if err := putKeepingOthers(tx, rec.ID, entries, func() error { return putDeployment(tx, &rec) }); err != nil {
			return fmt.Errorf("deployment %d: %w", rec.ID, err)
		}
		w.stats.Deployments++
		return w.approvals(tx, pf, d, &rec)
	})
}

// ciRecords writes the first copy of the deployment's job, pipeline and
// commit; the store's copy of a commit wins over the document's.
func (w *importWriter) ciRecords(tx *bolt.Tx, pf *projectFacts, d *importedDeployment, created time.Time) error {
	if p := d.pipeline; p != nil && w.f.pipelines[p.ID] {
		w.f.pipelines[p.ID] = false
		p.ProjectID = pf.id
		if err := putPipeline(tx, p); err != nil {
			return fmt.Errorf("pipeline %d: %w", p.ID, err)
		}
		w.stats.Pipelines++
	}
	if c := d.commit; c != nil && w.f.commits[c.SHA] {
		w.f.commits[c.SHA] = false
		if err := putCommitOnce(tx, c); err != nil {
			return fmt.Errorf("commit %s: %w", c.SHA, err)
		}
		w.stats.Commits++
	}
	if j := d.job; j != nil && w.f.jobs[j.ID] {
		w.f.jobs[j.ID] = false
		j.ProjectID = pf.id
		if j.CreatedAt.IsZero() {
			j.CreatedAt = created
		}
		if err := putJob(tx, j); err != nil {
			return fmt.Errorf("job %d: %w", j.ID, err)
		}
		w.stats.Jobs++
	}
	return nil
}

func (w *importWriter) approvals(tx *bolt.Tx, pf *projectFacts, d *importedDeployment, rec *Deployment) error {
	if len(d.approvals) == 0 {
		return nil
	}
	envName, err := w.environmentName(tx, rec.EnvironmentID, d.envName)
	if err != nil {
		return err
	}
	rules, err := w.approvalRules(tx, pf, envName)
	if err != nil {
		return err
	}
	for _, a := range d.approvals {
		if a.CreatedAt.IsZero() {
			a.CreatedAt = rec.CreatedAt
		}
		if a.RuleKey, err = w.ruleKey(tx, pf, rules, a.UserID, strOf(a.RepresentedAs)); err != nil {
			return err
		}
		if err := putApproval(tx, &a); err != nil {
			return fmt.Errorf("deployment %d approval by user %d: %w", rec.ID, a.UserID, err)
		}
		w.stats.Approvals++
	}
	return nil
}

func (w *importWriter) environmentName(tx *bolt.Tx, envID int64, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if e, ok := w.f.envs[envID]; ok {
		return e.name, nil
	}
	e, err := getByID[Environment](tx, bktEnvironments, envID)
	if err != nil || e == nil {
		return "", err
	}
	return e.Name, nil
}

// approvalRules are the rules of the protected environment of that name:
// the document's, else the store's.
func (w *importWriter) approvalRules(tx *bolt.Tx, pf *projectFacts, envName string) ([]ApprovalRule, error) {
	if rules, ok := pf.protected[envName]; ok {
		return rules, nil
	}
	var pe ProtectedEnvironment
	ok, err := getJSON(tx, bktProtected, join(u64(pf.id), []byte(envName)), &pe)
	if !ok || err != nil {
		return nil, err
	}
	return pe.ApprovalRules, nil
}

// ruleKey picks the rule an approval counts for, as approveDeployment does
// (pickRule); history is recorded as it was, so a represented_as that names
// none of the user's rules falls back to the first matching one.
func (w *importWriter) ruleKey(tx *bolt.Tx, pf *projectFacts, rules []ApprovalRule, uid int64, representedAs string) (string, error) {
	if len(rules) == 0 {
		return "", nil
	}
	a, err := w.approver(tx, pf, uid)
	if err != nil {
		return "", err
	}
	var matching []ApprovalRule
	for _, r := range rules {
		if r.Matches(a) {
			matching = append(matching, r)
		}
	}
	if len(matching) == 0 {
		return "", nil
	}
	rule, _, ok, err := pickRule(matching, representedAs, func(r Rule) (string, error) {
		return w.ruleDescription(tx, r)
	})
	if err != nil {
		return "", err
	}
	if !ok {
		rule = matching[0]
	}
	return rule.Key(), nil
}

// approver describes a user from the document's records, else the store's.
func (w *importWriter) approver(tx *bolt.Tx, pf *projectFacts, uid int64) (Approver, error) {
	a := Approver{UserID: uid, Level: memberLevel(tx, pf.id, uid), GroupIDs: userGroupIDs(tx, uid)}
	if level, ok := pf.members[uid]; ok {
		a.Level = level
	}
	for _, gid := range w.f.userGroups[uid] {
		if !slices.Contains(a.GroupIDs, gid) {
			a.GroupIDs = append(a.GroupIDs, gid)
		}
	}
	if fact := w.f.users[uid]; fact != nil && fact.admin != nil {
		a.Admin = *fact.admin
		return a, nil
	}
	u, err := getByID[User](tx, bktUsers, uid)
	if err != nil {
		return a, err
	}
	a.Admin = u != nil && u.Admin
	return a, nil
}

// ruleDescription is GitLab's access_level_description of a rule.
func (w *importWriter) ruleDescription(tx *bolt.Tx, r Rule) (string, error) {
	switch {
	case r.UserID != 0:
		if fact := w.f.users[r.UserID]; fact != nil {
			return fact.name, nil
		}
		u, err := getByID[User](tx, bktUsers, r.UserID)
		if err != nil || u == nil {
			return "", err
		}
		return u.Name, nil
	case r.GroupID != 0:
		if g, ok := w.f.groups[r.GroupID]; ok {
			return g.name, nil
		}
		g, err := getByID[Group](tx, bktGroups, r.GroupID)
		if err != nil || g == nil {
			return "", err
		}
		return g.Name, nil
	}
	return RoleDescription(r.AccessLevel), nil
}

func (w *importWriter) mergeRequest(pf *projectFacts, imr *importedMergeRequest) error {
	return w.do(func(tx *bolt.Tx) error {
		if err := w.nested(tx, &imr.nestedRecords); err != nil {
			return err
		}
		mr := imr.mr
		mr.ProjectID = pf.id
		old, err := getByID[MergeRequest](tx, bktMergeRequests, mr.ID)
		if err != nil {
			return err
		}
		var entries []indexEntry
		var stored *time.Time
		if old != nil {
			entries = append(entries, indexEntry{bktMRByIID, pair(old.ProjectID, old.IID)})
			stored = &old.CreatedAt
		}
		w.createdAt(&mr.CreatedAt, stored)
		if mr.UpdatedAt.IsZero() {
			mr.UpdatedAt = mr.CreatedAt
		}
		if err := putKeepingOthers(tx, mr.ID, entries, func() error { return putMergeRequest(tx, &mr) }); err != nil {
			return fmt.Errorf("merge request %d: %w", mr.ID, err)
		}
		w.stats.MergeRequests++
		return nil
	})
}

func (w *importWriter) link(deploymentID, mrID int64) error {
	return w.do(func(tx *bolt.Tx) error {
		if err := putLink(tx, deploymentID, mrID); err != nil {
			return fmt.Errorf("link deployment %d to merge request %d: %w", deploymentID, mrID, err)
		}
		w.stats.Links++
		return nil
	})
}
