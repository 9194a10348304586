package store_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/store"
)

// writesDocument is the small world the write tests start from: project 1
// (platform/app, private) has one member per role, project 2 (nora/other,
// private) belongs to the outsider nora, and the group platform has dave.
const writesDocument = `{
  "users": [
    {"id": 1, "username": "root", "name": "Administrator", "admin": true},
    {"id": 2, "username": "gina", "name": "Gina Guest"},
    {"id": 3, "username": "rita", "name": "Rita Reporter"},
    {"id": 4, "username": "dave", "name": "Dave Developer"},
    {"id": 5, "username": "mona", "name": "Mona Maintainer"},
    {"id": 6, "username": "olga", "name": "Olga Owner"},
    {"id": 7, "username": "nora", "name": "Nora Outsider"},
    {"id": 8, "username": "una", "name": "Una Unaffiliated"}
  ],
  "groups": [
    {"id": 100, "name": "Platform", "path": "platform", "full_path": "platform", "members": [{"user_id": 4}]}
  ],
  "projects": [
    {"id": 1, "name": "App", "path": "app", "path_with_namespace": "platform/app", "visibility": "private",
     "created_at": "2024-01-01T00:00:00Z",
     "members": [
       {"user_id": 2, "access_level": 10}, {"user_id": 3, "access_level": 20}, {"user_id": 4, "access_level": 30},
       {"user_id": 5, "access_level": 40}, {"user_id": 6, "access_level": 50}
     ],
     "environments": [{"id": 9, "name": "production", "state": "available", "created_at": "2024-01-01T00:00:00Z"}],
     "deployments": [
       {"id": 41, "iid": 1, "ref": "main", "sha": "99d03678b90d914dbb1b109132516d71a4a03ea8", "status": "success",
        "created_at": "2024-01-02T00:00:00Z", "finished_at": "2024-01-02T00:05:00Z",
        "user": {"id": 4}, "environment": {"id": 9}},
       {"id": 42, "iid": 2, "ref": "main", "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a", "status": "running",
        "created_at": "2024-01-03T00:00:00Z", "user": {"id": 4}, "environment": {"id": 9}}
     ],
     "merge_requests": [
       {"id": 7, "iid": 1, "title": "Add login", "state": "opened", "source_branch": "login", "target_branch": "main",
        "author": {"id": 4}, "created_at": "2024-01-01T01:00:00Z", "updated_at": "2024-01-01T01:00:00Z"},
       {"id": 8, "iid": 2, "title": "WIP: rework", "state": "opened", "draft": true, "source_branch": "rework",
        "target_branch": "main", "author": {"id": 4}, "created_at": "2024-01-01T02:00:00Z"},
       {"id": 9, "iid": 3, "title": "Fix typo", "state": "merged", "source_branch": "typo", "target_branch": "main",
        "author": {"id": 3}, "created_at": "2024-01-01T03:00:00Z", "merged_at": "2024-01-01T04:00:00Z",
        "merge_commit_sha": "99d03678b90d914dbb1b109132516d71a4a03ea8"}
     ],
     "deployment_merge_requests": [{"deployment_id": 41, "merge_request_id": 9}]
    },
    {"id": 2, "name": "Other", "path": "other", "path_with_namespace": "nora/other", "visibility": "private",
     "created_at": "2024-01-01T00:00:00Z",
     "members": [{"user_id": 7, "access_level": 50}],
     "environments": [{"id": 20, "name": "production", "state": "available", "created_at": "2024-01-01T00:00:00Z"}],
     "deployments": [
       {"id": 50, "iid": 1, "ref": "main", "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a", "status": "success",
        "created_at": "2024-01-02T00:00:00Z", "finished_at": "2024-01-02T00:05:00Z", "environment": {"id": 20}}
     ],
     "merge_requests": [
       {"id": 20, "iid": 1, "title": "Elsewhere", "state": "opened", "source_branch": "x", "target_branch": "main",
        "author": {"id": 7}, "created_at": "2024-01-01T01:00:00Z"}
     ]
    }
  ]
}`

// Ids of the fixture's users, named by their role in project 1.
const (
	rootID     int64 = 1
	guestID    int64 = 2
	reporterID int64 = 3
	devID      int64 = 4
	maintID    int64 = 5
	ownerID    int64 = 6
	outsiderID int64 = 7
	loneID     int64 = 8 // in no project and no group
)

// fixtureNow is the fixed "now" of the write tests' clock.
var fixtureNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// openWritesStore opens a store at fixtureNow holding writesDocument; its
// file is checked for consistency (s.Check) when the test ends.
func openWritesStore(t *testing.T) (*store.Store, *clock) {
	t.Helper()
	clock := &clock{now: fixtureNow}
	s := openStore(t, clock.Now)
	if _, err := s.Import(context.Background(), strings.NewReader(writesDocument)); err != nil {
		t.Fatalf("import fixture: %v", err)
	}
	return s, clock
}

// viewerOf signs in as a stored user.
func viewerOf(t *testing.T, s *store.Store, id int64) store.Viewer {
	t.Helper()
	u := must(s.Users(context.Background(), []int64{id}))[0]
	if u == nil {
		t.Fatalf("no user %d", id)
	}
	return store.Viewer{User: u}
}

// roleCase is one caller of a role table; id 0 is anonymous.
type roleCase struct {
	role string
	id   int64
}

// projectRoles are the callers every role table runs, with their relation
// to project 1.
var projectRoles = []roleCase{
	{"Anonymous", 0}, {"Guest", guestID}, {"Reporter", reporterID}, {"Developer", devID},
	{"Maintainer", maintID}, {"Owner", ownerID}, {"NonMemberOfPrivateProject", outsiderID}, {"Admin", rootID},
}

