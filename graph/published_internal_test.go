package graph

import (
	"sync"
	"testing"
)

// A map added to by many goroutines at once keeps every addition, each
// reader finds what was added before it read, and a map once published
// does not change.
func TestPublishedMapKeepsConcurrentAdds(t *testing.T) {
	var p publishedMap[int, int]
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := w*each + i
				p.add(1, func(m map[int]int) { m[key] = -key })
				if v, ok := p.get(key); !ok || v != -key {
					t.Errorf("writer %d lost its entry %d", w, i)
					return
				}
			}
		})
	}
	wg.Wait()
	if p.size() != writers*each {
		t.Errorf("kept %d entries, want %d", p.size(), writers*each)
	}
	before := p.load()
	p.add(1, func(m map[int]int) { m[-1] = 1 })
	if _, ok := before[-1]; ok || len(before) != writers*each {
		t.Error("an addition changed the map published before it")
	}
	p.clear()
	if _, ok := p.get(0); ok || p.size() != 0 {
		t.Error("a cleared map still answers")
	}
}
