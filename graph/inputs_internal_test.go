package graph

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Exec no longer puts the input types' unmarshalers in the operation's
// context (graph/generate takes that out: some thirty allocations per
// request), so graphql.UnmarshalInputFromContext would find none there.
// Nothing in the server may call it.
func TestNothingUnmarshalsInputFromContext(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		code, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(code, []byte("UnmarshalInputFromContext(")) {
			t.Errorf("%s calls graphql.UnmarshalInputFromContext, whose unmarshalers Exec no longer provides (see graph/generate)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