func (r roleCase) viewer(t *testing.T, s *store.Store) store.Viewer {
	t.Helper()
	if r.id == 0 {
		return store.Viewer{}
	}
	return viewerOf(t, s, r.id)
}

// wantErrCode fails unless err has the code want (nil: no error).
func wantErrCode(t *testing.T, err error, want store.Code) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("got error %v (%s), want none", err, store.ErrorCode(err))
	case want != "" && err == nil:
		t.Fatalf("got no error, want %s", want)
	case want != "" && store.ErrorCode(err) != want:
		t.Fatalf("got error %q (%s), want %s", err, store.ErrorCode(err), want)
	}
}

// wantErrMessage fails unless err has the code and exact message.
func wantErrMessage(t *testing.T, err error, code store.Code, msg string) {
	t.Helper()
	wantErrCode(t, err, code)
	if got := err.Error(); got != msg {
		t.Fatalf("got message %q, want %q", got, msg)
	}
}

// writesState reads back, through the read API, everything the write tests
// can change, as one comparable string.
func writesState(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 41, 42, 50, 100, 101}
	state := map[string]any{
		"users":    must(s.Users(ctx, ids)),
		"groups":   must(s.Groups(ctx, ids)),
		"projects": must(s.Projects(ctx, ids)),
		"mrs":      must(s.MergeRequests(ctx, ids)),
		"tokens":   must(s.AccessTokens(ctx, ids)),
		"groupIDs": must(s.UserGroupIDs(ctx, ids)),
	}
	var members []store.MemberKey
	for _, p := range []int64{1, 2, 3} {
		for _, u := range ids {
			members = append(members, store.MemberKey{ProjectID: p, UserID: u})
		}
	}
	state["members"] = must(s.MemberLevels(ctx, members))
	var mrQueries []store.MergeRequestQuery
	for _, d := range []int64{41, 42, 50} {
		mrQueries = append(mrQueries, store.MergeRequestQuery{DeploymentID: d})
	}
	for _, p := range []int64{1, 2, 3} {
		mrQueries = append(mrQueries, store.MergeRequestQuery{ProjectID: p})
	}
	mrPages, errs := s.ListMergeRequests(ctx, mrQueries)
	mustNoErrs(t, errs)
	var dQueries []store.DeploymentQuery
	for _, mr := range []int64{7, 8, 9, 20} {
		dQueries = append(dQueries, store.DeploymentQuery{ProjectID: 1, MergeRequestID: mr}, store.DeploymentQuery{ProjectID: 2, MergeRequestID: mr})
	}
	dPages, errs := s.ListDeployments(ctx, dQueries)
	mustNoErrs(t, errs)
	state["mrPages"], state["deploymentPages"] = mrPages, dPages
	data, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// unchanged runs a call that must fail and checks that it wrote nothing.
func unchanged(t *testing.T, s *store.Store, call func() error) error {
	t.Helper()
	before := writesState(t, s)
	err := call()
	if err == nil {
		t.Fatal("got no error, want a failure")
	}
	if after := writesState(t, s); after != before {
		t.Fatalf("a failed call changed the store:\n got %s\nwant %s", after, before)
	}
	return err
}

// adminOnlyCode is the expected outcome of an admin-only call per role.
func adminOnlyCode(r roleCase) store.Code {
	switch r.id {
	case 0:
		return store.EUnauthenticated
	case rootID:
		return ""
	}
	return store.EForbidden
}

// Ensure that only administrators create users, that usernames follow
// GitLab's rules and are unique, and that new users are active.
func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				in := store.NewUser{Username: "newbie", Name: "New Bie"}
				if want := adminOnlyCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.CreateUser(ctx, r.viewer(t, s), in); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.CreateUser(ctx, r.viewer(t, s), in)
				wantErrCode(t, err, "")
			})
		}
	})

	t.Run("ErrAnonymousBeforeValidation", func(t *testing.T) {
		s, _ := openWritesStore(t)
		_, err := s.CreateUser(ctx, store.Viewer{}, store.NewUser{})
		wantErrCode(t, err, store.EUnauthenticated)
		_, err = s.CreateUser(ctx, viewerOf(t, s, devID), store.NewUser{})
		wantErrCode(t, err, store.EForbidden)
	})

	s, _ := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	invalid := []struct {
		name, username, fullName, want string
	}{
		{"ErrUsernameBlank", "", "X", "Username can't be blank"},
		{"ErrUsernameTooLong", strings.Repeat("a", 256), "X", "Username is too long (maximum is 255 characters)"},
		{"ErrUsernameStartsWithDash", "-abc", "X", "Username can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrUsernameStartsWithDot", ".abc", "X", "Username can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrUsernameHasSpace", "a b", "X", "Username can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrUsernameHasSlash", "a/b", "X", "Username can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrUsernameEndsWithDot", "abc.", "X", "Username cannot end in '.' or '-'"},
		{"ErrUsernameEndsWithDash", "abc-", "X", "Username cannot end in '.' or '-'"},
		{"ErrUsernameEndsWithGit", "abc.git", "X", "Username cannot end in '.git' or '.atom'"},
		{"ErrUsernameEndsWithAtom", "abc.ATOM", "X", "Username cannot end in '.git' or '.atom'"},
		{"ErrNameBlank", "abc", "  ", "Name can't be blank"},
		{"ErrNameTooLong", "abc", strings.Repeat("n", 256), "Name is too long (maximum is 255 characters)"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error {
				_, err := s.CreateUser(ctx, admin, store.NewUser{Username: tc.username, Name: tc.fullName})
				return err
			})
			wantErrMessage(t, err, store.EInvalid, tc.want)
		})
	}
	for _, taken := range []string{"root", "ROOT", "Dave", "platform", "PLATFORM"} {
		t.Run("ErrUsernameTaken/"+taken, func(t *testing.T) {
			err := unchanged(t, s, func() error {
				_, err := s.CreateUser(ctx, admin, store.NewUser{Username: taken, Name: "X"})
				return err
			})
			wantErrMessage(t, err, store.EConflict, "Username has already been taken")
		})
	}

	t.Run("CreatesActiveUserWithNextID", func(t *testing.T) {
		u, err := s.CreateUser(ctx, admin, store.NewUser{Username: "a.b-c_d", Name: "  Abc  ", Admin: true})
		wantErrCode(t, err, "")
		want := store.User{ID: 9, Username: "a.b-c_d", Name: "Abc", State: store.UserActive, Admin: true, CreatedAt: &fixtureNow}
		if got := *u; !jsonEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		stored := must(s.UserByUsername(ctx, "A.B-C_D"))
		if stored == nil || !jsonEqual(*stored, want) {
			t.Fatalf("got stored %+v, want %+v", stored, want)
		}
	})
}

