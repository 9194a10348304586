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
	var failed atomic.Bool
	marshal := func(i int) {
		childCtx := graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
		defer func() {
			if r := recover(); r != nil {
				graphql.AddError(childCtx, graphql.Recover(childCtx, r))
				failed.Store(true)
			}
		}()
		ret[i] = marshalElement(childCtx, i)
	}
	if length == 1 {
		marshal(0)
	} else {
		// The items resolve and this goroutine waits for them (see
		// operation.pause), counted in that order, so that the count
		// cannot reach zero while an item is still to start. The last item
		// to end hands its count to this goroutine, which it wakes.
		op := operationOf(ctx)
		op.resume(length)
		var (
			wg      sync.WaitGroup
			running atomic.Int64
		)
		wg.Add(length)
		running.Store(int64(length))
		for i := range length {
			itemWorkers.run(func() {
				defer wg.Done()
				defer func() {
					if running.Add(-1) > 0 {
						op.pause()
					}
				}()
				marshal(i)
			})
		}
		op.pause()
		wg.Wait()
	}
	if failed.Load() {
		return nil
	}
	return ret
}

// itemWorkers run the items of lists for every request.
var itemWorkers = workerPool{jobs: make(chan func()), idle: 5 * time.Second}

// workerPool runs jobs on goroutines that wait for the next job once done,
// and end after idle to twice idle without one. A job never waits for a
// worker: when none is free, it gets a new goroutine, which then joins the
// pool. So the pool is as large as the most jobs running at once lately,
// and a job that waits (for a dataloader batch, say) never holds up
// another.
type workerPool struct {
	jobs    chan func()
	idle    time.Duration
	started atomic.Int64 // goroutines started, ever
}

func (p *workerPool) run(job func()) {
	select {
	case p.jobs <- job:
	default:
		p.started.Add(1)
		go p.work(job)
	}
}

// A worker's idle timer is not reset after every job, which kept the
// runtime's timers in motion under load (their checks took 2.1 % of q2's
// CPU at 32 clients, and 1.7 % since): when it fires, the worker ends if it
// has run no job since it last fired, and waits another round if it has.
func (p *workerPool) work(job func()) {
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for job != nil {
		job()
		job = p.next(idle)
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

// next waits for the worker's next job, or returns nil once idle fires
// twice without one, with idleStackBytes of the worker's stack in use.
//
//go:noinline
func (p *workerPool) next(idle *time.Timer) func() {
	var inUse [idleStackBytes]byte
	ran := true // a job ran since idle last fired: the one just done
	for {
		select {
		case job := <-p.jobs:
			runtime.KeepAlive(&inUse)
			return job
		case <-idle.C:
			if !ran {
				return nil
			}
			ran = false
			idle.Reset(p.idle)
		}
	}
}
