package graph

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// marshalItems is graphql.MarshalSliceConcurrently (without a worker limit,
// with the panic handler) run on itemWorkers: the items of a list are
// marshalled side by side, so that their lookups share dataloader batches
// (see Loader.Load), each in a FieldContext with its index.
//
// A new goroutine per item starts with a small stack and grows it, a copy
// at a time, through gqlgen's deep calls: about a seventh of the CPU of a
// page of 50 deployments. The pool's goroutines keep the stacks they grew.
func marshalItems(ctx context.Context, length int, marshalElement func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, length)
	if length == 0 {
		return ret
	}
	l := &itemList{ret: ret, marshalElement: marshalElement}
	items := make([]listItem, length)
	op := operationIn(ctx)
	for i := range items {
		items[i].list, items[i].index = l, i
		items[i].scope.Context, items[i].scope.op = ctx, op
		items[i].scope.spare = &items[i].set
		items[i].scope.fc.Index = &items[i].index
	}
	if length == 1 {
		items[0].marshal()
	} else {
		// The items resolve and this goroutine waits for them (see
		// operation.pause), counted in that order, so that the count
		// cannot reach zero while an item is still to start. The last item
		// to end hands its count to this goroutine, which it wakes.
		l.op = op
		l.op.resume(length)
		l.wg.Add(length)
		l.running.Store(int64(length))
		for i := range items {
			itemWorkers.run(&items[i])
		}
		l.op.pause()
		l.wg.Wait()
	}
	if l.failed.Load() {
		return nil
	}
	return ret
}

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
	wg             sync.WaitGroup
	running        atomic.Int64 // items not yet ended
	failed         atomic.Bool
}

// listItem is one item of an itemList, and its job for itemWorkers.
type listItem struct {
	list  *itemList
	index int
	scope fieldScope // the item's field context, with its index
	set   fieldSet   // the item's object, when it is one
}

func (it *listItem) run() {
	l := it.list
	defer l.wg.Done()
	defer func() {
		if l.running.Add(-1) > 0 {
			l.op.pause()
		}
	}()
	it.marshal()
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

// job is work for a workerPool: a list's item is one as it is (see
// listItem), with nothing allocated to wrap it. A nil job ends the worker
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