// jsonEqual compares records as they are stored: pointer fields by value.
func jsonEqual[T any](a, b T) bool {
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	return string(aj) == string(bj)
}

// Ensure that administrators rename, block and promote users, that blocked
// and deactivated users stop authenticating, and that an admin never
// demotes or blocks themself.
func TestUpdateUser(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				in := store.UserUpdate{UserID: loneID, Name: ptr("Renamed")}
				if want := adminOnlyCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.UpdateUser(ctx, r.viewer(t, s), in); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.UpdateUser(ctx, r.viewer(t, s), in)
				wantErrCode(t, err, "")
			})
		}
	})

	s, _ := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	failures := []struct {
		name string
		in   store.UserUpdate
		code store.Code
		want string
	}{
		{"ErrUserNotFound", store.UserUpdate{UserID: 999, Name: ptr("X")}, store.ENotFound, "User not found"},
		{"ErrNameBlank", store.UserUpdate{UserID: loneID, Name: ptr(" ")}, store.EInvalid, "Name can't be blank"},
		{"ErrUnknownState", store.UserUpdate{UserID: loneID, State: ptr(store.UserState("banned"))}, store.EInvalid, "State must be one of active, blocked, deactivated"},
		{"ErrAdminDemotesThemself", store.UserUpdate{UserID: rootID, Admin: ptr(false)}, store.EFailedPrecondition, "You cannot remove your own administrator access"},
		{"ErrAdminBlocksThemself", store.UserUpdate{UserID: rootID, State: ptr(store.UserBlocked)}, store.EFailedPrecondition, "You cannot block or deactivate yourself"},
		{"ErrAdminDeactivatesThemself", store.UserUpdate{UserID: rootID, State: ptr(store.UserDeactivated), Name: ptr("Gone")}, store.EFailedPrecondition, "You cannot block or deactivate yourself"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.UpdateUser(ctx, admin, tc.in); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("ChangesOnlyGivenFields", func(t *testing.T) {
		u, err := s.UpdateUser(ctx, admin, store.UserUpdate{UserID: loneID, Name: ptr(" Una Renamed "), Admin: ptr(true)})
		wantErrCode(t, err, "")
		if u.Name != "Una Renamed" || !u.Admin || u.State != store.UserActive || u.Username != "una" {
			t.Fatalf("got %+v, want renamed active admin una", u)
		}
		if got := must(s.Users(ctx, []int64{loneID}))[0]; !jsonEqual(*got, *u) {
			t.Fatalf("got stored %+v, want %+v", got, u)
		}
	})

	t.Run("AdminMayKeepThemselfActiveAdmin", func(t *testing.T) {
		_, err := s.UpdateUser(ctx, admin, store.UserUpdate{UserID: rootID, Name: ptr("Root"), State: ptr(store.UserActive), Admin: ptr(true)})
		wantErrCode(t, err, "")
	})

	for _, state := range []store.UserState{store.UserBlocked, store.UserDeactivated} {
		t.Run("StopsTokensWhen/"+string(state), func(t *testing.T) {
			secret, _, err := s.CreateAccessToken(ctx, admin, devID, "ci", nil)
			wantErrCode(t, err, "")
			if _, err := s.Authenticate(ctx, secret); err != nil {
				t.Fatalf("got %v before blocking, want the token to authenticate", err)
			}
			_, err = s.UpdateUser(ctx, admin, store.UserUpdate{UserID: devID, State: &state})
			wantErrCode(t, err, "")
			_, err = s.Authenticate(ctx, secret)
			wantErrCode(t, err, store.EUnauthenticated)

			_, err = s.UpdateUser(ctx, admin, store.UserUpdate{UserID: devID, State: ptr(store.UserActive)})
			wantErrCode(t, err, "")
			if u, err := s.Authenticate(ctx, secret); err != nil || u.ID != devID {
				t.Fatalf("got %v, %v after reactivating, want user %d", u, err, devID)
			}
		})
	}
}

// Ensure that users mint their own tokens, admins anyone's, and that a new
// token authenticates until it expires.
func TestCreateAccessToken(t *testing.T) {
	ctx := context.Background()
	t.Run("RolesForOwnToken", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if r.id == 0 {
					err := unchanged(t, s, func() error { _, _, err := s.CreateAccessToken(ctx, store.Viewer{}, devID, "ci", nil); return err })
					wantErrCode(t, err, store.EUnauthenticated)
					return
				}
				secret, tok, err := s.CreateAccessToken(ctx, r.viewer(t, s), r.id, "ci", nil)
				wantErrCode(t, err, "")
				if tok.UserID != r.id || tok.Revoked || !tok.CreatedAt.Equal(fixtureNow) {
					t.Fatalf("got %+v, want a live token of user %d created now", tok, r.id)
				}
				if u, err := s.Authenticate(ctx, secret); err != nil || u.ID != r.id {
					t.Fatalf("got %v, %v, want user %d", u, err, r.id)
				}
			})
		}
	})
	t.Run("RolesForAnotherUsersToken", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := adminOnlyCode(r); want != "" {
					err := unchanged(t, s, func() error { _, _, err := s.CreateAccessToken(ctx, r.viewer(t, s), loneID, "ci", nil); return err })
					wantErrCode(t, err, want)
					return
				}
				secret, _, err := s.CreateAccessToken(ctx, r.viewer(t, s), loneID, "ci", nil)
				wantErrCode(t, err, "")
				if u, err := s.Authenticate(ctx, secret); err != nil || u.ID != loneID {
					t.Fatalf("got %v, %v, want user %d", u, err, loneID)
				}
			})
		}
	})

	s, clock := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	failures := []struct {
		name    string
		userID  int64
		tokName string
		expires *time.Time
		code    store.Code
		want    string
	}{
		{"ErrUserNotFound", 999, "ci", nil, store.ENotFound, "User not found"},
		{"ErrNameBlank", devID, " ", nil, store.EInvalid, "Name can't be blank"},
		{"ErrExpiresNow", devID, "ci", ptr(fixtureNow), store.EInvalid, "Expiration date must be in the future"},
		{"ErrExpiresInThePast", devID, "ci", ptr(fixtureNow.Add(-time.Hour)), store.EInvalid, "Expiration date must be in the future"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error {
				_, _, err := s.CreateAccessToken(ctx, admin, tc.userID, tc.tokName, tc.expires)
				return err
			})
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("ExpiringTokenStopsAtExpiry", func(t *testing.T) {
		expires := fixtureNow.Add(time.Hour).In(time.FixedZone("CET", 3600))
		secret, tok, err := s.CreateAccessToken(ctx, viewerOf(t, s, devID), devID, " laptop ", &expires)
		wantErrCode(t, err, "")
		if tok.Name != "laptop" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(expires) || tok.ExpiresAt.Location() != time.UTC {
			t.Fatalf("got %+v, want name laptop expiring at %v in UTC", tok, expires)
		}
		if stored := must(s.AccessTokens(ctx, []int64{tok.ID}))[0]; stored == nil || !stored.ExpiresAt.Equal(expires) {
			t.Fatalf("got stored %+v, want it expiring at %v", stored, expires)
		}
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatalf("got %v before expiry, want the token to authenticate", err)
		}
		clock.Set(expires)
		_, err = s.Authenticate(ctx, secret)
		wantErrCode(t, err, store.EUnauthenticated)
	})
}

