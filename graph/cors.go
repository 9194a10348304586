package graph

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rs/cors"
)

// OriginAllowed reports whether a browser page at origin (scheme://host[:port],
// as in the Origin header) may call the API from another site: only the
// configured CORSOrigins may.
func (o Options) OriginAllowed(origin string) bool {
	return slices.ContainsFunc(o.CORSOrigins, func(allowed string) bool {
		return strings.EqualFold(allowed, origin)
	})
}

// RequestOriginAllowed reports whether a request may be served as far as its
// origin goes: one without an Origin header (not from a browser page), one
// from the server's own origin, or one from an allowed origin. Handlers that
// browsers reach without CORS, such as WebSocket handshakes, check it.
func (o Options) RequestOriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return o.OriginAllowed(origin)
}

// cors answers preflight requests and adds the CORS headers that let the
// allowed origins read responses. Other origins get no CORS header, so their
// browsers refuse to send anything but simple requests, and those cannot
// carry a token or a JSON body.
func (o Options) cors(next http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginFunc: o.OriginAllowed,
		AllowedMethods:  []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:  []string{"Authorization", "PRIVATE-TOKEN", "Content-Type", "Accept"},
		MaxAge:          600,
	}).Handler(next)
}
