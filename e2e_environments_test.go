package main

// End-to-end tests of environments (SPEC 6.2): the list and its filters,
// lookups, and the computed fields (slug, tier, folder, logsApiPath,
// protection).

import (
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// gitlabSlug is GitLab's slug algorithm as SPEC 6.2 states it, written
// here independently of the implementation.
func gitlabSlug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	slug := b.String()
	if slug == "" || slug[0] < 'a' || slug[0] > 'z' {
		slug = "env-" + slug
	}
	slug = regexp.MustCompile(`-+`).ReplaceAllString(slug, "-")
	if len(slug) > 24 || slug != name {
		sum := sha256.Sum256([]byte(name))
		b36 := new(big.Int).SetBytes(sum[:]).Text(36)
		slug = slug[:min(17, len(slug))]
		if !strings.HasSuffix(slug, "-") {
			slug += "-"
		}
		return slug + b36[len(b36)-6:]
	}
	return strings.TrimSuffix(slug, "-")
}

// guessTier is SPEC 6.2's tier guess, written independently.
func guessTier(name string) string {
	for _, r := range []struct{ re, tier string }{
		{`dev|review|trunk`, "DEVELOPMENT"},
		{`test|tst|int|ac(ce)?pt|qa|qc|control|quality`, "TESTING"},
		{`st(a)?g|mod(e)?l|pre|demo|non`, "STAGING"},
		{`pr(o)?d|live`, "PRODUCTION"},
	} {
		if regexp.MustCompile(`(?i)` + r.re).MatchString(name) {
			return r.tier
		}
	}
	return "OTHER"
}

type fxEnv struct {
	ID          int64
	Name        string
	State, Tier string // GraphQL enums; Tier "" when the document gives none
	Slug        string // "" when the document gives none
}

// envFixture: environments listed out of id order, most without slug or
// tier, named after the SPEC's examples.
var envFixture = []fxEnv{
	{ID: 12, Name: "PRODUCTION", State: "AVAILABLE"},
	{ID: 7, Name: "production", State: "AVAILABLE"},
	{ID: 3, Name: "review/1-foo", State: "AVAILABLE"},
	{ID: 5, Name: "Review App", State: "STOPPED"},
	{ID: 9, Name: "preprod", State: "AVAILABLE"},
	{ID: 4, Name: "internal", State: "STOPPING"},
	{ID: 15, Name: "review/fix-foo", State: "STOPPED"},
	{ID: 16, Name: "review/Fix-bar", State: "STOPPING"},
	{ID: 17, Name: "fixtures", State: "AVAILABLE"},
	{ID: 18, Name: "Fixed", State: "AVAILABLE"},
	{ID: 2, Name: "canary", State: "AVAILABLE", Tier: "OTHER"},
	{ID: 21, Name: "qa", State: "AVAILABLE", Tier: "TESTING"},
	{ID: 22, Name: "demo", State: "AVAILABLE"},
	{ID: 23, Name: "trunk-live", State: "AVAILABLE"},
	{ID: 24, Name: "live", State: "STOPPED"},
	{ID: 25, Name: "a-very-long-environment-name-here", State: "AVAILABLE"},
	{ID: 26, Name: "1st", State: "AVAILABLE"},
	{ID: 27, Name: "staging", State: "AVAILABLE", Tier: "PRODUCTION"}, // a given tier is kept
	{ID: 28, Name: "review/foo/bar", State: "AVAILABLE"},
	{ID: 29, Name: "Staging", State: "AVAILABLE", Slug: "custom-staging"}, // a given slug is kept
	{ID: 30, Name: "my env_1.$x", State: "AVAILABLE"},
}

func (e fxEnv) wantSlug() string {
	if e.Slug != "" {
		return e.Slug
	}
	return gitlabSlug(e.Name)
}

func (e fxEnv) wantTier() string {
	if e.Tier != "" {
		return e.Tier
	}
	return guessTier(e.Name)
}