// Ensure that a revoked token stops at once, and that a user revokes only
// their own tokens while an admin revokes anyone's.
func TestRevokeAccessToken(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				_, lone, err := s.CreateAccessToken(ctx, store.System, loneID, "lone", nil)
				wantErrCode(t, err, "")
				if r.id == 0 {
					err := unchanged(t, s, func() error { _, err := s.RevokeAccessToken(ctx, store.Viewer{}, lone.ID); return err })
					wantErrCode(t, err, store.EUnauthenticated)
					return
				}
				if r.id != rootID {
					err := unchanged(t, s, func() error { _, err := s.RevokeAccessToken(ctx, r.viewer(t, s), lone.ID); return err })
					wantErrMessage(t, err, store.ENotFound, "Access token not found")
					_, own, err := s.CreateAccessToken(ctx, r.viewer(t, s), r.id, "own", nil)
					wantErrCode(t, err, "")
					got, err := s.RevokeAccessToken(ctx, r.viewer(t, s), own.ID)
					wantErrCode(t, err, "")
					if !got.Revoked {
						t.Fatalf("got %+v, want it revoked", got)
					}
					return
				}
				got, err := s.RevokeAccessToken(ctx, r.viewer(t, s), lone.ID)
				wantErrCode(t, err, "")
				if !got.Revoked {
					t.Fatalf("got %+v, want it revoked", got)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	t.Run("ErrTokenNotFound", func(t *testing.T) {
		err := unchanged(t, s, func() error { _, err := s.RevokeAccessToken(ctx, store.System, 999); return err })
		wantErrMessage(t, err, store.ENotFound, "Access token not found")
	})
	t.Run("StopsAtOnceAndOnlyThatToken", func(t *testing.T) {
		secret, tok, err := s.CreateAccessToken(ctx, dev, devID, "laptop", nil)
		wantErrCode(t, err, "")
		other, _, err := s.CreateAccessToken(ctx, dev, devID, "ci", nil)
		wantErrCode(t, err, "")
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatalf("got %v, want the token to authenticate", err)
		}
		if _, err := s.RevokeAccessToken(ctx, dev, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.Authenticate(ctx, secret)
		wantErrCode(t, err, store.EUnauthenticated)
		if _, err := s.Authenticate(ctx, other); err != nil {
			t.Fatalf("got %v, want the other token to keep working", err)
		}
		if stored := must(s.AccessTokens(ctx, []int64{tok.ID}))[0]; !stored.Revoked {
			t.Fatalf("got stored %+v, want it revoked", stored)
		}
		again, err := s.RevokeAccessToken(ctx, dev, tok.ID)
		wantErrCode(t, err, "")
		if !again.Revoked {
			t.Fatalf("got %+v revoking twice, want it still revoked", again)
		}
	})
}

// Ensure that a token's sign-in is read once and then kept, until a token
// or a user is written or the token's lastUsedAt is due; and that what
// ends a token ends it for every request that starts after, whatever
// requests run alongside.
func TestAuthenticateKeepsSignIns(t *testing.T) {
	ctx := context.Background()
	s, clock := openWritesStore(t)
	dev := viewerOf(t, s, devID)
	secret, _, err := s.CreateAccessToken(ctx, dev, devID, "laptop", nil)
	wantErrCode(t, err, "")
	signIn := func(t *testing.T) (reads int64) {
		t.Helper()
		before := s.Reads()
		if u, err := s.Authenticate(ctx, secret); err != nil || u.ID != devID {
			t.Fatalf("got %v, %v, want user %d", u, err, devID)
		}
		return s.Reads() - before
	}
	signIn(t) // touches lastUsedAt: a credential write
	for _, step := range []struct {
		name  string
		do    func(t *testing.T)
		reads int64
	}{
		{"ReadOnceAfterTheTouch", func(*testing.T) {}, 1},
		{"KeptThen", func(*testing.T) {}, 0},
		{"ReadAgainAfterAnotherUsersTokenIsMade", func(t *testing.T) {
			_, _, err := s.CreateAccessToken(ctx, store.System, loneID, "ci", nil)
			wantErrCode(t, err, "")
		}, 1},
		{"KeptAgain", func(*testing.T) {}, 0},
		{"KeptWhileAnotherStoreWritesTokens", func(t *testing.T) {
			other, _ := openWritesStore(t)
			_, _, err := other.CreateAccessToken(ctx, store.System, devID, "elsewhere", nil)
			wantErrCode(t, err, "")
		}, 0},
		{"ReadAgainAfterAUserIsRenamed", func(t *testing.T) {
			_, err := s.UpdateUser(ctx, viewerOf(t, s, rootID), store.UserUpdate{UserID: loneID, Name: ptr("Lone Again")})
			wantErrCode(t, err, "")
		}, 1},
		{"ReadWhenLastUsedAtIsDue", func(*testing.T) { clock.Set(fixtureNow.Add(11 * time.Minute)) }, 1},
		{"ReadOnceAfterThatTouch", func(*testing.T) {}, 1},
		{"KeptAfterThat", func(*testing.T) {}, 0},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.do(t)
			if got := signIn(t); got != step.reads {
				t.Fatalf("read %d transactions, want %d", got, step.reads)
			}
		})
	}

	t.Run("ExpiresWhileKept", func(t *testing.T) {
		expires := clock.Now().Add(5 * time.Minute) // before lastUsedAt is due
		secret, _, err := s.CreateAccessToken(ctx, dev, devID, "short", &expires)
		wantErrCode(t, err, "")
		for range 3 { // touched, read, kept
			if _, err := s.Authenticate(ctx, secret); err != nil {
				t.Fatal(err)
			}
		}
		before := s.Reads()
		if _, err := s.Authenticate(ctx, secret); err != nil || s.Reads() != before {
			t.Fatalf("got %v after %d reads, want the kept sign-in", err, s.Reads()-before)
		}
		clock.Set(expires)
		_, err = s.Authenticate(ctx, secret)
		wantErrCode(t, err, store.EUnauthenticated)
	})

	t.Run("RevokedUnderConcurrentSignIns", func(t *testing.T) {
		for range 50 {
			secret, tok, err := s.CreateAccessToken(ctx, dev, devID, "ci", nil)
			wantErrCode(t, err, "")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
							s.Authenticate(ctx, secret)
						}
					}
				})
			}
			if _, err := s.Authenticate(ctx, secret); err != nil {
				t.Fatal(err)
			}
			_, err = s.RevokeAccessToken(ctx, dev, tok.ID)
			wantErrCode(t, err, "")
			_, err = s.Authenticate(ctx, secret)
			close(stop)
			wg.Wait()
			wantErrCode(t, err, store.EUnauthenticated)
		}
	})
}

