package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// namespacePathRE is GitLab's format for usernames and group and project
// paths; the endings it cannot express are checked in validatePath.
var namespacePathRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)

// validatePath checks a username or a group or project path. Usernames
// also may not end in '-', as in GitLab.
func validatePath(field, v string, username bool) error {
	lower := strings.ToLower(v)
	switch {
	case v == "":
		return invalid("%s can't be blank", field)
	case utf8.RuneCountInString(v) > maxNameLength:
		return invalid("%s is too long (maximum is 255 characters)", field)
	case !namespacePathRE.MatchString(v):
		return invalid("%s can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'", field)
	case strings.HasSuffix(v, "."), username && strings.HasSuffix(v, "-"):
		if username {
			return invalid("%s cannot end in '.' or '-'", field)
		}
		return invalid("%s cannot end in '.'", field)
	case strings.HasSuffix(lower, ".git"), strings.HasSuffix(lower, ".atom"):
		return invalid("%s cannot end in '.git' or '.atom'", field)
	}
	return nil
}

// validateName checks a display name and returns it trimmed.
func validateName(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", invalid("%s can't be blank", field)
	case utf8.RuneCountInString(v) > maxNameLength:
		return "", invalid("%s is too long (maximum is 255 characters)", field)
	}
	return v, nil
}

// namespaceTaken reports whether a top-level name is already a username or
// a group's full path: users and groups share GitLab's namespaces.
func namespaceTaken(tx *bolt.Tx, path string) bool {
	key := []byte(strings.ToLower(path))
	return lookupID(tx, bktUserByName, key) != 0 || lookupID(tx, bktGroupByPath, key) != 0
}

func loadUser(tx *bolt.Tx, id int64) (*User, error) {
	u, err := getByID[User](tx, bktUsers, id)
	if err != nil {
		return nil, fmt.Errorf("load user %d: %w", id, err)
	}
	if u == nil {
		return nil, notFound("User")
	}
	return u, nil
}

// NewUser is what an administrator gives to create a user.
type NewUser struct {
	Username, Name string
	Admin          bool
}