func envDoc() map[string]any {
	var envs []map[string]any
	for i, e := range envFixture {
		m := map[string]any{"id": e.ID, "name": e.Name, "state": strings.ToLower(e.State), "created_at": at(i), "updated_at": at(100 + i)}
		if e.Tier != "" {
			m["tier"] = strings.ToLower(e.Tier)
		}
		if e.Slug != "" {
			m["slug"] = e.Slug
		}
		if e.Name == "production" {
			m["external_url"] = "https://prod.example.com"
			m["auto_stop_at"] = "2024-03-01T12:30:45.5+01:00"
		}
		envs = append(envs, m)
	}
	return map[string]any{
		"users": []map[string]any{
			{"id": userRoot, "username": "root", "name": "Administrator", "state": "active", "admin": true},
			{"id": userDeveloper, "username": "dev", "name": "Dev Eloper", "state": "active"},
			{"id": userReporter, "username": "rep", "name": "Rep Orter", "state": "active"},
			{"id": userGuest, "username": "guest", "name": "Guest User", "state": "active"},
		},
		"groups": []map[string]any{{"id": groupApprovers, "name": "approvers", "path": "approvers", "full_path": "approvers", "members": []map[string]any{{"user_id": userDeveloper}}}},
		"projects": []map[string]any{{
			"id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private", "created_at": at(0),
			"members": []map[string]any{{"user_id": userDeveloper, "access_level": 30}, {"user_id": userReporter, "access_level": 20}, {"user_id": userGuest, "access_level": 10}},
			"protected_environments": []map[string]any{{
				"name":                 "production",
				"deploy_access_levels": []map[string]any{{"access_level": 40}, {"user_id": userDeveloper}, {"group_id": groupApprovers}},
				"approval_rules": []map[string]any{
					{"user_id": userDeveloper, "required_approvals": 1},
					{"group_id": groupApprovers, "required_approvals": 2},
					{"access_level": 30, "required_approvals": 3},
				},
			}},
			"environments": envs,
		}, {
			"id": 2, "name": "other", "path": "other", "path_with_namespace": "acme/other", "visibility": "public", "created_at": at(0),
			"environments": []map[string]any{{"id": 100, "name": "production", "state": "available", "created_at": at(0), "updated_at": at(0)}},
		}},
	}
}

const envConnFields = `count nodes { id } edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`

func fetchEnvs(t *testing.T, s *testServer, token, args string) (depPage, bool) {
	t.Helper()
	conn := "environments"
	if args != "" {
		conn += "(" + args + ")"
	}
	return fetchConnection(t, s, token, `{ project(id: "acme/app") { `+conn+` { `+envConnFields+` } } }`, "project.environments", "Environment")
}

func envIDs(envs []fxEnv) []int64 {
	var out []int64
	for _, e := range envs {
		out = append(out, e.ID)
	}
	slices.Sort(out) // the list is ordered by id
	return out
}

