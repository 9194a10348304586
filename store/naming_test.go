package store_test

import (
	"strings"
	"testing"

	"github.com/deploygraph/deploygraph/store"
)

const (
	msgNameFormat  = "Name can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"
	msgNameBlank   = "Name can't be blank"
	msgNameTooLong = "Name is too long (maximum is 255 characters)"
	msgURLTooLong  = "External url is too long (maximum is 255 characters)"
	msgURLInvalid  = "External url must be a valid absolute URL"
	msgURLUnsafe   = "External url has an unsafe scheme"
	msgSHA         = "Sha must be a full commit SHA (40 or 64 hexadecimal characters)"
	msgRefBlank    = "Ref can't be blank"
	msgRefTooLong  = "Ref is too long (maximum is 255 characters)"
	msgRefChars    = "Ref can't contain whitespace or control characters"
)

// checkErr fails t unless err is nil when want is "", or an invalid-input
// error with exactly the message want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("error = %q, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("error = nil, want %q", want)
	}
	if got := err.Error(); got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	if got := store.ErrorCode(err); got != store.EInvalid {
		t.Fatalf("error code = %q, want %q", got, store.EInvalid)
	}
}

func TestSlugify(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"already a slug is kept", "production", "production"},
		{"slash is replaced and suffixed", "review/1-foo", "review-1-foo-9tdj0u"},
		{"upper case is lowered and suffixed", "PRODUCTION", "production-vl4voz"},
		{"capitalised is suffixed", "Production", "production-iis43c"},
		{"space is replaced and suffixed", "Review App", "review-app-jgo9ec"},
		{"empty gets prefix and suffix", "", "env-qhkd3p"},
		{"dollar and braces become dashes after env prefix", "${CI_COMMIT_REF_NAME}", "env-ci-commit-ref-symj9g"},
		{"braces inside name are replaced", "review/{name}", "review-name-ktk8v8"},
		{"leading dollar gets env prefix", "$foo", "env-foo-r4bxyl"},
		{"dots are replaced", "v1.2.3", "v1-2-3-swgdr1"},
		{"single dot is replaced", "a.b", "a-b-dzjupg"},
		{"leading digits get env prefix", "123", "env-123-7j7izn"},
		{"leading digit then letters gets env prefix", "1abc", "env-1abc-rpfhi6"},
		{"leading dash gets env prefix", "-a", "env-a-qf4iga"},
		{"name starting with env prefix is kept", "env-1", "env-1"},
		{"exactly 24 slug characters is kept", "abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwx"},
		{"25 slug characters is shortened", "abcdefghijklmnopqrstuvwxy", "abcdefghijklmnopq-45ai7v"},
		{"long valid slug is shortened", "review-app-for-a-very-long-branch-name", "review-app-for-a-pkikux"},
		{"long name with slashes is shortened", "review/feature/add-login-page", "review-feature-ad-1vc5cm"},
		{"very long name is shortened", strings.Repeat("x", 300), "xxxxxxxxxxxxxxxxx-soeojr"},
		{"prefix ending in dash gets no extra dash", "abcdefghijklmnop-qrstuvwxyz", "abcdefghijklmnop-li40fz"},
		{"dash at position 18 is cut off", "abcdefghijklmnopq-rstuvw-z", "abcdefghijklmnopq-t4e0x1"},
		{"repeated dashes are squeezed and suffixed", "a--b", "a-b-m3ql0o"},
		{"one trailing dash is dropped", "a-", "a"},
		{"inner dash is kept", "a-b", "a-b"},
		{"space between lower-case words is replaced", "my env", "my-env-rp8gms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.Slugify(tt.in); got != tt.want {
				t.Errorf("Slugify(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSlugifyProducesValidSlugs(t *testing.T) {
	names := []string{
		"production", "review/1-foo", "PRODUCTION", "Review App", "", "${CI}", "123",
		"a-", "-", "/", "{}", "...", strings.Repeat("review/", 40), "a--------b",
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			if got := store.Slugify(n); !store.ValidSlug(got) {
				t.Errorf("ValidSlug(Slugify(%q)) = false for %q, want true", n, got)
			}
		})
	}
}

