package store

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Every request authenticates, and most come from a few tokens: a read
// transaction, two bucket opens and two decodes per request, for an answer
// that changes only when a token or a user is written. signIns keeps the
// recent successful sign-ins and gives one back while no such write has
// committed since it was read.
//
// A store counts the committed write transactions that wrote a token or a
// user (see putJSON). A sign-in is kept with the count read before its
// read transaction began, so a sign-in read from a state that a later
// commit changed never matches again. A write is counted before the call
// that made it returns: once a revocation or a block has been answered, no
// request that starts after it is let in by a kept sign-in.
//
// credentialWrites holds each open store's count by its bbolt file, which
// is what putJSON has of the store.
var credentialWrites sync.Map // *bolt.DB → *atomic.Uint64

// credentialBuckets hold what Authenticate reads.
var credentialBuckets = [][]byte{bktTokens, bktTokenByHash, bktUsers}

// countCredentialWrite counts tx's commit in its store's credential
// writes when it writes to bucket, one of credentialBuckets or not.
func countCredentialWrite(tx *bolt.Tx, bucket []byte) {
	for _, b := range credentialBuckets {
		if string(b) == string(bucket) {
			if count, ok := credentialWrites.Load(tx.DB()); ok {
				tx.OnCommit(func() { count.(*atomic.Uint64).Add(1) })
			}
			return
		}
	}
}

// signInLimit bounds the kept sign-ins: a few tokens per active client.
const signInLimit = 4096

type signIns struct {
	writes atomic.Uint64 // the store's credential writes (see above)
	mu     sync.Mutex
	byHash map[[sha256.Size]byte]signIn
}

// signIn is what Authenticate decided from one token, and when it must
// decide again.
type signIn struct {
	writes    uint64 // the store's credential writes when it was read
	user      User
	expiresAt *time.Time // the token's
	touchAt   time.Time  // when the token's lastUsedAt is due to be written
}

// get returns a copy of the user the token hash signs in as at now, if a
// sign-in read since the last credential write says so.
func (c *signIns) get(hash [sha256.Size]byte, now time.Time) (*User, bool) {
	c.mu.Lock()
	in, ok := c.byHash[hash]
	c.mu.Unlock()
	if !ok || in.writes != c.writes.Load() ||
		in.expiresAt != nil && !now.Before(*in.expiresAt) || !now.Before(in.touchAt) {
		return nil, false
	}
	u := in.user
	return &u, true
}

// put keeps a successful sign-in; past the limit, others make room, chosen
// at random.
func (c *signIns) put(hash [sha256.Size]byte, in signIn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHash == nil {
		c.byHash = make(map[[sha256.Size]byte]signIn)
	}
	for evict := range c.byHash {
		if len(c.byHash) < signInLimit {
			break
		}
		delete(c.byHash, evict)
	}
	c.byHash[hash] = in
}
