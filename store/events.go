package store

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// EventKind says what happened to a deployment or an environment.
type EventKind string

// What can happen to a deployment or an environment.
const (
	EventCreated EventKind = "created"
	EventUpdated EventKind = "updated"
	EventStopped EventKind = "stopped"
	EventDeleted EventKind = "deleted"
)

// Event is one committed change that a reader of a project could see: to a
// deployment (DeploymentID set) or to an environment (DeploymentID 0).
type Event struct {
	Kind          EventKind
	ProjectID     int64
	EnvironmentID int64
	Environment   string // the environment's name
	DeploymentID  int64
}

// IsDeployment reports whether the event is about a deployment rather than
// an environment.
func (e Event) IsDeployment() bool { return e.DeploymentID != 0 }

// DefaultEventBuffer is how many transactions a subscriber may fall behind
// before its subscription is ended. It counts transactions, not events: a
// reader that keeps up is never dropped for one large write (deleting an
// environment with all its deployments, say).
const DefaultEventBuffer = 256

// Why a subscription ended.
var (
	ErrSubscriberTooSlow = errors.New("the subscriber fell too far behind the events")
	ErrStoreClosed       = errors.New("the store is closed")
)

// changes collects one write transaction's events in the order its writes
// happen, and whether it wrote what the store's kept answers were read
// from (see kept.go).
type changes struct {
	events []Event
	kept   bool
}

func (c *changes) environment(kind EventKind, e *Environment) {
	c.events = append(c.events, Event{Kind: kind, ProjectID: e.ProjectID, EnvironmentID: e.ID, Environment: e.Name})
}

func (c *changes) deployment(kind EventKind, env *Environment, d *Deployment) {
	c.events = append(c.events, Event{Kind: kind, ProjectID: d.ProjectID, EnvironmentID: env.ID, Environment: env.Name, DeploymentID: d.ID})
}

// changesOf returns what the write transaction tx has changed so far. On
// tx's first call it arranges for the events to be published once tx
// commits, and for the commit to be counted in the store's kept writes if
// it wrote to keptBuckets; a transaction that rolls back does neither.
//
// IMPORTANT: every write transaction must call it (update, batch and the
// importer do): the broker publishes transactions strictly by number, and
// bbolt numbers committed write transactions consecutively, so a commit it
// never hears of would hold back every later event. Only the goroutine
// holding bbolt's writer lock touches s.writing.
func (s *Store) changesOf(tx *bolt.Tx) *changes {
	if s.writing.tx == tx {
		return s.writing.changes
	}
	c := &changes{}
	s.writing.tx, s.writing.changes = tx, c
	// A rolled-back transaction's number is given to the next one, so the
	// committed ones have no gaps.
	id := uint64(tx.ID())
	tx.OnCommit(func() {
		if c.kept {
			s.keptWrites.Add(1)
		}
		s.events.committed(id, c.events)
	})
	return c
}

// broker hands committed events to subscribers in commit order. bbolt runs
// commit handlers after releasing its writer lock, so two transactions'
// handlers may run in either order; the broker holds back a transaction
// until every earlier one has been published.
type broker struct {
	mu     sync.Mutex
	next   uint64             // the number of the next transaction to publish
	held   map[uint64][]Event // committed transactions waiting for an earlier one
	subs   map[int64]map[*Subscription]struct{}
	buffer int
	closed bool
}

func newBroker(next uint64, buffer int) *broker {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	return &broker{next: next, held: map[uint64][]Event{}, subs: map[int64]map[*Subscription]struct{}{}, buffer: buffer}
}

// committed publishes transaction txid's events once every transaction
// before it has been published.
func (b *broker) committed(txid uint64, events []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || txid < b.next {
		return
	}
	if txid > b.next {
		b.held[txid] = events
		return
	}
	b.publish(events)
	b.next++
	for {
		events, ok := b.held[b.next]
		if !ok {
			return
		}
		delete(b.held, b.next)
		b.publish(events)
		b.next++
	}
}

// publish hands a transaction's events to their projects' subscribers,
// each project's as one batch, without ever waiting: a subscriber whose
// buffer is full is dropped, so that neither writers nor the other
// subscribers wait for it, and no subscriber ever sees a gap or a
// reordering.
func (b *broker) publish(events []Event) {
	var byProject map[int64][]Event
	for _, e := range events {
		if len(b.subs[e.ProjectID]) == 0 {
			continue
		}
		if byProject == nil {
			byProject = map[int64][]Event{}
		}
		byProject[e.ProjectID] = append(byProject[e.ProjectID], e)
	}
	for projectID, batch := range byProject {
		for sub := range b.subs[projectID] {
			select {
			case sub.events <- batch:
			default:
				b.end(sub, ErrSubscriberTooSlow)
			}
		}
	}
}

func (b *broker) subscribe(projectID int64) *Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub := &Subscription{b: b, projectID: projectID, events: make(chan []Event, b.buffer), done: make(chan struct{})}
	if b.closed {
		sub.err = ErrStoreClosed
		close(sub.events)
		close(sub.done)
		return sub
	}
	if b.subs[projectID] == nil {
		b.subs[projectID] = map[*Subscription]struct{}{}
	}
	b.subs[projectID][sub] = struct{}{}
	return sub
}

// end removes a subscription; b.mu must be held.
func (b *broker) end(sub *Subscription, err error) {
	subs := b.subs[sub.projectID]
	if _, ok := subs[sub]; !ok {
		return
	}
	delete(subs, sub)
	if len(subs) == 0 {
		delete(b.subs, sub.projectID)
	}
	sub.err = err
	close(sub.events)
	close(sub.done)
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for sub := range subs {
			b.end(sub, ErrStoreClosed)
		}
	}
	b.closed = true
}

// Subscription receives the committed events of one project.
type Subscription struct {
	b         *broker
	projectID int64
	events    chan []Event
	done      chan struct{}
	err       error // set before done is closed
}

// Subscribe starts delivering the events of a project committed from now
// on, in commit order. It checks no access: the caller decides, event by
// event, what its reader may see. Close it when done.
func (s *Store) Subscribe(projectID int64) *Subscription {
	return s.events.subscribe(projectID)
}

// EndSubscriptions ends every subscription with ErrStoreClosed, and every
// later one at once: the server is shutting down.
func (s *Store) EndSubscriptions() { s.events.close() }

// Subscribers counts the subscriptions open now.
func (s *Store) Subscribers() int {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	n := 0
	for _, subs := range s.events.subs {
		n += len(subs)
	}
	return n
}

// Events delivers the events, one committed transaction's at a time, in
// commit order; it is closed when the subscription ends. Subscribers share
// a batch: read it, never change it.
func (sub *Subscription) Events() <-chan []Event { return sub.events }

// Done is closed when the subscription ends, even while events are still
// buffered.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// Err says why the subscription ended, once Done is closed:
// ErrSubscriberTooSlow, ErrStoreClosed, or nil after Close.
func (sub *Subscription) Err() error {
	<-sub.done
	return sub.err
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.b.mu.Lock()
	defer sub.b.mu.Unlock()
	sub.b.end(sub, nil)
}