func TestE2EEnvironmentSlugAlgorithmMatchesSpecExamples(t *testing.T) {
	// The test's own slug and tier functions must agree with every example
	// that SPEC 6.2 gives, or the expectations built on them mean nothing.
	for name, want := range map[string]string{
		"production": "production", "review/1-foo": "review-1-foo-9tdj0u",
		"PRODUCTION": "production-vl4voz", "Review App": "review-app-jgo9ec", "": "env-qhkd3p",
	} {
		if got := gitlabSlug(name); got != want {
			t.Errorf("slug(%q): got %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{"preprod": "STAGING", "internal": "TESTING", "production": "PRODUCTION", "review/1-foo": "DEVELOPMENT", "canary": "OTHER"} {
		if got := guessTier(name); got != want {
			t.Errorf("tier(%q): got %q, want %q", name, got, want)
		}
	}
}

func TestE2EEnvironments(t *testing.T) {
	s := startServer(t, envDoc())
	token := s.tokenFor(t, userReporter)
	byName := map[string]fxEnv{}
	for _, e := range envFixture {
		byName[e.Name] = e
	}

	t.Run("list is ordered by id", func(t *testing.T) {
		p, ok := fetchEnvs(t, s, token, "first: 100")
		if !ok {
			return
		}
		if want := envIDs(envFixture); !slices.Equal(p.IDs, want) {
			t.Errorf("got %v, want %v", p.IDs, want)
		}
		if p.Count != len(envFixture) {
			t.Errorf("count: got %d, want %d", p.Count, len(envFixture))
		}
	})

	pick := func(keep func(fxEnv) bool) []int64 {
		var out []fxEnv
		for _, e := range envFixture {
			if keep(e) {
				out = append(out, e)
			}
		}
		return envIDs(out)
	}
	stateIn := func(st ...string) func(fxEnv) bool {
		return func(e fxEnv) bool { return slices.Contains(st, e.State) }
	}
	tierIn := func(ts ...string) func(fxEnv) bool {
		return func(e fxEnv) bool { return slices.Contains(ts, e.wantTier()) }
	}
	cases := []struct {
		name string
		args string
		want []int64
	}{
		{"name is exact", `name: "production"`, []int64{7}},
		{"name is case-sensitive", `name: "PRODUCTION"`, []int64{12}},
		{"name with another case matches nothing", `name: "Production"`, nil},
		{"name is not a folder match", `name: "review"`, nil},
		{"name with a folder", `name: "review/fix-foo"`, []int64{15}},
		{"search is a prefix of the name or of the name within its folder", `search: "fix"`, []int64{15, 16, 17, 18}},
		{"search is case-insensitive", `search: "FiX"`, []int64{15, 16, 17, 18}},
		{"search on the folder", `search: "rev"`, []int64{3, 5, 15, 16, 28}},
		{"search across the slash", `search: "review/f"`, []int64{15, 16, 28}},
		{"search within a folder with digits", `search: "1-f"`, []int64{3}},
		{"search within a nested folder", `search: "foo"`, []int64{28}},
		{"search is not a substring match", `search: "-foo"`, nil},
		{"search of three characters", `search: "pro"`, []int64{7, 12}},
		{"search of a whole name", `search: "staging"`, []int64{27, 29}},
		{"search matching nothing", `search: "nothing"`, nil},
		{"states keeps any of them", `states: [STOPPED]`, pick(stateIn("STOPPED"))},
		{"states with two values", `states: [AVAILABLE, STOPPING]`, pick(stateIn("AVAILABLE", "STOPPING"))},
		{"tiers", `tiers: [DEVELOPMENT]`, pick(tierIn("DEVELOPMENT"))},
		{"tiers with two values", `tiers: [PRODUCTION, STAGING]`, pick(tierIn("PRODUCTION", "STAGING"))},
		{"tiers OTHER", `tiers: [OTHER]`, pick(tierIn("OTHER"))},
		{"states and tiers", `states: [STOPPED, STOPPING], tiers: [DEVELOPMENT, TESTING]`,
			pick(func(e fxEnv) bool { return stateIn("STOPPED", "STOPPING")(e) && tierIn("DEVELOPMENT", "TESTING")(e) })},
		{"search and states", `search: "review", states: [AVAILABLE]`, []int64{3, 28}},
		{"name and tiers", `name: "staging", tiers: [STAGING]`, nil}, // staging's tier was given as production
		{"name and states", `name: "live", states: [STOPPED]`, []int64{24}},
		{"name and states it is not in", `name: "live", states: [AVAILABLE]`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := fetchEnvs(t, s, token, c.args+", first: 100")
			if !ok {
				return
			}
			checkPageShape(t, p)
			if !slices.Equal(p.IDs, c.want) {
				t.Errorf("%s: got %v, want %v", c.args, fmtIDs(p.IDs), fmtIDs(c.want))
			}
			if p.Count != len(c.want) {
				t.Errorf("count: got %d, want %d", p.Count, len(c.want))
			}
			p, ok = fetchEnvs(t, s, token, c.args+", first: 1")
			if ok && p.Count != len(c.want) {
				t.Errorf("count with first: 1: got %d, want %d", p.Count, len(c.want))
			}
		})
	}
	for _, c := range []struct{ name, args, msg string }{
		{"search under 3 characters", `search: "fi"`, "Search query is less than 3 characters"},
		{"search of 1 character", `search: "r"`, "Search query is less than 3 characters"},
		{"name with search", `name: "production", search: "pro"`, "name, search cannot be used together"},
		{"first over 100", `first: 101`, ""},
		{"last over 100", `last: 101`, ""},
		{"negative first", `first: -1`, ""},
		{"garbage cursor", `after: "garbage"`, ""},
	} {
		t.Run(c.name+" is BAD_USER_INPUT", func(t *testing.T) {
			r := s.query(t, token, `{ project(id: "acme/app") { environments(`+c.args+`) { count nodes { id } } } }`, nil)
			expectError(t, r, "BAD_USER_INPUT", c.msg)
		})
	}

	t.Run("pagination forward and backward", func(t *testing.T) {
		all := envIDs(envFixture)
		fetch := func(a string) (depPage, bool) { return fetchEnvs(t, s, token, a) }
		for _, size := range []int{1, 3, 7, 21, 100} {
			walkForwardWith(t, fetch, "", size, all)
			walkBackwardWith(t, fetch, "", size, all)
		}
		dev := pick(tierIn("DEVELOPMENT"))
		walkForwardWith(t, fetch, "tiers: [DEVELOPMENT]", 2, dev)
		walkBackwardWith(t, fetch, "tiers: [DEVELOPMENT]", 2, dev)
	})
	t.Run("default page is 20", func(t *testing.T) {
		p, ok := fetchEnvs(t, s, token, "")
		if !ok {
			return
		}
		if want := envIDs(envFixture)[:20]; !slices.Equal(p.IDs, want) {
			t.Errorf("got %v, want %v", p.IDs, want)
		}
		if !p.HasNext || p.Count != len(envFixture) {
			t.Errorf("hasNextPage %v count %d, want true %d", p.HasNext, p.Count, len(envFixture))
		}
	})

	const envFields = `id name slug tier state folder externalUrl autoStopAt createdAt updatedAt logsApiPath enableAdvancedLogsQuerying protected protection { name } project { fullPath }`
	t.Run("every environment's slug, tier, folder and logsApiPath", func(t *testing.T) {
		data := s.mustQuery(t, token, `{ project(id: "acme/app") { environments(first: 100) { nodes { `+envFields+` } } } }`, nil)
		nodes := list(data, "project.environments.nodes")
		if len(nodes) != len(envFixture) {
			t.Fatalf("got %d environments, want %d", len(nodes), len(envFixture))
		}
		for _, n := range nodes {
			name, _ := get(n, "name").(string)
			e, ok := byName[name]
			if !ok {
				t.Errorf("unexpected environment %q", name)
				continue
			}
			if got := get(n, "id"); got != gid("Environment", e.ID) {
				t.Errorf("%s: id got %v, want %s", name, got, gid("Environment", e.ID))
			}
			if got := get(n, "slug"); got != e.wantSlug() {
				t.Errorf("%s: slug got %v, want %s", name, got, e.wantSlug())
			}
			if got := get(n, "tier"); got != e.wantTier() {
				t.Errorf("%s: tier got %v, want %s", name, got, e.wantTier())
			}
			if got := get(n, "state"); got != e.State {
				t.Errorf("%s: state got %v, want %s", name, got, e.State)
			}
			var wantFolder any
			if i := strings.Index(name, "/"); i >= 0 {
				wantFolder = name[:i]
			}
			if got := get(n, "folder"); got != wantFolder {
				t.Errorf("%s: folder got %v, want %v", name, got, wantFolder)
			}
			logs, _ := get(n, "logsApiPath").(string)
			u, err := url.Parse(logs)
			if err != nil || u.Path != "/acme/app/-/logs/k8s.json" || u.Query().Get("environment_name") != name || len(u.Query()) != 1 {
				t.Errorf("%s: logsApiPath got %q, want /acme/app/-/logs/k8s.json?environment_name=<escaped name>", name, logs)
			}
			if raw := strings.SplitN(logs, "?", 2); len(raw) == 2 && strings.ContainsAny(strings.TrimPrefix(raw[1], "environment_name="), "/ ") {
				t.Errorf("%s: logsApiPath %q: the name is not URL-escaped", name, logs)
			}
			if got := get(n, "enableAdvancedLogsQuerying"); got != false {
				t.Errorf("%s: enableAdvancedLogsQuerying got %v, want false", name, got)
			}
			if got, want := get(n, "protected"), name == "production"; got != want {
				t.Errorf("%s: protected got %v, want %v", name, got, want)
			}
			if name != "production" && get(n, "protection") != nil {
				t.Errorf("%s: protection got %v, want null", name, get(n, "protection"))
			}
			if got := get(n, "project.fullPath"); got != "acme/app" {
				t.Errorf("%s: project got %v", name, got)
			}
		}
	})
	t.Run("SPEC examples of slug and tier", func(t *testing.T) {
		want := map[string][2]string{
			"production":   {"production", "PRODUCTION"},
			"review/1-foo": {"review-1-foo-9tdj0u", "DEVELOPMENT"},
			"PRODUCTION":   {"production-vl4voz", "PRODUCTION"},
			"Review App":   {"review-app-jgo9ec", "DEVELOPMENT"},
			"preprod":      {"preprod", "STAGING"},
			"internal":     {"internal", "TESTING"},
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			data := s.mustQuery(t, token, `query($n: String!) { project(id: "acme/app") { environment(name: $n) { slug tier } } }`, map[string]any{"n": name})
			if got := [2]any{get(data, "project.environment.slug"), get(data, "project.environment.tier")}; got != [2]any{want[name][0], want[name][1]} {
				t.Errorf("%s: got slug, tier %v, want %v", name, got, want[name])
			}
		}
	})
	t.Run("logsApiPath and fields of production", func(t *testing.T) {
		data := s.mustQuery(t, token, `{ project(id: "acme/app") { environment(name: "review/fix-foo") { logsApiPath } production: environment(name: "production") { `+envFields+` } } }`, nil)
		if got, want := get(data, "project.environment.logsApiPath"), "/acme/app/-/logs/k8s.json?environment_name=review%2Ffix-foo"; got != want {
			t.Errorf("logsApiPath: got %v, want %v", got, want)
		}
		p := get(data, "project.production")
		for field, want := range map[string]any{
			"externalUrl": "https://prod.example.com",
			"autoStopAt":  "2024-03-01T11:30:45.500Z",
			"createdAt":   "2024-01-01T00:01:00.000Z",
			"updatedAt":   "2024-01-01T01:41:00.000Z",
			"folder":      nil,
		} {
			if got := get(p, field); got != want {
				t.Errorf("%s: got %v, want %v", field, got, want)
			}
		}
	})
	t.Run("environment by id, global ID and name", func(t *testing.T) {
		for _, a := range []string{`id: "16"`, `id: "gid://deploygraph/Environment/16"`, `name: "review/Fix-bar"`} {
			data := s.mustQuery(t, token, `{ project(id: "acme/app") { environment(`+a+`) { id name } } }`, nil)
			if got := get(data, "project.environment.id"); got != gid("Environment", 16) {
				t.Errorf("%s: got %v, want %s", a, got, gid("Environment", 16))
			}
		}
	})
	t.Run("missing environment is null", func(t *testing.T) {
		for _, a := range []string{`id: "999"`, `id: "100"` /* acme/other's */, `name: "nope"`, `name: "Production"`} {
			r := s.query(t, token, `{ project(id: "acme/app") { environment(`+a+`) { id } } }`, nil)
			if get(r.Data, "project") == nil {
				t.Errorf("%s: the project must still resolve: %s", a, r.raw)
			}
			if got := get(r.Data, "project.environment"); got != nil {
				t.Errorf("%s: got %v, want null", a, got)
			}
			for _, c := range r.codes() {
				if c != "NOT_FOUND" {
					t.Errorf("%s: error code %s, want none or NOT_FOUND", a, c)
				}
			}
		}
	})
	t.Run("environment needs exactly one of id and name", func(t *testing.T) {
		for _, a := range []string{"", `(id: "7", name: "production")`} {
			expectError(t, s.query(t, token, `{ project(id: "acme/app") { environment`+a+` { id } } }`, nil), "BAD_USER_INPUT", "")
		}
	})
	t.Run("wrong-type global ID for an environment is BAD_USER_INPUT", func(t *testing.T) {
		expectError(t, s.query(t, token, `{ project(id: "acme/app") { environment(id: "gid://deploygraph/Deployment/7") { id } } }`, nil), "BAD_USER_INPUT", "")
	})

	t.Run("protection of a protected environment", func(t *testing.T) {
		const ruleFields = `user { username } group { fullPath } accessLevel`
		data := s.mustQuery(t, token, `{ project(id: "acme/app") {
			environment(name: "production") { protected protection { name
				deployAccessLevels { `+ruleFields+` description }
				approvalRules { `+ruleFields+` accessLevelDescription requiredApprovals } } }
			protectedEnvironments { name }
			other: environment(name: "PRODUCTION") { protected protection { name } } } }`, nil)
		want := map[string]any{
			"protected": true,
			"protection": map[string]any{
				"name": "production",
				"deployAccessLevels": []any{
					map[string]any{"user": nil, "group": nil, "accessLevel": "MAINTAINER", "description": "Maintainers"},
					map[string]any{"user": map[string]any{"username": "dev"}, "group": nil, "accessLevel": nil, "description": "Dev Eloper"},
					map[string]any{"user": nil, "group": map[string]any{"fullPath": "approvers"}, "accessLevel": nil, "description": "approvers"},
				},
				"approvalRules": []any{
					map[string]any{"user": map[string]any{"username": "dev"}, "group": nil, "accessLevel": nil, "accessLevelDescription": "Dev Eloper", "requiredApprovals": 1},
					map[string]any{"user": nil, "group": map[string]any{"fullPath": "approvers"}, "accessLevel": nil, "accessLevelDescription": "approvers", "requiredApprovals": 2},
					map[string]any{"user": nil, "group": nil, "accessLevel": "DEVELOPER", "accessLevelDescription": "Developers + Maintainers", "requiredApprovals": 3},
				},
			},
		}
		if got := get(data, "project.environment"); !equalJSON(got, want) {
			t.Errorf("production:\n got %v\nwant %v", got, want)
		}
		if got := pluck(list(data, "project.protectedEnvironments"), "name"); !equalJSON(got, []any{"production"}) {
			t.Errorf("protectedEnvironments: got %v, want [production]", got)
		}
		if got := get(data, "project.other"); !equalJSON(got, map[string]any{"protected": false, "protection": nil}) {
			t.Errorf("PRODUCTION (protection names are exact): got %v, want unprotected", got)
		}
	})
	t.Run("guest may not list environments", func(t *testing.T) {
		guest := s.tokenFor(t, userGuest)
		data := s.mustQuery(t, guest, `{ project(id: "acme/app") { name } }`, nil)
		if got := get(data, "project.name"); got != "app" {
			t.Errorf("the guest sees the project itself: got %v, want app", got)
		}
		r := s.query(t, guest, `{ project(id: "acme/app") { environments { count } } }`, nil)
		expectError(t, r, "FORBIDDEN", "")
	})
	t.Run("environments read anonymously in a public project", func(t *testing.T) {
		data := s.mustQuery(t, "", `{ project(id: "acme/other") { environments { count nodes { id slug tier } } } }`, nil)
		if got := get(data, "project.environments"); !equalJSON(got, map[string]any{"count": 1, "nodes": []any{map[string]any{"id": gid("Environment", 100), "slug": "production", "tier": "PRODUCTION"}}}) {
			t.Errorf("got %v", got)
		}
	})
	_ = fmt.Sprint
}
