// Package store keeps the deployments domain in a bbolt file and enforces
// the rules that must hold inside one transaction. It knows nothing of
// GraphQL.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Every index bucket is written in the same transaction as the
// records it points at.
var (
	bktMeta           = []byte("meta")            // sequences and iid counters
	bktUsers          = []byte("users")           // id → User
	bktUserByName     = []byte("user_by_name")    // lower(username) → id
	bktGroups         = []byte("groups")          // id → Group
	bktGroupByPath    = []byte("group_by_path")   // lower(full path) → id
	bktGroupMembers   = []byte("group_members")   // group id|user id → ""
	bktUserGroups     = []byte("user_groups")     // user id|group id → ""
	bktProjects       = []byte("projects")        // id → Project
	bktProjectByPath  = []byte("project_by_path") // lower(full path) → id
	bktProjectMembers = []byte("project_members") // project id|user id → level
	bktUserProjects   = []byte("user_projects")   // user id|project id → level
	bktEnvironments   = []byte("environments")    // id → Environment
	bktProjectEnvs    = []byte("project_envs")    // project id|env id → ""
	bktEnvByName      = []byte("env_by_name")     // project id|name → env id
	bktEnvBySlug      = []byte("env_by_slug")     // project id|slug → env id
	bktProtected      = []byte("protected_envs")  // project id|name → ProtectedEnvironment
	bktDeployments    = []byte("deployments")     // id → Deployment
	bktDeployByIID    = []byte("deploy_by_iid")   // project id|iid → id
	bktDeployIndex    = []byte("deploy_index")    // scope|order|value|id → "" (see deployindex.go)
	bktDeployCounts   = []byte("deploy_counts")   // scope|status → count
	bktJobs           = []byte("jobs")            // id → Job
	bktPipelines      = []byte("pipelines")       // id → Pipeline
	bktCommits        = []byte("commits")         // sha → Commit
	bktApprovals      = []byte("approvals")       // deployment id|user id|rule key → Approval
	bktMergeRequests  = []byte("merge_requests")  // id → MergeRequest
	bktProjectMRs     = []byte("project_mrs")     // project id|mr id → ""
	bktMRByIID        = []byte("mr_by_iid")       // project id|iid → id
	bktMRMerged       = []byte("mr_merged")       // project id|target branch|0|merged at|mr id → "" (merged ones)
	bktMRByMergeSHA   = []byte("mr_by_merge_sha") // project id|merge commit sha|0|mr id → ""
	bktDeployMRs      = []byte("deploy_mrs")      // deployment id|mr id → ""
	bktMRDeploys      = []byte("mr_deploys")      // mr id|deployment id → ""
	bktTokens         = []byte("tokens")          // id → AccessToken
	bktTokenByHash    = []byte("token_by_hash")   // sha256(secret) → id
)

// appendBuckets are keyed by a project or environment, then by something
// that grows: a new deployment's entries go at the end of their scope's
// ranges, whether it is recorded live or imported a project at a time. Their
// pages are filled to appendFill before they split, not halfway as for keys
// that arrive in any order, so the index needs about 45 % fewer pages and
// its commits split and write fewer. (Records keyed by id alone are
// appended too when live, but an import of several projects interleaves
// their ids, and there the fuller split leaves pages emptier.)
var appendBuckets = [][]byte{bktDeployIndex, bktDeployByIID}

// appendFill leaves room in a full page for an entry or two arriving out
// of order (a status change, a deployment of another ref) without
// splitting at once.
const appendFill = 0.9

var allBuckets = [][]byte{
	bktMeta, bktUsers, bktUserByName, bktGroups, bktGroupByPath, bktGroupMembers, bktUserGroups,
	bktProjects, bktProjectByPath, bktProjectMembers, bktUserProjects,
	bktEnvironments, bktProjectEnvs, bktEnvByName, bktEnvBySlug, bktProtected,
	bktDeployments, bktDeployByIID, bktDeployIndex, bktDeployCounts,
	bktJobs, bktPipelines, bktCommits, bktApprovals,
	bktMergeRequests, bktProjectMRs, bktMRByIID, bktMRMerged, bktMRByMergeSHA, bktDeployMRs, bktMRDeploys,
	bktTokens, bktTokenByHash,
}

// Options tune how the store opens its file.
type Options struct {
	// LockTimeout bounds the wait for another process's lock on the file.
	LockTimeout time.Duration
	// NoSync skips fsync on commit; only for tests and benchmarks.
	NoSync bool
	// Clock returns "now"; tests inject a fixed clock.
	Clock func() time.Time
	// EventBuffer is how many transactions a subscriber may fall behind
	// before its subscription is ended; 0 means DefaultEventBuffer.
	EventBuffer int
	// OnTx, when set, hears of every transaction as it ends: its kind
	// (TxRead or TxWrite), how long it took and its error. It must be
	// cheap and safe for concurrent use.
	OnTx func(kind string, d time.Duration, err error)
}

// Transaction kinds, as Options.OnTx receives them.
const (
	TxRead  = "read"
	TxWrite = "write"
)

// txHook times transactions for Options.OnTx; a nil hook only runs them.
type txHook func(kind string, d time.Duration, err error)

func (h txHook) run(kind string, tx func() error) error {
	if h == nil {
		return tx()
	}
	start := time.Now()
	err := tx()
	h(kind, time.Since(start), err)
	return err
}

