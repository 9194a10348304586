package graph

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// marshalItems is graphql.MarshalSliceConcurrently (with the panic
// handler) for lists whose items' lookups share dataloader batches (see
// Loader.Load), each item in a FieldContext with its index.
//
// The items are shared among itemRunners goroutines, the calling one and
// goroutines of itemWorkers, each taking the next item not yet taken once
// done with one: a goroutine per item only queued each behind the other
// requests' goroutines, and a page's items mostly find what they read
// prefetched (see prefetchDeployments). An item that waits, for a loader's
// batch or for a list of its own, first hands the items not yet taken to
// another goroutine (see handOff), so every item of a level that looks
// something up joins the level's batch before it is sent, as when every
// item had a goroutine from the start.
func marshalItems(ctx context.Context, length int, marshalElement func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, length)
	if length == 0 {
		return ret
	}
	op := operationIn(ctx)
	l := &itemList{ret: ret, marshalElement: marshalElement, op: op, items: make([]listItem, length)}
	for i := range l.items {
		it := &l.items[i]
		it.list, it.index = l, i
		it.scope.Context, it.scope.op, it.scope.item = ctx, op, it
		it.scope.spare = &it.set
		it.scope.fc.Index = &it.index
	}
	l.marshalling.Store(1)
	for range min(itemRunners, length) - 1 {
		l.handOn()
	}
	l.take(true)
	// Items handed on may still be running: this goroutine waits for them
	// (see operation.pause), and the last of them to end hands its count
	// to it, rather than pausing, before waking it.
	if l.marshalling.Add(-1) != 0 {
		handOffAbove(l.parent())
		op.pause()
	}
	l.helpers.Wait()
	if l.failed.Load() {
		return nil
	}
	return ret
}

// itemRunners is how many goroutines take a list's items from the start:
// twice the processors, as many as queries run at once (see queryTurns),
// so that a list's items are spread over the processors, and interleave
// with the other queries' as they take turns on them.
var itemRunners = DefaultMaxRunningQueries()

// emptyList is every empty list's value: the generated list marshalers
// return it rather than run marshalItems for no items.
var emptyList graphql.Marshaler = graphql.Array{}

// itemList is a list being marshalled by marshalItems. The list and its
// items take two allocations, each item's context included (its
// fieldScope), where a closure per item would take four per item (the
// closure, the index it points at, its field context and the context
// holding that): allocation is a fifth of the CPU of a page of
// deployments.
type itemList struct {
	ret            graphql.Array
	marshalElement func(ctx context.Context, i int) graphql.Marshaler
	op             *operation
	items          []listItem
	next           atomic.Int64 // the first item not yet taken
	// marshalling counts the goroutines taking the list's items: the one
	// that marshals the list, and those its items handed on to.
	marshalling atomic.Int64
	helpers     sync.WaitGroup // the goroutines items were handed on to
	failed      atomic.Bool
}

// listItem is one item of an itemList.
type listItem struct {
	list  *itemList
	index int
	// byCaller: taken by the goroutine that marshals its list (which
	// marshals the list's parent item too), not by one handed the list.
	byCaller bool
	scope    fieldScope // the item's field context, with its index
	set      fieldSet   // the item's object, when it is one
}

// take marshals the items not yet taken, one after another; byCaller tells
// whether this goroutine is the one that marshals the list.
func (l *itemList) take(byCaller bool) {
	for {
		i := l.next.Add(1) - 1
		if i >= int64(len(l.items)) {
			return
		}
		it := &l.items[i]
		it.byCaller = byCaller
		it.marshal()
	}
}

// run is the job of a goroutine handed the items not yet taken.
func (l *itemList) run() {
	defer l.helpers.Done()
	l.take(false)
	if l.marshalling.Add(-1) > 0 {
		l.op.pause()
	}
}

// handOn hands the items not yet taken, if any are left, to a goroutine of
// itemWorkers: the goroutine that was taking them is about to wait.
func (l *itemList) handOn() {
	if l.next.Load() >= int64(len(l.items)) {
		return
	}
	l.helpers.Add(1)
	l.marshalling.Add(1)
	l.op.resume(1) // counted before this goroutine pauses (see operation.pause)
	itemWorkers.run(l)
}

// parent is the item the list is part of, if any, looked up from the
// list's context when a goroutine taking its items is about to wait,
// rather than by every list up front.
func (l *itemList) parent() *listItem { return itemIn(l.items[0].scope.Context) }

// handOff is called by a goroutine about to wait while resolving the field
// of ctx: the items it would have taken next, of the list ctx is in and of
// the lists around that one which it marshals, are handed on, so that
// they do not wait for it.
func handOff(ctx context.Context) { handOffAbove(itemIn(ctx)) }

// handOffAbove does handOff for the goroutine that runs item it.
func handOffAbove(it *listItem) {
	for ; it != nil; it = it.list.parent() {
		it.list.handOn()
		if !it.byCaller {
			return // the lists around it are another goroutine's
		}
	}
}

