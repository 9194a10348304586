package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// postRaw sends a POST with a body and headers of the test's choosing.
func (s *testServer) postRaw(t testing.TB, headers map[string]string, body string) gqlResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.do(t, req)
}

// Ensure that no request a plain HTML form or a cross-site page can send
// changes anything: only application/json POST bodies execute.
func TestE2EOnlyJSONBodiesExecute(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(3))
	mutation := `mutation { createGroup(input: {name: "csrf", path: "csrf"}) { group { id } } }`
	jsonBody, _ := json.Marshal(map[string]any{"query": mutation})
	cases := []struct {
		name, contentType, body string
		status                  int
	}{
		{"FormURLEncoded", "application/x-www-form-urlencoded", url.Values{"query": {mutation}}.Encode(), http.StatusUnsupportedMediaType},
		{"MultipartForm", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" + mutation + "\r\n--x--\r\n", http.StatusUnsupportedMediaType},
		{"TextPlain", "text/plain", string(jsonBody), http.StatusUnsupportedMediaType},
		{"TextPlainWithCharset", "text/plain;charset=UTF-8", string(jsonBody), http.StatusUnsupportedMediaType},
		{"JSONInAnotherCharset", "application/json; charset=latin1", string(jsonBody), http.StatusUnsupportedMediaType},
		{"ApplicationGraphQL", "application/graphql", mutation, http.StatusUnsupportedMediaType},
		{"NoContentType", "", string(jsonBody), http.StatusUnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{"Authorization": "Bearer " + rootToken, "Content-Type": tc.contentType}
			if tc.contentType == "" {
				delete(headers, "Content-Type")
			}
			r := s.postRaw(t, headers, tc.body)
			if r.Status != tc.status {
				t.Errorf("status: got %d, want %d (%s)", r.Status, tc.status, r.raw)
			}
			expectError(t, r, "BAD_REQUEST", "")
		})
	}
	if r := s.query(t, rootToken, `{ group(id: "csrf") { id } }`, nil); len(r.Errors) == 0 {
		t.Fatalf("group csrf exists after refused requests: %s", r.raw)
	}
	// The same mutation as JSON runs: the refusals above were about the
	// encoding alone.
	r := s.postRaw(t, map[string]string{"Authorization": "Bearer " + rootToken, "Content-Type": "application/json; charset=utf-8"}, string(jsonBody))
	expectNoError(t, r)
}

// Ensure that the response's status and shape follow the media type the
// client accepts (GraphQL over HTTP), and that every error carries a code.
func TestE2EGraphQLOverHTTPStatuses(t *testing.T) {
	t.Parallel()
	s := startDemoServer(t)
	const (
		appJSON = "application/json"
		gqlJSON = "application/graphql-response+json"
	)
	cases := []struct {
		name, accept, body string
		status             int
		contentType, code  string
	}{
		{"QueryAsJSON", appJSON, `{"query": "{ __typename }"}`, 200, appJSON, ""},
		{"QueryAsGraphQLResponse", gqlJSON, `{"query": "{ __typename }"}`, 200, gqlJSON, ""},
		{"QueryAcceptingAnything", "*/*", `{"query": "{ __typename }"}`, 200, appJSON, ""},
		{"QueryPreferringGraphQLResponse", "application/json;q=0.9, application/graphql-response+json", `{"query": "{ __typename }"}`, 200, gqlJSON, ""},
		{"UnsupportedAccept", "text/html", `{"query": "{ __typename }"}`, 406, appJSON, "BAD_REQUEST"},
		{"ParseFailureAsJSON", appJSON, `{"query": "{"}`, 200, appJSON, "GRAPHQL_PARSE_FAILED"},
		{"ParseFailureAsGraphQLResponse", gqlJSON, `{"query": "{"}`, 400, gqlJSON, "GRAPHQL_PARSE_FAILED"},
		{"ValidationFailureAsJSON", appJSON, `{"query": "{ nope }"}`, 200, appJSON, "GRAPHQL_VALIDATION_FAILED"},
		{"ValidationFailureAsGraphQLResponse", gqlJSON, `{"query": "{ nope }"}`, 400, gqlJSON, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableCoercionAsJSON", appJSON, `{"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": null}}`, 200, appJSON, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableCoercionAsGraphQLResponse", gqlJSON, `{"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": null}}`, 400, gqlJSON, "GRAPHQL_VALIDATION_FAILED"},
		{"UnknownOperationName", appJSON, `{"query": "query A { __typename }", "operationName": "B"}`, 200, appJSON, "GRAPHQL_VALIDATION_FAILED"},
		{"NullParameters", gqlJSON, `{"query": "{ __typename }", "variables": null, "operationName": null, "extensions": null}`, 200, gqlJSON, ""},
		{"VariablesNotAnObject", appJSON, `{"query": "{ __typename }", "variables": "{}"}`, 400, appJSON, "BAD_REQUEST"},
		{"VariablesAnArray", appJSON, `{"query": "{ __typename }", "variables": []}`, 400, appJSON, "BAD_REQUEST"},
		{"ExtensionsNotAnObject", appJSON, `{"query": "{ __typename }", "extensions": 1}`, 400, appJSON, "BAD_REQUEST"},
		{"OperationNameNotAString", appJSON, `{"query": "{ __typename }", "operationName": false}`, 400, appJSON, "BAD_REQUEST"},
		{"NotJSON", gqlJSON, `{ "not a JSON`, 400, appJSON, "BAD_REQUEST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", tc.accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status: got %d, want %d (%s)", resp.StatusCode, tc.status, raw)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
				t.Errorf("content type: got %q, want %s", got, tc.contentType)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body is not a JSON object: %s", raw)
			}
			if tc.code == "" {
				if _, ok := body["errors"]; ok {
					t.Errorf("got errors: %s", raw)
				}
				return
			}
			var errs []gqlError
			json.Unmarshal(body["errors"], &errs)
			r := gqlResponse{Status: resp.StatusCode, Errors: errs, raw: raw}
			expectError(t, r, tc.code, "")
			for _, e := range errs {
				if e.Extensions["code"] == nil {
					t.Errorf("an error without a code: %s", raw)
				}
			}
			if _, ok := body["data"]; ok {
				t.Errorf("a request that did not execute has a data entry: %s", raw)
			}
		})
	}
}

