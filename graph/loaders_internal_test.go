package graph

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/graph-gophers/dataloader/v7"
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
