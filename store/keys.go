package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	// Records are decoded on every read and every write's checks: this
	// encoding/json-compatible codec decodes them two to three times faster.
	json "github.com/goccy/go-json"
	bolt "go.etcd.io/bbolt"
)

// u64 encodes n big-endian so that byte order is numeric order.
func u64(n int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b
}

func readU64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// join concatenates key parts into a fresh slice.
func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// pair is the common "parent id|child id" key.
func pair(a, b int64) []byte { return join(u64(a), u64(b)) }

// lastID reads the id that every index key ends with.
func lastID(key []byte) int64 { return readU64(key[len(key)-8:]) }

// timeKey orders times as unsigned bytes; nilTime sorts after every time, as
// a missing finishedAt does in ascending order.
func timeKey(t *time.Time) []byte {
	if t == nil {
		return nilTime
	}
	return appendTimeKey(make([]byte, 0, 8), t)
}

// appendTimeKey appends timeKey(t) to dst.
func appendTimeKey(dst []byte, t *time.Time) []byte {
	if t == nil {
		return append(dst, nilTime...)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()^(-1<<63)))
}

var nilTime = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// getJSON decodes the record at key into v; false when there is none.
// IMPORTANT: bbolt values are only valid inside the transaction, so records
// are always decoded before it ends.
func getJSON(tx *bolt.Tx, bucket, key []byte, v any) (bool, error) {
	data := tx.Bucket(bucket).Get(key)
	if data == nil {
		return false, nil
	}
	if err := decodeRecord(bucket, key, data, v); err != nil {
		return false, err
	}
	return true, nil
}

// decodeRecord decodes the record stored at bucket/key.
func decodeRecord(bucket, key, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%x: %w", bucket, key, err)
	}
	return nil
}

// seekValue is Bucket.Get through c: the value at key, nil when there is
// none or it is a nested bucket. A read transaction opens a bucket anew on
// every tx.Bucket (only write transactions keep them), and Get makes a
// cursor for every key, so loops over many keys open their bucket and
// cursor once and read through this.
func seekValue(c *bolt.Cursor, key []byte) []byte {
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}

func unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// putJSON stores v at key. Every record write goes through it, which is
// where a write to a token, a user or a project is counted for the answers
// the store keeps (see kept.go).
func putJSON(tx *bolt.Tx, bucket, key []byte, v any) error {
	_, err := putEncoded(tx, bucket, key, v)
	return err
}

// putEncoded is putJSON, returning the bytes stored.
func putEncoded(tx *bolt.Tx, bucket, key []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s/%x: %w", bucket, key, err)
	}
	markKeptWrite(tx, bucket)
	return data, tx.Bucket(bucket).Put(key, data)
}

// getByID loads the record with id from bucket, or nil.
func getByID[T any](tx *bolt.Tx, bucket []byte, id int64) (*T, error) {
	return getByIDIn[T](tx.Bucket(bucket).Cursor(), bucket, id)
}

// putRecord is putJSON for a record with an id; one that decodes back
// exactly is kept as decoded from what was stored (see decoded).
func putRecord[T any](tx *bolt.Tx, bucket []byte, id int64, v *T) error {
	data, err := putEncoded(tx, bucket, u64(id), v)
	if err != nil {
		return err
	}
	if exact, ok := any(v).(encodedExactly); ok && exact.encodesExactly() {
		decodedFor[T](bucket).put(id, data, v)
	}
	return nil
}

// getByIDIn is getByID through a cursor of the bucket (see seekValue). A
// record decoded before from the same bytes is not decoded again (see
// decoded).
func getByIDIn[T any](records *bolt.Cursor, bucket []byte, id int64) (*T, error) {
	var key [8]byte // sought on the stack: most lookups decode nothing
	binary.BigEndian.PutUint64(key[:], uint64(id))
	stored := seekValue(records, key[:])
	if stored == nil {
		return nil, nil
	}
	var cache *decoded[T]
	shared := !records.Bucket().Writable()
	if c := decodedFor[T](bucket); c.inWrites || shared {
		cache = c
		if v, ok := cache.get(id, stored, shared); ok {
			if shared && checkShared.Load() {
				unchanged(bucket, id, stored, v)
			}
			return v, nil
		}
	}
	var v T
	if err := decodeRecord(bucket, u64(id), stored, &v); err != nil {
		return nil, err
	}
	if cache != nil {
		cache.put(id, stored, &v)
	}
	return &v, nil
}

// bumpSequence keeps a bucket's id sequence at or above an id that was set
// from outside (an import), so that new records never reuse it.
func bumpSequence(b *bolt.Bucket, id int64) error {
	if uint64(id) > b.Sequence() {
		return b.SetSequence(uint64(id))
	}
	return nil
}

// nextID allocates the next id of bucket.
func nextID(b *bolt.Bucket) (int64, error) {
	n, err := b.NextSequence()
	return int64(n), err
}

// nextCounter increments and returns the named counter in the meta bucket
// (per-project iids).
func nextCounter(tx *bolt.Tx, name []byte) (int64, error) {
	b := tx.Bucket(bktMeta)
	var n int64
	if v := b.Get(name); v != nil {
		n = readU64(v)
	}
	n++
	return n, b.Put(name, u64(n))
}

// raiseCounter makes sure the named counter is at least n.
func raiseCounter(tx *bolt.Tx, name []byte, n int64) error {
	b := tx.Bucket(bktMeta)
	if v := b.Get(name); v != nil && readU64(v) >= n {
		return nil
	}
	return b.Put(name, u64(n))
}

func deployIIDCounter(projectID int64) []byte { return join([]byte("iid/deploy/"), u64(projectID)) }
func mrIIDCounter(projectID int64) []byte     { return join([]byte("iid/mr/"), u64(projectID)) }

// A cursor is a position in one ordering of one list: the ordering's tag and
// the sort key of the element it points at (which ends with the element's
// id). Being a key rather than an offset, it stays valid when records are
// added or removed.
const cursorVersion = 1

// EncodeCursor makes the opaque cursor for a sort key in the ordering tag.
func EncodeCursor(tag byte, key []byte) string {
	return encodeCursors(tag, [][]byte{key})[0]
}

// encodeCursors is EncodeCursor of each of a page's keys, in one string
// that the cursors share: a page of 50 takes three allocations, not 100.
func encodeCursors(tag byte, keys [][]byte) []string {
	if len(keys) == 0 {
		return nil
	}
	enc := base64.RawURLEncoding
	size, longest := 0, 0
	for _, k := range keys {
		size += enc.EncodedLen(2 + len(k))
		longest = max(longest, len(k))
	}
	var (
		encoded = make([]byte, 0, size)
		ends    = make([]int, len(keys))
		raw     = make([]byte, 0, 2+longest)
	)
	for i, k := range keys {
		raw = append(append(raw[:0], cursorVersion, tag), k...)
		encoded = enc.AppendEncode(encoded, raw)
		ends[i] = len(encoded)
	}
	all := string(encoded)
	cursors := make([]string, len(keys))
	start := 0
	for i, end := range ends {
		cursors[i], start = all[start:end], end
	}
	return cursors
}

// decodeCursor returns the sort key of cursor, which must belong to the
// ordering tag.
func decodeCursor(cursor string, tag byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 2+8 || raw[0] != cursorVersion {
		return nil, invalid("Invalid cursor: %q", cursor)
	}
	if raw[1] != tag {
		return nil, invalid("Cursor %q belongs to another list or order", cursor)
	}
	return raw[2:], nil
}
