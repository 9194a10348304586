package graph_test

import (
	"net/http/httptest"
	"testing"

	"github.com/deploygraph/deploygraph/graph"
)

// Ensure that an origin check (for handlers that browsers reach without
// CORS, such as WebSocket handshakes) lets through requests without an
// Origin, from the server's own origin and from the configured ones only.
func TestRequestOriginAllowed(t *testing.T) {
	opts := graph.Options{CORSOrigins: []string{"http://ok.example", "https://app.example:8443"}}
	for _, tc := range []struct {
		name, host, origin string
		want               bool
	}{
		{"NoOrigin", "api.example", "", true},
		{"SameOrigin", "api.example:8080", "http://api.example:8080", true},
		{"SameOriginOtherCase", "API.example", "https://api.example", true},
		{"Configured", "api.example", "http://ok.example", true},
		{"ConfiguredWithPort", "api.example", "https://app.example:8443", true},
		{"OtherSite", "api.example", "http://evil.example", false},
		{"OtherPortOfTheSameHost", "api.example:8080", "http://api.example:9090", false},
		{"ConfiguredHostOtherScheme", "api.example", "https://ok.example", false},
		{"Null", "api.example", "null", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/graphql", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := opts.RequestOriginAllowed(r); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if (graph.Options{}).OriginAllowed("http://ok.example") {
		t.Error("without CORSOrigins, a cross-site origin is allowed")
	}
}
