package main

import (
	"strings"
	"testing"
)

// Ensure that the limit flags parse to their documented defaults
// and refuse values that cannot work.
func TestParseFlags(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		c, err := parseFlags(nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.maxDepth != 15 || c.maxComplexity != 5000 || !c.introspection {
			t.Errorf("got max-depth %d, max-complexity %d, introspection %v; want 15, 5000, true",
				c.maxDepth, c.maxComplexity, c.introspection)
		}
	})
	t.Run("Set", func(t *testing.T) {
		c, err := parseFlags([]string{"-max-depth", "3", "-max-complexity=100", "-introspection=false"})
		if err != nil {
			t.Fatal(err)
		}
		if c.maxDepth != 3 || c.maxComplexity != 100 || c.introspection {
			t.Errorf("got max-depth %d, max-complexity %d, introspection %v; want 3, 100, false", c.maxDepth, c.maxComplexity, c.introspection)
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
