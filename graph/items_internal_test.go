package graph

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deploygraph/deploygraph/store"
)

// marshalItems marshals every item at its index, each in a field context
// with that index, side by side once they wait (see handOff); a panicking
// item makes the list null and is reported as an error.
func TestMarshalItems(t *testing.T) {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(ctx context.Context, err any) error { return errors.New("internal system error") })
	for _, n := range []int{0, 1, 2, 50} {
		// Every item waits for all the others: this only ends if they run at once.
		var started sync.WaitGroup
		started.Add(n)
		got := marshalItems(ctx, n, func(ctx context.Context, i int) graphql.Marshaler {
			if n > 1 {
				handOff(ctx)
				started.Done()
				started.Wait()
			}
			return graphql.MarshalString(strconv.Itoa(*graphql.GetFieldContext(ctx).Index) + "/" + strconv.Itoa(i))
		})
		if len(got) != n {
			t.Fatalf("%d items: marshalled %d", n, len(got))
		}
		for i, m := range got {
			var b bytesWriter
			m.MarshalGQL(&b)
			if want := strconv.Quote(strconv.Itoa(i) + "/" + strconv.Itoa(i)); string(b) != want {
				t.Errorf("%d items: item %d = %s, want %s", n, i, b, want)
			}
		}
	}
	for _, n := range []int{1, 3} {
		got := marshalItems(ctx, n, func(ctx context.Context, i int) graphql.Marshaler {
			if i == n-1 {
				panic("broken item")
			}
			return graphql.MarshalString("ok")
		})
		if got != nil {
			t.Errorf("%d items, one panicking: %v, want a null list", n, got)
		}
	}
	if errs := graphql.GetErrors(ctx); len(errs) != 2 || errs[0].Message != "internal system error" {
		t.Errorf("errors = %v, want one internal system error per panicking list", errs)
	}
}

// The pool's goroutines take the next job rather than a new goroutine each,
// never make a job wait for one, and end when idle.
func TestWorkerPool(t *testing.T) {
	p := &workerPool{jobs: make(chan job), idle: 50 * time.Millisecond}
	runAll := func(n int) { runTogether(p, n, func() {}) }
	runAll(4)
	if got := p.started.Load(); got != 4 {
		t.Fatalf("4 jobs at once started %d goroutines, want 4", got)
	}
	// A job finds an idle worker unless the workers have not yet got back
	// to waiting, which a busy machine can make happen now and then.
	const rounds = 100
	for range rounds {
		runAll(4)
	}
	if got := p.started.Load(); got > 4+rounds*4/2 {
		t.Errorf("%d more rounds of 4 jobs started %d goroutines in all: the workers are not reused", rounds, got)
	}
	// Past idle, the workers end, and the next job starts a goroutine.
	before := p.started.Load()
	for deadline := time.Now().Add(5 * time.Second); p.started.Load() == before; {
		if time.Now().After(deadline) {
			t.Fatal("no worker ended after 5 s idle")
		}
		time.Sleep(100 * time.Millisecond)
		runAll(1)
	}
	// Every worker ends once idle, and with none left the sweeper stops.
	for deadline := time.Now().Add(5 * time.Second); p.live.Load() > 0 || p.sweeps.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("5 s idle: %d workers live (sweeper running: %v)", p.live.Load(), p.sweeps.Load())
		}
	}
}

// Workers that keep being used, if only now and then, are not ended: the
// pool stays as large as the most jobs running at once.
func TestWorkerPoolKeepsWorkersInUse(t *testing.T) {
	p := &workerPool{jobs: make(chan job), idle: 20 * time.Millisecond}
	const n = 8
	// 20 rounds 5 ms apart, through about five sweeps: every worker waits
	// most of the time, but all n are needed in every round.
	for range 20 {
		runTogether(p, n, func() {})
		time.Sleep(5 * time.Millisecond)
	}
	// A job that finds no worker back waiting yet starts one, now and
	// then on a busy machine: not one per round.
	if got := p.started.Load(); got > 3*n {
		t.Errorf("20 rounds of %d jobs, 5 ms apart, started %d goroutines: the sweeper ends workers still in use", n, got)
	}
}

// An idle worker keeps the stack its jobs grew, up to 16 KiB, through
// collections, rather than having it halved by each and grown again, a copy
// at a time, by its next job.
func TestWorkerPoolKeepsGrownStacks(t *testing.T) {
	p := &workerPool{jobs: make(chan job), idle: time.Minute}
	const workers = 256
	runTogether(p, workers, func() {
		growStack(8) // about 8 KiB of frames: a stack of 16 KiB
	})
	time.Sleep(100 * time.Millisecond) // for the workers to get back to waiting
	before := stackInUse()
	runtime.GC()
	runtime.GC()
	after := stackInUse()
	for range workers {
		p.jobs <- nil // ends a worker
	}
	// Halving the workers' stacks would free 8 KiB each.
	if freed := int64(before) - int64(after); freed > workers*8<<10/4 {
		t.Errorf("two collections freed %d KiB of the stacks of %d idle workers (%d KiB in use before)", freed>>10, workers, before>>10)
	}
}