// persistedQuery is the extensions entry of an automatic persisted query.
func persistedQuery(query string) map[string]any {
	sum := sha256.Sum256([]byte(query))
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
}

// postParams sends query (may be empty) and extensions as JSON.
func (s *testServer) postParams(t testing.TB, query string, extensions map[string]any) gqlResponse {
	t.Helper()
	params := map[string]any{"extensions": extensions}
	if query != "" {
		params["query"] = query
	}
	body, _ := json.Marshal(params)
	return s.postRaw(t, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + rootToken}, string(body))
}

// getParams sends a GET with query (may be empty) and extensions.
func (s *testServer) getParams(t testing.TB, query string, extensions map[string]any) gqlResponse {
	t.Helper()
	params := url.Values{}
	if query != "" {
		params.Set("query", query)
	}
	ext, _ := json.Marshal(extensions)
	params.Set("extensions", string(ext))
	req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?"+params.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+rootToken)
	return s.do(t, req)
}

// Ensure that automatic persisted queries work as Apollo's clients expect:
// an unknown hash asks for the query, a hash with its query runs and is
// kept, and then the hash alone runs it, over POST and GET.
func TestE2EAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	s := startDemoServer(t)
	query := `{ currentUser { username } }`
	ext := persistedQuery(query)

	r := s.postParams(t, "", ext)
	if r.Status != http.StatusOK {
		t.Errorf("unknown hash: status %d, want 200", r.Status)
	}
	expectError(t, r, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")

	r = s.postParams(t, query, ext)
	if got := get(expectNoError(t, r), "currentUser.username"); got != "root" {
		t.Errorf("hash with query: got %v (%s)", got, r.raw)
	}
	r = s.postParams(t, "", ext)
	if got := get(expectNoError(t, r), "currentUser.username"); got != "root" {
		t.Errorf("hash alone over POST: got %v (%s)", got, r.raw)
	}
	r = s.getParams(t, "", ext)
	if got := get(expectNoError(t, r), "currentUser.username"); got != "root" {
		t.Errorf("hash alone over GET: got %v (%s)", got, r.raw)
	}

	t.Run("HashThatDoesNotMatchIsBadRequest", func(t *testing.T) {
		r := s.postParams(t, `{ __typename }`, ext)
		if r.Status != http.StatusBadRequest {
			t.Errorf("status: got %d, want 400", r.Status)
		}
		expectError(t, r, "BAD_REQUEST", "")
	})
	t.Run("UnsupportedVersionIsBadRequest", func(t *testing.T) {
		r := s.postParams(t, "", map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": "00"}})
		expectError(t, r, "BAD_REQUEST", "")
	})
	t.Run("LongQueriesAreNotKept", func(t *testing.T) {
		long := "# " + strings.Repeat("x", 40<<10) + "\n{ currentUser { username } }"
		ext := persistedQuery(long)
		expectNoError(t, s.postParams(t, long, ext))
		expectError(t, s.postParams(t, "", ext), "PERSISTED_QUERY_NOT_FOUND", "")
	})
	t.Run("NoQueryAndNoHashIsBadRequest", func(t *testing.T) {
		r := s.postParams(t, "", map[string]any{"other": true})
		if r.Status != http.StatusBadRequest {
			t.Errorf("status: got %d, want 400", r.Status)
		}
		expectError(t, r, "BAD_REQUEST", "")
	})
}

// Ensure that a mutation cannot run over GET even when its text comes from
// the persisted query cache rather than from the URL.
func TestE2EGetRefusesPersistedMutations(t *testing.T) {
	t.Parallel()
	s := startServer(t, fixtureDoc(3))
	mutation := `mutation { createGroup(input: {name: "apq", path: "apq"}) { group { path } } }`
	ext := persistedQuery(mutation)
	groupExists := func() bool {
		return len(s.query(t, rootToken, `{ group(id: "apq") { id } }`, nil).Errors) == 0
	}

	// Hash and mutation over GET: refused, but the query is now cached.
	r := s.getParams(t, mutation, ext)
	if r.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET with the mutation: status %d, want 405 (%s)", r.Status, r.raw)
	}
	expectError(t, r, "BAD_REQUEST", "")
	// The hash alone over GET: still refused.
	r = s.getParams(t, "", ext)
	if r.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET with the hash: status %d, want 405 (%s)", r.Status, r.raw)
	}
	expectError(t, r, "BAD_REQUEST", "")
	if groupExists() {
		t.Fatal("a GET created the group")
	}
	// The hash alone over POST runs the cached mutation.
	r = s.postParams(t, "", ext)
	if got := get(expectNoError(t, r), "createGroup.group.path"); got != "apq" {
		t.Errorf("POST with the hash: got %v (%s)", got, r.raw)
	}
	if !groupExists() {
		t.Error("the POST did not create the group")
	}
}

