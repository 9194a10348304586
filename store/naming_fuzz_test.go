package store_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

// dnsLabel is what a slug must be to serve in host names and labels: at
// most 24 lower-case letters, digits and dashes, starting with a letter and
// not ending with a dash.
var dnsLabel = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$`)

// FuzzSlugify checks slug generation on any name: the slug is a DNS label,
// the same name always gives the same slug, and a name that already is a
// plain slug is kept.
func FuzzSlugify(f *testing.F) {
	for _, name := range []string{
		"production", "review/fix-foo", "Review/Fix_Foo", "", "-", "a-", "a--b", "123", "env-",
		"ÜNÏCÖDÉ", "\u212a", strings.Repeat("x", 300), "abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwxy",
		"${CI_COMMIT_REF_SLUG}", "\x00\xff",
	} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		slug := store.Slugify(name)
		if !dnsLabel.MatchString(slug) {
			t.Fatalf("Slugify(%q) = %q: not a DNS label of at most 24 characters", name, slug)
		}
		if !store.ValidSlug(slug) {
			t.Fatalf("Slugify(%q) = %q, which ValidSlug refuses", name, slug)
		}
		if again := store.Slugify(name); again != slug {
			t.Fatalf("Slugify(%q) = %q, then %q", name, slug, again)
		}
		if dnsLabel.MatchString(name) && !strings.Contains(name, "--") && slug != name {
			t.Fatalf("Slugify(%q) = %q: a plain slug should be kept", name, slug)
		}
	})
}
