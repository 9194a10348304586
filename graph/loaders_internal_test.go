package graph

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/deploygraph/deploygraph/store"
)

// A loader reads each key once per request: a key read before, or primed,
// is answered without a batch; a key whose read failed may be read again.
func TestLoaderReadsEachKeyOnce(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
	)
	l := newLoader(&quietTimer{}, "probe", func(_ context.Context, keys []int) []*dataloader.Result[string] {
		mu.Lock()
		batches = append(batches, slices.Clone(keys))
		mu.Unlock()
		out := make([]*dataloader.Result[string], len(keys))
		for i, k := range keys {
			if k < 0 {
				out[i] = &dataloader.Result[string]{Error: errors.New("no such key")}
			} else {
				out[i] = &dataloader.Result[string]{Data: "v" + string(rune('0'+k))}
			}
		}
		return out
	})
	ctx := context.Background()
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	one := func(key int) string {
		v, _ := l.Load(ctx, key)()
		return v
	}
	check("first read", []string{one(1)}, "v1")
	check("second read", []string{one(1)}, "v1")
	l.Prime(2, "primed")
	check("primed", []string{one(2)}, "primed")
	l.Prime(1, "primed over a read")
	check("primed after a read", []string{one(1)}, "v1")
	values, errs := l.LoadMany(ctx, []int{1, 2, 3, -1})()
	check("many", values, "v1", "primed", "v3", "")
	if errs[3] == nil || errs[0] != nil || errs[2] != nil {
		t.Errorf("many: errors %v, want one for key -1 only", errs)
	}
	values, _ = l.LoadMany(ctx, []int{3, 1})()
	check("many again", values, "v3", "v1")
	mu.Lock()
	defer mu.Unlock()
	if want := [][]int{{1}, {3, -1}}; !slices.EqualFunc(batches, want, slices.Equal[[]int]) {
		t.Errorf("batches %v, want %v", batches, want)
	}
}

// Outside lists a lookup is read in the caller's goroutine, each missing
// key once; inside a list it joins the batch being gathered, sent when
// flushed. A batch that answers fewer keys than it was
// given fails the keys it left out.
func TestLoaderReadsAtOnceOutsideLists(t *testing.T) {
	var batches [][]int
	l := newLoader(&quietTimer{}, "probe", func(_ context.Context, keys []int) []*dataloader.Result[int] {
		batches = append(batches, slices.Clone(keys))
		out := make([]*dataloader.Result[int], 0, len(keys))
		for _, k := range keys {
			if k == 99 {
				break // answers the keys before 99 only
			}
			out = append(out, &dataloader.Result[int]{Data: k * 10})
		}
		return out
	})
	ctx := context.Background()
	values, errs := l.LoadMany(ctx, []int{1, 2, 1, 3})()
	if !slices.Equal(values, []int{10, 20, 10, 30}) || slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		t.Fatalf("many: %v %v, want [10 20 10 30] and no errors", values, errs)
	}
	if v, err := l.Load(ctx, 4)(); v != 40 || err != nil {
		t.Fatalf("one: %v %v, want 40", v, err)
	}
	values, errs = l.LoadMany(ctx, []int{2, 99, 5})()
	if values[0] != 20 || errs[0] != nil || errs[1] == nil || errs[2] == nil {
		t.Fatalf("short batch: %v %v, want 20 and errors for 99 and 5", values, errs)
	}
	if want := [][]int{{1, 2, 3}, {4}, {99, 5}}; !slices.EqualFunc(batches, want, slices.Equal[[]int]) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	if l.gather != nil {
		t.Fatal("a lookup outside lists gathered a batch")
	}

	batchTimersOff(t) // sent by flush only
	item := 0
	inItem := graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &item})
	one := l.Load(inItem, 6)
	many := l.LoadMany(inItem, []int{7, 99, 8, 6})
	if l.gather == nil {
		t.Fatal("lookups inside a list were read at once instead of gathered")
	}
	l.flush()
	if v, err := one(); v != 60 || err != nil {
		t.Fatalf("in a list: %v %v, want 60", v, err)
	}
	values, errs = many()
	if values[0] != 70 || errs[0] != nil || errs[1] == nil || errs[2] == nil || values[3] != 60 || errs[3] != nil {
		t.Fatalf("short batch in a list: %v %v, want 70, errors for 99 and 8, and 60", values, errs)
	}
	if want := []int{6, 7, 99, 8}; !slices.Equal(batches[len(batches)-1], want) {
		t.Fatalf("the list's batch was %v, want %v (each key once)", batches[len(batches)-1], want)
	}
}

