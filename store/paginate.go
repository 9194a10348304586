package store

import (
	"bytes"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Page sizes of every list.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageArgs are Relay's pagination arguments with the cursors still opaque.
type PageArgs struct {
	First, Last   *int
	After, Before *string
}

// Page is one page of a list: the items, each item's cursor, and whether
// more matching items lie beyond either end.
type Page[T any] struct {
	Items           []T
	Cursors         []string
	HasNextPage     bool
	HasPreviousPage bool
}

// window is PageArgs checked and with cursors decoded into sort keys.
type window struct {
	first, last   int
	useLast       bool // paginate from the end (last without first)
	trimLast      bool // first and last together: keep the last `last` of the first `first`
	after, before []byte
	tag           byte
}

func (a PageArgs) window(tag byte) (window, error) {
	w := window{first: DefaultPageSize, tag: tag}
	for _, n := range []*int{a.First, a.Last} {
		if n != nil && (*n < 0 || *n > MaxPageSize) {
			return w, invalid("first and last must be between 0 and %d", MaxPageSize)
		}
	}
	var err error
	if a.After != nil {
		if w.after, err = decodeCursor(*a.After, tag); err != nil {
			return w, err
		}
	}
	if a.Before != nil {
		if w.before, err = decodeCursor(*a.Before, tag); err != nil {
			return w, err
		}
	}
	switch {
	case a.First != nil && a.Last != nil:
		w.first, w.last, w.trimLast = *a.First, *a.Last, true
	case a.First != nil:
		w.first = *a.First
	case a.Last != nil:
		w.last, w.useLast = *a.Last, true
	}
	return w, nil
}

// source walks the sort keys of one list in its logical order (the order the
// client asked for), forward or backward, starting strictly past `from`
// (nil: from that end). visit returns false to stop.
type source interface {
	walk(from []byte, forward bool, visit func(key []byte) (bool, error)) error
	has(key []byte) bool
	// before reports whether a comes before b in logical order.
	before(a, b []byte) bool
}

// matcher decides whether the element with a sort key passes the filters;
// nil means every element does.
type matcher func(key []byte) (bool, error)

// paginate selects one page of sort keys from src.
func paginate(src source, match matcher, w window) (keys [][]byte, hasPrev, hasNext bool, err error) {
	if match == nil {
		match = func([]byte) (bool, error) { return true, nil }
	}
	// exists reports whether a matching element lies at `at` or beyond it.
	exists := func(at []byte, forward bool) (bool, error) {
		if src.has(at) {
			if ok, err := match(at); ok || err != nil {
				return ok, err
			}
		}
		found := false
		err := src.walk(at, forward, func(k []byte) (bool, error) {
			ok, err := match(k)
			found = ok
			return !ok, err
		})
		return found, err
	}
	// collect copies the keys it keeps (bbolt's are valid only in their
	// transaction) into one buffer, which they share.
	collect := func(from, stop []byte, forward bool, n int) ([][]byte, error) {
		if n == 0 {
			return nil, nil
		}
		var (
			kept []byte
			ends []int
		)
		err := src.walk(from, forward, func(k []byte) (bool, error) {
			if stop != nil && (forward && !src.before(k, stop) || !forward && !src.before(stop, k)) {
				return false, nil
			}
			ok, err := match(k)
			if err != nil || !ok {
				return err == nil, err
			}
			if kept == nil {
				kept = make([]byte, 0, (n+1)*(len(k)+8))
			}
			kept = append(kept, k...)
			ends = append(ends, len(kept))
			return len(ends) <= n, nil
		})
		out := make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			out[i], start = kept[start:end:end], end
		}
		return out, err
	}

	if w.useLast {
		keys, err = collect(w.before, w.after, false, w.last)
		if err != nil {
			return nil, false, false, err
		}
		if len(keys) > w.last {
			keys, hasPrev = keys[:w.last], true
		}
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
		if w.before != nil {
			hasNext, err = exists(w.before, true)
		}
		return keys, hasPrev, hasNext, err
	}

	keys, err = collect(w.after, w.before, true, w.first)
	if err != nil {
		return nil, false, false, err
	}
	if len(keys) > w.first {
		keys, hasNext = keys[:w.first], true
	}
	if w.after != nil {
		if hasPrev, err = exists(w.after, false); err != nil {
			return nil, false, false, err
		}
	}
	if w.trimLast && len(keys) > w.last {
		keys, hasPrev = keys[len(keys)-w.last:], true
	}
	return keys, hasPrev, hasNext, nil
}

// countMatches counts the elements of src that pass match.
func countMatches(src source, match matcher) (int, error) {
	n := 0
	err := src.walk(nil, true, func(k []byte) (bool, error) {
		if match != nil {
			ok, err := match(k)
			if err != nil || !ok {
				return err == nil, err
			}
		}
		n++
		return true, nil
	})
	return n, err
}

// boltSource walks the keys under prefix in a bucket; sort keys are the
// bucket keys without the prefix. desc reverses the logical order.
type boltSource struct {
	b      *bolt.Bucket
	prefix []byte
	desc   bool
}

