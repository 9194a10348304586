package store

import (
	"bytes"
	"reflect"
	"sync"
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
// Records given out are shallow copies of the kept one: callers may set
// their fields, but not write through their pointers or into their slices
// (nothing does: records are changed by replacing fields). Write
// transactions never use it, since they change what they read.
type decoded[T any] struct {
	mu    sync.Mutex
	byID  map[int64]decodedRecord[T]
	bytes int // of the kept records' stored forms
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
	c, _ := decodedCaches.LoadOrStore(decodedKey{string(bucket), record}, &decoded[T]{byID: map[int64]decodedRecord[T]{}})
	return c.(*decoded[T])
}

// get returns a copy of the record with id if it was decoded from stored.
func (c *decoded[T]) get(id int64, stored []byte) (*T, bool) {
	c.mu.Lock()
	r, ok := c.byID[id]
	c.mu.Unlock()
	if !ok || !bytes.Equal(r.stored, stored) {
		return nil, false
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
	r := decodedRecord[T]{stored: bytes.Clone(stored), value: *v}
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
