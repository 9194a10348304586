package store

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store's tests check, at every read of a kept record, that no reader
// changed it (see CheckSharedRecords).
func init() { CheckSharedRecords() }

type decodedProbe struct {
	Name string  `json:"name"`
	Note *string `json:"note,omitempty"`
}

// decodedListProbe has a slice, which a write could change in place.
type decodedListProbe struct {
	Name  string   `json:"name"`
	Items []string `json:"items"`
}

// A record read is decoded once while its bytes stay the same, and anew
// once they change; write transactions decode every record that holds a
// slice or a map.
func TestDecodedRecordsFollowTheirBytes(t *testing.T) {
	t.Run("WithoutSlices", func(t *testing.T) {
		testDecodedRecordsFollowTheirBytes(t, func(name string) *decodedProbe { return &decodedProbe{Name: name} },
			func(p *decodedProbe) *string { return &p.Name }, 1)
	})
	t.Run("WithASlice", func(t *testing.T) {
		testDecodedRecordsFollowTheirBytes(t, func(name string) *decodedListProbe { return &decodedListProbe{Name: name} },
			func(p *decodedListProbe) *string { return &p.Name }, 0)
	})
}

// testDecodedRecordsFollowTheirBytes runs the test on records of type P,
// made by newP and named through name, of which a write transaction keeps
// writesKeep when it reads one first.
func testDecodedRecordsFollowTheirBytes[P any](t *testing.T, newP func(name string) *P, name func(*P) *string, writesKeep int) {
	probe := newRecordProbe[P](t, "decoded-probe")
	put := func(name string) { probe.put(newP(name)) }
	read := probe.read
	cache := decodedFor[P](probe.bucket)
	kept := func() int {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		return len(cache.byID)
	}
	put("first")
	if got := read(true); *name(got) != "first" || kept() != writesKeep {
		t.Fatalf("write transaction read %+v and kept %d records, want first and %d", got, kept(), writesKeep)
	}
	if got := read(false); *name(got) != "first" || kept() != 1 {
		t.Fatalf("read %+v and kept %d records, want first and one", got, kept())
	}
	// Read transactions share the kept record; a write transaction's
	// change to its copy stays with it.
	if a, b := read(false), read(false); a != b {
		t.Fatal("two read transactions got records of their own, want the kept one")
	}
	if writesKeep == 1 {
		mine := read(true)
		*name(mine) = "changed by a writer"
		if got := read(false); *name(got) != "first" {
			t.Fatalf("after a writer changed its copy, read %q, want first", *name(got))
		}
	}
	put("second")
	if got := read(false); *name(got) != "second" {
		t.Fatalf("after the record changed, read %q, want second", *name(got))
	}
	put("third")
	if got := read(true); *name(got) != "third" {
		t.Fatalf("after the record changed, a write transaction read %q, want third", *name(got))
	}
}

// Which records write transactions read through the cache: those of which
// a shallow copy shares no slice or map with the kept one.
func TestDecodedInWritesOnlyWithoutSharedBacking(t *testing.T) {
	type inner struct{ Tags []string }
	type nested struct{ In *inner }
	type recursive struct {
		Name string
		Next *recursive
	}
	for _, tc := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[Deployment](), true},
		{reflect.TypeFor[Project](), true},
		{reflect.TypeFor[Environment](), true},
		{reflect.TypeFor[User](), true},
		{reflect.TypeFor[recursive](), true},
		{reflect.TypeFor[Job](), false},
		{reflect.TypeFor[MergeRequest](), false},
		{reflect.TypeFor[AccessToken](), false},
		{reflect.TypeFor[nested](), false},
		{reflect.TypeFor[map[string]int](), false},
		{reflect.TypeFor[any](), false},
	} {
		if got := !sharesBacking(tc.t, nil); got != tc.want {
			t.Errorf("%v: read through the cache in writes = %v, want %v", tc.t, got, tc.want)
		}
	}
}

