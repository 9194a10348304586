package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"

	bolt "go.etcd.io/bbolt"
)

func openCommitter(t *testing.T) (*bolt.DB, *committer) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "commit.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c := startCommitter(db.Update)
	t.Cleanup(func() {
		c.stop()
		db.Close()
	})
	return db, c
}

func put(key string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("k")).Put([]byte(key), []byte("v")) }
}

func stored(t *testing.T, db *bolt.DB, key string) bool {
	t.Helper()
	var ok bool
	db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket([]byte("k")).Get([]byte(key)) != nil
		return nil
	})
	return ok
}

// Every write gets its own answer, whatever it shared a transaction with:
// a failing or panicking write changes nothing and fails alone.
func TestCommitterAnswersEachWrite(t *testing.T) {
	db, c := openCommitter(t)
	errRefused := errors.New("refused")
	const writers = 200
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprint(i)
			write := put(key)
			switch i % 10 {
			case 3: // writes, then refuses: its write must not survive
				write = func(tx *bolt.Tx) error {
					if err := put(key)(tx); err != nil {
						return err
					}
					return errRefused
				}
			case 7:
				write = func(tx *bolt.Tx) error {
					put(key)(tx)
					panic("broken write")
				}
			}
			errs[i] = c.do(context.Background(), write)
		})
	}
	wg.Wait()
	for i, err := range errs {
		key := fmt.Sprint(i)
		switch i % 10 {
		case 3:
			if !errors.Is(err, errRefused) || stored(t, db, key) {
				t.Errorf("write %d: err %v, stored %v; want its own error and nothing stored", i, err, stored(t, db, key))
			}
		case 7:
			if err == nil || stored(t, db, key) {
				t.Errorf("panicking write %d: err %v, stored %v; want an error and nothing stored", i, err, stored(t, db, key))
			}
		default:
			if err != nil || !stored(t, db, key) {
				t.Errorf("write %d: err %v, stored %v; want it committed", i, err, stored(t, db, key))
			}
		}
	}
}

// A write that shares a transaction with a failing one runs again, so it
// must not depend on having run once; the store's write functions derive
// everything from the transaction. Here a counter proves the retry commits
// exactly one increment.
func TestCommitterRetriesTheOthersWithoutTheFailedWrite(t *testing.T) {
	db, c := openCommitter(t)
	gate := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.do(context.Background(), func(tx *bolt.Tx) error { <-gate; return nil })
	}()
	increment := func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("k"))
		n := 0
		if v := b.Get([]byte("n")); v != nil {
			n = int(v[0])
		}
		return b.Put([]byte("n"), []byte{byte(n + 1)})
	}
	results := make(chan error, 2)
	go func() { results <- c.do(context.Background(), increment) }()
	go func() { results <- c.do(context.Background(), func(tx *bolt.Tx) error { return errors.New("no") }) }()
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	failures := 0
	for range 2 {
		if err := <-results; err != nil {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("%d writes failed, want 1", failures)
	}
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("k")).Get([]byte("n")); len(v) != 1 || v[0] != 1 {
			t.Errorf("counter %v, want exactly one increment", v)
		}
		return nil
	})
}

// Writes that arrive while a group is being applied join its commit rather
// than wait for it and then for one of their own.
func TestCommitterTakesWritesArrivingWhileItApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var commits int
		c := startCommitter(func(fn func(tx *bolt.Tx) error) error { commits++; return fn(nil) })
		defer c.stop()
		gate := make(chan struct{})
		answers := make(chan error, 4)
		go func() { answers <- c.do(context.Background(), func(*bolt.Tx) error { <-gate; return nil }) }()
		synctest.Wait() // the committer is applying the first write
		for range 3 {
			go func() { answers <- c.do(context.Background(), func(*bolt.Tx) error { return nil }) }()
		}
		synctest.Wait() // the others wait for the committer
		close(gate)
		for range 4 {
			if err := <-answers; err != nil {
				t.Fatal(err)
			}
		}
		if commits != 1 {
			t.Fatalf("4 writes took %d commits, want 1", commits)
		}
	})
}

// A write refused before it changed anything gets its own error, and the
// others commit in the same transaction, each run once; a group of refusals
// alone commits nothing (no sync for nothing).
func TestCommitterCommitsAroundRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var commits, rollbacks int
		c := startCommitter(func(fn func(tx *bolt.Tx) error) error {
			if err := fn(nil); err != nil {
				rollbacks++
				return err
			}
			commits++
			return nil
		})
		defer c.stop()
		errNo := errors.New("no")
		const writes = 6
		var runs [writes + 1]int
		gate := make(chan struct{})
		answers := make([]chan error, writes+1)
		send := func(i int) {
			answers[i] = make(chan error, 1)
			go func() {
				answers[i] <- c.do(context.Background(), func(*bolt.Tx) error {
					runs[i]++
					if i == 0 {
						<-gate
					}
					if i%2 == 0 && i > 0 {
						return refused(fmt.Errorf("write %d: %w", i, errNo))
					}
					return nil
				})
			}()
		}
		send(0)
		synctest.Wait() // the committer is applying write 0
		for i := 1; i < writes; i++ {
			send(i)
		}
		synctest.Wait()
		close(gate)
		for i := range writes {
			err := <-answers[i]
			var r *refusal
			switch {
			case i%2 == 0 && i > 0 && (!errors.Is(err, errNo) || errors.As(err, &r)):
				t.Errorf("refused write %d: %v, want its own error, unwrapped", i, err)
			case (i%2 != 0 || i == 0) && err != nil:
				t.Errorf("write %d: %v", i, err)
			}
		}
		if commits != 1 || rollbacks != 0 || runs != [writes + 1]int{1, 1, 1, 1, 1, 1} {
			t.Fatalf("%d commits, %d rollbacks, runs %v; want one commit running each write once", commits, rollbacks, runs)
		}
		if n, w := c.commits.Load(), c.committed.Load(); n != 1 || w != 4 {
			t.Errorf("counted %d commits of %d writes, want 1 of 4", n, w)
		}

		send(writes) // refused, alone
		if err := <-answers[writes]; !errors.Is(err, errNo) {
			t.Fatalf("lone refused write: %v", err)
		}
		if commits != 1 || rollbacks != 1 {
			t.Fatalf("a lone refusal made %d commits and %d rollbacks, want none and one", commits-1, rollbacks)
		}
	})
}

func TestCommitterRefusesWritesAfterStop(t *testing.T) {
	db, c := openCommitter(t)
	c.stop()
	c.stop() // Close may run twice
	if err := c.do(context.Background(), put("late")); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("write after stop: %v, want ErrStoreClosed", err)
	}
	if stored(t, db, "late") {
		t.Fatal("a write after stop was stored")
	}
}

// A writer whose context ends while the committer is busy gives up without
// its write ever running; one already taken gets its real answer.
func TestCommitterWaitEndsWithTheContext(t *testing.T) {
	db, c := openCommitter(t)
	gate := make(chan struct{})
	taken := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.do(context.Background(), func(tx *bolt.Tx) error {
			close(taken)
			<-gate
			return put("first")(tx)
		})
	}()
	<-taken // the committer is inside the first write's transaction
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- c.do(ctx, put("abandoned")) }()
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned write: %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := c.do(context.Background(), put("after")); err != nil {
		t.Fatal(err)
	}
	if stored(t, db, "abandoned") || !stored(t, db, "first") || !stored(t, db, "after") {
		t.Fatalf("stored abandoned %v, first %v, after %v; want only first and after",
			stored(t, db, "abandoned"), stored(t, db, "first"), stored(t, db, "after"))
	}
}