// Ensure that admins create top-level groups whose paths are unique among
// groups and users.
func TestCreateGroup(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := adminOnlyCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.CreateGroup(ctx, r.viewer(t, s), "Infra", "infra"); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.CreateGroup(ctx, r.viewer(t, s), "Infra", "infra")
				wantErrCode(t, err, "")
			})
		}
	})

	s, _ := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	failures := []struct {
		name, groupName, path string
		code                  store.Code
		want                  string
	}{
		{"ErrNameBlank", "", "infra", store.EInvalid, "Name can't be blank"},
		{"ErrPathBlank", "Infra", "", store.EInvalid, "Path can't be blank"},
		{"ErrPathTooLong", "Infra", strings.Repeat("p", 256), store.EInvalid, "Path is too long (maximum is 255 characters)"},
		{"ErrPathNested", "Infra", "a/b", store.EInvalid, "Path can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrPathStartsWithDash", "Infra", "-infra", store.EInvalid, "Path can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrPathEndsWithDot", "Infra", "infra.", store.EInvalid, "Path cannot end in '.'"},
		{"ErrPathEndsWithGit", "Infra", "infra.git", store.EInvalid, "Path cannot end in '.git' or '.atom'"},
		{"ErrPathTaken", "Infra", "platform", store.EConflict, "Path has already been taken"},
		{"ErrPathTakenIgnoringCase", "Infra", "PlatForm", store.EConflict, "Path has already been taken"},
		{"ErrPathIsAUsername", "Infra", "Dave", store.EConflict, "Path has already been taken"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.CreateGroup(ctx, admin, tc.groupName, tc.path); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("CreatesTopLevelGroup", func(t *testing.T) {
		g, err := s.CreateGroup(ctx, admin, " Infra Team ", "infra-team")
		wantErrCode(t, err, "")
		want := store.Group{ID: 101, Name: "Infra Team", Path: "infra-team", FullPath: "infra-team"}
		if *g != want {
			t.Fatalf("got %+v, want %+v", *g, want)
		}
		if got := must(s.GroupByPath(ctx, "INFRA-TEAM")); got == nil || *got != want {
			t.Fatalf("got stored %+v, want %+v", got, want)
		}
		_, err = s.CreateUser(ctx, admin, store.NewUser{Username: "infra-team", Name: "X"})
		wantErrMessage(t, err, store.EConflict, "Username has already been taken")
	})
}

// Ensure that admins add users to groups, once.
func TestAddGroupMember(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := adminOnlyCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.AddGroupMember(ctx, r.viewer(t, s), 100, loneID); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.AddGroupMember(ctx, r.viewer(t, s), 100, loneID)
				wantErrCode(t, err, "")
			})
		}
	})

	s, _ := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	t.Run("ErrGroupNotFound", func(t *testing.T) {
		err := unchanged(t, s, func() error { _, err := s.AddGroupMember(ctx, admin, 999, loneID); return err })
		wantErrMessage(t, err, store.ENotFound, "Group not found")
	})
	t.Run("ErrUserNotFound", func(t *testing.T) {
		err := unchanged(t, s, func() error { _, err := s.AddGroupMember(ctx, admin, 100, 999); return err })
		wantErrMessage(t, err, store.ENotFound, "User not found")
	})
	t.Run("AddsOnce", func(t *testing.T) {
		for range 2 {
			g, err := s.AddGroupMember(ctx, admin, 100, loneID)
			wantErrCode(t, err, "")
			if g.ID != 100 || g.FullPath != "platform" {
				t.Fatalf("got %+v, want group platform", g)
			}
		}
		if got, want := must(s.UserGroupIDs(ctx, []int64{loneID}))[0], []int64{100}; !slices.Equal(got, want) {
			t.Fatalf("got groups %v, want %v", got, want)
		}
		_, err := s.CreateProject(ctx, viewerOf(t, s, loneID), store.NewProject{Name: "Tool", Path: "tool", Namespace: ptr("platform")})
		wantErrCode(t, err, "")
	})
}