// A deployment kept as written (putRecord) is what decoding its stored form
// gives; those that would decode otherwise say so.
func TestDeploymentsEncodeExactly(t *testing.T) {
	utc := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	berlin := time.FixedZone("CET", 3600)
	finished := utc.Add(time.Minute)
	base := Deployment{ID: 7, IID: 3, ProjectID: 1, EnvironmentID: 2, Ref: "main", SHA: "abc", Status: StatusSuccess, CreatedAt: utc, UpdatedAt: utc}
	with := func(change func(d *Deployment)) Deployment {
		d := base
		change(&d)
		return d
	}
	for _, tc := range []struct {
		name  string
		d     Deployment
		exact bool
	}{
		{"Plain", base, true},
		{"Finished", with(func(d *Deployment) { d.FinishedAt = &finished; d.UserID = 4 }), true},
		{"Nanoseconds", with(func(d *Deployment) { d.UpdatedAt = utc.Add(1) }), true},
		{"FarFuture", with(func(d *Deployment) { d.UpdatedAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) }), true},
		{"EscapedRef", with(func(d *Deployment) { d.Ref = `fix/<a&b>"\` + "\u2028" }), true},
		{"TimeInAnotherZone", with(func(d *Deployment) { d.CreatedAt = utc.In(berlin) }), false},
		{"ZoneNamedUTC", with(func(d *Deployment) { d.UpdatedAt = utc.In(time.FixedZone("UTC", 0)) }), false},
		{"LocalClock", with(func(d *Deployment) { d.CreatedAt = time.Now() }), false},
		{"FinishedInAnotherZone", with(func(d *Deployment) { f := finished.In(berlin); d.FinishedAt = &f }), false},
		{"RefNotUTF8", with(func(d *Deployment) { d.Ref = "main\xff" }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.encodesExactly(); got != tc.exact {
				t.Fatalf("encodesExactly() = %v, want %v", got, tc.exact)
			}
			data, err := json.Marshal(&tc.d)
			if err != nil {
				t.Fatal(err)
			}
			var back Deployment
			if err := decodeRecord(bktDeployments, u64(tc.d.ID), data, &back); err != nil {
				t.Fatal(err)
			}
			if same := reflect.DeepEqual(back, tc.d); same != tc.exact {
				t.Fatalf("decoded %+v\nfrom %s\nequal to %+v: %v, want %v", back, data, tc.d, same, tc.exact)
			}
		})
	}
}

// The records kept per bucket stay within decodedLimit bytes.
func TestDecodedKeepsWithinItsLimit(t *testing.T) {
	c := &decoded[decodedProbe]{byID: map[int64]*decodedRecord[decodedProbe]{}}
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
	if _, ok := c.get(0, make([]byte, decodedLimit), true); ok {
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

// Looking up an environment's last deployment takes no allocation for its
// keys: a page of 20 environments looks up 20.
func TestLastDeploymentKeysOnTheStack(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "last.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktDeployIndex, bktDeployments} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		index, records := tx.Bucket(bktDeployIndex).Cursor(), tx.Bucket(bktDeployments).Cursor()
		for _, status := range []DeploymentStatus{StatusSuccess, StatusFailed} {
			lookup := func() {
				if d, err := lastDeploymentIn(index, records, 7, status); d != nil || err != nil {
					t.Fatalf("an empty store answered %v, %v", d, err)
				}
			}
			lookup()
			if n := testing.AllocsPerRun(100, lookup); n != 0 {
				t.Errorf("%s: %v allocations per lookup, want none", status, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With CheckSharedRecords, a reader that changes a record it read, which
// every later reader shares, is caught at the next read.
func TestSharedRecordsChangedAreCaught(t *testing.T) {
	probe := newRecordProbe[decodedProbe](t, "shared-probe")
	probe.put(&decodedProbe{Name: "kept"})
	read := func() (got *decodedProbe, caught any) {
		defer func() { caught = recover() }()
		return probe.read(false), nil
	}
	was := checkShared.Load()
	CheckSharedRecords()
	t.Cleanup(func() { checkShared.Store(was) })
	read() // decoded, and kept
	shared, caught := read()
	if caught != nil {
		t.Fatalf("an unchanged record was reported changed: %v", caught)
	}
	shared.Name = "changed by a reader"
	if _, caught := read(); caught == nil {
		t.Fatal("a reader changed a shared record, and the next read did not notice")
	}
}

// recordProbe is a bucket of one record of type P, id 1, in a file of its
// own, read through a decoded cache of its own.
type recordProbe[P any] struct {
	t      *testing.T
	db     *bolt.DB
	bucket []byte
}

func newRecordProbe[P any](t *testing.T, bucket string) *recordProbe[P] {
	db, err := bolt.Open(filepath.Join(t.TempDir(), bucket+".db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	decodedCaches.Delete(decodedKey{bucket, reflect.TypeFor[P]()})
	return &recordProbe[P]{t: t, db: db, bucket: []byte(bucket)}
}

// put stores v as the record.
func (p *recordProbe[P]) put(v *P) {
	p.t.Helper()
	data, _ := json.Marshal(v)
	if err := p.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(p.bucket)
		if err != nil {
			return err
		}
		return b.Put(u64(1), data)
	}); err != nil {
		p.t.Fatal(err)
	}
}

// read reads the record in a read transaction, or a write one.
func (p *recordProbe[P]) read(writable bool) *P {
	p.t.Helper()
	var got *P
	run := p.db.View
	if writable {
		run = p.db.Update
	}
	if err := run(func(tx *bolt.Tx) error {
		var err error
		got, err = getByIDIn[P](tx.Bucket(p.bucket).Cursor(), p.bucket, 1)
		return err
	}); err != nil {
		p.t.Fatal(err)
	}
	return got
}
