package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Viewer is who is asking: a user, or nobody (anonymous).
type Viewer struct {
	User *User
}

// Authenticated reports whether the viewer is a user.
func (v Viewer) Authenticated() bool { return v.User != nil }

// Admin reports whether the viewer administers the instance.
func (v Viewer) Admin() bool { return v.User != nil && v.User.Admin }

// UserID is the viewer's user id, 0 when anonymous.
func (v Viewer) UserID() int64 {
	if v.User == nil {
		return 0
	}
	return v.User.ID
}

// ProjectAccess is what one viewer may do in one project.
type ProjectAccess struct {
	Visibility    Visibility
	Level         AccessLevel // the viewer's role; NoAccess when not a member
	Admin         bool
	Authenticated bool
}

// Access combines a viewer with a project and the viewer's role in it.
func (v Viewer) Access(p *Project, level AccessLevel) ProjectAccess {
	return ProjectAccess{Visibility: p.Visibility, Level: level, Admin: v.Admin(), Authenticated: v.Authenticated()}
}

func (a ProjectAccess) openToNonMembers() bool {
	return a.Visibility == Public || a.Visibility == Internal && a.Authenticated
}

// CanSee reports whether the project exists for the viewer at all; where it
// does not, it is reported as not found.
func (a ProjectAccess) CanSee() bool {
	return a.Admin || a.Level >= Guest || a.openToNonMembers()
}

// CanRead reports whether the viewer may read the project's environments,
// deployments, approvals, merge requests, jobs and pipelines. A guest member
// of a project not open to everyone sees only the project itself.
func (a ProjectAccess) CanRead() bool {
	return a.Admin || a.Level >= Reporter || a.Level != Guest && a.openToNonMembers()
}

// AtLeast reports whether the viewer has role l or administers the instance.
func (a ProjectAccess) AtLeast(l AccessLevel) bool { return a.Admin || a.Level >= l }

// ProjectQuery selects a page of the projects a viewer can see, by id.
type ProjectQuery struct {
	Search     *string // case-insensitive, in name or full path
	Membership bool    // only projects the viewer is a member of
	Page       PageArgs
}

const tagProjects = 'P'

// ListProjects pages through the projects the viewer can see.
func (s *Store) ListProjects(ctx context.Context, v Viewer, q ProjectQuery) (page Page[*Project], count int, err error) {
	w, err := q.Page.window(tagProjects)
	if err != nil {
		return page, 0, err
	}
	err = s.read(ctx, func(tx *bolt.Tx) error {
		src := boltSource{b: tx.Bucket(bktProjects)}
		if q.Membership {
			src = boltSource{b: tx.Bucket(bktUserProjects), prefix: u64(v.UserID())}
		}
		match := func(key []byte) (bool, error) {
			p, err := getByID[Project](tx, bktProjects, lastID(key))
			if err != nil || p == nil {
				return false, err
			}
			if !v.Access(p, memberLevel(tx, p.ID, v.UserID())).CanSee() {
				return false, nil
			}
			if q.Search != nil {
				s := strings.ToLower(*q.Search)
				return strings.Contains(strings.ToLower(p.Name), s) || strings.Contains(strings.ToLower(p.FullPath), s), nil
			}
			return true, nil
		}
		if q.Membership && !v.Authenticated() {
			return nil
		}
		keys, hasPrev, hasNext, err := paginate(src, match, w)
		if err != nil {
			return err
		}
		page.HasPreviousPage, page.HasNextPage = hasPrev, hasNext
		page.Items = make([]*Project, 0, len(keys))
		for _, k := range keys {
			p, err := getByID[Project](tx, bktProjects, lastID(k))
			if err != nil {
				return err
			}
			page.Items = append(page.Items, p)
		}
		page.Cursors = encodeCursors(tagProjects, keys)
		count, err = countMatches(src, match)
		return err
	})
	return page, count, err
}

// Token secrets are random and long, so a plain SHA-256 is a safe digest to
// store and to index by.
func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret makes a fresh token secret.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "dgp-" + base64.RawURLEncoding.EncodeToString(b), nil
}

// tokenTouchInterval bounds how often a token's lastUsedAt is written, so
// that authenticating is not a write on every request.
const tokenTouchInterval = 10 * time.Minute