// Store is the deployments domain persisted in one bbolt file.
type Store struct {
	// IMPORTANT: open write transactions only through update, batch or
	// changesOf (see there): a commit the event broker never hears of holds
	// back every later event.
	db      *bolt.DB
	commits *committer
	now     func() time.Time
	onTx    txHook
	reads   atomic.Int64
	// written counts what the write transactions wrote (see countWrite).
	written struct {
		pages            atomic.Int64
		spillNs, writeNs atomic.Int64
	}
	// keptWrites counts the commits that wrote to keptBuckets; signIns and
	// projectPaths hold answers read from them (see kept.go).
	keptWrites   atomic.Uint64
	signIns      keptAnswers[[sha256.Size]byte, signIn]
	projectPaths keptAnswers[string, Project]
	events       *broker
	// writing is the write transaction in progress, what it changed, and
	// the file's written tail; only the holder of bbolt's writer lock
	// touches it.
	writing struct {
		tx      *bolt.Tx
		changes *changes
		tail    *fileTail
	}
}

// Open opens (creating if needed) the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
		// The freelist is written with every commit (its size grows with
		// the file's free pages) so that opening a large file does not walk,
		// and thereby map into memory, every page of it to rebuild the list.
		NoFreelistSync: false,
		// Room to grow before the first remap, which waits for every reader.
		InitialMmapSize: 256 << 20,
		// bbolt's statistics take a lock and add some twenty counters at
		// the end of every read transaction, of which a page of
		// deployments opens several; the write transactions' counts that
		// CommitStats reports are kept by the store (countWrite).
		NoStatistics: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := migrateDeploymentIndex(db); err != nil {
		db.Close()
		return nil, err
	}
	var last int
	if err := db.View(func(tx *bolt.Tx) error { last = tx.ID(); return nil }); err != nil {
		db.Close()
		return nil, err
	}
	tail, err := openFileTail(path)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db: db, now: opts.Clock, onTx: opts.OnTx,
		events: newBroker(uint64(last)+1, opts.EventBuffer),
	}
	s.writing.tail = tail
	openStores.Store(db, s)
	s.commits = startCommitter(s.update)
	return s, nil
}

// Close lets the write in flight commit, ends every subscription and
// releases the file.
func (s *Store) Close() error {
	s.commits.stop()
	openStores.Delete(s.db)
	s.events.close()
	return errors.Join(s.db.Close(), s.writing.tail.close())
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.db.Path() }

// Now is the store's clock, truncated to the microsecond so that a time
// survives an encode/decode round trip unchanged.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Reads counts the read transactions opened so far; tests use it to prove
// that nested lookups are batched.
func (s *Store) Reads() int64 { return s.reads.Load() }

// CommitStats is what the store's commits have cost since it opened: how
// well group commit shares a transaction, and how a write transaction's
// time splits between building its pages and making them durable (the
// part no faster processor shortens).
type CommitStats struct {
	// GroupCommits counts the committed transactions of the hot write
	// paths (createDeployment, updateDeployment, a token's last use), and
	// GroupedWrites the writes they held.
	GroupCommits, GroupedWrites uint64
	// PageWrites counts the pages written to the file by every write
	// transaction since the store opened, its meta page included.
	PageWrites int64
	// SpillTime is the time spent turning changed nodes into pages,
	// SyncTime the time spent writing them and the meta page, each
	// followed by a data sync (unless NoSync).
	SpillTime, SyncTime time.Duration
}

// CommitStats reports the commits so far.
func (s *Store) CommitStats() CommitStats {
	return CommitStats{
		GroupCommits:  s.commits.commits.Load(),
		GroupedWrites: s.commits.committed.Load(),
		PageWrites:    s.written.pages.Load(),
		SpillTime:     time.Duration(s.written.spillNs.Load()),
		SyncTime:      time.Duration(s.written.writeNs.Load()),
	}
}

// countWrite adds what the write transaction tx, ended, wrote to the
// counts CommitStats reports.
func (s *Store) countWrite(tx *bolt.Tx) {
	st := tx.Stats()
	s.written.pages.Add(st.GetWrite())
	s.written.spillNs.Add(int64(st.GetSpillTime()))
	s.written.writeNs.Add(int64(st.GetWriteTime()))
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMeta) == nil {
			return fmt.Errorf("store has no meta bucket")
		}
		return nil
	})
}

// Check verifies the file's consistency (bbolt's own check).
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// view runs fn in a read transaction of its own, never a snapshot's (see
// read).
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return s.read(context.Background(), fn)
}

// update runs fn in a write transaction; what it changes is published
// once it commits.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return s.onTx.run(TxWrite, func() error {
		var written *bolt.Tx
		defer func() {
			if written != nil {
				s.countWrite(written)
			}
		}()
		return s.db.Update(func(tx *bolt.Tx) error {
			written = tx
			s.beginWrite(tx)
			return fn(tx)
		})
	})
}

// beginWrite starts what every write transaction needs before its first
// change: its events' publication, and written room in the file for the
// pages it will commit.
func (s *Store) beginWrite(tx *bolt.Tx) {
	s.changesOf(tx)
	s.writing.tail.refill(tx.Size()) // no page lies at or past it until tx commits
	for _, name := range appendBuckets {
		tx.Bucket(name).FillPercent = appendFill
	}
}

// batch is update for hot write paths: concurrent calls share one commit
// (one fsync). IMPORTANT: fn may run more than once, so it must derive
// everything from tx and only assign results to its caller's variables.
// Events follow the transaction: a run that is rolled back and retried
// publishes only what the committed run recorded.
func (s *Store) batch(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.commits.do(ctx, fn)
}