func (s boltSource) before(a, b []byte) bool {
	if s.desc {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

func (s boltSource) has(key []byte) bool {
	return s.b.Get(join(s.prefix, key)) != nil
}

func (s boltSource) walk(from []byte, forward bool, visit func([]byte) (bool, error)) error {
	w := s.walker(from, forward)
	for k := w.key(); k != nil; k = w.next() {
		more, err := visit(k)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// boltWalker is a walk of one boltSource, a key at a time.
type boltWalker struct {
	c      *bolt.Cursor
	prefix []byte
	up     bool   // physical direction
	k      []byte // the bucket key it is at; nil past the end
}

// walker starts a walk strictly past from (nil: from that end), as walk.
func (s boltSource) walker(from []byte, forward bool) *boltWalker {
	w := &boltWalker{c: s.b.Cursor(), prefix: s.prefix, up: forward != s.desc}
	c := w.c
	switch {
	case w.up && from == nil:
		w.k, _ = c.Seek(s.prefix)
	case w.up:
		start := join(s.prefix, from)
		w.k, _ = c.Seek(start)
		if w.k != nil && bytes.Equal(w.k, start) {
			w.k, _ = c.Next()
		}
	case from == nil:
		w.k = lastBefore(c, prefixEnd(s.prefix))
	default:
		w.k = lastBefore(c, join(s.prefix, from))
	}
	return w
}

// lastBefore moves c to the last key before end (nil: the last key of all)
// and returns it.
func lastBefore(c *bolt.Cursor, end []byte) []byte {
	if end != nil {
		if k, _ := c.Seek(end); k != nil {
			k, _ = c.Prev()
			return k
		}
	}
	k, _ := c.Last()
	return k
}

// key is the sort key the walk is at, nil once it has left the prefix.
func (w *boltWalker) key() []byte {
	if w.k == nil || !bytes.HasPrefix(w.k, w.prefix) {
		w.k = nil
		return nil
	}
	return w.k[len(w.prefix):]
}

// next moves the walk on and returns its sort key.
func (w *boltWalker) next() []byte {
	w.k = step(w.c, w.up)
	return w.key()
}

// mergedSource walks several boltSources of one sort-key space, all in the
// same direction, as one list: the status partitions of ID or FINISHED_AT
// order, those of the statuses a page asks for (so that it reads the keys
// it returns and not those of every other status) or all of them. Sort
// keys are unique across the parts (they end with the record's id, and a
// record is in one part).
type mergedSource []boltSource

func (m mergedSource) before(a, b []byte) bool { return m[0].before(a, b) }

func (m mergedSource) has(key []byte) bool {
	for _, s := range m {
		if s.has(key) {
			return true
		}
	}
	return false
}

func (m mergedSource) walk(from []byte, forward bool, visit func([]byte) (bool, error)) error {
	walkers := make([]*boltWalker, len(m))
	for i, s := range m {
		walkers[i] = s.walker(from, forward)
	}
	for {
		var first *boltWalker
		var firstKey []byte
		for _, w := range walkers {
			k := w.key()
			if k != nil && (first == nil || forward == m.before(k, firstKey)) {
				first, firstKey = w, k
			}
		}
		if first == nil {
			return nil
		}
		more, err := visit(firstKey)
		if err != nil || !more {
			return err
		}
		first.next()
	}
}

func step(c *bolt.Cursor, up bool) []byte {
	var k []byte
	if up {
		k, _ = c.Next()
	} else {
		k, _ = c.Prev()
	}
	return k
}

// prefixEnd is the smallest key greater than every key with prefix p, or nil
// when there is none.
func prefixEnd(p []byte) []byte { return appendPrefixEnd(nil, p) }

// appendPrefixEnd is prefixEnd(p) appended to dst, or nil.
func appendPrefixEnd(dst, p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			end := append(dst, p[:i+1]...)
			end[len(end)-1]++
			return end
		}
	}
	return nil
}

// memSource is a list already in memory (small lists: one deployment's merge
// requests, one project's environments).
type memSource struct {
	keys [][]byte // sorted ascending by bytes
	desc bool
}

func newMemSource(keys [][]byte, desc bool) memSource {
	slices.SortFunc(keys, bytes.Compare)
	return memSource{keys: keys, desc: desc}
}

func (s memSource) before(a, b []byte) bool {
	if s.desc {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

func (s memSource) search(key []byte) int {
	return sort.Search(len(s.keys), func(i int) bool { return bytes.Compare(s.keys[i], key) >= 0 })
}

func (s memSource) has(key []byte) bool {
	i := s.search(key)
	return i < len(s.keys) && bytes.Equal(s.keys[i], key)
}

func (s memSource) walk(from []byte, forward bool, visit func([]byte) (bool, error)) error {
	up := forward != s.desc
	var i int
	switch {
	case up && from == nil:
		i = 0
	case up:
		i = s.search(from)
		if i < len(s.keys) && bytes.Equal(s.keys[i], from) {
			i++
		}
	case from == nil:
		i = len(s.keys) - 1
	default:
		i = s.search(from) - 1
	}
	for i >= 0 && i < len(s.keys) {
		more, err := visit(s.keys[i])
		if err != nil || !more {
			return err
		}
		if up {
			i++
		} else {
			i--
		}
	}
	return nil
}
