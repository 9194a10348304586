package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many writes share one transaction.
const maxGroup = 256

// groupWrite is one caller's write waiting for a shared commit.
type groupWrite struct {
	fn   func(tx *bolt.Tx) error
	done chan error
}

// committer is group commit for the hot write paths: the writes that
// arrive while a commit (and its fsync) is in flight queue up, and the next
// transaction takes them all, and those that arrive while it applies them.
// A lone writer commits at once, where bbolt's Batch would first wait for
// its timer; under concurrency, one fsync serves every queued write.
type committer struct {
	update  func(fn func(tx *bolt.Tx) error) error // one write transaction
	writes  chan *groupWrite
	closing chan struct{}
	stopped chan struct{}
	once    sync.Once
	// commits and committed count the transactions that committed and the
	// writes they held (see CommitStats).
	commits, committed atomic.Uint64
}

func startCommitter(update func(fn func(tx *bolt.Tx) error) error) *committer {
	c := &committer{
		update:  update,
		writes:  make(chan *groupWrite),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go c.run()
	return c
}

// do runs fn in a transaction it may share with other writes. IMPORTANT: fn
// may run more than once (when a write it shared a transaction with
// failed), so it must derive everything from tx and only assign results to
// its caller's variables.
//
// A caller whose ctx ends while it waits for the committer gives up, and
// its write never runs. Once taken, a write's answer is awaited whatever
// ctx does: an error for a write that then commits would invite a retry
// that records it twice.
func (c *committer) do(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	select {
	case c.writes <- w:
		return <-w.done
	case <-c.closing:
		return ErrStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop lets the commit in flight finish; later writes get ErrStoreClosed.
func (c *committer) stop() {
	c.once.Do(func() { close(c.closing) })
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		select {
		case w := <-c.writes:
			c.commit([]*groupWrite{w})
		case <-c.closing:
			return
		}
	}
}

// gather adds the writes waiting now to group, up to maxGroup, and
// reports whether it added any.
func (c *committer) gather(group *[]*groupWrite) bool {
	n := len(*group)
	for len(*group) < maxGroup {
		select {
		case w := <-c.writes:
			*group = append(*group, w)
		default:
			return len(*group) > n
		}
	}
	return len(*group) > n
}

// refusal is a write's error met before the write changed anything.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refused marks err, returned by a write of the committer's before it
// changed anything (the access and input checks of the hot paths): its
// writer gets err, and the others commit in the same transaction instead
// of running again without it. IMPORTANT: only for errors met before the
// write's first change to tx; anything written before it would be
// committed.
func refused(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{err: err}
}

// refusalOf is the error a refusal carries, or nil when err is none.
func refusalOf(err error) error {
	var r *refusal
	if errors.As(err, &r) {
		return r.err
	}
	return nil
}

// errAllRefused rolls back a transaction whose writes were all refused.
var errAllRefused = errors.New("every write of the group was refused")

// failedWrite aborts a shared transaction and names the write that failed.
type failedWrite struct {
	index int
	err   error
}

func (f *failedWrite) Error() string { return f.err.Error() }

// commit runs the group in one transaction, with the writes that arrive
// while it is being applied: they would otherwise wait for this commit and
// its syncs and then for their own. A write refused before it changed
// anything (see refused) is answered once the others have committed. When a
// write fails otherwise, nothing of the group is kept, and the others
// commit together without it. The failed write's answer is its own: if it
// ran first, it saw exactly the committed state; otherwise it runs again
// alone.
func (c *committer) commit(group []*groupWrite) {
	var answers []error // of the writes run in the transaction being tried
	var written int     // how many of them were not refused
	for len(group) > 0 {
		err := c.update(func(tx *bolt.Tx) error {
			answers, written = answers[:0], 0
			for i := 0; i < len(group) || c.gather(&group); i++ {
				err := runWrite(group[i].fn, tx)
				if refusal := refusalOf(err); refusal != nil {
					answers = append(answers, refusal)
					continue
				}
				if err != nil {
					return &failedWrite{index: i, err: err}
				}
				written++
				answers = append(answers, nil)
			}
			if written == 0 {
				return errAllRefused // nothing to commit, nor to sync
			}
			return nil
		})
		var failed *failedWrite
		if !errors.As(err, &failed) {
			if err == nil {
				c.counted(written)
			}
			ownAnswers := err == nil || errors.Is(err, errAllRefused)
			for i, w := range group {
				if ownAnswers {
					w.done <- answers[i]
				} else {
					w.done <- err
				}
			}
			return
		}
		bad := group[failed.index]
		if failed.index == 0 {
			bad.done <- failed.err
		} else {
			err := c.update(func(tx *bolt.Tx) error { return runWrite(bad.fn, tx) })
			if refusal := refusalOf(err); refusal != nil {
				err = refusal
			} else if err == nil {
				c.counted(1)
			}
			bad.done <- err
		}
		group = append(group[:failed.index:failed.index], group[failed.index+1:]...)
	}
}

// counted records a committed transaction of writes writes.
func (c *committer) counted(writes int) {
	c.commits.Add(1)
	c.committed.Add(uint64(writes))
}

// runWrite turns a panic in one write into that write's error, so that it
// neither takes the server down nor leaves the others waiting.
func runWrite(fn func(tx *bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return fn(tx)
}