// itemIn returns the list item whose field ctx resolves (at any depth), or
// nil outside lists.
func itemIn(ctx context.Context) *listItem {
	it, _ := ctx.Value(listItemKey).(*listItem)
	return it
}

// marshal marshals the item in a field context with its index; a panic
// makes the list null and is reported as an error.
func (it *listItem) marshal() {
	it.scope.install()
	ctx := context.Context(&it.scope)
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			it.list.failed.Store(true)
		}
	}()
	it.list.ret[it.index] = it.list.marshalElement(ctx, it.index)
}

// itemWorkers run the items of lists for every request.
var itemWorkers = workerPool{jobs: make(chan job), idle: 5 * time.Second}

// job is work for a workerPool: a list's items handed on are one as they
// are (see itemList), with nothing allocated to wrap them. A nil job ends the worker
// that takes it.
type job interface{ run() }

// jobFunc is a func as a job.
type jobFunc func()

func (f jobFunc) run() { f() }

// workerPool runs jobs on goroutines that wait for the next job once done.
// A job never waits for a worker: when none is free, it gets a new
// goroutine, which then joins the pool. So the pool is as large as the most
// jobs running at once lately, and a job that waits (for a dataloader
// batch, say) never holds up another.
//
// Workers no longer needed end: while any lives, a sweeper looks every idle
// at the fewest workers that waited at once since it last looked, and ends
// that many, handing them nil jobs (a channel hands a job to the worker
// that has waited longest). So a worker waits on the job channel alone,
// not also on a timer of its own reset after every job: that made every
// job a select over two channels and kept the runtime's timers in motion,
// about 10 % of q2's CPU at 32 clients with the timers' locks.
type workerPool struct {
	jobs    chan job
	idle    time.Duration
	started atomic.Int64 // goroutines started, ever
	live    atomic.Int64 // workers running a job or waiting for one
	waiting atomic.Int64 // workers waiting for a job
	fewest  atomic.Int64 // the fewest workers waiting at once since the last sweep
	sweeps  atomic.Bool  // a sweeper runs
}

func (p *workerPool) run(j job) {
	select {
	case p.jobs <- j:
	default:
		p.started.Add(1)
		p.live.Add(1)
		if p.sweeps.CompareAndSwap(false, true) {
			go p.sweep()
		}
		go p.work(j)
	}
}

func (p *workerPool) work(j job) {
	defer p.live.Add(-1)
	for j != nil {
		j.run()
		j = p.next()
	}
}

// leftWaiting notes that a worker has stopped waiting, leaving n waiting.
func (p *workerPool) leftWaiting(n int64) {
	for {
		fewest := p.fewest.Load()
		if n >= fewest || p.fewest.CompareAndSwap(fewest, n) {
			return
		}
	}
}

// sweep ends, every idle, as many workers as waited throughout it, and
// returns once no worker lives.
func (p *workerPool) sweep() {
	tick := time.NewTicker(p.idle)
	defer tick.Stop()
	p.recount()
	for range tick.C {
		if p.live.Load() == 0 {
			p.sweeps.Store(false)
			// A worker started between the load and the store saw this
			// sweeper running and started none: sweep on for it, unless
			// another sweeper has started since.
			if p.live.Load() == 0 || !p.sweeps.CompareAndSwap(false, true) {
				return
			}
		}
		p.end(min(p.fewest.Load(), p.waiting.Load()))
		p.recount()
	}
}

// recount starts the count of the fewest workers waiting at once from those
// waiting now.
func (p *workerPool) recount() {
	p.fewest.Store(p.waiting.Load())
	p.leftWaiting(p.waiting.Load()) // any that stopped waiting meanwhile
}

// end hands nil jobs to up to n waiting workers.
func (p *workerPool) end(n int64) {
	for range n {
		select {
		case p.jobs <- nil:
		default:
			return // none waits now
		}
	}
}

// idleStackBytes is how much of its stack a worker keeps in use while it
// waits for a job. The collector halves the stack of a goroutine that uses
// less than a quarter of it when scanned, and a page of deployments grows
// its items' stacks to about 16 KiB: an idle worker's stack was halved at
// every collection, and grown again, a copy at a time, by its next job
// (about 5 % of the CPU of q2 at 32 clients). Waiting below a frame of 4
// KiB keeps stacks of up to 16 KiB as they are; larger ones still shrink
// to that.
const idleStackBytes = 4 << 10

// next waits for the worker's next job (nil ends it), with idleStackBytes
// of the worker's stack in use.
//
//go:noinline
func (p *workerPool) next() job {
	var inUse [idleStackBytes]byte
	p.waiting.Add(1)
	j := <-p.jobs
	p.leftWaiting(p.waiting.Add(-1))
	runtime.KeepAlive(&inUse)
	return j
}
