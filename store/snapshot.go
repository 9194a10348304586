package store

import (
	"context"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A query reads the store many times: a page, its count, and a batch for
// each nested field. WithSnapshot lets those reads share one read
// transaction, begun by the first of them, so that they answer from one
// committed state (a page's count and its nodes agree, and a deployment
// and its approvals are from the same commit) and pay for one transaction
// instead of one each.
//
// bbolt's transactions are not safe for use by several goroutines at once,
// and a query's items resolve on several: the reads take turns with the
// snapshot's lock. A read that comes after the snapshot ended (a goroutine
// the query left behind) reads in a transaction of its own.
//
// IMPORTANT: only for work that does not write, and whose reads all go
// through the snapshot. A write transaction that must grow the file's
// mapping waits for every read transaction to end, and while it waits no
// read transaction can begin: a goroutine that holds a snapshot open and
// then waits for a write, or begins a transaction of its own, would wait
// for itself.
type snapshot struct {
	store *Store
	mu    sync.Mutex
	tx    *bolt.Tx // begun by the first read
	// keptWrites is the store's count of kept writes before tx began,
	// which answers read in it are kept with (see kept.go).
	keptWrites uint64
	ended      bool
}

type snapshotKey struct{}

// WithSnapshot returns a context whose reads of s (and its children's)
// share one read transaction until end is called; end must be called,
// since an open read transaction keeps the pages it reads from being
// reused.
func (s *Store) WithSnapshot(ctx context.Context) (_ context.Context, end func()) {
	snap := &snapshot{store: s}
	return context.WithValue(ctx, snapshotKey{}, snap), snap.end
}

// read runs fn in the snapshot's transaction, beginning it if it is the
// first read, or in a transaction of its own once the snapshot ended; it
// returns the store's count of kept writes before that transaction began.
func (p *snapshot) read(fn func(tx *bolt.Tx) error) (keptWrites uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return p.store.viewOwn(fn)
	}
	if p.tx == nil {
		writes := p.store.keptWrites.Load()
		tx, err := p.store.db.Begin(false)
		if err != nil {
			return 0, err
		}
		p.tx, p.keptWrites = tx, writes
	}
	return p.keptWrites, fn(p.tx)
}

func (p *snapshot) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tx != nil {
		_ = p.tx.Rollback() // a read transaction has nothing to undo
		p.tx = nil
	}
	p.ended = true
}

// read runs fn in ctx's snapshot of s when it carries one (WithSnapshot),
// else in a read transaction of its own.
func (s *Store) read(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	_, err := s.readKept(ctx, fn)
	return err
}

// readKept is read for an answer to keep (see kept.go): it also returns the
// store's count of kept writes before fn's transaction began, which the
// answer is kept with.
func (s *Store) readKept(ctx context.Context, fn func(tx *bolt.Tx) error) (keptWrites uint64, err error) {
	s.reads.Add(1)
	err = s.onTx.run(TxRead, func() error {
		var err error
		if snap := s.snapshotIn(ctx); snap != nil {
			keptWrites, err = snap.read(fn)
		} else {
			keptWrites, err = s.viewOwn(fn)
		}
		return err
	})
	return keptWrites, err
}

// viewOwn runs fn in a read transaction of its own, and returns the
// store's count of kept writes before it began.
func (s *Store) viewOwn(fn func(tx *bolt.Tx) error) (keptWrites uint64, err error) {
	keptWrites = s.keptWrites.Load()
	return keptWrites, s.db.View(fn)
}

// snapshotIn returns ctx's snapshot of s, or nil.
func (s *Store) snapshotIn(ctx context.Context) *snapshot {
	if snap, ok := ctx.Value(snapshotKey{}).(*snapshot); ok && snap.store == s {
		return snap
	}
	return nil
}
