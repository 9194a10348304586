package main

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

// Ensure that -graphiql-assets serves GraphiQL's files from a folder, with
// their hashes as integrity checks, and that the page loads them from there.
func TestGraphiQLAssets(t *testing.T) {
	dir := t.TempDir()
	for _, name := range graphiqlFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("/* "+name+" */"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("not served"), 0o600)
	s := serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, graphiqlDir: dir})

	_, page := send(t, must(http.NewRequest(http.MethodGet, s.url+"/", nil)))
	sum := sha256.Sum256([]byte("/* graphiql.min.js */"))
	for _, want := range []string{`src="/graphiql-assets/graphiql.min.js"`, `href="/graphiql-assets/graphiql.min.css"`,
		`src="/graphiql-assets/react.production.min.js"`, `src="/graphiql-assets/react-dom.production.min.js"`,
		`integrity="sha256-` + base64.StdEncoding.EncodeToString(sum[:]) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "cdn.jsdelivr.net/npm/graphiql") {
		t.Error("page still loads GraphiQL from the CDN")
	}
	resp, body := send(t, must(http.NewRequest(http.MethodGet, s.url+"/graphiql-assets/react.production.min.js", nil)))
	if resp.StatusCode != http.StatusOK || body != "/* react.production.min.js */" {
		t.Errorf("asset: got %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/graphiql-assets/secret.txt", "/graphiql-assets/", "/graphiql-assets/../server.go"} {
		if resp, _ := send(t, must(http.NewRequest(http.MethodGet, s.url+path, nil))); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, resp.StatusCode)
		}
	}

	t.Run("CDNByDefault", func(t *testing.T) {
		s := serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken})
		if _, page := send(t, must(http.NewRequest(http.MethodGet, s.url+"/", nil))); !strings.Contains(page, "https://cdn.jsdelivr.net/npm/graphiql@") {
			t.Error("the default page does not load GraphiQL from the CDN")
		}
	})
	t.Run("ErrMissingFile", func(t *testing.T) {
		os.Remove(filepath.Join(dir, "graphiql.min.css"))
		_, err := newApp(t.Context(), config{db: filepath.Join(t.TempDir(), "deploygraph.db"), graphiqlDir: dir}, store.Options{NoSync: true})
		if err == nil || !strings.Contains(err.Error(), "graphiql.min.css") {
			t.Errorf("got %v, want an error naming graphiql.min.css", err)
		}
	})
}