func TestValidSlug(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"single letter", "a", true},
		{"letters digits and dashes", "review-1-foo-9tdj0u", true},
		{"exactly 24 characters", "abcdefghijklmnopqrstuvwx", true},
		{"25 characters", "abcdefghijklmnopqrstuvwxy", false},
		{"empty", "", false},
		{"leading digit", "1abc", false},
		{"leading dash", "-abc", false},
		{"trailing dash", "abc-", false},
		{"upper case", "Production", false},
		{"slash", "review/foo", false},
		{"underscore", "a_b", false},
		{"dot", "a.b", false},
		{"space", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.ValidSlug(tt.in); got != tt.want {
				t.Errorf("ValidSlug(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestGuessTier(t *testing.T) {
	tests := []struct {
		in   string
		want store.EnvironmentTier
	}{
		{"dev", store.TierDevelopment},
		{"development", store.TierDevelopment},
		{"review/fix-foo", store.TierDevelopment},
		{"trunk", store.TierDevelopment},
		{"REVIEW/Feature", store.TierDevelopment},
		{"review/prod-fix", store.TierDevelopment},
		{"test", store.TierTesting},
		{"qa", store.TierTesting},
		{"internal", store.TierTesting},
		{"integration", store.TierTesting},
		{"tst", store.TierTesting},
		{"acceptance", store.TierTesting},
		{"acpt", store.TierTesting},
		{"QC", store.TierTesting},
		{"quality-control", store.TierTesting},
		{"staging", store.TierStaging},
		{"stg", store.TierStaging},
		{"preprod", store.TierStaging},
		{"pre-production", store.TierStaging},
		{"model", store.TierStaging},
		{"mdl", store.TierOther},
		{"demo", store.TierStaging},
		{"non-prod", store.TierStaging},
		{"production", store.TierProduction},
		{"prod", store.TierProduction},
		{"prd", store.TierProduction},
		{"live", store.TierProduction},
		{"PRODUCTION", store.TierProduction},
		{"canary", store.TierOther},
		{"", store.TierOther},
		{"sandbox", store.TierOther},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := store.GuessTier(tt.in); got != tt.want {
				t.Errorf("GuessTier(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEnvironmentFolder(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no slash has no folder", "production", ""},
		{"one slash", "review/fix-foo", "review"},
		{"folder is before the first slash", "review/feature/x", "review"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.EnvironmentFolder(tt.in); got != tt.want {
				t.Errorf("EnvironmentFolder(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateEnvironmentName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain name", "production", ""},
		{"name with folder", "review/fix-foo", ""},
		{"single character", "a", ""},
		{"CI variable", "${CI_COMMIT_REF}", ""},
		{"space", "my env", ""},
		{"dots and underscores", "v1.2_rc", ""},
		{"255 characters", strings.Repeat("a", 255), ""},
		{"leading slash", "/x", msgNameFormat},
		{"trailing slash", "x/", msgNameFormat},
		{"only slash", "/", msgNameFormat},
		{"newline", "a\nb", msgNameFormat},
		{"trailing newline", "a\n", msgNameFormat},
		{"non-ascii letter", "é", msgNameFormat},
		{"colon", "a:b", msgNameFormat},
		{"empty", "", msgNameBlank},
		{"256 characters", strings.Repeat("a", 256), msgNameTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, store.ValidateEnvironmentName(tt.in), tt.want)
		})
	}
}

func TestValidateExternalURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 256-len("https://example.com/"))
	maxLen := long[:255]
	tests := []struct {
		name, in string
		want     *string
		wantErr  string
	}{
		{"empty means none", "", nil, ""},
		{"blank means none", "  \t ", nil, ""},
		{"https", "https://example.com", ptr("https://example.com"), ""},
		{"http with path and query", "http://review-1.example.com:8080/a?b=c", ptr("http://review-1.example.com:8080/a?b=c"), ""},
		{"surrounding spaces are trimmed", "  https://example.com/x  ", ptr("https://example.com/x"), ""},
		{"255 characters", maxLen, ptr(maxLen), ""},
		{"256 characters", long, nil, msgURLTooLong},
		{"relative path", "/foo/bar", nil, msgURLInvalid},
		{"no scheme", "example.com", nil, msgURLInvalid},
		{"no host", "https://", nil, msgURLInvalid},
		{"opaque", "mailto:a@example.com", nil, msgURLInvalid},
		{"unparseable", "http://[::1", nil, msgURLInvalid},
		{"javascript", "javascript:alert(1)", nil, msgURLUnsafe},
		{"javascript upper case", "JavaScript:alert(1)", nil, msgURLUnsafe},
		{"javascript with host", "javascript://example.com/%0Aalert(1)", nil, msgURLUnsafe},
		{"data", "data:text/html,<script>alert(1)</script>", nil, msgURLUnsafe},
		{"vbscript", "VBSCRIPT:msgbox(1)", nil, msgURLUnsafe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.ValidateExternalURL(tt.in)
			checkErr(t, err, tt.wantErr)
			switch {
			case got == nil && tt.want == nil:
			case got == nil || tt.want == nil:
				t.Fatalf("ValidateExternalURL(%q) = %v, want %v", tt.in, show(got), show(tt.want))
			case *got != *tt.want:
				t.Fatalf("ValidateExternalURL(%q) = %q, want %q", tt.in, *got, *tt.want)
			}
		})
	}
}

func TestValidateSHA(t *testing.T) {
	sha1 := "0123456789abcdef0123456789abcdef01234567"
	sha256 := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"40 hex", sha1, sha1, ""},
		{"64 hex", sha256, sha256, ""},
		{"upper case is lowered", strings.ToUpper(sha1), sha1, ""},
		{"mixed case is lowered", "ABCdef" + sha1[6:], "abcdef" + sha1[6:], ""},
		{"empty", "", "", msgSHA},
		{"short sha", sha1[:8], "", msgSHA},
		{"39 characters", sha1[:39], "", msgSHA},
		{"41 characters", sha1 + "0", "", msgSHA},
		{"63 characters", sha256[:63], "", msgSHA},
		{"non-hex letter", "g" + sha1[1:], "", msgSHA},
		{"space", " " + sha1[1:], "", msgSHA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.ValidateSHA(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("ValidateSHA(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateRef(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"branch", "main", ""},
		{"branch with slash", "feature/add-login", ""},
		{"tag", "v1.2.3", ""},
		{"non-ascii", "fix-é", ""},
		{"255 characters", strings.Repeat("r", 255), ""},
		{"empty", "", msgRefBlank},
		{"256 characters", strings.Repeat("r", 256), msgRefTooLong},
		{"space", "my branch", msgRefChars},
		{"tab", "a\tb", msgRefChars},
		{"newline", "main\n", msgRefChars},
		{"non-breaking space", "a\u00a0b", msgRefChars},
		{"control character", "a\x00b", msgRefChars},
		{"delete character", "a\x7fb", msgRefChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, store.ValidateRef(tt.in), tt.want)
		})
	}
}

func show(s *string) string {
	if s == nil {
		return "nil"
	}
	return `"` + *s + `"`
}