// preflight sends a CORS preflight for a POST with a token and a JSON body.
func preflight(t *testing.T, s *testServer, origin string) http.Header {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, s.url+"/graphql", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header
}

// Ensure that browsers may call the API cross-site only from the origins
// given to -cors-origins, and from none by default.
func TestE2ECORS(t *testing.T) {
	t.Parallel()
	closed := startServer(t, fixtureDoc(3))
	open := serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, introspection: true,
		corsOrigins: []string{"http://ok.example", "https://app.example:8443"}})

	cases := []struct {
		name    string
		s       *testServer
		origin  string
		allowed bool
	}{
		{"NoOriginsEvilExample", closed, "http://evil.example", false},
		{"NoOriginsOkExample", closed, "http://ok.example", false},
		{"AllowedOrigin", open, "http://ok.example", true},
		{"AllowedOriginWithPort", open, "https://app.example:8443", true},
		{"OtherOrigin", open, "http://evil.example", false},
		{"OtherScheme", open, "https://ok.example", false},
		{"OtherPort", open, "https://app.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := preflight(t, tc.s, tc.origin)
			got := h.Get("Access-Control-Allow-Origin")
			if !tc.allowed {
				if got != "" {
					t.Errorf("preflight: Access-Control-Allow-Origin %q, want none", got)
				}
			} else {
				if got != tc.origin {
					t.Errorf("preflight: Access-Control-Allow-Origin %q, want %q", got, tc.origin)
				}
				allowHeaders := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
				for _, want := range []string{"authorization", "content-type"} {
					if !strings.Contains(allowHeaders, want) {
						t.Errorf("preflight: Access-Control-Allow-Headers %q lacks %s", allowHeaders, want)
					}
				}
			}
			// The request itself: its answer carries the header only for
			// an allowed origin.
			req, _ := http.NewRequest(http.MethodPost, tc.s.url+"/graphql", strings.NewReader(`{"query": "{ __typename }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", tc.origin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = resp.Header.Get("Access-Control-Allow-Origin")
			if (got != "") != tc.allowed {
				t.Errorf("request: Access-Control-Allow-Origin %q, want allowed=%v", got, tc.allowed)
			}
		})
	}
}
