package store

import (
	"crypto/sha256"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxNameLength        = 255
	maxSlugLength        = 24
	maxExternalURLLength = 255
	maxRefLength         = 255
	slugPrefixLength     = 17
	slugSuffixLength     = 6
)

var (
	environmentNameRE = regexp.MustCompile(`^[a-zA-Z0-9_${}. -]([a-zA-Z0-9_/${}. -]*[a-zA-Z0-9_${}. -])?$`)
	slugRE            = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

	developmentTierRE = regexp.MustCompile(`(?i)dev|review|trunk`)
	testingTierRE     = regexp.MustCompile(`(?i)test|tst|int|ac(ce)?pt|qa|qc|control|quality`)
	stagingTierRE     = regexp.MustCompile(`(?i)st(a)?g|mod(e)?l|pre|demo|non`)
	productionTierRE  = regexp.MustCompile(`(?i)pr(o)?d|live`)
)

func nameError(msg string) error { return invalid("%s", msg) }

// ValidateEnvironmentName enforces GitLab's environment name rules (SPEC 6.2)
// before an environment is created.
func ValidateEnvironmentName(name string) error {
	switch {
	case name == "":
		return nameError("Name can't be blank")
	case utf8.RuneCountInString(name) > maxNameLength:
		return nameError("Name is too long (maximum is 255 characters)")
	case !environmentNameRE.MatchString(name):
		return nameError("Name can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'")
	}
	return nil
}

// EnvironmentFolder returns the folder an environment is grouped under in
// listings, or "" when its name has no '/'.
func EnvironmentFolder(name string) string {
	folder, _, found := strings.Cut(name, "/")
	if !found {
		return ""
	}
	return folder
}

// Slugify derives an environment's slug with GitLab's algorithm, so slugs
// (and the URLs and labels built from them) match what GitLab would produce.
func Slugify(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	slug := b.String()
	if slug == "" || slug[0] < 'a' || slug[0] > 'z' {
		slug = "env-" + slug
	}
	slug = squeezeDashes(slug)

	if len(slug) > maxSlugLength || slug != name {
		slug = slug[:min(len(slug), slugPrefixLength)]
		if !strings.HasSuffix(slug, "-") {
			slug += "-"
		}
		return slug + slugSuffix(name)
	}
	return strings.TrimSuffix(slug, "-")
}

func squeezeDashes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '-' && i > 0 && s[i-1] == '-' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// slugSuffix is the last six base-36 digits of the SHA-256 of name, or all of
// them when there are fewer.
func slugSuffix(name string) string {
	sum := sha256.Sum256([]byte(name))
	digits := new(big.Int).SetBytes(sum[:]).Text(36)
	return digits[max(0, len(digits)-slugSuffixLength):]
}

// ValidSlug reports whether a caller-supplied slug is well-formed (SPEC 6.2)
// and may be kept instead of a generated one.
func ValidSlug(slug string) bool {
	return len(slug) <= maxSlugLength && slugRE.MatchString(slug)
}

// GuessTier picks a tier from an environment's name, as GitLab does when no
// tier is given.
func GuessTier(name string) EnvironmentTier {
	switch {
	case developmentTierRE.MatchString(name):
		return TierDevelopment
	case testingTierRE.MatchString(name):
		return TierTesting
	case stagingTierRE.MatchString(name):
		return TierStaging
	case productionTierRE.MatchString(name):
		return TierProduction
	}
	return TierOther
}

// ValidateExternalURL checks an environment's optional external URL and
// returns the value to store: nil when blank, else the trimmed URL.
func ValidateExternalURL(raw string) (*string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, nil
	}
	if utf8.RuneCountInString(s) > maxExternalURLLength {
		return nil, nameError("External url is too long (maximum is 255 characters)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return nil, nameError("External url must be a valid absolute URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript":
		return nil, nameError("External url has an unsafe scheme")
	}
	if u.Host == "" {
		return nil, nameError("External url must be a valid absolute URL")
	}
	return &s, nil
}

// ValidateSHA checks that a deployment names a full commit SHA and returns it
// in the lower-case form it is stored in.
func ValidateSHA(sha string) (string, error) {
	if len(sha) != 40 && len(sha) != 64 {
		return "", nameError("Sha must be a full commit SHA (40 or 64 hexadecimal characters)")
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if !('0' <= c && c <= '9') && !('a' <= c && c <= 'f') && !('A' <= c && c <= 'F') {
			return "", nameError("Sha must be a full commit SHA (40 or 64 hexadecimal characters)")
		}
	}
	return strings.ToLower(sha), nil
}

// ValidateRef checks a deployment's git ref: present, bounded and free of
// characters git refs cannot hold.
func ValidateRef(ref string) error {
	if ref == "" {
		return nameError("Ref can't be blank")
	}
	if utf8.RuneCountInString(ref) > maxRefLength {
		return nameError("Ref is too long (maximum is 255 characters)")
	}
	if strings.IndexFunc(ref, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nameError("Ref can't contain whitespace or control characters")
	}
	return nil
}
