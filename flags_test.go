package main

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Ensure that the limit and CORS flags parse to their documented defaults
// and refuse values that cannot work.
func TestParseFlags(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		c, err := parseFlags(nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.maxDepth != 15 || c.maxComplexity != 5000 || len(c.corsOrigins) != 0 || !c.introspection {
			t.Errorf("got max-depth %d, max-complexity %d, cors-origins %v, introspection %v; want 15, 5000, none, true",
				c.maxDepth, c.maxComplexity, c.corsOrigins, c.introspection)
		}
		if want := 2 * runtime.GOMAXPROCS(0); c.maxRunningQueries != want {
			t.Errorf("got max-running-queries %d, want twice GOMAXPROCS, %d", c.maxRunningQueries, want)
		}
	})
	t.Run("Set", func(t *testing.T) {
		c, err := parseFlags([]string{"-max-depth", "3", "-max-complexity=100", "-introspection=false", "-max-running-queries", "1",
			"-cors-origins", " http://ok.example, HTTPS://App.Example:8443/ ,"})
		if err != nil {
			t.Fatal(err)
		}
		if c.maxDepth != 3 || c.maxComplexity != 100 || c.introspection || c.maxRunningQueries != 1 {
			t.Errorf("got max-depth %d, max-complexity %d, introspection %v, max-running-queries %d; want 3, 100, false, 1",
				c.maxDepth, c.maxComplexity, c.introspection, c.maxRunningQueries)
		}
		if want := []string{"http://ok.example", "https://app.example:8443"}; !slices.Equal(c.corsOrigins, want) {
			t.Errorf("cors-origins: got %v, want %v", c.corsOrigins, want)
		}
	})
	t.Run("GraphiQLAssets", func(t *testing.T) {
		c, err := parseFlags([]string{"-graphiql-assets", "/srv/graphiql"})
		if err != nil {
			t.Fatal(err)
		}
		if c.graphiqlDir != "/srv/graphiql" {
			t.Errorf("graphiql-assets: got %q, want /srv/graphiql", c.graphiqlDir)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrDepthZero", []string{"-max-depth", "0"}, "-max-depth"},
		{"ErrComplexityNegative", []string{"-max-complexity", "-1"}, "-max-complexity"},
		{"ErrComplexityNotANumber", []string{"-max-complexity", "lots"}, "max-complexity"},
		{"ErrRunningQueriesZero", []string{"-max-running-queries", "0"}, "-max-running-queries"},
		{"ErrOriginWithoutScheme", []string{"-cors-origins", "ok.example"}, "-cors-origins"},
		{"ErrOriginWildcard", []string{"-cors-origins", "*"}, "-cors-origins"},
		{"ErrOriginWithPath", []string{"-cors-origins", "https://ok.example/app"}, "-cors-origins"},
		{"ErrOriginOtherScheme", []string{"-cors-origins", "ftp://ok.example"}, "-cors-origins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
