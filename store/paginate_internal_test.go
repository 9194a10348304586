package store

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A merged walk of several prefixes lists their sort keys as one sorted
// list would, for every page window, in both orders, with keys of other
// prefixes interleaved in the bucket that it must not visit.
func TestMergedSourcePagesAsOneList(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "merged.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Five prefixes share ids 1..60 (by id % 5); three are merged, the last
	// of them empty from 40 on, and the other two lie between them.
	prefixes := [][]byte{[]byte("sA"), []byte("sB"), []byte("sC"), []byte("sD"), []byte("sE")}
	parts := [][]byte{prefixes[0], prefixes[2], prefixes[4]}
	var all [][]byte
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("index"))
		if err != nil {
			return err
		}
		for id := int64(1); id <= 60; id++ {
			prefix := prefixes[id%5]
			if id%5 == 4 && id >= 40 {
				continue
			}
			if err := b.Put(join(prefix, u64(id)), nil); err != nil {
				return err
			}
			if m := id % 5; m%2 == 0 {
				all = append(all, u64(id))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := func(v int) *int { return &v }
	tests := []struct {
		name string
		args func(cursor func(id int64) *string) PageArgs
	}{
		{"first page", func(func(int64) *string) PageArgs { return PageArgs{First: n(7)} }},
		{"everything", func(func(int64) *string) PageArgs { return PageArgs{First: n(100)} }},
		{"after", func(c func(int64) *string) PageArgs { return PageArgs{First: n(5), After: c(20)} }},
		{"after the last", func(c func(int64) *string) PageArgs { return PageArgs{First: n(5), After: c(60)} }},
		{"last page", func(func(int64) *string) PageArgs { return PageArgs{Last: n(6)} }},
		{"before", func(c func(int64) *string) PageArgs { return PageArgs{Last: n(4), Before: c(31)} }},
		{"between", func(c func(int64) *string) PageArgs { return PageArgs{First: n(50), After: c(10), Before: c(45)} }},
		{"first and last", func(c func(int64) *string) PageArgs { return PageArgs{First: n(9), Last: n(3), After: c(2)} }},
		{"a cursor of a key not listed", func(c func(int64) *string) PageArgs { return PageArgs{First: n(4), After: c(41)} }},
		{"none", func(func(int64) *string) PageArgs { return PageArgs{First: n(0)} }},
	}
	for _, desc := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s, desc %v", tt.name, desc), func(t *testing.T) {
				w, err := tt.args(func(id int64) *string {
					c := EncodeCursor('i', u64(id))
					return &c
				}).window('i')
				if err != nil {
					t.Fatal(err)
				}
				type result struct {
					keys             [][]byte
					hasPrev, hasNext bool
				}
				want := result{}
				want.keys, want.hasPrev, want.hasNext, err = paginate(newMemSource(slices.Clone(all), desc), nil, w)
				if err != nil {
					t.Fatal(err)
				}
				err = db.View(func(tx *bolt.Tx) error {
					var merged mergedSource
					for _, p := range parts {
						merged = append(merged, boltSource{b: tx.Bucket([]byte("index")), prefix: p, desc: desc})
					}
					var got result
					got.keys, got.hasPrev, got.hasNext, err = paginate(merged, nil, w)
					if err != nil {
						return err
					}
					if !slices.EqualFunc(got.keys, want.keys, bytes.Equal) || got.hasPrev != want.hasPrev || got.hasNext != want.hasNext {
						t.Errorf("got %s prev %v next %v\nwant %s prev %v next %v",
							ids(got.keys), got.hasPrev, got.hasNext, ids(want.keys), want.hasPrev, want.hasNext)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func ids(keys [][]byte) string {
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = readU64(k)
	}
	return fmt.Sprint(out)
}

// A list in an order the status partitions have (ID, FINISHED_AT) is read
// from the partitions of the statuses it asks for, or of all of them: the
// statuses are not checked on the records. Other orders scan their own
// prefix and check the statuses asked for on the records.
func TestStatusOrdersReadTheirPartitions(t *testing.T) {
	statuses := []DeploymentStatus{StatusFailed, StatusCanceled}
	tests := []struct {
		order         DeploymentOrder
		statuses      []DeploymentStatus
		merged        bool
		statusChecked bool
	}{
		{OrderByID, statuses, true, true},
		{OrderByFinishedAt, statuses, true, true},
		{OrderByID, statuses[:1], false, true},
		{OrderByCreatedAt, statuses, false, false},
		{OrderByID, nil, true, true},
		{OrderByFinishedAt, nil, true, true},
		{OrderByCreatedAt, nil, false, true},
		{OrderByRef, statuses[:1], false, false},
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "plan.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bktDeployIndex); return err }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%c %v", tt.order, tt.statuses), func(t *testing.T) {
			p := &deploymentPlan{q: DeploymentQuery{OrderBy: tt.order}, statuses: tt.statuses, scope: projectScope(1)}
			err := db.View(func(tx *bolt.Tx) error {
				src, statusChecked := p.source(tx)
				if _, merged := src.(mergedSource); merged != tt.merged || statusChecked != tt.statusChecked {
					t.Errorf("source %T, statuses checked by the index %v; want merged %v, checked %v", src, statusChecked, tt.merged, tt.statusChecked)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A page's cursors, made together, are each its key's cursor (the version,
// the ordering's tag and the key, base64url without padding), which
// decodeCursor reads back, whatever the keys' lengths; they take a few
// allocations, not two per key.
func TestEncodeCursorsMatchesEncodeCursor(t *testing.T) {
	var keys [][]byte
	for i := range 50 {
		keys = append(keys, bytes.Repeat([]byte{byte(i)}, 8+i%5))
	}
	got := encodeCursors(7, keys)
	if len(got) != len(keys) {
		t.Fatalf("%d cursors for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		if want := base64.RawURLEncoding.EncodeToString(append([]byte{cursorVersion, 7}, k...)); got[i] != want {
			t.Errorf("key %d: cursor %q, want %q", i, got[i], want)
		}
		if one := EncodeCursor(7, k); one != got[i] {
			t.Errorf("key %d: EncodeCursor made %q, the page %q", i, one, got[i])
		}
		if back, err := decodeCursor(got[i], 7); err != nil || !bytes.Equal(back, k) {
			t.Errorf("key %d: cursor %q decodes to %x, %v", i, got[i], back, err)
		}
	}
	if encodeCursors(7, nil) != nil {
		t.Error("cursors for no keys")
	}
	if n := testing.AllocsPerRun(20, func() { encodeCursors(7, keys) }); n > 4 {
		t.Errorf("%v allocations for the cursors of 50 keys, want at most 4", n)
	}
}

// The end of a prefix is the smallest key past all of its keys, appended
// to what the buffer holds; none when every byte is 0xff.
func TestAppendPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		prefix, want []byte
	}{
		{[]byte("e\x00\x01"), []byte("e\x00\x02")},
		{[]byte("e\x01\xff"), []byte("e\x02")},
		{[]byte("e\xff\xff"), []byte("f")},
		{[]byte("\xff\xff"), nil},
		{nil, nil},
	} {
		before := bytes.Clone(tc.prefix)
		if got := prefixEnd(tc.prefix); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		if got := appendPrefixEnd([]byte("kept"), tc.prefix); tc.want != nil && string(got) != "kept"+string(tc.want) {
			t.Errorf("appendPrefixEnd(kept, %q) = %q", tc.prefix, got)
		}
		if !bytes.Equal(tc.prefix, before) {
			t.Errorf("prefixEnd changed its prefix to %q", tc.prefix)
		}
	}
}