// Ensure that any signed-in user creates projects in their own namespace or
// a group of theirs, and owns them.
func TestCreateProject(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				in := store.NewProject{Name: "Tool", Path: "tool"}
				if r.id == 0 {
					err := unchanged(t, s, func() error { _, err := s.CreateProject(ctx, store.Viewer{}, in); return err })
					wantErrCode(t, err, store.EUnauthenticated)
					return
				}
				p, err := s.CreateProject(ctx, r.viewer(t, s), in)
				wantErrCode(t, err, "")
				v := r.viewer(t, s)
				if want := v.User.Username + "/tool"; p.FullPath != want {
					t.Fatalf("got full path %q, want %q", p.FullPath, want)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	dev, reporter, admin := viewerOf(t, s, devID), viewerOf(t, s, reporterID), viewerOf(t, s, rootID)
	failures := []struct {
		name string
		v    store.Viewer
		in   store.NewProject
		code store.Code
		want string
	}{
		{"ErrNameBlank", dev, store.NewProject{Name: " ", Path: "tool"}, store.EInvalid, "Name can't be blank"},
		{"ErrPathBlank", dev, store.NewProject{Name: "Tool"}, store.EInvalid, "Path can't be blank"},
		{"ErrPathInvalid", dev, store.NewProject{Name: "Tool", Path: "my tool"}, store.EInvalid, "Path can contain only letters, digits, '_', '-' and '.', and must start with a letter, digit or '_'"},
		{"ErrPathEndsWithAtom", dev, store.NewProject{Name: "Tool", Path: "tool.atom"}, store.EInvalid, "Path cannot end in '.git' or '.atom'"},
		{"ErrUnknownVisibility", dev, store.NewProject{Name: "Tool", Path: "tool", Visibility: "secret"}, store.EInvalid, "Visibility must be one of private, internal, public"},
		{"ErrPathTaken", dev, store.NewProject{Name: "App", Path: "APP", Namespace: ptr("Platform")}, store.EConflict, "Path has already been taken"},
		{"ErrGroupOfOthers", reporter, store.NewProject{Name: "Tool", Path: "tool", Namespace: ptr("platform")}, store.EForbidden, "You are not allowed to create projects in this namespace"},
		{"ErrNamespaceOfAnotherUser", reporter, store.NewProject{Name: "Tool", Path: "tool", Namespace: ptr("dave")}, store.EForbidden, "You are not allowed to create projects in this namespace"},
		{"ErrNamespaceNotFound", dev, store.NewProject{Name: "Tool", Path: "tool", Namespace: ptr("nowhere")}, store.ENotFound, "Namespace not found"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.CreateProject(ctx, tc.v, tc.in); return err })
			wantErrMessage(t, err, tc.code, tc.want)
			if got := must(s.ProjectByPath(ctx, "dave/tool")); got != nil {
				t.Fatalf("got project %+v, want none", got)
			}
		})
	}

	t.Run("CreatesPrivateProjectOwnedByCreator", func(t *testing.T) {
		p, err := s.CreateProject(ctx, dev, store.NewProject{Name: " Tool ", Path: "tool"})
		wantErrCode(t, err, "")
		want := store.Project{ID: 3, Name: "Tool", Path: "tool", FullPath: "dave/tool", Visibility: store.Private, CreatedAt: fixtureNow}
		if !jsonEqual(*p, want) {
			t.Fatalf("got %+v, want %+v", *p, want)
		}
		if got := must(s.ProjectByPath(ctx, "DAVE/TOOL")); got == nil || !jsonEqual(*got, want) {
			t.Fatalf("got stored %+v, want %+v", got, want)
		}
		levels := must(s.MemberLevels(ctx, []store.MemberKey{{ProjectID: 3, UserID: devID}}))
		if got, want := levels[0], store.Owner; got != want {
			t.Fatalf("got creator level %v, want %v", got, want)
		}
		page, _ := mustList(s.ListProjects(ctx, dev, store.ProjectQuery{Membership: true}))
		if got := len(page.Items); got != 2 {
			t.Fatalf("got %d projects of dave, want 2", got)
		}
	})

	t.Run("InGroupOfCreator", func(t *testing.T) {
		p, err := s.CreateProject(ctx, dev, store.NewProject{Name: "Web", Path: "web", Namespace: ptr("PLATFORM"), Visibility: store.Public, AllowSelfApproval: true})
		wantErrCode(t, err, "")
		if p.FullPath != "platform/web" || p.Visibility != store.Public || !p.AllowSelfApproval {
			t.Fatalf("got %+v, want public platform/web allowing self-approval", p)
		}
	})

	t.Run("AdminInAnyNamespace", func(t *testing.T) {
		for _, ns := range []string{"platform", "rita"} {
			p, err := s.CreateProject(ctx, admin, store.NewProject{Name: "Admin tool", Path: "admin-tool", Namespace: ptr(ns)})
			wantErrCode(t, err, "")
			if want := ns + "/admin-tool"; p.FullPath != want {
				t.Fatalf("got %q, want %q", p.FullPath, want)
			}
		}
	})

	t.Run("ErrSystemNeedsNamespace", func(t *testing.T) {
		err := unchanged(t, s, func() error {
			_, err := s.CreateProject(ctx, store.System, store.NewProject{Name: "X", Path: "x"})
			return err
		})
		wantErrMessage(t, err, store.EInvalid, "Namespace can't be blank")
	})
}