// CreateUser adds an active user; only administrators manage accounts.
func (s *Store) CreateUser(ctx context.Context, v Viewer, in NewUser) (*User, error) {
	if err := requireAdmin(v); err != nil {
		return nil, err
	}
	if err := validatePath("Username", in.Username, true); err != nil {
		return nil, err
	}
	name, err := validateName("Name", in.Name)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.update(func(tx *bolt.Tx) error {
		if namespaceTaken(tx, in.Username) {
			return Errorf(EConflict, "Username has already been taken")
		}
		id, err := nextID(tx.Bucket(bktUsers))
		if err != nil {
			return fmt.Errorf("allocate user id: %w", err)
		}
		now := s.Now()
		u = &User{ID: id, Username: in.Username, Name: name, State: UserActive, Admin: in.Admin, CreatedAt: &now}
		if err := putUser(tx, u); err != nil {
			return fmt.Errorf("create user %s: %w", in.Username, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UserUpdate changes the fields that are not nil.
type UserUpdate struct {
	UserID int64
	Name   *string
	State  *UserState
	Admin  *bool
}

// UpdateUser renames, blocks, deactivates, reactivates, promotes or demotes
// a user. An administrator cannot demote, block or deactivate themself, so
// that the instance never loses the admin acting on it.
func (s *Store) UpdateUser(ctx context.Context, v Viewer, in UserUpdate) (*User, error) {
	if err := requireAdmin(v); err != nil {
		return nil, err
	}
	var name string
	if in.Name != nil {
		var err error
		if name, err = validateName("Name", *in.Name); err != nil {
			return nil, err
		}
	}
	if in.State != nil {
		switch *in.State {
		case UserActive, UserBlocked, UserDeactivated:
		default:
			return nil, invalid("State must be one of active, blocked, deactivated")
		}
	}
	self := v.UserID() != 0 && in.UserID == v.UserID()
	if self && in.Admin != nil && !*in.Admin {
		return nil, Errorf(EFailedPrecondition, "You cannot remove your own administrator access")
	}
	if self && in.State != nil && *in.State != UserActive {
		return nil, Errorf(EFailedPrecondition, "You cannot block or deactivate yourself")
	}
	var u *User
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if u, err = loadUser(tx, in.UserID); err != nil {
			return err
		}
		if in.Name != nil {
			u.Name = name
		}
		if in.State != nil {
			u.State = *in.State
		}
		if in.Admin != nil {
			u.Admin = *in.Admin
		}
		if err := putUser(tx, u); err != nil {
			return fmt.Errorf("update user %d: %w", u.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// CreateGroup adds a top-level group; its path becomes a namespace that
// members can create projects in.
func (s *Store) CreateGroup(ctx context.Context, v Viewer, name, path string) (*Group, error) {
	if err := requireAdmin(v); err != nil {
		return nil, err
	}
	name, err := validateName("Name", name)
	if err != nil {
		return nil, err
	}
	if err := validatePath("Path", path, false); err != nil {
		return nil, err
	}
	var g *Group
	err = s.update(func(tx *bolt.Tx) error {
		if namespaceTaken(tx, path) {
			return Errorf(EConflict, "Path has already been taken")
		}
		id, err := nextID(tx.Bucket(bktGroups))
		if err != nil {
			return fmt.Errorf("allocate group id: %w", err)
		}
		g = &Group{ID: id, Name: name, Path: path, FullPath: path}
		if err := putGroup(tx, g); err != nil {
			return fmt.Errorf("create group %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// AddGroupMember makes a user a member of a group; adding a member again
// changes nothing.
func (s *Store) AddGroupMember(ctx context.Context, v Viewer, groupID, userID int64) (*Group, error) {
	if err := requireAdmin(v); err != nil {
		return nil, err
	}
	var g *Group
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if g, err = getByID[Group](tx, bktGroups, groupID); err != nil {
			return fmt.Errorf("load group %d: %w", groupID, err)
		}
		if g == nil {
			return notFound("Group")
		}
		if _, err := loadUser(tx, userID); err != nil {
			return err
		}
		if err := putGroupMember(tx, groupID, userID); err != nil {
			return fmt.Errorf("add user %d to group %d: %w", userID, groupID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// NewProject is what a user gives to create a project. Namespace is a group's
// full path or a username; nil means the caller's own namespace.
type NewProject struct {
	Name, Path        string
	Namespace         *string
	Visibility        Visibility // default private
	AllowSelfApproval bool
}

// resolveNamespace finds the full path a new project of v lives under: the
// caller's own namespace, a group they belong to, or, for an admin, any
// group or user namespace.
func resolveNamespace(tx *bolt.Tx, v Viewer, ns *string) (string, error) {
	if ns == nil || strings.TrimSpace(*ns) == "" {
		if v.UserID() == 0 {
			return "", invalid("Namespace can't be blank")
		}
		return v.User.Username, nil
	}
	key := []byte(strings.ToLower(*ns))
	if id := lookupID(tx, bktGroupByPath, key); id != 0 {
		g, err := getByID[Group](tx, bktGroups, id)
		if err != nil {
			return "", fmt.Errorf("load group %d: %w", id, err)
		}
		if g == nil {
			return "", notFound("Namespace")
		}
		if !v.Admin() && tx.Bucket(bktGroupMembers).Get(pair(g.ID, v.UserID())) == nil {
			return "", Errorf(EForbidden, "You are not allowed to create projects in this namespace")
		}
		return g.FullPath, nil
	}
	u, err := userByUsername(tx, *ns)
	if err != nil {
		return "", fmt.Errorf("load user %s: %w", *ns, err)
	}
	switch {
	case u == nil:
		return "", notFound("Namespace")
	case !v.Admin() && u.ID != v.UserID():
		return "", Errorf(EForbidden, "You are not allowed to create projects in this namespace")
	}
	return u.Username, nil
}

// CreateProject creates a project under a namespace, with its creator as
// its OWNER; any signed-in user may.
func (s *Store) CreateProject(ctx context.Context, v Viewer, in NewProject) (*Project, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	name, err := validateName("Name", in.Name)
	if err != nil {
		return nil, err
	}
	if err := validatePath("Path", in.Path, false); err != nil {
		return nil, err
	}
	vis := in.Visibility
	switch vis {
	case "":
		vis = Private
	case Private, Internal, Public:
	default:
		return nil, invalid("Visibility must be one of private, internal, public")
	}
	var p *Project
	err = s.update(func(tx *bolt.Tx) error {
		ns, err := resolveNamespace(tx, v, in.Namespace)
		if err != nil {
			return err
		}
		fullPath := ns + "/" + in.Path
		if lookupID(tx, bktProjectByPath, []byte(strings.ToLower(fullPath))) != 0 {
			return Errorf(EConflict, "Path has already been taken")
		}
		id, err := nextID(tx.Bucket(bktProjects))
		if err != nil {
			return fmt.Errorf("allocate project id: %w", err)
		}
		p = &Project{
			ID: id, Name: name, Path: in.Path, FullPath: fullPath, Visibility: vis,
			CreatedAt: s.Now(), AllowSelfApproval: in.AllowSelfApproval,
		}
		if err := putProject(tx, p); err != nil {
			return fmt.Errorf("create project %s: %w", fullPath, err)
		}
		if v.UserID() == 0 {
			return nil
		}
		if err := putProjectMember(tx, p.ID, v.UserID(), Owner); err != nil {
			return fmt.Errorf("make user %d owner of project %d: %w", v.UserID(), p.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ownerCount counts a project's OWNER members, so the last one is kept.
func ownerCount(tx *bolt.Tx, projectID int64) int {
	n := 0
	prefix := u64(projectID)
	c := tx.Bucket(bktProjectMembers).Cursor()
	for k, val := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, val = c.Next() {
		if AccessLevel(readU64(val)) == Owner {
			n++
		}
	}
	return n
}

// checkMemberChange enforces the rules shared by adding, changing and
// removing a member: a caller never acts on a member above their own role,
// and a project never loses its last OWNER.
func checkMemberChange(tx *bolt.Tx, acc ProjectAccess, projectID int64, current, next AccessLevel) error {
	if !acc.Admin && current > acc.Level {
		return Errorf(EForbidden, "You cannot change a member whose role is higher than your own")
	}
	if current == Owner && next != Owner && ownerCount(tx, projectID) == 1 {
		return Errorf(EFailedPrecondition, "A project must keep at least one Owner")
	}
	return nil
}

// AddProjectMember gives a user a role in a project, or changes the role of
// a member. Maintainers and owners never grant more than their own role.
func (s *Store) AddProjectMember(ctx context.Context, v Viewer, projectID, userID int64, level AccessLevel) (*Project, error) {
	var p *Project
	err := s.update(func(tx *bolt.Tx) error {
		var (
			acc ProjectAccess
			err error
		)
		if p, acc, err = authorize(tx, v, projectID, Maintainer); err != nil {
			return err
		}
		if !level.Valid() {
			return invalid("Access level must be one of 10, 20, 30, 40, 50")
		}
		if !acc.Admin && level > acc.Level {
			return Errorf(EForbidden, "You cannot grant a role higher than your own")
		}
		if _, err := loadUser(tx, userID); err != nil {
			return err
		}
		if err := checkMemberChange(tx, acc, projectID, memberLevel(tx, projectID, userID), level); err != nil {
			return err
		}
		if err := putProjectMember(tx, projectID, userID, level); err != nil {
			return fmt.Errorf("add user %d to project %d: %w", userID, projectID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// RemoveProjectMember takes a user's role in a project away; the last OWNER
// stays.
func (s *Store) RemoveProjectMember(ctx context.Context, v Viewer, projectID, userID int64) (*Project, error) {
	var p *Project
	err := s.update(func(tx *bolt.Tx) error {
		var (
			acc ProjectAccess
			err error
		)
		if p, acc, err = authorize(tx, v, projectID, Maintainer); err != nil {
			return err
		}
		current := memberLevel(tx, projectID, userID)
		if current == NoAccess {
			return notFound("Member")
		}
		if err := checkMemberChange(tx, acc, projectID, current, NoAccess); err != nil {
			return err
		}
		if err := putProjectMember(tx, projectID, userID, NoAccess); err != nil {
			return fmt.Errorf("remove user %d from project %d: %w", userID, projectID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkNewToken validates a token request before any write: who may mint
// it, its name, and an expiry in the future (kept in UTC).
func checkNewToken(v Viewer, userID int64, name string, expiresAt *time.Time, now time.Time) (string, *time.Time, error) {
	if err := requireUser(v); err != nil {
		return "", nil, err
	}
	if !v.Admin() && userID != v.UserID() {
		return "", nil, Errorf(EForbidden, "You can only create access tokens for yourself")
	}
	name, err := validateName("Name", name)
	if err != nil {
		return "", nil, err
	}
	if expiresAt == nil {
		return name, nil, nil
	}
	if !expiresAt.After(now) {
		return "", nil, invalid("Expiration date must be in the future")
	}
	t := expiresAt.UTC()
	return name, &t, nil
}

// mintToken stores a new token for an existing user and returns its secret.
func mintToken(tx *bolt.Tx, userID int64, name string, expiresAt *time.Time, now time.Time) (string, *AccessToken, error) {
	if _, err := loadUser(tx, userID); err != nil {
		return "", nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", nil, fmt.Errorf("make token secret: %w", err)
	}
	tok, err := insertToken(tx, userID, name, hashToken(secret), expiresAt, now)
	if err != nil {
		return "", nil, fmt.Errorf("create access token for user %d: %w", userID, err)
	}
	return secret, tok, nil
}

// revokeToken marks a token revoked; revoking twice is harmless. A token
// that v may not manage is reported as not found.
func revokeToken(tx *bolt.Tx, v Viewer, tokenID int64) (*AccessToken, error) {
	tok, err := getByID[AccessToken](tx, bktTokens, tokenID)
	if err != nil {
		return nil, fmt.Errorf("load access token %d: %w", tokenID, err)
	}
	if tok == nil || !v.Admin() && tok.UserID != v.UserID() {
		return nil, notFound("Access token")
	}
	if tok.Revoked {
		return tok, nil
	}
	tok.Revoked = true
	if err := putJSON(tx, bktTokens, u64(tok.ID), tok); err != nil {
		return nil, fmt.Errorf("revoke access token %d: %w", tok.ID, err)
	}
	return tok, nil
}
