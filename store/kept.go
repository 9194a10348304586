package store

import (
	"crypto/sha256"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Every request authenticates, and most name their project by its path:
// each a read transaction, bucket opens and decodes, for answers that
// change only when a token, a user or a project is written. The store
// keeps recent answers of both and gives one back while no such write has
// committed since it was read.
//
// A store counts the committed write transactions that wrote to one of
// keptBuckets (putJSON marks them in the transaction's changes, and
// changesOf counts them as they commit). An answer is kept with the count
// read before its read transaction began, so an answer read from a state
// that a later commit changed never matches again. A write is counted
// before the call that made it returns: once a revocation, a block or a
// rename has been answered, no request that starts after it gets a kept
// answer from before it.
//
// openStores finds a transaction's store by its bbolt file, which is what
// putJSON has of it.
var openStores sync.Map // *bolt.DB → *Store

// keptBuckets hold what Authenticate and ProjectByPath read. A project's
// path index is written only with its record (putProject), which counts.
var keptBuckets = [][]byte{bktTokens, bktTokenByHash, bktUsers, bktProjects, bktProjectByPath}

// markKeptWrite notes in tx's changes that it writes to keptBuckets when
// bucket is one of them.
func markKeptWrite(tx *bolt.Tx, bucket []byte) {
	for _, b := range keptBuckets {
		if string(b) == string(bucket) {
			if s, ok := openStores.Load(tx.DB()); ok {
				s.(*Store).changesOf(tx).kept = true
			}
			return
		}
	}
}

// keptLimit bounds the answers kept of each kind: a few tokens per active
// client, and the projects dashboards poll.
const keptLimit = 4096

// keptAnswers holds answers read from keptBuckets, by their question.
type keptAnswers[K comparable, V any] struct {
	mu    sync.Mutex
	byKey map[K]keptAnswer[V]
}

type keptAnswer[V any] struct {
	writes uint64 // the store's kept writes when it was read
	value  V
}

// get returns the answer to key if it was read since the store's last
// kept write (writes is the store's count now).
func (c *keptAnswers[K, V]) get(key K, writes uint64) (V, bool) {
	c.mu.Lock()
	a, ok := c.byKey[key]
	c.mu.Unlock()
	if !ok || a.writes != writes {
		var none V
		return none, false
	}
	return a.value, true
}

// put keeps an answer read after the store's count was writes; past the
// limit, others make room, chosen at random.
func (c *keptAnswers[K, V]) put(key K, writes uint64, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = make(map[K]keptAnswer[V])
	}
	for evict := range c.byKey {
		if len(c.byKey) < keptLimit {
			break
		}
		delete(c.byKey, evict)
	}
	c.byKey[key] = keptAnswer[V]{writes: writes, value: value}
}

// signIn is what Authenticate decided from one token, and when it must
// decide again.
type signIn struct {
	user      User
	expiresAt *time.Time // the token's
	touchAt   time.Time  // when the token's lastUsedAt is due to be written
}

// signedIn returns a copy of the user a kept sign-in of the token hash
// signs in as at now.
func (s *Store) signedIn(hash [sha256.Size]byte, now time.Time) (*User, bool) {
	in, ok := s.signIns.get(hash, s.keptWrites.Load())
	if !ok || in.expiresAt != nil && !now.Before(*in.expiresAt) || !now.Before(in.touchAt) {
		return nil, false
	}
	u := in.user
	return &u, true
}