// A batch read at once never waited, even while another batch of the same
// loader waits for the items of a list; that one is counted as waiting.
func TestLoaderCountsOnlyListBatchesAsWaiting(t *testing.T) {
	quiet := BatchQuiet
	BatchQuiet = time.Minute // the list's batch goes at BatchWait, after the read below
	t.Cleanup(func() { BatchQuiet = quiet })
	var (
		mu     sync.Mutex
		waited = map[int]bool{} // by batch size
	)
	q := &quietTimer{onBatch: func(_ string, keys int, w bool) {
		mu.Lock()
		defer mu.Unlock()
		waited[keys] = w
	}}
	l := newLoader(q, "probe", func(_ context.Context, keys []int) []*dataloader.Result[int] {
		out := make([]*dataloader.Result[int], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[int]{Data: k}
		}
		return out
	})
	item := 0
	inItem := graphql.WithFieldContext(context.Background(), &graphql.FieldContext{Index: &item})
	listed := l.LoadMany(inItem, []int{6, 7})
	if v, err := l.Load(context.Background(), 1)(); v != 1 || err != nil {
		t.Fatalf("read at once: %v %v", v, err)
	}
	if _, errs := listed(); errs[0] != nil || errs[1] != nil {
		t.Fatalf("list batch: %v", errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := map[int]bool{1: false, 2: true}; !maps.Equal(waited, want) {
		t.Fatalf("waited by batch size %v, want %v", waited, want)
	}
}

// A list's batch is read on a goroutine of itemWorkers; a panic in the
// read fails the batch's keys and does not take the server down.
func TestListBatchPanicFailsItsKeys(t *testing.T) {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(ctx context.Context, err any) error { return errors.New("internal system error") })
	q := &quietTimer{}
	l := newLoader(q, "probe", func(_ context.Context, keys []int) []*dataloader.Result[int] {
		panic("the store failed")
	})
	ctx = WithOperation(ctx, func() *Loaders { return &Loaders{quiet: q} })
	loadersFrom(ctx)
	var failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		marshalItems(ctx, 3, func(ctx context.Context, i int) graphql.Marshaler {
			if _, err := l.Load(ctx, i)(); err != nil && strings.Contains(err.Error(), "the store failed") {
				failed.Add(1)
			}
			return graphql.Null
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the items never got an answer")
	}
	if failed.Load() != 3 {
		t.Errorf("%d of 3 items got the batch's panic as their error", failed.Load())
	}
}

// A key of a list asked for again while its batch is being read waits for
// that batch: it is not read a second time.
func TestListLookupJoinsTheBatchBeingRead(t *testing.T) {
	batchTimersOff(t) // sent by flush only
	release := make(chan struct{})
	var reads atomic.Int64
	l := newLoader(&quietTimer{}, "probe", func(_ context.Context, keys []int) []*dataloader.Result[int] {
		reads.Add(1)
		<-release
		out := make([]*dataloader.Result[int], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[int]{Data: k * 10}
		}
		return out
	})
	item := 0
	inItem := graphql.WithFieldContext(context.Background(), &graphql.FieldContext{Index: &item})
	first := l.Load(inItem, 1)
	l.flush()
	for deadline := time.Now().Add(10 * time.Second); reads.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the batch was not read")
		}
	}
	again := l.Load(inItem, 1)
	l.flush()
	close(release)
	if v, err := first(); v != 10 || err != nil {
		t.Fatalf("first: %v %v", v, err)
	}
	if v, err := again(); v != 10 || err != nil {
		t.Fatalf("again: %v %v", v, err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("the key was read %d times, want once", n)
	}
}

// sameMergeRequests tells apart two queries that differ in any one field
// (and any field of a field's struct): a field added to the query and left
// out of it would let an item use a page's prefetched merge requests that
// its own arguments do not ask for.
func TestSameMergeRequestsComparesEveryField(t *testing.T) {
	var leaves []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		if v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		}
		leaves = append(leaves, path)
	}
	walk("", reflect.ValueOf(store.MergeRequestQuery{}))

	for _, leaf := range leaves {
		t.Run(leaf, func(t *testing.T) {
			a, b := &store.MergeRequestQuery{}, &store.MergeRequestQuery{}
			if !sameMergeRequests(a, b) {
				t.Fatal("two empty queries differ")
			}
			v := reflect.ValueOf(b).Elem()
			for _, name := range strings.Split(leaf[1:], ".") {
				v = v.FieldByName(name)
			}
			switch v.Kind() {
			case reflect.Pointer:
				v.Set(reflect.New(v.Type().Elem()))
			case reflect.Slice:
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				v.SetInt(1)
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				v.SetUint(1)
			case reflect.String:
				v.SetString("x")
			case reflect.Bool:
				v.SetBool(true)
			default:
				t.Fatalf("a field of kind %s: teach this test to change it", v.Kind())
			}
			if sameMergeRequests(a, b) {
				t.Fatalf("queries that differ in %s are the same to sameMergeRequests", leaf)
			}
		})
	}
}