// runTogether runs n jobs on p that each do work and then wait until all n
// have: none of them can be handed to a worker busy with another, so each
// has a worker of its own. It returns once all are done.
func runTogether(p *workerPool, n int, work func()) {
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		p.run(jobFunc(func() {
			defer done.Done()
			work()
			started.Done()
			started.Wait()
		}))
	}
	done.Wait()
}

//go:noinline
func growStack(depth int) byte {
	var frame [1 << 10]byte
	frame[depth%len(frame)] = byte(depth)
	if depth > 0 {
		frame[0] += growStack(depth - 1)
	}
	runtime.KeepAlive(&frame)
	return frame[0]
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

var _ io.Writer = (*bytesWriter)(nil)

// The count of an operation's goroutines that resolve is back where it
// was once lists (nested, panicking) and their items' loader waits are
// done, and it reaches zero, sending the batches gathered, only when every
// goroutine waits.
func TestOperationCountsWhoResolves(t *testing.T) {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(ctx context.Context, err any) error { return errors.New("internal system error") })
	ctx, l, batches := countedOperation(t, ctx)
	op := operationOf(ctx)

	done := make(chan struct{})
	go func() {
		defer close(done)
		marshalItems(ctx, 4, items(t, l))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the items' batch was not sent when they all waited")
	}
	if got := op.busy.Load(); got != 1 {
		t.Fatalf("after the lists, %d goroutines counted as resolving, want 1", got)
	}
	if got := batches(); !slices.Equal(got, []int{4}) {
		t.Errorf("the four items' keys were read in batches of %v, want one of 4", got)
	}
}

// items look their index up, then marshal a nested list of three, one of
// which panics.
func items(t *testing.T, l *Loader[int, int]) func(ctx context.Context, i int) graphql.Marshaler {
	return func(ctx context.Context, i int) graphql.Marshaler {
		v, err := l.Load(ctx, i)()
		if err != nil || v != i {
			t.Errorf("item %d loaded %v, %v", i, v, err)
		}
		marshalItems(ctx, 3, func(ctx context.Context, j int) graphql.Marshaler {
			if i == 2 && j == 1 {
				panic("an item fails")
			}
			return graphql.Null
		})
		return graphql.Null
	}
}

// A list's items allocate nothing of their own: each item's context, the
// field context it holds, and the set its object is written in are part
// of the item (see itemList).
func TestMarshalItemsAllocations(t *testing.T) {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
	const n = 50
	fields := []graphql.CollectedField{{Field: &ast.Field{Alias: "iid", Name: "iid"}}}
	allocs := testing.AllocsPerRun(50, func() {
		// Each item an object, written in the set its item holds.
		marshalItems(ctx, n, func(ctx context.Context, _ int) graphql.Marshaler { return newFieldSet(ctx, fields) })
	})
	// The array, the list and its items: 3 (4 measured, with this test's
	// closure), against n + 3 with a context value per item and 4n + 6
	// with a closure per item. A worker started for want of an idle one
	// allocates too: a few are allowed for.
	if allocs > n/5 {
		t.Errorf("a list of %d items took %.0f allocations, want a few whatever its length", n, allocs)
	}
}

