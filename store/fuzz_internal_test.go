package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCursor checks cursor decoding on any input: it never panics, refuses
// with EInvalid, yields a sort key that ends with an id, and what it
// decodes encodes into a cursor of the same list only.
func FuzzCursor(f *testing.F) {
	f.Add(EncodeCursor(1, u64(5)), byte(1))
	f.Add(EncodeCursor(3, join([]byte("main"), u64(1<<40))), byte(3))
	f.Add(EncodeCursor(3, u64(5)), byte(4))
	f.Add("", byte(0))
	f.Add("AQE", byte(1))
	f.Add("not a cursor!", byte(1))
	f.Add("AQEAAAAAAAAABQ==", byte(1))
	f.Fuzz(func(t *testing.T, cursor string, tag byte) {
		key, err := decodeCursor(cursor, tag)
		_, werr := PageArgs{After: &cursor}.window(tag)
		if (err == nil) != (werr == nil) {
			t.Fatalf("cursor %q: decodeCursor error %v, but window error %v", cursor, err, werr)
		}
		if err != nil {
			if ErrorCode(err) != EInvalid {
				t.Fatalf("decodeCursor(%q) = %v: want an EInvalid error", cursor, err)
			}
			return
		}
		if len(key) < 8 {
			t.Fatalf("decodeCursor(%q) = %x: want a key ending with an 8-byte id", cursor, key)
		}
		again := EncodeCursor(tag, key)
		if k, err := decodeCursor(again, tag); err != nil || !bytes.Equal(k, key) {
			t.Fatalf("decodeCursor(EncodeCursor(%d, %x)) = %x, %v", tag, key, k, err)
		}
		if _, err := decodeCursor(again, tag+1); err == nil {
			t.Fatalf("cursor %q of list %d was taken for list %d", again, tag, tag+1)
		}
	})
}

// FuzzCursorRoundTrip checks that every sort key comes back from its
// cursor unchanged.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(byte(1), u64(1))
	f.Add(byte(255), append([]byte("feature/ü\x00"), u64(1<<62)...))
	f.Fuzz(func(t *testing.T, tag byte, key []byte) {
		if len(key) < 8 {
			return
		}
		got, err := decodeCursor(EncodeCursor(tag, key), tag)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("decodeCursor(EncodeCursor(%d, %x)) = %x, %v", tag, key, got, err)
		}
	})
}

// FuzzImport feeds any bytes to the importer: it never panics, a refused
// document is refused with EInvalid, and a document it accepts imports
// into an empty store, leaves the file sound, and imports again unchanged.
func FuzzImport(f *testing.F) {
	good, err := os.ReadFile(filepath.Join("testdata", "import", "good.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, doc := range []string{
		`{}`, `[]`, ``, `{"users": [{"id": 1, "username": "root", "name": "Root", "admin": true}]}`,
		`{"projects": [{"id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private",
		  "environments": [{"id": 2, "name": "production", "state": "available"}],
		  "deployments": [{"id": 3, "iid": 1, "ref": "main", "sha": "0000000000000000000000000000000000000001", "tag": false,
		   "status": "success", "created_at": "2024-01-01T00:00:00Z", "environment": {"id": 2, "name": "production"}}]}]}`,
		`{"projects": [{"id": -1}]}`, `{"users": {}}`, `{"users": [1, 2]} trailing`, `{"meta": [[[[{}]]]]}`,
	} {
		f.Add([]byte(doc))
	}
	empty, err := Open(filepath.Join(f.TempDir(), "empty.db"), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { empty.Close() })
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, doc []byte) {
		// Validation alone, against an empty store, is cheap: most inputs
		// stop there.
		facts := newImportFacts()
		err := newImporter(ctx, bytes.NewReader(doc), facts, nil).run()
		if err == nil {
			err = empty.db.View(facts.checkStore)
		}
		if err != nil {
			if ErrorCode(err) != EInvalid {
				t.Fatalf("refused with %v: want an EInvalid error", err)
			}
			return
		}
		s, err := Open(filepath.Join(t.TempDir(), "import.db"), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		first, err := s.Import(ctx, bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("a valid document failed to import: %v", err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("consistency check after the import: %v", err)
		}
		second, err := s.Import(ctx, bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("importing the document again: %v", err)
		}
		if first != second {
			t.Fatalf("importing again wrote %v, the first time %v", second, first)
		}
	})
}