func mustList[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// memberCode is what AddProjectMember and RemoveProjectMember answer each
// role of project 1 when acting on a reporter.
func memberCode(r roleCase) store.Code {
	switch r.id {
	case 0:
		return store.EUnauthenticated
	case guestID, reporterID, devID:
		return store.EForbidden
	case outsiderID:
		return store.ENotFound
	}
	return ""
}

func levelOf(t *testing.T, s *store.Store, projectID, userID int64) store.AccessLevel {
	t.Helper()
	return must(s.MemberLevels(context.Background(), []store.MemberKey{{ProjectID: projectID, UserID: userID}}))[0]
}

// Ensure that maintainers and owners add members and change roles, never
// above their own role, and never demote the last owner.
func TestAddProjectMember(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := memberCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.AddProjectMember(ctx, r.viewer(t, s), 1, loneID, store.Reporter); return err })
					wantErrCode(t, err, want)
					return
				}
				p, err := s.AddProjectMember(ctx, r.viewer(t, s), 1, loneID, store.Reporter)
				wantErrCode(t, err, "")
				if p.ID != 1 {
					t.Fatalf("got project %d, want 1", p.ID)
				}
				if got := levelOf(t, s, 1, loneID); got != store.Reporter {
					t.Fatalf("got level %v, want %v", got, store.Reporter)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	maint, owner, admin := viewerOf(t, s, maintID), viewerOf(t, s, ownerID), viewerOf(t, s, rootID)
	failures := []struct {
		name    string
		v       store.Viewer
		project int64
		user    int64
		level   store.AccessLevel
		code    store.Code
		want    string
	}{
		{"ErrProjectNotFound", admin, 999, loneID, store.Reporter, store.ENotFound, "Project not found"},
		{"ErrUserNotFound", maint, 1, 999, store.Reporter, store.ENotFound, "User not found"},
		{"ErrInvalidLevel", maint, 1, loneID, 35, store.EInvalid, "Access level must be one of 10, 20, 30, 40, 50"},
		{"ErrNoAccessLevel", owner, 1, loneID, store.NoAccess, store.EInvalid, "Access level must be one of 10, 20, 30, 40, 50"},
		{"ErrGrantAboveOwnRole", maint, 1, loneID, store.Owner, store.EForbidden, "You cannot grant a role higher than your own"},
		{"ErrPromoteAboveOwnRole", maint, 1, devID, store.Owner, store.EForbidden, "You cannot grant a role higher than your own"},
		{"ErrChangeMemberAboveOwnRole", maint, 1, ownerID, store.Maintainer, store.EForbidden, "You cannot change a member whose role is higher than your own"},
		{"ErrDemoteLastOwner", owner, 1, ownerID, store.Maintainer, store.EFailedPrecondition, "A project must keep at least one Owner"},
		{"ErrAdminDemotesLastOwner", admin, 1, ownerID, store.Developer, store.EFailedPrecondition, "A project must keep at least one Owner"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.AddProjectMember(ctx, tc.v, tc.project, tc.user, tc.level); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("MaintainerGrantsOwnRole", func(t *testing.T) {
		_, err := s.AddProjectMember(ctx, maint, 1, loneID, store.Maintainer)
		wantErrCode(t, err, "")
		if got := levelOf(t, s, 1, loneID); got != store.Maintainer {
			t.Fatalf("got %v, want %v", got, store.Maintainer)
		}
	})
	t.Run("ChangesExistingMemberRole", func(t *testing.T) {
		_, err := s.AddProjectMember(ctx, maint, 1, reporterID, store.Developer)
		wantErrCode(t, err, "")
		if got := levelOf(t, s, 1, reporterID); got != store.Developer {
			t.Fatalf("got %v, want %v", got, store.Developer)
		}
		page, _ := mustList(s.ListProjects(ctx, viewerOf(t, s, reporterID), store.ProjectQuery{Membership: true}))
		if len(page.Items) != 1 || page.Items[0].ID != 1 {
			t.Fatalf("got %v, want rita a member of project 1 only", page.Items)
		}
	})
	t.Run("OwnerDemotesThemselfOnceAnotherOwnerExists", func(t *testing.T) {
		_, err := s.AddProjectMember(ctx, owner, 1, maintID, store.Owner)
		wantErrCode(t, err, "")
		_, err = s.AddProjectMember(ctx, owner, 1, ownerID, store.Maintainer)
		wantErrCode(t, err, "")
		if got := levelOf(t, s, 1, ownerID); got != store.Maintainer {
			t.Fatalf("got %v, want %v", got, store.Maintainer)
		}
	})
}

// Ensure that maintainers and owners remove members, never one above their
// own role, and never the last owner.
func TestRemoveProjectMember(t *testing.T) {
	ctx := context.Background()
	t.Run("Roles", func(t *testing.T) {
		for _, r := range projectRoles {
			t.Run(r.role, func(t *testing.T) {
				s, _ := openWritesStore(t)
				if want := memberCode(r); want != "" {
					err := unchanged(t, s, func() error { _, err := s.RemoveProjectMember(ctx, r.viewer(t, s), 1, reporterID); return err })
					wantErrCode(t, err, want)
					return
				}
				_, err := s.RemoveProjectMember(ctx, r.viewer(t, s), 1, reporterID)
				wantErrCode(t, err, "")
				if got := levelOf(t, s, 1, reporterID); got != store.NoAccess {
					t.Fatalf("got level %v, want none", got)
				}
			})
		}
	})

	s, _ := openWritesStore(t)
	maint, owner, admin := viewerOf(t, s, maintID), viewerOf(t, s, ownerID), viewerOf(t, s, rootID)
	failures := []struct {
		name string
		v    store.Viewer
		user int64
		code store.Code
		want string
	}{
		{"ErrNotAMember", maint, loneID, store.ENotFound, "Member not found"},
		{"ErrUnknownUser", maint, 999, store.ENotFound, "Member not found"},
		{"ErrRemoveMemberAboveOwnRole", maint, ownerID, store.EForbidden, "You cannot change a member whose role is higher than your own"},
		{"ErrRemoveLastOwner", owner, ownerID, store.EFailedPrecondition, "A project must keep at least one Owner"},
		{"ErrAdminRemovesLastOwner", admin, ownerID, store.EFailedPrecondition, "A project must keep at least one Owner"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := unchanged(t, s, func() error { _, err := s.RemoveProjectMember(ctx, tc.v, 1, tc.user); return err })
			wantErrMessage(t, err, tc.code, tc.want)
		})
	}

	t.Run("RemovedMemberLosesAccess", func(t *testing.T) {
		_, err := s.RemoveProjectMember(ctx, maint, 1, devID)
		wantErrCode(t, err, "")
		if got := levelOf(t, s, 1, devID); got != store.NoAccess {
			t.Fatalf("got %v, want none", got)
		}
		_, err = s.CreateMergeRequest(ctx, viewerOf(t, s, devID), store.NewMergeRequest{ProjectID: 1, Title: "T", SourceBranch: "a", TargetBranch: "main"})
		wantErrMessage(t, err, store.ENotFound, "Project not found")
	})
	t.Run("MaintainerLeaves", func(t *testing.T) {
		_, err := s.RemoveProjectMember(ctx, maint, 1, maintID)
		wantErrCode(t, err, "")
		_, err = s.RemoveProjectMember(ctx, maint, 1, guestID)
		wantErrMessage(t, err, store.ENotFound, "Project not found")
	})
	t.Run("OwnerLeavesOnceAnotherOwnerExists", func(t *testing.T) {
		_, err := s.AddProjectMember(ctx, owner, 1, loneID, store.Owner)
		wantErrCode(t, err, "")
		_, err = s.RemoveProjectMember(ctx, owner, 1, ownerID)
		wantErrCode(t, err, "")
		if got := levelOf(t, s, 1, ownerID); got != store.NoAccess {
			t.Fatalf("got %v, want none", got)
		}
	})
}

// Ensure that a project found by its path is kept, case-insensitively,
// until a project of the same store is written: a change of its settings
// shows at once, and so does a rename, under the old path and the new.
func TestProjectByPathKeepsProjects(t *testing.T) {
	ctx := context.Background()
	s, _ := openWritesStore(t)
	admin := viewerOf(t, s, rootID)
	for _, step := range []struct {
		name   string
		do     func(t *testing.T)
		path   string
		wantID int64 // 0: not found
		reads  int64
	}{
		{"ReadFirst", nil, "platform/app", 1, 1},
		{"KeptThen", nil, "Platform/APP", 1, 0},
		{"KeptWhileAnotherStoreWritesProjects", func(t *testing.T) {
			other, _ := openWritesStore(t)
			_, err := other.UpdateProject(ctx, viewerOf(t, other, rootID), store.ProjectUpdate{ProjectID: 1, AllowSelfApproval: ptr(true)})
			wantErrCode(t, err, "")
		}, "platform/app", 1, 0},
		{"ReadAgainAfterItsSettingsChange", func(t *testing.T) {
			_, err := s.UpdateProject(ctx, admin, store.ProjectUpdate{ProjectID: 1, AllowSelfApproval: ptr(true)})
			wantErrCode(t, err, "")
		}, "platform/app", 1, 1},
		{"RenamedAway", func(t *testing.T) {
			doc := `{"projects": [{"id": 1, "name": "App", "path": "renamed", "path_with_namespace": "platform/renamed", "visibility": "private"}]}`
			if _, err := s.Import(ctx, strings.NewReader(doc)); err != nil {
				t.Fatal(err)
			}
		}, "platform/app", 0, 1},
		{"FoundUnderItsNewPath", nil, "platform/renamed", 1, 1},
		{"KeptUnderItsNewPath", nil, "platform/renamed", 1, 0},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.do != nil {
				step.do(t)
			}
			before := s.Reads()
			p, err := s.ProjectByPath(ctx, step.path)
			if err != nil {
				t.Fatal(err)
			}
			if reads := s.Reads() - before; reads != step.reads {
				t.Errorf("read %d transactions, want %d", reads, step.reads)
			}
			switch {
			case step.wantID == 0 && p != nil:
				t.Fatalf("found %+v under %s, want none", p, step.path)
			case step.wantID != 0 && (p == nil || p.ID != step.wantID):
				t.Fatalf("found %+v under %s, want project %d", p, step.path, step.wantID)
			case step.name == "ReadAgainAfterItsSettingsChange" && !p.AllowSelfApproval:
				t.Fatalf("found %+v, want the changed setting", p)
			}
		})
	}
}