// A request's loaders are made in a few allocations, not a few each; a key
// read before is answered without allocating; and what a batch keeps does
// not take allocations per key: a page's lookups read and answer hundreds
// of keys per request.
func TestLoaderAllocations(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { NewLoaders(nil, nil) }); n > 3 {
		t.Errorf("a request's loaders: %v allocations, want at most 3", n)
	}

	l := &Loader[int, string]{}
	use(&quietTimer{}, nil, l, "probe", func(_ *store.Store, _ context.Context, keys []int) ([]string, error) {
		return make([]string, len(keys)), nil
	})
	ctx := context.Background()
	if _, err := load(ctx, l, 1); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = load(ctx, l, 1) }); n != 0 {
		t.Errorf("a key read before: %v allocations, want none", n)
	}

	batch := func(n int) float64 {
		keys := make([]int, n)
		return testing.AllocsPerRun(20, func() {
			l.known.clear() // read every key again
			for i := range keys {
				keys[i] = i
			}
			l.readBatch(ctx, keys, false)
		})
	}
	one, many := batch(1), batch(256)
	// The known map grows with the keys (a handful of allocations for 256);
	// an allocation per key would add 255.
	if many-one > 16 {
		t.Errorf("a batch of 256 keys: %v allocations, one of 1 key: %v; want at most 16 more", many, one)
	}
}

// batchTimersOff sets BatchQuiet and BatchWait past the test's end: only a
// flush, or the operation's count of the goroutines that resolve, sends a
// batch.
func batchTimersOff(t *testing.T) {
	quiet, wait := BatchQuiet, BatchWait
	BatchQuiet, BatchWait = time.Hour, time.Hour
	t.Cleanup(func() { BatchQuiet, BatchWait = quiet, wait })
}

// newLoader is a loader of its own that reads through fetch, for tests.
func newLoader[K comparable, V any](q *quietTimer, name string, fetch dataloader.BatchFunc[K, V]) *Loader[K, V] {
	l := &Loader[K, V]{}
	initLoader(q, nil, l, name, batchRead[K, V](batchFunc[K, V](fetch)))
	return l
}

// batchFunc reads through a dataloader batch function, without the store.
type batchFunc[K comparable, V any] dataloader.BatchFunc[K, V]

func (f batchFunc[K, V]) read(ctx context.Context, _ *store.Store, keys []K) []*dataloader.Result[V] {
	return f(ctx, keys)
}
