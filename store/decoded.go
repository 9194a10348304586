package store

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Decoding a stored record (JSON) costs more than anything else a read
// does with it: a page of 50 deployments decodes some 250 records, most of
// them the same from one poll of a dashboard to the next. decoded keeps
// recently decoded records of read transactions, each with the bytes it
// was decoded from, and gives one back only while the stored bytes are the
// same. Nothing needs invalidating: a record that changes has other bytes,
// and is decoded anew; equal bytes decode to equal records, whichever
// store or transaction they come from.
//
// Records given out to read transactions are the kept ones, shared by
// every reader: nothing may change a record it read, in place or through
// its pointers and slices (nothing does: readers build what they answer
// anew, and writers change the copies their write transactions read).
// CheckSharedRecords has the tests check it on every read. Write
// transactions, which change what they read, get shallow copies, and use
// the cache only for records without slices or maps, where a change can
// only be the replacement of a field: nothing of theirs is appended to or
// changed in place.
type decoded[T any] struct {
	mu    sync.Mutex
	byID  map[int64]*decodedRecord[T]
	bytes int // of the kept records' stored forms
	// inWrites: T holds no slice or map, so write transactions use it.
	inWrites bool
}

type decodedRecord[T any] struct {
	stored []byte
	value  T
}

// decodedLimit bounds the stored bytes kept per bucket. The decoded
// records take about as much again.
const decodedLimit = 4 << 20

// decodedCaches holds one decoded[T] per bucket and record type, made on
// first use.
var decodedCaches sync.Map // decodedKey → *decoded[T]

type decodedKey struct {
	bucket string
	record reflect.Type
}

func decodedFor[T any](bucket []byte) *decoded[T] {
	// Every record read asks: the lookup views the name in place, where
	// string(bucket) would copy it; the key kept is a copy.
	record := reflect.TypeFor[T]()
	if c, ok := decodedCaches.Load(decodedKey{unsafe.String(unsafe.SliceData(bucket), len(bucket)), record}); ok {
		return c.(*decoded[T])
	}
	c, _ := decodedCaches.LoadOrStore(decodedKey{string(bucket), record}, &decoded[T]{
		byID:     map[int64]*decodedRecord[T]{},
		inWrites: !sharesBacking(record, nil),
	})
	return c.(*decoded[T])
}

// sharesBacking reports whether a shallow copy of a t shares a slice or a
// map with the original, where a change in place to one would show in the
// other.
func sharesBacking(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] || t == reflect.TypeFor[time.Time]() { // a time's zone is never changed
		return false
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Pointer, reflect.Array:
		return sharesBacking(t.Elem(), seen)
	case reflect.Struct:
		if seen == nil {
			seen = map[reflect.Type]bool{}
		}
		seen[t] = true
		for i := range t.NumField() {
			if sharesBacking(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// encodedExactly is a record that knows whether decoding its JSON gives it
// back exactly (times in UTC without a monotonic reading, strings of valid
// UTF-8): such a record is kept as written, for the next transaction that
// reads it, instead of being decoded again.
type encodedExactly interface {
	encodesExactly() bool
}

// get returns the record with id if it was decoded from stored: the kept
// one when shared (for a read transaction), else a copy.
func (c *decoded[T]) get(id int64, stored []byte, shared bool) (*T, bool) {
	c.mu.Lock()
	r, ok := c.byID[id]
	c.mu.Unlock()
	if !ok || !bytes.Equal(r.stored, stored) {
		return nil, false
	}
	if shared {
		return &r.value, true
	}
	v := r.value
	return &v, true
}

// put keeps a copy of v, decoded from stored (which is copied: bbolt's
// bytes live only as long as the transaction). Past the limit, other
// records make room, chosen at random.
func (c *decoded[T]) put(id int64, stored []byte, v *T) {
	if len(stored) > decodedLimit/64 {
		return
	}
	r := &decodedRecord[T]{stored: bytes.Clone(stored), value: *v}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok {
		c.bytes -= len(old.stored)
	}
	for evict := range c.byID {
		if c.bytes+len(r.stored) <= decodedLimit {
			break
		}
		c.bytes -= len(c.byID[evict].stored)
		delete(c.byID, evict)
	}
	c.byID[id] = r
	c.bytes += len(r.stored)
}

// checkShared: every read of a kept record checks that it is still what
// its stored bytes decode to (see CheckSharedRecords).
var checkShared atomic.Bool

// CheckSharedRecords makes every read of a kept record, from now on, check
// that no reader changed it: records read are shared by every later
// reader (see decoded), so a reader that changed one would change what
// others read. For tests, which would otherwise not notice: each read
// decodes the record again.
func CheckSharedRecords() { checkShared.Store(true) }

// unchanged panics if v, the kept record with id in bucket, is no longer
// what stored decodes to.
func unchanged[T any](bucket []byte, id int64, stored []byte, v *T) {
	var fresh T
	if err := decodeRecord(bucket, u64(id), stored, &fresh); err != nil {
		panic(err)
	}
	if !reflect.DeepEqual(*v, fresh) {
		panic(fmt.Sprintf("store: a reader changed the record %s/%d, which every reader shares: %+v, stored as %+v", bucket, id, *v, fresh))
	}
}
