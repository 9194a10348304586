package store

// Tests of the event broker's ordering and of how events follow bbolt's
// commits, rollbacks and batch retries.

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func drain(sub *Subscription) []Event {
	var out []Event
	for {
		select {
		case batch := <-sub.Events():
			out = append(out, batch...)
		default:
			return out
		}
	}
}

func envEventNamed(name string) Event {
	return Event{Kind: EventCreated, ProjectID: 1, Environment: name}
}

// Ensure that a transaction whose commit handler runs early is held back
// until every earlier transaction has been published.
func TestBrokerPublishesInTransactionOrder(t *testing.T) {
	b := newBroker(10, 8)
	sub := b.subscribe(1)
	b.committed(12, []Event{envEventNamed("c")})
	b.committed(11, nil) // a commit with no events still counts
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("published %+v before transaction 10", got)
	}
	b.committed(10, []Event{envEventNamed("a"), envEventNamed("b")})
	b.committed(13, []Event{envEventNamed("d")})
	want := []Event{envEventNamed("a"), envEventNamed("b"), envEventNamed("c"), envEventNamed("d")}
	if got := drain(sub); !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if len(b.held) != 0 {
		t.Errorf("still holding %v", b.held)
	}
}

func openInternalStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordIn records an event in a write transaction, writing something so
// that the transaction is real.
func recordIn(s *Store, tx *bolt.Tx, name string) error {
	s.changesOf(tx).environment(EventCreated, &Environment{ProjectID: 1, Name: name})
	return tx.Bucket(bktMeta).Put([]byte("test-"+name), []byte(name))
}

// Ensure that a rolled-back transaction publishes nothing, and that the
// next one is published (its number is the rolled-back one's).
func TestEventsFollowCommits(t *testing.T) {
	s := openInternalStore(t)
	sub := s.Subscribe(1)
	boom := errors.New("boom")
	err := s.update(func(tx *bolt.Tx) error {
		if err := recordIn(s, tx, "rolled-back"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if err := s.update(func(tx *bolt.Tx) error { return recordIn(s, tx, "committed") }); err != nil {
		t.Fatal(err)
	}
	want := []Event{envEventNamed("committed")}
	if got := drain(sub); !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// Ensure that when a shared transaction fails because of one of its
// writes, the others, retried in a new transaction, publish once, and the
// failing one never.
func TestEventsFollowBatchRetries(t *testing.T) {
	s := openInternalStore(t)
	sub := s.Subscribe(1)
	boom := errors.New("boom")
	runs := map[string]int{}
	write := func(name string) *groupWrite {
		return &groupWrite{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			runs[name]++
			if err := recordIn(s, tx, name); err != nil {
				return err
			}
			if name == "bad" {
				return boom
			}
			return nil
		}}
	}
	for _, order := range [][]string{{"good", "bad"}, {"bad", "good"}} {
		clear(runs)
		writes := map[string]*groupWrite{order[0]: write(order[0]), order[1]: write(order[1])}
		s.commits.commit([]*groupWrite{writes[order[0]], writes[order[1]]})
		if err := <-writes["good"].done; err != nil {
			t.Errorf("%v: good: %v", order, err)
		}
		if err := <-writes["bad"].done; !errors.Is(err, boom) {
			t.Errorf("%v: bad: got %v, want boom", order, err)
		}
		// Run first, the failing write saw the committed state alone: its
		// error is final. Run second, it runs again alone for its answer.
		if want := 1 + slices.Index(order, "bad"); runs["bad"] != want {
			t.Errorf("%v: the failing write ran %d times, want %d", order, runs["bad"], want)
		}
		want := []Event{envEventNamed("good")}
		if got := drain(sub); !slices.Equal(got, want) {
			t.Errorf("%v: got %+v, want %+v (runs %v)", order, got, want, runs)
		}
	}
}

// Ensure that imports, whose transactions publish nothing, leave the
// broker in step with the file's transactions.
func TestEventsAfterImport(t *testing.T) {
	s := openInternalStore(t)
	if _, _, err := s.ImportDemo(t.Context()); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(1)
	if err := s.update(func(tx *bolt.Tx) error { return recordIn(s, tx, "after-import") }); err != nil {
		t.Fatal(err)
	}
	want := []Event{envEventNamed("after-import")}
	if got := drain(sub); !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