// Authenticate finds the active user a token secret belongs to. An unknown,
// expired or revoked token, or one whose user may not sign in, is an
// EUnauthenticated error: never anonymous.
func (s *Store) Authenticate(ctx context.Context, secret string) (*User, error) {
	hash := hashToken(secret)
	digest := [sha256.Size]byte(hash)
	now := s.Now()
	if u, ok := s.signedIn(digest, now); ok {
		return u, nil
	}
	var (
		u     *User
		tok   *AccessToken
		touch bool
	)
	// Never in a snapshot: a sign-in may write (touch, below).
	writes, err := s.readKept(context.Background(), func(tx *bolt.Tx) error {
		id := lookupID(tx, bktTokenByHash, hash)
		if id == 0 {
			return nil
		}
		var err error
		if tok, err = getByID[AccessToken](tx, bktTokens, id); err != nil || tok == nil {
			return err
		}
		if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 || tok.Revoked || tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
			tok = nil
			return nil
		}
		touch = tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= tokenTouchInterval
		u, err = getByID[User](tx, bktUsers, tok.UserID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if tok == nil || u == nil || u.State != UserActive {
		return nil, Errorf(EUnauthenticated, "Invalid, expired or revoked token")
	}
	if touch {
		err = s.batch(ctx, func(tx *bolt.Tx) error {
			t, err := getByID[AccessToken](tx, bktTokens, tok.ID)
			if err != nil || t == nil {
				return err
			}
			t.LastUsedAt = &now
			return putJSON(tx, bktTokens, u64(t.ID), t)
		})
		if err != nil {
			return nil, err
		}
		return u, nil // the touch is a kept write: nothing to keep
	}
	s.signIns.put(digest, writes, signIn{user: *u, expiresAt: tok.ExpiresAt, touchAt: tok.LastUsedAt.Add(tokenTouchInterval)})
	return u, nil
}

// rootUsername is the administrator that the admin-token bootstrap uses.
const rootUsername = "root"

// EnsureAdminToken makes sure that secret authenticates as the admin user
// root, creating root (with the next free id) or making it admin as needed.
func (s *Store) EnsureAdminToken(ctx context.Context, secret string) error {
	if strings.TrimSpace(secret) == "" {
		return invalid("The admin token cannot be blank")
	}
	return s.update(func(tx *bolt.Tx) error {
		root, err := ensureRoot(tx, s.Now())
		if err != nil {
			return err
		}
		hash := hashToken(secret)
		if id := lookupID(tx, bktTokenByHash, hash); id != 0 {
			tok, err := getByID[AccessToken](tx, bktTokens, id)
			if err != nil {
				return err
			}
			if tok != nil && tok.UserID == root.ID && !tok.Revoked && tok.ExpiresAt == nil {
				return nil
			}
			if tok != nil {
				// The secret belonged to another token: it now means root.
				tok.Revoked = true
				if err := putJSON(tx, bktTokens, u64(tok.ID), tok); err != nil {
					return err
				}
			}
		}
		_, err = insertToken(tx, root.ID, "admin-token", hash, nil, s.Now())
		return err
	})
}

// BootstrapToken creates a token for root when the store has no token at
// all, and returns its secret; "" when tokens already exist.
func (s *Store) BootstrapToken(ctx context.Context) (string, error) {
	var secret string
	err := s.update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktTokens).Cursor().First(); k != nil {
			return nil
		}
		root, err := ensureRoot(tx, s.Now())
		if err != nil {
			return err
		}
		if secret, err = newSecret(); err != nil {
			return err
		}
		_, err = insertToken(tx, root.ID, "bootstrap", hashToken(secret), nil, s.Now())
		return err
	})
	return secret, err
}

func ensureRoot(tx *bolt.Tx, now time.Time) (*User, error) {
	root, err := userByUsername(tx, rootUsername)
	if err != nil {
		return nil, err
	}
	if root == nil {
		id, err := nextID(tx.Bucket(bktUsers))
		if err != nil {
			return nil, err
		}
		root = &User{ID: id, Username: rootUsername, Name: "Administrator", State: UserActive, CreatedAt: &now}
	} else if root.Admin && root.State == UserActive {
		return root, nil
	}
	root.Admin, root.State = true, UserActive
	return root, putUser(tx, root)
}

func putUser(tx *bolt.Tx, u *User) error {
	old, err := getByID[User](tx, bktUsers, u.ID)
	if err != nil {
		return err
	}
	byName := tx.Bucket(bktUserByName)
	if old != nil && !strings.EqualFold(old.Username, u.Username) {
		if err := deleteOwnKey(byName, []byte(strings.ToLower(old.Username)), u.ID); err != nil {
			return err
		}
	}
	if err := byName.Put([]byte(strings.ToLower(u.Username)), u64(u.ID)); err != nil {
		return err
	}
	if err := putJSON(tx, bktUsers, u64(u.ID), u); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktUsers), u.ID)
}

func insertToken(tx *bolt.Tx, userID int64, name string, hash []byte, expiresAt *time.Time, now time.Time) (*AccessToken, error) {
	id, err := nextID(tx.Bucket(bktTokens))
	if err != nil {
		return nil, err
	}
	t := &AccessToken{ID: id, UserID: userID, Name: name, Hash: hash, CreatedAt: now, ExpiresAt: expiresAt}
	if err := putJSON(tx, bktTokens, u64(id), t); err != nil {
		return nil, err
	}
	return t, tx.Bucket(bktTokenByHash).Put(hash, u64(id))
}

// CreateAccessToken makes a token for a user and returns its secret, which
// is never stored and cannot be shown again. Users mint their own tokens;
// administrators anyone's.
func (s *Store) CreateAccessToken(ctx context.Context, v Viewer, userID int64, name string, expiresAt *time.Time) (string, *AccessToken, error) {
	now := s.Now()
	name, expiresAt, err := checkNewToken(v, userID, name, expiresAt, now)
	if err != nil {
		return "", nil, err
	}
	var (
		secret string
		tok    *AccessToken
	)
	err = s.update(func(tx *bolt.Tx) error {
		var err error
		secret, tok, err = mintToken(tx, userID, name, expiresAt, now)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// RevokeAccessToken stops a token from working, from the next request on.
// Another user's token does not exist for a non-admin.
func (s *Store) RevokeAccessToken(ctx context.Context, v Viewer, tokenID int64) (*AccessToken, error) {
	if err := requireUser(v); err != nil {
		return nil, err
	}
	var tok *AccessToken
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		tok, err = revokeToken(tx, v, tokenID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tok, nil
}
