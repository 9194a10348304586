package store

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type decodedProbe struct {
	Name string  `json:"name"`
	Note *string `json:"note,omitempty"`
}

// A record read in a read transaction is decoded once while its bytes stay
// the same, and anew once they change; write transactions always decode.
func TestDecodedRecordsFollowTheirBytes(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "decoded.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("decoded-probe")
	decodedCaches.Delete(decodedKey{string(bucket), reflect.TypeFor[decodedProbe]()}) // a cache of its own
	put := func(name string) {
		t.Helper()
		data, _ := json.Marshal(decodedProbe{Name: name})
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put(u64(1), data)
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(writable bool) *decodedProbe {
		t.Helper()
		var got *decodedProbe
		run := db.View
		if writable {
			run = db.Update
		}
		if err := run(func(tx *bolt.Tx) error {
			var err error
			got, err = getByIDIn[decodedProbe](tx.Bucket(bucket).Cursor(), bucket, 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	cache := decodedFor[decodedProbe](bucket)
	kept := func() int {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		return len(cache.byID)
	}

	put("first")
	if got := read(true); got.Name != "first" || kept() != 0 {
		t.Fatalf("write transaction read %+v and kept %d records, want first and none", got, kept())
	}
	if got := read(false); got.Name != "first" || kept() != 1 {
		t.Fatalf("read %+v and kept %d records, want first and one", got, kept())
	}
	// What a caller does to its copy stays with it.
	mine := read(false)
	mine.Name = "changed by a caller"
	if got := read(false); got.Name != "first" {
		t.Fatalf("after a caller changed its copy, read %q, want first", got.Name)
	}
	put("second")
	if got := read(false); got.Name != "second" {
		t.Fatalf("after the record changed, read %q, want second", got.Name)
	}
}

// The records kept per bucket stay within decodedLimit bytes.
func TestDecodedKeepsWithinItsLimit(t *testing.T) {
	c := &decoded[decodedProbe]{byID: map[int64]decodedRecord[decodedProbe]{}}
	stored := make([]byte, 1000)
	for id := range int64(3 * decodedLimit / len(stored)) {
		c.put(id, stored, &decodedProbe{Name: "x"})
		if c.bytes > decodedLimit {
			t.Fatalf("after %d records: %d bytes kept, limit %d", id+1, c.bytes, decodedLimit)
		}
	}
	if want := decodedLimit / len(stored); len(c.byID) != want {
		t.Errorf("kept %d records of 1000 bytes, want %d", len(c.byID), want)
	}
	total := 0
	for _, r := range c.byID {
		total += len(r.stored)
	}
	if total != c.bytes {
		t.Errorf("kept records hold %d bytes, counted %d", total, c.bytes)
	}
	c.put(0, make([]byte, decodedLimit), &decodedProbe{})
	if _, ok := c.get(0, make([]byte, decodedLimit)); ok {
		t.Error("a record larger than a 64th of the limit was kept")
	}
}

// Finding a bucket's cache costs every record read nothing to allocate.
func TestDecodedForAllocatesNothing(t *testing.T) {
	decodedFor[Deployment](bktDeployments)
	if n := testing.AllocsPerRun(100, func() { decodedFor[Deployment](bktDeployments) }); n != 0 {
		t.Errorf("decodedFor allocates %v times per call, want 0", n)
	}
}