// An empty list is written as [] without allocating, a missing list that
// may be null as null, and a list with items as before.
func TestEmptyListsAllocateNothing(t *testing.T) {
	var ec *executionContext // the list marshalers read nothing of it for no items
	ctx := context.Background()
	tests := []struct {
		name  string
		write func() graphql.Marshaler
		want  string
	}{
		{"empty", func() graphql.Marshaler {
			return ec.marshalNDeploymentApproval2ᚕᚖgithubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐApprovalᚄ(ctx, nil, []*store.Approval{})
		}, "[]"},
		{"nil, not null", func() graphql.Marshaler {
			return ec.marshalNDeploymentApproval2ᚕᚖgithubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐApprovalᚄ(ctx, nil, nil)
		}, "[]"},
		{"nil, nullable", func() graphql.Marshaler {
			return ec.marshalODeploymentStatus2ᚕgithubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatusᚄ(ctx, nil, nil)
		}, "null"},
		{"empty, nullable", func() graphql.Marshaler {
			return ec.marshalODeploymentStatus2ᚕgithubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatusᚄ(ctx, nil, []store.DeploymentStatus{})
		}, "[]"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		tt.write().MarshalGQL(&out)
		if out.String() != tt.want {
			t.Errorf("%s: wrote %s, want %s", tt.name, out.String(), tt.want)
		}
		if n := testing.AllocsPerRun(100, func() { tt.write() }); n != 0 {
			t.Errorf("%s: %v allocations, want none", tt.name, n)
		}
	}
	statuses := ec.marshalODeploymentStatus2ᚕgithubᚗcomᚋdeploygraphᚋdeploygraphᚋstoreᚐDeploymentStatusᚄ(
		graphql.WithResponseContext(ctx, graphql.DefaultErrorPresenter, graphql.DefaultRecover), nil,
		[]store.DeploymentStatus{store.StatusSuccess, store.StatusFailed})
	var out bytes.Buffer
	statuses.MarshalGQL(&out)
	if out.String() != `["SUCCESS","FAILED"]` {
		t.Errorf("a list of two statuses wrote %s", out.String())
	}
}

// Items that do not wait are taken by at most twice as many goroutines as
// there are processors (itemRunners), the calling one among them, however
// long the list: not a goroutine each.
func TestItemsShareFewGoroutines(t *testing.T) {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
	const n = 200
	var mu sync.Mutex
	ran := map[string]int{} // goroutine → items it marshalled
	marshalItems(ctx, n, func(ctx context.Context, _ int) graphql.Marshaler {
		mu.Lock()
		ran[goroutineOf()]++
		mu.Unlock()
		// Busy a while, without waiting, as an item is: time for other
		// goroutines to start on the other processors.
		for start := time.Now(); time.Since(start) < 20*time.Microsecond; {
		}
		return graphql.Null
	})
	total := 0
	for _, items := range ran {
		total += items
	}
	if total != n {
		t.Fatalf("%d items marshalled, want %d", total, n)
	}
	if most := 2 * runtime.GOMAXPROCS(0); len(ran) > most {
		t.Errorf("%d items that never wait ran on %d goroutines, want at most %d", n, len(ran), most)
	}
}

// goroutineOf names the calling goroutine ("goroutine 7").
func goroutineOf() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// Every item of a level that waits for a loader joins one batch, sent when
// the last of them waits, whatever the number of items and however deep
// the lists: an item about to wait hands the items not yet taken, of its
// list and of the lists around it, to another goroutine.
func TestWaitingItemsHandTheRestOn(t *testing.T) {
	for _, tc := range []struct {
		name         string
		outer, inner int // inner 0: the outer items look up themselves
	}{
		{"one level", 60, 0},
		{"nested lists", 12, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, l, batches := countedOperation(t, graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover))
			lookUp := func(ctx context.Context, key int) graphql.Marshaler {
				if v, err := l.Load(ctx, key)(); err != nil || v != key {
					t.Errorf("key %d loaded %v, %v", key, v, err)
				}
				return graphql.Null
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				marshalItems(ctx, tc.outer, func(ctx context.Context, i int) graphql.Marshaler {
					if tc.inner == 0 {
						return lookUp(ctx, i)
					}
					return marshalItems(ctx, tc.inner, func(ctx context.Context, j int) graphql.Marshaler {
						return lookUp(ctx, i*tc.inner+j)
					})
				})
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the items' batch was not sent: some item never began")
			}
			want := tc.outer * max(tc.inner, 1)
			if got := batches(); !slices.Equal(got, []int{want}) {
				t.Errorf("the items' keys were read in batches of %v, want one of %d", got, want)
			}
			if got := operationOf(ctx).busy.Load(); got != 1 {
				t.Errorf("after the lists, %d goroutines counted as resolving, want 1", got)
			}
		})
	}
}

// countedOperation starts an operation under ctx whose batches only its
// count of the goroutines that resolve sends (see batchTimersOff), with a
// loader that answers each int key with itself; batches returns the sizes
// of the batches it read, in order.
func countedOperation(t *testing.T, ctx context.Context) (_ context.Context, _ *Loader[int, int], batches func() []int) {
	q := &quietTimer{}
	var (
		mu    sync.Mutex
		sizes []int
	)
	l := newLoader(q, "probe", func(_ context.Context, keys []int) []*dataloader.Result[int] {
		mu.Lock()
		sizes = append(sizes, len(keys))
		mu.Unlock()
		out := make([]*dataloader.Result[int], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[int]{Data: k}
		}
		return out
	})
	ctx = WithOperation(ctx, func() *Loaders { return &Loaders{quiet: q} })
	loadersFrom(ctx)
	batchTimersOff(t)
	return ctx, l, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes)
	}
}
